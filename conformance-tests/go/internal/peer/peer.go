// Package peer runs one CometBFT v0.38 p2p node built on the reference p2p
// package (Switch + MultiplexTransport + optional PEX with an address book)
// with an echo reactor, and reports what happens as JSON-line events.
package peer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/pex"
	"github.com/cometbft/cometbft/version"

	"mukan.dev/conformance/gopeer/internal/events"
)

// Config is everything the flags set.
type Config struct {
	Home             string
	KeyFile          string // default <home>/config/node_key.json
	AddrBookFile     string // default <home>/config/addrbook.json
	Listen           string // tcp://127.0.0.1:PORT (put verbatim in NodeInfo.listen_addr)
	ExternalAddress  string // if set, advertised instead of Listen
	PersistentPeers  []string
	Dial             []string // one-shot dials (not persistent)
	Seeds            []string
	ChainID          string
	Moniker          string
	EchoChannel      byte
	EchoMaxMsg       int
	ExtraChannels    []byte
	Pex              bool
	SeedMode         bool
	AddrBookStrict   bool
	AllowDuplicateIP bool
	MaxInbound       int
	MaxOutbound      int
	P2PVersion       uint64
	BlockVersion     uint64
	AppVersion       uint64
	NodeVersion      string
	TxIndex          string
	RPCAddress       string
	SendRate         int64
	RecvRate         int64
	FlushThrottle    time.Duration
	LogLevel         string // "debug", "info", "error", "none"
	QuietEcho        bool
	MarkGood         bool
	ExitAfter        time.Duration

	// Client role (EchoCount > 0).
	EchoCount          int
	EchoSeed           uint64
	EchoMaxSize        int
	EchoPeer           string
	EchoTimeout        time.Duration
	EchoConnectTimeout time.Duration
}

// DefaultConfig mirrors a v0.38 node's defaults where they apply, with the
// loopback-friendly settings the harness needs.
func DefaultConfig() Config {
	d := config.DefaultP2PConfig()
	return Config{
		Home:               ".gopeer",
		Listen:             "tcp://127.0.0.1:26656",
		ChainID:            "mukan-interop",
		Moniker:            "gopeer",
		EchoChannel:        0x7e,
		EchoMaxMsg:         1 << 20,
		AllowDuplicateIP:   true,
		MaxInbound:         d.MaxNumInboundPeers,
		MaxOutbound:        d.MaxNumOutboundPeers,
		P2PVersion:         version.P2PProtocol,
		BlockVersion:       version.BlockProtocol,
		AppVersion:         0,
		NodeVersion:        version.TMCoreSemVer,
		TxIndex:            "off",
		SendRate:           d.SendRate,
		RecvRate:           d.RecvRate,
		FlushThrottle:      d.FlushThrottleTimeout,
		LogLevel:           "info",
		EchoSeed:           1,
		EchoMaxSize:        1 << 20,
		EchoTimeout:        120 * time.Second,
		EchoConnectTimeout: 20 * time.Second,
	}
}

func (c *Config) keyFile() string {
	if c.KeyFile != "" {
		return c.KeyFile
	}
	return filepath.Join(c.Home, "config", "node_key.json")
}

func (c *Config) addrBookFile() string {
	if c.AddrBookFile != "" {
		return c.AddrBookFile
	}
	return filepath.Join(c.Home, "config", "addrbook.json")
}

// LoadOrGenKey loads the node key file (generating and saving a new one if
// it does not exist).
func LoadOrGenKey(path string) (*p2p.NodeKey, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return p2p.LoadOrGenNodeKey(path)
}

// ShowID prints the node ID of the key file (generating it if missing).
func ShowID(cfg Config) error {
	k, err := LoadOrGenKey(cfg.keyFile())
	if err != nil {
		return err
	}
	fmt.Println(k.ID())
	return nil
}

func newLogger(level string) (log.Logger, error) {
	if level == "none" {
		return log.NewNopLogger(), nil
	}
	base := log.NewTMLogger(log.NewSyncWriter(os.Stderr))
	opt, err := log.AllowLevel(level)
	if err != nil {
		return nil, err
	}
	return log.NewFilter(base, opt), nil
}

// Run starts the node and blocks until a signal, --exit-after, or (client
// role) the end of the echo run. It returns the process exit code.
func Run(cfg Config) int {
	ev := events.Stdout
	code, err := run(cfg, ev)
	if err != nil {
		ev.Emit("error", "error", err.Error())
		if code == 0 {
			code = 2
		}
	}
	return code
}

func run(cfg Config, ev *events.Emitter) (int, error) {
	base, err := newLogger(cfg.LogLevel)
	if err != nil {
		return 2, err
	}
	logger := hookLogger{base: base, ev: ev}

	key, err := LoadOrGenKey(cfg.keyFile())
	if err != nil {
		return 2, fmt.Errorf("node key: %w", err)
	}

	advertised := cfg.Listen
	if cfg.ExternalAddress != "" {
		advertised = cfg.ExternalAddress
	}
	chans := []byte{cfg.EchoChannel}
	chans = append(chans, cfg.ExtraChannels...)
	if cfg.Pex {
		chans = append(chans, pex.PexChannel)
	}
	nodeInfo := p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(cfg.P2PVersion, cfg.BlockVersion, cfg.AppVersion),
		DefaultNodeID:   key.ID(),
		ListenAddr:      advertised,
		Network:         cfg.ChainID,
		Version:         cfg.NodeVersion,
		Channels:        chans,
		Moniker:         cfg.Moniker,
		Other:           p2p.DefaultNodeInfoOther{TxIndex: cfg.TxIndex, RPCAddress: cfg.RPCAddress},
	}
	if err := nodeInfo.Validate(); err != nil {
		return 2, fmt.Errorf("our node info is invalid: %w", err)
	}

	p2pCfg := config.DefaultP2PConfig()
	p2pCfg.RootDir = cfg.Home
	p2pCfg.ListenAddress = cfg.Listen
	p2pCfg.ExternalAddress = cfg.ExternalAddress
	p2pCfg.AllowDuplicateIP = cfg.AllowDuplicateIP
	p2pCfg.AddrBookStrict = cfg.AddrBookStrict
	p2pCfg.PexReactor = cfg.Pex
	p2pCfg.SeedMode = cfg.SeedMode
	p2pCfg.MaxNumInboundPeers = cfg.MaxInbound
	p2pCfg.MaxNumOutboundPeers = cfg.MaxOutbound
	p2pCfg.SendRate = cfg.SendRate
	p2pCfg.RecvRate = cfg.RecvRate
	p2pCfg.FlushThrottleTimeout = cfg.FlushThrottle
	if err := p2pCfg.ValidateBasic(); err != nil {
		return 2, err
	}

	ourAddr, err := p2p.NewNetAddressString(p2p.IDAddressString(key.ID(), cfg.Listen))
	if err != nil {
		return 2, fmt.Errorf("--listen: %w", err)
	}

	opts := []p2p.MultiplexTransportOption{
		p2p.MultiplexTransportMaxIncomingConnections(cfg.MaxInbound),
	}
	if !cfg.AllowDuplicateIP {
		opts = append(opts, p2p.MultiplexTransportConnFilters(p2p.ConnDuplicateIPFilter()))
	}
	transport := p2p.NewMultiplexTransport(nodeInfo, *key, p2p.MConnConfig(p2pCfg))
	for _, o := range opts {
		o(transport)
	}

	sw := p2p.NewSwitch(p2pCfg, transport)
	sw.SetLogger(logger.With("module", "p2p"))

	var client *echoClient
	if cfg.EchoCount > 0 {
		client = newEchoClient(ev, cfg.EchoChannel, cfg.EchoCount, cfg.EchoMaxSize, cfg.EchoSeed,
			p2p.ID(cfg.EchoPeer), cfg.EchoTimeout)
	}
	sw.AddReactor("ECHO", newEchoReactor(cfg.EchoChannel, cfg.EchoMaxMsg, ev, client, cfg.QuietEcho, cfg.MarkGood))
	if len(cfg.ExtraChannels) > 0 {
		sw.AddReactor("SINK", newSinkReactor(cfg.ExtraChannels, ev))
	}

	// The switch needs an address book even without PEX (it records our own
	// address there when a dial reaches ourselves). It is only started, and
	// so only loaded from and saved to disk, by the PEX reactor.
	book := pex.NewAddrBook(cfg.addrBookFile(), cfg.AddrBookStrict)
	book.SetLogger(logger.With("module", "book"))
	book.AddOurAddress(ourAddr)
	if cfg.ExternalAddress != "" {
		if ext, err := p2p.NewNetAddressString(p2p.IDAddressString(key.ID(), cfg.ExternalAddress)); err == nil {
			book.AddOurAddress(ext)
		}
	}
	sw.SetAddrBook(book)
	if cfg.Pex {
		if err := os.MkdirAll(filepath.Dir(cfg.addrBookFile()), 0o700); err != nil {
			return 2, err
		}
		pexR := pex.NewReactor(book, &pex.ReactorConfig{
			Seeds:                    cfg.Seeds,
			SeedMode:                 cfg.SeedMode,
			SeedDisconnectWaitPeriod: 28 * time.Hour,
		})
		pexR.SetLogger(logger.With("module", "pex"))
		sw.AddReactor("PEX", pexR)
	} else if cfg.SeedMode {
		return 2, errors.New("--seed-mode needs --pex")
	}
	sw.SetNodeInfo(nodeInfo)
	sw.SetNodeKey(key)

	if err := transport.Listen(*ourAddr); err != nil {
		return 2, fmt.Errorf("listen: %w", err)
	}
	if err := sw.Start(); err != nil {
		_ = transport.Close()
		return 2, fmt.Errorf("switch start: %w", err)
	}
	ev.Emit("listening",
		"id", string(key.ID()),
		"addr", ourAddr.String(),
		"listen_addr", advertised,
		"moniker", cfg.Moniker,
		"network", cfg.ChainID,
		"channels", hex.EncodeToString(chans),
		"p2p_version", cfg.P2PVersion,
		"block_version", cfg.BlockVersion,
		"pex", cfg.Pex,
		"seed_mode", cfg.SeedMode,
		"key_file", cfg.keyFile(),
		"addrbook_file", cfg.addrBookFile(),
	)

	stopBook := make(chan struct{})
	if cfg.Pex {
		go watchBook(book, ev, stopBook)
	}

	if err := startDials(sw, book, ourAddr, cfg, ev); err != nil {
		shutdown(sw, transport, book, cfg, ev, stopBook)
		return 2, err
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var exitAfter <-chan time.Time
	if cfg.ExitAfter > 0 {
		exitAfter = time.After(cfg.ExitAfter)
	}

	code := 0
	if client != nil {
		done := make(chan bool, 1)
		go func() { done <- client.run(cfg.EchoConnectTimeout) }()
		select {
		case ok := <-done:
			if !ok {
				code = 1
			}
		case s := <-sig:
			ev.Emit("signal", "signal", s.String())
			code = 1
		case <-exitAfter:
			code = 1
		}
	} else {
		select {
		case s := <-sig:
			ev.Emit("signal", "signal", s.String())
		case <-exitAfter:
		}
	}
	shutdown(sw, transport, book, cfg, ev, stopBook)
	return code, nil
}

func startDials(sw *p2p.Switch, book pex.AddrBook, ourAddr *p2p.NetAddress, cfg Config, ev *events.Emitter) error {
	if len(cfg.PersistentPeers) > 0 {
		if err := sw.AddPersistentPeers(cfg.PersistentPeers); err != nil {
			return fmt.Errorf("--persistent-peers: %w", err)
		}
	}
	all := append(append([]string{}, cfg.PersistentPeers...), cfg.Dial...)
	addrs := make([]*p2p.NetAddress, 0, len(all))
	for _, s := range all {
		a, err := p2p.NewNetAddressString(s)
		if err != nil {
			return fmt.Errorf("peer address %q: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	// Like a node's DialPeersAsync: remember the peers in the book (when PEX
	// keeps one), then dial each at once (no random start delay). Failures are
	// reported here; the switch redials persistent peers by itself and those
	// redial failures surface through the logger hook.
	for _, a := range addrs {
		if cfg.Pex && !a.Same(ourAddr) {
			_ = book.AddAddress(a, ourAddr)
		}
	}
	if cfg.Pex {
		book.Save()
	}
	for _, a := range addrs {
		go func(a *p2p.NetAddress) {
			ev.Emit("dialing", "addr", a.String())
			if err := sw.DialPeerWithAddress(a); err != nil {
				emitRejected(ev, "outbound", err, a.String())
			}
		}(a)
	}
	return nil
}

func watchBook(book pex.AddrBook, ev *events.Emitter, stop <-chan struct{}) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	last := -1
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if n := book.Size(); n != last {
				last = n
				ev.Emit("addrbook", "size", n)
			}
		}
	}
}

func shutdown(sw *p2p.Switch, transport *p2p.MultiplexTransport, book pex.AddrBook, cfg Config,
	ev *events.Emitter, stopBook chan struct{},
) {
	close(stopBook)
	if err := sw.Stop(); err != nil {
		ev.Emit("error", "error", "switch stop: "+err.Error())
	}
	_ = transport.Close()
	if cfg.Pex {
		book.Save()
		ev.Emit("addrbook_saved", "path", cfg.addrBookFile(), "size", book.Size())
	}
	ev.Emit("stopped")
}
