package tools

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestPortReservation(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MUKAN_PORT_RESERVATIONS", dir)
	now := time.Now()
	if !reservePort(20001, now) {
		t.Fatal("a free port must be reservable")
	}
	if reservePort(20001, now.Add(time.Minute)) {
		t.Fatal("a reserved port must not be given again within the TTL")
	}
	if !reservePort(20002, now) {
		t.Fatal("another port is independent")
	}
	// Past the TTL the reservation is taken over.
	old := now.Add(-ReservationTTL - time.Second)
	if err := os.Chtimes(filepath.Join(dir, "20001"), old, old); err != nil {
		t.Fatal(err)
	}
	if !reservePort(20001, now) {
		t.Fatal("a stale reservation must be taken over")
	}
	if reservePort(20001, now) {
		t.Fatal("the taken-over reservation holds again")
	}
	// Pruning removes only very old files.
	ancient := now.Add(-5 * ReservationTTL)
	if err := os.Chtimes(filepath.Join(dir, "20002"), ancient, ancient); err != nil {
		t.Fatal(err)
	}
	pruneReservations(now)
	if _, err := os.Stat(filepath.Join(dir, "20002")); !os.IsNotExist(err) {
		t.Fatal("an ancient reservation must be pruned")
	}
	if _, err := os.Stat(filepath.Join(dir, strconv.Itoa(20001))); err != nil {
		t.Fatal("a live reservation must stay")
	}
}

func TestFreePortsAreDistinctAcrossCalls(t *testing.T) {
	t.Setenv("MUKAN_PORT_RESERVATIONS", t.TempDir())
	seen := map[int]bool{}
	for i := 0; i < 50; i++ {
		port := pickOne(t)
		if seen[port] {
			t.Fatalf("port %d given twice within the TTL", port)
		}
		seen[port] = true
	}
}

// pickOne runs freePorts(1) and reads the port it prints.
func pickOne(t *testing.T) int {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	ferr := freePorts([]string{"1"})
	os.Stdout = stdout
	_ = w.Close()
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	_ = r.Close()
	if ferr != nil {
		t.Fatal(ferr)
	}
	port, err := strconv.Atoi(string(buf[:n-1]))
	if err != nil {
		t.Fatalf("free-ports printed %q", buf[:n])
	}
	return port
}

func TestMatchers(t *testing.T) {
	line := []byte(`{"event":"peer_added","id":"ab","outbound":true,"block_version":11,"error":"x: peer is on a different network"}`)
	cases := []struct {
		args []string
		want bool
	}{
		{[]string{"event=peer_added", "id=ab"}, true},
		{[]string{"outbound=true", "block_version=11"}, true},
		{[]string{"outbound=false"}, false},
		{[]string{"error~different network"}, true},
		{[]string{"error~same network"}, false},
		{[]string{"missing=1"}, false},
		{[]string{"event=peer"}, false},
	}
	for _, c := range cases {
		ms, err := parseMatchers(c.args)
		if err != nil {
			t.Fatal(err)
		}
		if got := matches(line, ms); got != c.want {
			t.Fatalf("%v: got %v want %v", c.args, got, c.want)
		}
	}
	if matches([]byte(`{"event":"peer_ad`), []matcher{{key: "event", value: "peer_added"}}) {
		t.Fatal("a partial line must not match")
	}
	if _, err := parseMatchers([]string{"novalue"}); err == nil {
		t.Fatal("a matcher without = or ~ must be refused")
	}
}

// A node that takes longer than 2 s to answer (a loaded machine) is still
// heard: one request may last until the wait's deadline.
func TestWaitHeightHearsASlowNode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2500 * time.Millisecond)
		_, _ = w.Write([]byte(`{"result":{"sync_info":{"latest_block_height":"5"}}}`))
	}))
	defer srv.Close()
	if err := waitHeight([]string{"--rpc", srv.URL, "--height", "3", "--timeout", "8s"}); err != nil {
		t.Fatal(err)
	}
}
