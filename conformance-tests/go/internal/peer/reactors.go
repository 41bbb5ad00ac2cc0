package peer

import (
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"

	"mukan.dev/conformance/gopeer/internal/events"
)

// echoReactor owns the echo channel. It also reports peer_added /
// peer_removed for every peer (each peer passes through every reactor).
//
// Server role (client == nil): every message received on the channel is sent
// back, unchanged, on the same channel to the peer it came from.
// Client role: received messages are handed to the echo client instead.
type echoReactor struct {
	p2p.BaseReactor
	ch        byte
	maxMsg    int
	ev        *events.Emitter
	client    *echoClient
	quietEcho bool
	markGood  bool
}

func newEchoReactor(ch byte, maxMsg int, ev *events.Emitter, client *echoClient, quiet, markGood bool) *echoReactor {
	r := &echoReactor{ch: ch, maxMsg: maxMsg, ev: ev, client: client, quietEcho: quiet, markGood: markGood}
	r.BaseReactor = *p2p.NewBaseReactor("Echo", r)
	return r
}

func (r *echoReactor) GetChannels() []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{{
		ID:                  r.ch,
		Priority:            5,
		SendQueueCapacity:   100,
		RecvBufferCapacity:  4096,
		RecvMessageCapacity: r.maxMsg,
		MessageType:         &RawMessage{},
	}}
}

func (r *echoReactor) AddPeer(p p2p.Peer) {
	kv := []any{"id", string(p.ID())}
	if ni, ok := p.NodeInfo().(p2p.DefaultNodeInfo); ok {
		kv = append(kv,
			"moniker", ni.Moniker,
			"channels", hex.EncodeToString(ni.Channels),
			"network", ni.Network,
			"version", ni.Version,
			"listen_addr", ni.ListenAddr,
			"p2p_version", ni.ProtocolVersion.P2P,
			"block_version", ni.ProtocolVersion.Block,
			"app_version", ni.ProtocolVersion.App,
			"tx_index", ni.Other.TxIndex,
			"rpc_address", ni.Other.RPCAddress,
		)
	}
	remote := ""
	if sa := p.SocketAddr(); sa != nil {
		remote = sa.DialString()
	}
	kv = append(kv, "outbound", p.IsOutbound(), "persistent", p.IsPersistent(), "remote_addr", remote)
	r.ev.Emit("peer_added", kv...)
	if r.markGood {
		// What the consensus reactor does for useful peers: moves the
		// address to an old bucket of the address book.
		r.Switch.MarkPeerAsGood(p)
	}
	if r.client != nil {
		r.client.onPeerAdded(p)
	}
}

func (r *echoReactor) RemovePeer(p p2p.Peer, reason interface{}) {
	r.ev.Emit("peer_removed", "id", string(p.ID()), "reason", fmt.Sprint(reason))
	if r.client != nil {
		r.client.onPeerRemoved(p, reason)
	}
}

func (r *echoReactor) Receive(e p2p.Envelope) {
	msg, ok := e.Message.(*RawMessage)
	if !ok {
		r.ev.Emit("error", "error", fmt.Sprintf("echo channel: unexpected message type %T", e.Message))
		return
	}
	if r.client != nil {
		r.client.onReceive(e.Src, msg.Data)
		return
	}
	if !r.quietEcho {
		r.ev.Emit("echo", "id", string(e.Src.ID()), "ch", hex.EncodeToString([]byte{e.ChannelID}), "bytes", len(msg.Data))
	}
	if !e.Src.Send(p2p.Envelope{ChannelID: e.ChannelID, Message: &RawMessage{Data: msg.Data}}) {
		r.ev.Emit("echo_failed", "id", string(e.Src.ID()), "bytes", len(msg.Data))
	}
}

// sinkReactor owns the extra channels given with --channels: it accepts and
// counts every message (raw bytes, not decoded) and reports the 1st, 10th,
// 100th, ... message per peer and channel as a "recv" event.
type sinkReactor struct {
	p2p.BaseReactor
	chans  []byte
	ev     *events.Emitter
	mu     sync.Mutex
	counts map[string]uint64
}

func newSinkReactor(chans []byte, ev *events.Emitter) *sinkReactor {
	r := &sinkReactor{chans: chans, ev: ev, counts: map[string]uint64{}}
	r.BaseReactor = *p2p.NewBaseReactor("Sink", r)
	return r
}

func (r *sinkReactor) GetChannels() []*conn.ChannelDescriptor {
	out := make([]*conn.ChannelDescriptor, 0, len(r.chans))
	for _, ch := range r.chans {
		out = append(out, &conn.ChannelDescriptor{
			ID:                  ch,
			Priority:            1,
			SendQueueCapacity:   10,
			RecvBufferCapacity:  4096,
			RecvMessageCapacity: 22020096, // MConnection's default (21 MiB)
			MessageType:         &RawMessage{},
		})
	}
	return out
}

func (r *sinkReactor) RemovePeer(p p2p.Peer, _ interface{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.chans {
		delete(r.counts, key(p.ID(), ch))
	}
}

func key(id p2p.ID, ch byte) string { return fmt.Sprintf("%s/%02x", id, ch) }

func (r *sinkReactor) Receive(e p2p.Envelope) {
	n := 0
	if msg, ok := e.Message.(*RawMessage); ok {
		n = len(msg.Data)
	}
	r.mu.Lock()
	k := key(e.Src.ID(), e.ChannelID)
	r.counts[k]++
	c := r.counts[k]
	r.mu.Unlock()
	if isPowerOfTen(c) {
		r.ev.Emit("recv", "id", string(e.Src.ID()), "ch", hex.EncodeToString([]byte{e.ChannelID}), "bytes", n, "count", c)
	}
}

func isPowerOfTen(n uint64) bool {
	for n >= 10 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}
