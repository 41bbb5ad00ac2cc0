package tools

// Tools for the cases of our own reactors (cases/95-reactors.sh): reading a
// key back from a kvstore node, checking what consensus-watch printed against
// the node's RPC, and asking a node what round state it holds for a peer.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func rpcGet(client *http.Client, base, path string, out any) error {
	resp, err := client.Get(strings.TrimRight(base, "/") + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, out)
}

func loopbackRPC(rpc string) error {
	if !strings.HasPrefix(rpc, "http://127.0.0.1:") {
		return errors.New("--rpc must be http://127.0.0.1:PORT")
	}
	return nil
}

// abci-query --rpc URL --key K --value V [--timeout D]: polls the node's
// /abci_query for key K (kvstore) until its value is V; prints the height.
func abciQuery(args []string) error {
	fs := flag.NewFlagSet("abci-query", flag.ContinueOnError)
	rpc := fs.String("rpc", "", "RPC base URL (loopback)")
	key := fs.String("key", "", "key")
	value := fs.String("value", "", "value expected")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loopbackRPC(*rpc); err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(*timeout)
	last := "(no answer)"
	for {
		var q struct {
			Result struct {
				Response struct {
					Log    string `json:"log"`
					Value  string `json:"value"`
					Height string `json:"height"`
				} `json:"response"`
			} `json:"result"`
		}
		path := "/abci_query?data=" + url.QueryEscape(strconv.Quote(*key))
		if err := rpcGet(client, *rpc, path, &q); err == nil {
			v, _ := base64.StdEncoding.DecodeString(q.Result.Response.Value)
			last = fmt.Sprintf("value %q (log %q)", v, q.Result.Response.Log)
			if string(v) == *value {
				fmt.Printf("%s=%s at height %s\n", *key, v, q.Result.Response.Height)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("key %q does not hold %q within %s: last %s", *key, *value, *timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type watchHeight struct {
	Event      string  `json:"event"`
	Height     int64   `json:"height"`
	Round      int     `json:"round"`
	Hash       *string `json:"hash"`
	Proposer   *string `json:"proposer"`
	Prevotes   []int   `json:"prevotes"`
	Precommits []int   `json:"precommits"`
}

type watchStats struct {
	Event       string           `json:"event"`
	Kinds       map[string]int64 `json:"kinds"`
	Undecodable int64            `json:"undecodable"`
	LastError   *string          `json:"last_error"`
	Dropped     int64            `json:"dropped"`
}

func allOf(idx []int, n int) bool {
	if len(idx) != n {
		return false
	}
	s := append([]int(nil), idx...)
	sort.Ints(s)
	for i, v := range s {
		if v != i {
			return false
		}
	}
	return true
}

// check-watch --file F --rpc URL --validators N --min-run M [--kinds a,b]:
// reads the JSON lines consensus-watch printed. Passes when the heights
// strictly increase, every height with a hash has the hash and proposer the
// node's /block gives, at least M consecutive heights have precommits of all
// N validators (indexes 0..N-1) and a hash, the last stats line says nothing
// was undecodable, and every kind in --kinds was decoded. Prints the figures.
func checkWatch(args []string) error {
	fs := flag.NewFlagSet("check-watch", flag.ContinueOnError)
	file := fs.String("file", "", "consensus-watch --json output")
	rpc := fs.String("rpc", "", "RPC base URL (loopback)")
	n := fs.Int("validators", 1, "validators in the network")
	minRun := fs.Int("min-run", 5, "consecutive heights with all precommits and equal hashes")
	kinds := fs.String("kinds", "", "consensus kinds that must have been decoded, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loopbackRPC(*rpc); err != nil {
		return err
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	client := &http.Client{Timeout: 2 * time.Second}
	var heights []watchHeight
	var stats *watchStats
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var head struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(sc.Bytes(), &head) != nil {
			continue
		}
		switch head.Event {
		case "height":
			var h watchHeight
			if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
				return err
			}
			heights = append(heights, h)
		case "stats":
			var s watchStats
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				return err
			}
			stats = &s
		}
	}
	if len(heights) == 0 {
		return errors.New("no height reported")
	}
	hashed, equal, run, best, bestEnd, prevoted := 0, 0, 0, 0, int64(0), 0
	for i, h := range heights {
		if i > 0 && h.Height <= heights[i-1].Height {
			return fmt.Errorf("height %d reported after %d", h.Height, heights[i-1].Height)
		}
		ok := false
		if h.Hash != nil {
			hashed++
			var b struct {
				Result struct {
					BlockID struct {
						Hash string `json:"hash"`
					} `json:"block_id"`
					Block struct {
						Header struct {
							Proposer string `json:"proposer_address"`
						} `json:"header"`
					} `json:"block"`
				} `json:"result"`
			}
			if err := rpcGet(client, *rpc, fmt.Sprintf("/block?height=%d", h.Height), &b); err != nil {
				return fmt.Errorf("/block?height=%d: %v", h.Height, err)
			}
			if b.Result.BlockID.Hash != *h.Hash {
				return fmt.Errorf("height %d: consensus-watch says block %s, the node's /block %s", h.Height, *h.Hash, b.Result.BlockID.Hash)
			}
			if h.Proposer == nil || *h.Proposer != b.Result.Block.Header.Proposer {
				return fmt.Errorf("height %d: proposer %v, the node's /block %s", h.Height, h.Proposer, b.Result.Block.Header.Proposer)
			}
			equal++
			ok = allOf(h.Precommits, *n)
		}
		if allOf(h.Prevotes, *n) {
			prevoted++
		}
		if ok && (run == 0 || h.Height == heights[i-1].Height+1) {
			run++
		} else if ok {
			run = 1
		} else {
			run = 0
		}
		if run > best {
			best, bestEnd = run, h.Height
		}
	}
	fmt.Printf("heights %d..%d (%d reported), %d with a block hash, all %d equal to the node's /block (hash and proposer)\n",
		heights[0].Height, heights[len(heights)-1].Height, len(heights), hashed, equal)
	fmt.Printf("precommits of all %d validators with the block hash: longest run %d heights (%d..%d); prevotes of all %d at %d heights\n",
		*n, best, bestEnd-int64(best)+1, bestEnd, *n, prevoted)
	if stats == nil {
		return errors.New("no stats line")
	}
	names := make([]string, 0, len(stats.Kinds))
	for k, v := range stats.Kinds {
		names = append(names, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(names)
	fmt.Printf("decoded: %s; undecodable %d, reports dropped %d\n", strings.Join(names, " "), stats.Undecodable, stats.Dropped)
	if stats.Undecodable != 0 {
		return fmt.Errorf("%d undecodable consensus messages (last: %v)", stats.Undecodable, *stats.LastError)
	}
	if *kinds != "" {
		for _, k := range strings.Split(*kinds, ",") {
			if stats.Kinds[k] == 0 {
				return fmt.Errorf("no %s message decoded", k)
			}
		}
	}
	if best < *minRun {
		return fmt.Errorf("longest run of heights with all %d precommits and the node's hash: %d, want >= %d", *n, best, *minRun)
	}
	return nil
}

// peer-height --rpc URL --id ID: prints the height, round and step that the
// node's consensus reactor holds for peer ID (/dump_consensus_state), i.e. what
// that peer last announced.
func peerHeight(args []string) error {
	fs := flag.NewFlagSet("peer-height", flag.ContinueOnError)
	rpc := fs.String("rpc", "", "RPC base URL (loopback)")
	id := fs.String("id", "", "peer ID")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loopbackRPC(*rpc); err != nil {
		return err
	}
	var d struct {
		Result struct {
			Peers []struct {
				NodeAddress string `json:"node_address"`
				PeerState   struct {
					RoundState struct {
						Height json.RawMessage `json:"height"`
						Round  json.RawMessage `json:"round"`
						Step   json.RawMessage `json:"step"`
					} `json:"round_state"`
				} `json:"peer_state"`
			} `json:"peers"`
		} `json:"result"`
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if err := rpcGet(client, *rpc, "/dump_consensus_state", &d); err != nil {
		return err
	}
	for _, p := range d.Result.Peers {
		if strings.HasPrefix(p.NodeAddress, *id+"@") {
			rs := p.PeerState.RoundState
			fmt.Println(render(rs.Height), render(rs.Round), render(rs.Step))
			return nil
		}
	}
	return fmt.Errorf("peer %s not in /dump_consensus_state", *id)
}
