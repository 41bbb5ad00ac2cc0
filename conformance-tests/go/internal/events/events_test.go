package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestEmitWritesOneJSONObjectPerLineWithEventFirst(t *testing.T) {
	var buf bytes.Buffer
	e := New(&buf)
	e.Emit("rejected", "reason", "self", "error", errors.New("a<b>c"), "n", 3, "ok", true)
	line := buf.String()
	if !strings.HasPrefix(line, `{"event":"rejected","reason":"self","error":"a<b>c","n":3,"ok":true,"t_ms":`) ||
		!strings.HasSuffix(line, "}\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("unexpected line %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
}
