package peer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/cometbft/cometbft/p2p"

	"mukan.dev/conformance/gopeer/internal/events"
)

// EchoSizes returns the n message sizes of an echo run: the edge sizes
// {0, 1, 2, 3, 4, 1023, 1024, 1025, 2047, 2048, 65535, 65536, max-1, max}
// that are ≤ max, then seeded random sizes, 85% in [0, 2 KiB],
// 12% in (2 KiB, 64 KiB], 3% in (64 KiB, max], shuffled with the seed.
func EchoSizes(n int, maxSize int, seed uint64) []int {
	rng := newXorshift(seed)
	edges := []int{0, 1, 2, 3, 4, 1023, 1024, 1025, 2047, 2048, 65535, 65536, maxSize - 1, maxSize}
	sizes := make([]int, 0, n)
	for _, e := range edges {
		if len(sizes) < n && e >= 0 && e <= maxSize {
			sizes = append(sizes, e)
		}
	}
	for len(sizes) < n {
		r := rng.intn(100)
		var lo, hi int
		switch {
		case r < 85:
			lo, hi = 0, 2048
		case r < 97:
			lo, hi = 2049, 65536
		default:
			lo, hi = 65537, maxSize
		}
		if hi > maxSize {
			hi = maxSize
		}
		if lo > hi {
			lo = hi
		}
		sizes = append(sizes, lo+rng.intn(hi-lo+1))
	}
	for i := len(sizes) - 1; i > 0; i-- {
		j := rng.intn(i + 1)
		sizes[i], sizes[j] = sizes[j], sizes[i]
	}
	return sizes
}

// EchoPayload returns message i of a run: size bytes whose first 4 bytes
// (when size ≥ 4) are i little-endian and the rest seeded pseudo-random.
func EchoPayload(i int, size int, seed uint64) []byte {
	b := make([]byte, size)
	rng := newXorshift(seed ^ (uint64(i)+1)*0x9e3779b97f4a7c15)
	for k := 0; k < size; k += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.next())
		copy(b[k:], w[:])
	}
	if size >= 4 {
		binary.LittleEndian.PutUint32(b, uint32(i))
	}
	return b
}

type xorshift struct{ s uint64 }

func newXorshift(seed uint64) *xorshift {
	if seed == 0 {
		seed = 0x2545f4914f6cdd1d
	}
	return &xorshift{s: seed}
}

func (x *xorshift) next() uint64 {
	x.s ^= x.s << 13
	x.s ^= x.s >> 7
	x.s ^= x.s << 17
	return x.s
}

func (x *xorshift) intn(n int) int { return int(x.next() % uint64(n)) }

// echoClient drives the client role: once the target peer is added it sends
// the messages on the echo channel and checks that they come back
// byte-exact and in order.
type echoClient struct {
	ev      *events.Emitter
	ch      byte
	count   int
	maxSize int
	seed    uint64
	target  p2p.ID // empty: the first peer added
	timeout time.Duration

	mu      sync.Mutex
	peer    p2p.Peer
	started chan p2p.Peer
	recv    chan []byte
	removed chan string
}

func newEchoClient(ev *events.Emitter, ch byte, count, maxSize int, seed uint64, target p2p.ID, timeout time.Duration) *echoClient {
	return &echoClient{
		ev: ev, ch: ch, count: count, maxSize: maxSize, seed: seed, target: target, timeout: timeout,
		started: make(chan p2p.Peer, 1),
		recv:    make(chan []byte, count+1),
		removed: make(chan string, 1),
	}
}

func (c *echoClient) onPeerAdded(p p2p.Peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peer != nil || (c.target != "" && p.ID() != c.target) {
		return
	}
	c.peer = p
	c.started <- p
}

func (c *echoClient) isTarget(p p2p.Peer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer != nil && c.peer.ID() == p.ID()
}

func (c *echoClient) onPeerRemoved(p p2p.Peer, reason interface{}) {
	if c.isTarget(p) {
		select {
		case c.removed <- fmt.Sprint(reason):
		default:
		}
	}
}

func (c *echoClient) onReceive(src p2p.Peer, data []byte) {
	if !c.isTarget(src) {
		return
	}
	select {
	case c.recv <- data:
	default: // more echoes than sent: counted as a failure by run()
		c.ev.Emit("error", "error", "echo client: unexpected extra message", "bytes", len(data))
	}
}

// run waits for the peer (up to the timeout), then runs the exchange and
// prints "echo_summary". It returns true when all messages came back intact.
func (c *echoClient) run(connectTimeout time.Duration) bool {
	var p p2p.Peer
	select {
	case p = <-c.started:
	case <-time.After(connectTimeout):
		c.ev.Emit("echo_summary", "ok", false, "error", "no peer connected within "+connectTimeout.String(),
			"sent", 0, "received", 0)
		return false
	}
	sizes := EchoSizes(c.count, c.maxSize, c.seed)
	total := 0
	for _, s := range sizes {
		total += s
	}
	start := time.Now()
	sendErr := make(chan string, 1)
	go func() {
		for i, s := range sizes {
			if !p.Send(p2p.Envelope{ChannelID: c.ch, Message: &RawMessage{Data: EchoPayload(i, s, c.seed)}}) {
				sendErr <- fmt.Sprintf("send of message %d (%d bytes) failed", i, s)
				return
			}
		}
	}()
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	received, mismatches, firstMismatch := 0, 0, -1
	failure := ""
loop:
	for received < len(sizes) {
		select {
		case data := <-c.recv:
			i := received
			if !bytes.Equal(data, EchoPayload(i, sizes[i], c.seed)) {
				mismatches++
				if firstMismatch < 0 {
					firstMismatch = i
					c.ev.Emit("echo_mismatch", "index", i, "want_bytes", sizes[i], "got_bytes", len(data))
				}
			}
			received++
		case e := <-sendErr:
			failure = e
			break loop
		case r := <-c.removed:
			failure = "peer removed: " + r
			break loop
		case <-deadline.C:
			failure = "timeout after " + c.timeout.String()
			break loop
		}
	}
	// Any extra echo beyond the sent count is a failure too.
	if failure == "" {
		select {
		case <-c.recv:
			failure = "received more messages than sent"
		case <-time.After(200 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	ok := failure == "" && mismatches == 0 && received == len(sizes)
	c.ev.Emit("echo_summary", "ok", ok, "peer", string(p.ID()), "sent", len(sizes), "received", received,
		"mismatches", mismatches, "first_mismatch", firstMismatch, "bytes", total,
		"elapsed_ms", elapsed.Milliseconds(), "error", failure)
	return ok
}
