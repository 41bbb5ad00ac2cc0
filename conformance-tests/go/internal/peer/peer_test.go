package peer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cosmos/gogoproto/proto"
)

// The echo channel's wire payload must be exactly the message bytes.
func TestRawMessageIsIdentityEncoding(t *testing.T) {
	for _, data := range [][]byte{{}, {0x00}, {0x0a, 0x01, 0xff}, bytes.Repeat([]byte{0x7e}, 5000)} {
		b, err := proto.Marshal(&RawMessage{Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("marshal: got %x want %x", b, data)
		}
		tmpl := proto.Clone(&RawMessage{})
		buf := append([]byte{}, data...)
		if err := proto.Unmarshal(buf, tmpl); err != nil {
			t.Fatal(err)
		}
		for i := range buf { // MConnection reuses its buffer: the message must not alias it
			buf[i] ^= 0xff
		}
		if got := tmpl.(*RawMessage).Data; !bytes.Equal(got, data) {
			t.Fatalf("unmarshal: got %x want %x", got, data)
		}
	}
}

func TestEchoSizesCoverEdgesAndStayInRange(t *testing.T) {
	sizes := EchoSizes(1000, 1<<20, 1)
	if len(sizes) != 1000 {
		t.Fatalf("len %d", len(sizes))
	}
	seen := map[int]bool{}
	for _, s := range sizes {
		if s < 0 || s > 1<<20 {
			t.Fatalf("size %d out of range", s)
		}
		seen[s] = true
	}
	for _, e := range []int{0, 1024, 1025, 1 << 20} {
		if !seen[e] {
			t.Fatalf("edge size %d missing", e)
		}
	}
	again := EchoSizes(1000, 1<<20, 1)
	for i := range sizes {
		if sizes[i] != again[i] {
			t.Fatal("sizes are not deterministic for a seed")
		}
	}
}

func TestEchoPayloadCarriesIndex(t *testing.T) {
	a, b := EchoPayload(7, 100, 1), EchoPayload(8, 100, 1)
	if bytes.Equal(a, b) || a[0] != 7 || b[0] != 8 || len(EchoPayload(0, 0, 1)) != 0 {
		t.Fatal("payloads must differ per index and start with the index")
	}
}

func TestIsPowerOfTen(t *testing.T) {
	for n, want := range map[uint64]bool{1: true, 10: true, 1000: true, 0: false, 2: false, 20: false, 110: false} {
		if isPowerOfTen(n) != want {
			t.Fatalf("isPowerOfTen(%d) != %v", n, want)
		}
	}
}

func TestClassifyPlainDialError(t *testing.T) {
	if r, _ := classify(errors.New("dial tcp 127.0.0.1:1: connect: connection refused")); r != ReasonDialFailed {
		t.Fatalf("got %s", r)
	}
}
