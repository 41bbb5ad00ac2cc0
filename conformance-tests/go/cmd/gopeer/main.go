// Command gopeer is the Go side of the Mukan P2P interop harness: a CometBFT
// v0.38.25 p2p node (reference p2p package) with an echo reactor, driven by
// flags and reporting JSON-line events on stdout. See ../../README.md.
//
// Usage:
//
//	gopeer [flags]            run a peer (server role, or client role with --echo-client N)
//	gopeer show-id [flags]    print the node ID of --key / --home (generates the key if missing)
//	gopeer free-ports N       print N free TCP ports on 127.0.0.1
//	gopeer wait-event ...     wait for a matching JSON-line event in a file (see internal/tools)
//	gopeer wait-height ...    poll a CometBFT RPC /status until a block height
//	gopeer wait-rpc-peer ...  poll a CometBFT RPC /net_info until a peer ID shows up
package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"mukan.dev/conformance/gopeer/internal/peer"
	"mukan.dev/conformance/gopeer/internal/tools"
)

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseChannels accepts "20,21,0x30" or "2021" style lists of hex bytes.
func parseChannels(s string) ([]byte, error) {
	var out []byte
	for _, p := range splitList(s) {
		p = strings.TrimPrefix(strings.ToLower(p), "0x")
		if len(p) > 2 {
			b, err := hex.DecodeString(p)
			if err != nil {
				return nil, fmt.Errorf("channel list %q: %w", s, err)
			}
			out = append(out, b...)
			continue
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return nil, fmt.Errorf("channel %q: %w", p, err)
		}
		out = append(out, byte(v))
	}
	return out, nil
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "free-ports", "wait-event", "wait-height", "wait-rpc-peer", "abci-query", "check-watch", "peer-height":
			os.Exit(tools.Main(args[0], args[1:]))
		}
	}
	showID := false
	if len(args) > 0 && args[0] == "show-id" {
		showID = true
		args = args[1:]
	}

	cfg := peer.DefaultConfig()
	fs := flag.NewFlagSet("gopeer", flag.ExitOnError)
	fs.StringVar(&cfg.Home, "home", cfg.Home, "home directory (key: <home>/config/node_key.json, book: <home>/config/addrbook.json)")
	fs.StringVar(&cfg.KeyFile, "key", "", "node key file (default <home>/config/node_key.json); generated if missing")
	fs.StringVar(&cfg.AddrBookFile, "addrbook", "", "address book file (default <home>/config/addrbook.json); used with --pex")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "listen address tcp://IP:PORT (advertised verbatim in NodeInfo)")
	fs.StringVar(&cfg.ExternalAddress, "external-address", "", "address advertised in NodeInfo instead of --listen")
	persistent := fs.String("persistent-peers", "", "comma-separated id@host:port, dialed at start and redialed by the switch")
	dial := fs.String("dial", "", "comma-separated id@host:port, dialed once at start (not persistent)")
	seeds := fs.String("seeds", "", "comma-separated id@host:port seeds for the PEX reactor")
	fs.StringVar(&cfg.ChainID, "chain-id", cfg.ChainID, "network (chain id) in NodeInfo")
	fs.StringVar(&cfg.Moniker, "moniker", cfg.Moniker, "moniker in NodeInfo")
	echoCh := fs.String("echo-channel", "7e", "echo channel id (hex byte)")
	fs.IntVar(&cfg.EchoMaxMsg, "echo-max-msg", cfg.EchoMaxMsg, "echo channel RecvMessageCapacity (bytes)")
	channels := fs.String("channels", "", "extra channel ids to advertise, hex bytes (\"20,21,22\"); their messages are counted, not answered")
	fs.BoolVar(&cfg.Pex, "pex", false, "run the PEX reactor (channel 0x00) with an address book")
	fs.BoolVar(&cfg.SeedMode, "seed-mode", false, "PEX seed (crawler) mode; needs --pex")
	fs.BoolVar(&cfg.AddrBookStrict, "addr-book-strict", false, "address book rejects non-routable (e.g. loopback) addresses")
	fs.BoolVar(&cfg.AllowDuplicateIP, "allow-duplicate-ip", cfg.AllowDuplicateIP, "allow several peers from one IP (needed on loopback)")
	fs.IntVar(&cfg.MaxInbound, "max-inbound", cfg.MaxInbound, "max_num_inbound_peers")
	fs.IntVar(&cfg.MaxOutbound, "max-outbound", cfg.MaxOutbound, "max_num_outbound_peers")
	fs.Uint64Var(&cfg.P2PVersion, "p2p-version", cfg.P2PVersion, "ProtocolVersion.p2p in NodeInfo")
	fs.Uint64Var(&cfg.BlockVersion, "block-version", cfg.BlockVersion, "ProtocolVersion.block in NodeInfo")
	fs.Uint64Var(&cfg.AppVersion, "app-version", cfg.AppVersion, "ProtocolVersion.app in NodeInfo")
	fs.StringVar(&cfg.NodeVersion, "node-version", cfg.NodeVersion, "version string in NodeInfo")
	fs.StringVar(&cfg.TxIndex, "tx-index", cfg.TxIndex, "other.tx_index in NodeInfo (on|off|\"\")")
	fs.StringVar(&cfg.RPCAddress, "rpc-address", "", "other.rpc_address in NodeInfo")
	fs.Int64Var(&cfg.SendRate, "send-rate", cfg.SendRate, "MConnection send rate, bytes/s")
	fs.Int64Var(&cfg.RecvRate, "recv-rate", cfg.RecvRate, "MConnection receive rate, bytes/s")
	fs.DurationVar(&cfg.FlushThrottle, "flush-throttle", cfg.FlushThrottle, "MConnection flush throttle")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "stderr log level: debug|info|error|none")
	fs.BoolVar(&cfg.QuietEcho, "quiet-echo", false, "do not print an \"echo\" event per echoed message")
	fs.BoolVar(&cfg.MarkGood, "mark-good", false, "mark every added peer good in the address book (moves it to an old bucket)")
	fs.DurationVar(&cfg.ExitAfter, "exit-after", 0, "stop after this long (0: run until SIGINT/SIGTERM)")
	fs.IntVar(&cfg.EchoCount, "echo-client", 0, "client role: send N messages on the echo channel to the first peer added, verify the echoes, exit 0/1")
	fs.Uint64Var(&cfg.EchoSeed, "echo-seed", cfg.EchoSeed, "client role: seed of the sizes and contents")
	fs.IntVar(&cfg.EchoMaxSize, "echo-max-size", cfg.EchoMaxSize, "client role: largest message (bytes)")
	fs.StringVar(&cfg.EchoPeer, "echo-peer", "", "client role: only this peer ID is the echo target")
	fs.DurationVar(&cfg.EchoTimeout, "echo-timeout", cfg.EchoTimeout, "client role: limit for the whole exchange")
	fs.DurationVar(&cfg.EchoConnectTimeout, "echo-connect-timeout", cfg.EchoConnectTimeout, "client role: limit for the peer to connect")
	_ = fs.Parse(args)

	if showID {
		if err := peer.ShowID(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "gopeer:", err)
			os.Exit(2)
		}
		return
	}

	var err error
	if cfg.ExtraChannels, err = parseChannels(*channels); err != nil {
		fmt.Fprintln(os.Stderr, "gopeer:", err)
		os.Exit(2)
	}
	ech, err := parseChannels(*echoCh)
	if err != nil || len(ech) != 1 {
		fmt.Fprintln(os.Stderr, "gopeer: --echo-channel needs one hex byte")
		os.Exit(2)
	}
	cfg.EchoChannel = ech[0]
	cfg.PersistentPeers = splitList(*persistent)
	cfg.Dial = splitList(*dial)
	cfg.Seeds = splitList(*seeds)
	os.Exit(peer.Run(cfg))
}
