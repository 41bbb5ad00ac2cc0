// Package tools holds the small helpers run-interop.sh needs (so the script
// depends on nothing but bash, coreutils and Go): free loopback ports,
// waiting for an event in a JSON-lines file, and polling a CometBFT RPC for
// the block height.
package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Main runs tool name with args and returns the exit code.
func Main(name string, args []string) int {
	var err error
	switch name {
	case "free-ports":
		err = freePorts(args)
	case "wait-event":
		return waitEvent(args)
	case "wait-height":
		err = waitHeight(args)
	case "wait-rpc-peer":
		err = waitRPCPeer(args)
	case "abci-query":
		err = abciQuery(args)
	case "check-watch":
		err = checkWatch(args)
	case "peer-height":
		err = peerHeight(args)
	default:
		err = fmt.Errorf("unknown tool %q", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gopeer "+name+":", err)
		return 1
	}
	return 0
}

// free-ports N: prints N distinct free TCP ports on 127.0.0.1, one a line.
//
// The ports are drawn at random from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port the kernel hands out as the source
// port of some outgoing connection (a cometbft node dialing, a parallel case)
// could otherwise be taken between the pick and our peer's bind. Each port is
// checked by binding it, and all are held until every one is picked.
//
// A picked port is also reserved for ReservationTTL (a file named after it in
// ReservationDir, shared by every run on the machine), and a reserved port is
// never picked again meanwhile: two cases (of one run or of two runs) can no
// longer pick the same port between one's pick and its program's bind.
func freePorts(args []string) error {
	n := 1
	if len(args) > 0 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 || v > 100 {
			return errors.New("usage: free-ports [N (1..100)]")
		}
		n = v
	}
	lo, hi := 10000, ephemeralLow()
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ls) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi-lo >= 1000 && tries < 1000 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.Intn(hi-lo)))
		} else if tries >= 1000+n {
			return errors.New("no free port")
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !reservePort(port, time.Now()) {
			_ = l.Close()
			continue
		}
		ls = append(ls, l)
		fmt.Println(port)
	}
	pruneReservations(time.Now())
	return nil
}

// ReservationTTL is how long a port picked by free-ports stays reserved
// against other free-ports calls (longer than any case's pick-to-bind time).
const ReservationTTL = 15 * time.Minute

// ReservationDir holds one empty file per reserved port (its mtime is the
// reservation's time): MUKAN_PORT_RESERVATIONS, else <tmp>/mukan-interop-ports.
func ReservationDir() string {
	if d := os.Getenv("MUKAN_PORT_RESERVATIONS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "mukan-interop-ports")
}

// reservePort reserves port at now; false if a live reservation holds it. A
// reservation older than ReservationTTL is taken over: renamed away first (one
// caller wins the rename), then created anew with O_EXCL (one caller wins).
// When the directory cannot be used, the port is not reserved but is given
// (the bind check still holds).
func reservePort(port int, now time.Time) bool {
	dir := ReservationDir()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	name := filepath.Join(dir, strconv.Itoa(port))
	if fi, err := os.Stat(name); err == nil {
		if now.Sub(fi.ModTime()) < ReservationTTL {
			return false
		}
		stale := fmt.Sprintf("%s.stale.%d.%d", name, os.Getpid(), rand.Int63())
		if os.Rename(name, stale) != nil {
			return false
		}
		_ = os.Remove(stale)
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return os.IsNotExist(err) // the directory vanished: unreserved, still free
	}
	_ = f.Close()
	_ = os.Chtimes(name, now, now)
	return true
}

// pruneReservations removes reservations older than 4 x ReservationTTL, so
// the directory stays small.
func pruneReservations(now time.Time) {
	dir := ReservationDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > 4*ReservationTTL {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when
// it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	v, err := strconv.Atoi(f[0])
	if err != nil || v < 1024 {
		return 32768
	}
	return v
}

type matcher struct {
	key      string
	value    string
	contains bool
}

func parseMatchers(args []string) ([]matcher, error) {
	out := make([]matcher, 0, len(args))
	for _, a := range args {
		if i := strings.Index(a, "~"); i > 0 && (strings.Index(a, "=") < 0 || i < strings.Index(a, "=")) {
			out = append(out, matcher{key: a[:i], value: a[i+1:], contains: true})
			continue
		}
		i := strings.Index(a, "=")
		if i <= 0 {
			return nil, fmt.Errorf("matcher %q: want key=value or key~substring", a)
		}
		out = append(out, matcher{key: a[:i], value: a[i+1:]})
	}
	return out, nil
}

func render(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

func matches(line []byte, ms []matcher) bool {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return false
	}
	for _, m := range ms {
		raw, ok := obj[m.key]
		if !ok {
			return false
		}
		v := render(raw)
		if m.contains {
			if !strings.Contains(v, m.value) {
				return false
			}
		} else if v != m.value {
			return false
		}
	}
	return true
}

// wait-event --file F [--timeout D] [--count N] [--none] key=value key~sub ...
//
// Without --none: waits until N complete lines of F match every matcher,
// prints the N-th match, exits 0; exits 1 at the timeout.
// With --none: exits 0 if no line matches within the timeout (prints the
// first match and exits 1 otherwise).
func waitEvent(args []string) int {
	fs := flag.NewFlagSet("wait-event", flag.ContinueOnError)
	file := fs.String("file", "", "JSON-lines file to watch")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait")
	count := fs.Int("count", 1, "number of matching lines to wait for")
	none := fs.Bool("none", false, "succeed only if nothing matches within the timeout")
	if err := fs.Parse(args); err != nil || *file == "" {
		fmt.Fprintln(os.Stderr, "usage: wait-event --file F [--timeout D] [--count N] [--none] key=value ...")
		return 2
	}
	ms, err := parseMatchers(fs.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	deadline := time.Now().Add(*timeout)
	var offset int64
	found := 0
	var pending []byte
	for {
		if f, err := os.Open(*file); err == nil {
			if _, err := f.Seek(offset, io.SeekStart); err == nil {
				r := bufio.NewReader(f)
				for {
					chunk, err := r.ReadBytes('\n')
					offset += int64(len(chunk))
					pending = append(pending, chunk...)
					if err != nil {
						break // incomplete last line stays pending
					}
					line := pending
					pending = nil
					if matches(line, ms) {
						found++
						if *none {
							fmt.Print(string(line))
							_ = f.Close()
							return 1
						}
						if found >= *count {
							fmt.Print(string(line))
							_ = f.Close()
							return 0
						}
					}
				}
			}
			_ = f.Close()
		}
		if time.Now().After(deadline) {
			if *none {
				return 0
			}
			return 1
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wait-height --rpc http://127.0.0.1:PORT --height H [--timeout D]: polls
// /status until sync_info.latest_block_height >= H; prints the height.
func waitHeight(args []string) error {
	fs := flag.NewFlagSet("wait-height", flag.ContinueOnError)
	rpc := fs.String("rpc", "", "RPC base URL (loopback)")
	height := fs.Int64("height", 2, "height to reach")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*rpc, "http://127.0.0.1:") {
		return errors.New("--rpc must be http://127.0.0.1:PORT")
	}
	client := &http.Client{}
	deadline := time.Now().Add(*timeout)
	var last int64 = -1
	for {
		if h, err := statusHeight(client, *rpc, requestTimeout(deadline)); err == nil {
			last = h
			if h >= *height {
				fmt.Println(h)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("height %d not reached within %s (last seen %d)", *height, *timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// requestTimeout bounds one RPC request of a wait ending at deadline: the time
// left, but at least 2 s, so that a node slow to answer on a loaded machine
// (seen: 1.7 s) is still heard when the wait is short.
func requestTimeout(deadline time.Time) time.Duration {
	if left := time.Until(deadline); left > 2*time.Second {
		return left
	}
	return 2 * time.Second
}

// get fetches url within timeout.
func get(client *http.Client, url string, timeout time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func statusHeight(client *http.Client, base string, timeout time.Duration) (int64, error) {
	resp, err := get(client, strings.TrimRight(base, "/")+"/status", timeout)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	var st struct {
		Result struct {
			SyncInfo struct {
				LatestBlockHeight string `json:"latest_block_height"`
			} `json:"sync_info"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, err
	}
	return strconv.ParseInt(st.Result.SyncInfo.LatestBlockHeight, 10, 64)
}

// wait-rpc-peer --rpc http://127.0.0.1:PORT --id ID [--timeout D]: polls
// /net_info until a peer with node_info.id == ID is listed; prints that
// peer's node_info as JSON.
func waitRPCPeer(args []string) error {
	fs := flag.NewFlagSet("wait-rpc-peer", flag.ContinueOnError)
	rpc := fs.String("rpc", "", "RPC base URL (loopback)")
	id := fs.String("id", "", "peer ID to look for")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*rpc, "http://127.0.0.1:") || *id == "" {
		return errors.New("usage: wait-rpc-peer --rpc http://127.0.0.1:PORT --id ID")
	}
	client := &http.Client{}
	deadline := time.Now().Add(*timeout)
	for {
		if ni, err := rpcPeer(client, *rpc, *id, requestTimeout(deadline)); err == nil && ni != nil {
			fmt.Println(string(ni))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peer %s not in /net_info within %s", *id, *timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func rpcPeer(client *http.Client, base, id string, timeout time.Duration) (json.RawMessage, error) {
	resp, err := get(client, strings.TrimRight(base, "/")+"/net_info", timeout)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	var ni struct {
		Result struct {
			Peers []struct {
				NodeInfo json.RawMessage `json:"node_info"`
			} `json:"peers"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &ni); err != nil {
		return nil, err
	}
	for _, p := range ni.Result.Peers {
		var head struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(p.NodeInfo, &head) == nil && head.ID == id {
			return p.NodeInfo, nil
		}
	}
	return nil, nil
}
