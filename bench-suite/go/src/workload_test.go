package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestSplitMix64ReferenceOutputs(t *testing.T) {
	g := splitMix64{state: 1234567}
	want := []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423,
		4593380528125082431, 16408922859458223821}
	for i, w := range want {
		if got := g.next(); got != w {
			t.Fatalf("output %d: got %d, want %d", i, got, w)
		}
	}
}

func TestSizesMatchCommittedList(t *testing.T) {
	// The test runs in bench-suite/go/v0.38 or v0.40; the list is bench-suite/workload-sizes.txt.
	f, err := os.Open("../../workload-sizes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []int
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.Atoi(line)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	if len(want) < 64 {
		t.Fatalf("the committed list has %d sizes", len(want))
	}
	got := workloadSizes(len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("size %d: got %d, want %d", i, got[i], want[i])
		}
	}
}
