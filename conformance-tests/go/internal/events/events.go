// Package events prints the peer program's machine-readable events: one JSON
// object per line on stdout, with "event" always the first key and the other
// keys in the order the caller gives them.
package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Emitter writes events to one writer; safe for concurrent use.
type Emitter struct {
	mu    sync.Mutex
	w     *bufio.Writer
	start time.Time
}

// New returns an emitter writing to w.
func New(w io.Writer) *Emitter {
	return &Emitter{w: bufio.NewWriter(w), start: time.Now()}
}

// Stdout is the emitter used by the program.
var Stdout = New(os.Stdout)

// Emit writes {"event":name, k1:v1, k2:v2, ..., "t_ms":elapsed} and flushes.
// kv alternates keys (strings) and JSON-encodable values.
func (e *Emitter) Emit(name string, kv ...any) {
	var b bytes.Buffer
	b.WriteString(`{"event":`)
	writeJSON(&b, name)
	for i := 0; i+1 < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		b.WriteByte(',')
		writeJSON(&b, key)
		b.WriteByte(':')
		writeJSON(&b, kv[i+1])
	}
	b.WriteString(`,"t_ms":`)
	writeJSON(&b, time.Since(e.start).Milliseconds())
	b.WriteString("}\n")

	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b.Bytes())
	_ = e.w.Flush()
}

func writeJSON(b *bytes.Buffer, v any) {
	if err, ok := v.(error); ok {
		v = err.Error()
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		out.Reset()
		_ = enc.Encode(fmt.Sprint(v))
	}
	b.Write(bytes.TrimRight(out.Bytes(), "\n"))
}
