package tools

import "testing"

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
