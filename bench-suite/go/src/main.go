// gobench: the Go side of the Mukan P2P benchmark suite, built once against
// github.com/cometbft/cometbft v0.38.25 (bench-suite/go/v0.38) and once against v0.40.0
// (bench-suite/go/v0.40) from this one source. It mirrors bench-suite/src/main.rs row by
// row and prints one "row<TAB>value" line per figure.
//
//	gobench run [-quick] [-rows a,b]
//	gobench mem-client ADDR N SECONDS   (internal) hold N idle connections to ADDR
//	gobench bcast-sink ADDR N SECONDS   (internal) N switches that count broadcasts
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/libs/protoio"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	"github.com/cometbft/cometbft/p2p/pex"
	tmmempool "github.com/cometbft/cometbft/proto/tendermint/mempool"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
)

type scale struct {
	sealTime       time.Duration
	bulkBytes      int
	handshakes     int
	latencySamples int
	mconnBytes     int
	mixedMessages  int
	idlePeers      int
	addrbook       int
	picks          int
	selections     int
	bcastPeers     int
	broadcasts     int
}

var full = scale{time.Second, 64 << 20, 800, 200, 64 << 20, 8192, 1000, 100_000, 20_000, 500, 100, 100}
var quick = scale{20 * time.Millisecond, 1 << 20, 16, 5, 1 << 20, 64, 10, 2_000, 200, 10, 5, 5}

const mib = 1048576.0

func emit(row string, v float64) { fmt.Printf("%s\t%.3f\n", row, v) }

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gobench run [-quick] [-rows a,b] | mem-client | bcast-sink")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "run":
		fs := flag.NewFlagSet("run", flag.ExitOnError)
		q := fs.Bool("quick", false, "tiny sizes (CI smoke run)")
		rows := fs.String("rows", "seal,bulk,handshake,latency,mconn,memory,addrbook,broadcast", "rows")
		must(fs.Parse(os.Args[2:]))
		s := full
		if *q {
			s = quick
		}
		for _, r := range strings.Split(*rows, ",") {
			start := time.Now()
			switch r {
			case "seal":
				seal(s)
			case "bulk":
				bulk(s)
			case "handshake":
				handshakes(s)
			case "latency":
				latency(s)
			case "mconn":
				mconnThroughput(s)
			case "memory":
				memory(s)
			case "addrbook":
				addrbook(s)
			case "broadcast":
				broadcast(s)
			default:
				fmt.Fprintln(os.Stderr, "unknown row", r)
				os.Exit(2)
			}
			fmt.Fprintf(os.Stderr, "go: %s took %.1f s\n", r, time.Since(start).Seconds())
		}
	case "mem-client":
		memClient(os.Args[2:])
	case "bcast-sink":
		bcastSink(os.Args[2:])
	default:
		os.Exit(2)
	}
}

// ---------------------------------------------------------------------------------------
// seal rate: golang.org/x/crypto's ChaCha20-Poly1305 on 1028-byte frames, one goroutine.

func seal(s scale) {
	aead, err := chacha20poly1305.New(make([]byte, 32))
	must(err)
	buf := make([]byte, 1028, 1028+16)
	nonce := make([]byte, 12)
	var counter uint64
	start := time.Now()
	for time.Since(start) < s.sealTime {
		for i := 0; i < 256; i++ {
			counter++
			binary.LittleEndian.PutUint64(nonce[4:], counter)
			aead.Seal(buf[:0], nonce, buf[:1028], nil)
		}
	}
	emit("seal_mib_s", float64(counter)*1024/time.Since(start).Seconds()/mib)
}

// ---------------------------------------------------------------------------------------
// keys, secret connections

func key(i uint32) crypto.PrivKey {
	seed := make([]byte, 36)
	binary.LittleEndian.PutUint32(seed, i)
	seed[35] = 0xbe
	h := sha256.Sum256(seed)
	return ed25519.GenPrivKeyFromSecret(h[:])
}

func tcpPair(l net.Listener) (net.Conn, net.Conn) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	d, err := net.Dial("tcp", l.Addr().String())
	must(err)
	a := <-ch
	must(a.err)
	return d, a.c
}

func secretPair(l net.Listener) (*conn.SecretConnection, *conn.SecretConnection) {
	d, a := tcpPair(l)
	type res struct {
		sc  *conn.SecretConnection
		err error
	}
	ch := make(chan res, 1)
	go func() {
		sc, err := conn.MakeSecretConnection(a, key(2))
		ch <- res{sc, err}
	}()
	sd, err := conn.MakeSecretConnection(d, key(1))
	must(err)
	r := <-ch
	must(r.err)
	return sd, r.sc
}

func bulk(s scale) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	for _, c := range []struct {
		row, cpuRow string
		write       int
	}{{"bulk_1k_mib_s", "bulk_1k_cpu_us_mib", 1024}, {"bulk_64k_mib_s", "bulk_64k_cpu_us_mib", 64 * 1024}} {
		w, r := secretPair(l)
		total := s.bulkBytes
		done := make(chan struct{})
		cpu0 := cpuTime()
		start := time.Now()
		go func() {
			buf := make([]byte, 64*1024)
			left := total
			for left > 0 {
				n, err := r.Read(buf[:min(left, len(buf))])
				must(err)
				left -= n
			}
			close(done)
		}()
		chunk := make([]byte, c.write)
		for i := range chunk {
			chunk[i] = 0xa5
		}
		for i := 0; i < total/c.write; i++ {
			_, err := w.Write(chunk)
			must(err)
		}
		<-done
		emit(c.row, float64(total)/time.Since(start).Seconds()/mib)
		emit(c.cpuRow, cpuPerMiB(cpuTime()-cpu0, total))
		w.Close()
		r.Close()
	}
}

// ---------------------------------------------------------------------------------------
// handshakes: TCP + secret connection + NodeInfo exchange and checks, the steps of
// MultiplexTransport.upgrade (whose Dial/Accept take an unexported config, so they are
// replayed here with the exported pieces).

const hsChannel = byte(0x7e)

func nodeInfo(priv crypto.PrivKey, channels ...byte) p2p.DefaultNodeInfo {
	return p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(8, 11, 0),
		DefaultNodeID:   p2p.PubKeyToID(priv.PubKey()),
		ListenAddr:      "tcp://127.0.0.1:26656",
		Network:         "bench",
		Version:         "0.38.25",
		Channels:        channels,
		Moniker:         "bench",
	}
}

func upgrade(c net.Conn, priv crypto.PrivKey, ours p2p.DefaultNodeInfo, dialed p2p.ID) error {
	if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return err
	}
	sc, err := conn.MakeSecretConnection(c, priv)
	if err != nil {
		return err
	}
	connID := p2p.PubKeyToID(sc.RemotePubKey())
	if dialed != "" && dialed != connID {
		return fmt.Errorf("dialed %v, got %v", dialed, connID)
	}
	errc := make(chan error, 2)
	var pb tmp2p.DefaultNodeInfo
	go func() {
		_, err := protoio.NewDelimitedWriter(sc).WriteMsg(ours.ToProto())
		errc <- err
	}()
	go func() {
		_, err := protoio.NewDelimitedReader(sc, p2p.MaxNodeInfoSize()).ReadMsg(&pb)
		errc <- err
	}()
	for i := 0; i < 2; i++ {
		if err := <-errc; err != nil {
			return err
		}
	}
	theirs, err := p2p.DefaultNodeInfoFromToProto(&pb)
	if err != nil {
		return err
	}
	if err := theirs.Validate(); err != nil {
		return err
	}
	if theirs.ID() != connID {
		return fmt.Errorf("node info id mismatch")
	}
	if err := ours.CompatibleWith(theirs); err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}

func handshakes(s scale) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	serverKey := key(100)
	serverInfo := nodeInfo(serverKey, hsChannel)
	serverID := p2p.PubKeyToID(serverKey.PubKey())
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = upgrade(c, serverKey, serverInfo, "")
				c.Close()
			}()
		}
	}()
	for _, c := range []struct {
		row      string
		parallel int
	}{{"hs_1_per_s", 1}, {"hs_16_per_s", 16}} {
		per := s.handshakes / c.parallel
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < c.parallel; w++ {
			k := key(200 + uint32(w))
			info := nodeInfo(k, hsChannel)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					tc, err := net.DialTimeout("tcp", l.Addr().String(), 3*time.Second)
					must(err)
					must(upgrade(tc, k, info, serverID))
					tc.Close()
				}
			}()
		}
		wg.Wait()
		emit(c.row, float64(per*c.parallel)/time.Since(start).Seconds())
	}
}

// ---------------------------------------------------------------------------------------
// MConnection

func channels() []*conn.ChannelDescriptor {
	out := make([]*conn.ChannelDescriptor, 4)
	for i := range out {
		out[i] = &conn.ChannelDescriptor{
			ID: byte(0x40 + i), Priority: 5, SendQueueCapacity: 100,
			RecvBufferCapacity: 4096, RecvMessageCapacity: 1 << 20,
		}
	}
	return out
}

// nodeMConnConfig is what a node builds from the default [p2p] section.
func nodeMConnConfig() conn.MConnConfig { return p2p.MConnConfig(config.DefaultP2PConfig()) }

type link struct {
	a, b *conn.MConnection
	recv chan int
}

func newLink(l net.Listener, cfg conn.MConnConfig) *link {
	sa, sb := secretPair(l)
	lk := &link{recv: make(chan int, 1024)}
	onErr := func(r interface{}) {}
	lk.a = conn.NewMConnectionWithConfig(sa, channels(), func(byte, []byte) {}, onErr, cfg)
	lk.b = conn.NewMConnectionWithConfig(sb, channels(), func(_ byte, msg []byte) { lk.recv <- len(msg) }, onErr, cfg)
	lk.a.SetLogger(log.NewNopLogger())
	lk.b.SetLogger(log.NewNopLogger())
	must(lk.a.Start())
	must(lk.b.Start())
	return lk
}

func (lk *link) stop() {
	_ = lk.a.Stop()
	_ = lk.b.Stop()
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	idx := int(float64(len(sorted))*p+0.999999) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= len(sorted) {
		idx = len(sorted) - 1
	}
	return sorted[idx]
}

func latency(s scale) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	lk := newLink(l, nodeMConnConfig())
	defer lk.stop()
	msg := make([]byte, 100)
	samples := make([]time.Duration, 0, s.latencySamples)
	for i := 0; i < s.latencySamples; i++ {
		time.Sleep(2 * time.Millisecond)
		t := time.Now()
		if !lk.a.Send(0x40, msg) {
			must(fmt.Errorf("send failed"))
		}
		if n := <-lk.recv; n != 100 {
			must(fmt.Errorf("received %d bytes", n))
		}
		samples = append(samples, time.Since(t))
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	emit("lat_p50_us", float64(percentile(samples, 0.5).Nanoseconds())/1e3)
	emit("lat_p99_us", float64(percentile(samples, 0.99).Nanoseconds())/1e3)
}

// cpuPerMiB is CPU microseconds per MiB moved.
func cpuPerMiB(cpu time.Duration, bytes int) float64 {
	return float64(cpu.Nanoseconds()) / 1e3 / (float64(bytes) / mib)
}

func transfer(lk *link, sizes []int) (float64, float64) {
	total, maxSize := 0, 0
	for _, s := range sizes {
		total += s
		maxSize = max(maxSize, s)
	}
	payload := make([]byte, maxSize)
	for i := range payload {
		payload[i] = 3
	}
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := c; i < len(sizes); i += 4 {
				if !lk.a.Send(byte(0x40+c), payload[:sizes[i]]) {
					must(fmt.Errorf("send timed out"))
				}
			}
		}(c)
	}
	got := 0
	for range sizes {
		got += <-lk.recv
	}
	secs := time.Since(start).Seconds()
	cpu := cpuTime() - cpu0
	wg.Wait()
	if got != total {
		must(fmt.Errorf("received %d of %d bytes", got, total))
	}
	return float64(total) / secs / mib, cpuPerMiB(cpu, total)
}

func mconnThroughput(s scale) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	unlimited := nodeMConnConfig()
	unlimited.SendRate = 0 // flowrate: a zero limit is no limit
	unlimited.RecvRate = 0
	for _, c := range []struct {
		row  string
		size int
	}{{"mconn_1k_mib_s", 1024}, {"mconn_64k_mib_s", 64 * 1024}} {
		lk := newLink(l, unlimited)
		sizes := make([]int, s.mconnBytes/c.size)
		for i := range sizes {
			sizes[i] = c.size
		}
		rate, cpu := transfer(lk, sizes)
		emit(c.row, rate)
		emit(strings.Replace(c.row, "mib_s", "cpu_us_mib", 1), cpu)
		lk.stop()
	}
	// Empty messages are left out (as on the Rust side): Channel.isSendPending drops an
	// empty message that is dequeued while another channel is picked to send.
	var mixed []int
	for _, n := range workloadSizes(s.mixedMessages) {
		if n > 0 {
			mixed = append(mixed, n)
		}
	}
	lk := newLink(l, unlimited)
	rate, cpu := transfer(lk, mixed)
	emit("mconn_mixed_mib_s", rate)
	emit("mconn_mixed_cpu_us_mib", cpu)
	lk.stop()
}

// ---------------------------------------------------------------------------------------
// memory per idle peer

func rssBytes() int {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.Atoi(f[1])
	return pages * 4096
}

// settledRSS collects garbage and returns freed pages to the OS first, so that the figure
// is what live connections hold (the most favourable reading for Go).
func settledRSS() int {
	runtime.GC()
	debug.FreeOSMemory()
	return rssBytes()
}

func memory(s scale) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	time.Sleep(100 * time.Millisecond)
	before := settledRSS()
	child := exec.Command(os.Args[0], "mem-client", l.Addr().String(), strconv.Itoa(s.idlePeers), "120")
	child.Stdout = io.Discard
	child.Stderr = os.Stderr
	must(child.Start())
	sk := key(7)
	held := make([]*conn.MConnection, 0, s.idlePeers)
	deadline := time.Now().Add(120 * time.Second)
	for len(held) < s.idlePeers {
		must(l.(*net.TCPListener).SetDeadline(deadline))
		c, err := l.Accept()
		must(err)
		sc, err := conn.MakeSecretConnection(c, sk)
		must(err)
		mc := conn.NewMConnectionWithConfig(sc, channels(), func(byte, []byte) {}, func(interface{}) {}, nodeMConnConfig())
		mc.SetLogger(log.NewNopLogger())
		must(mc.Start())
		held = append(held, mc)
	}
	time.Sleep(time.Second)
	after := settledRSS()
	for _, mc := range held {
		if !mc.IsRunning() {
			must(fmt.Errorf("an idle connection stopped"))
		}
	}
	emit("mem_per_peer_kib", float64(after-before)/float64(s.idlePeers)/1024)
	_ = child.Process.Kill()
	_ = child.Wait()
	for _, mc := range held {
		_ = mc.Stop()
	}
}

func memClient(args []string) {
	if len(args) != 3 {
		os.Exit(2)
	}
	n, _ := strconv.Atoi(args[1])
	secs, _ := strconv.Atoi(args[2])
	held := make([]*conn.MConnection, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", args[0], 3*time.Second)
		must(err)
		sc, err := conn.MakeSecretConnection(c, key(10_000+uint32(i)))
		must(err)
		mc := conn.NewMConnectionWithConfig(sc, channels(), func(byte, []byte) {}, func(interface{}) {}, nodeMConnConfig())
		mc.SetLogger(log.NewNopLogger())
		must(mc.Start())
		held = append(held, mc)
	}
	time.Sleep(time.Duration(secs) * time.Second)
	runtime.KeepAlive(held)
}

// ---------------------------------------------------------------------------------------
// address book (the same addresses as the Rust side)

func bookAddr(i int) (*p2p.NetAddress, *p2p.NetAddress) {
	id := make([]byte, 20)
	binary.BigEndian.PutUint64(id, uint64(i))
	id[19] = 1
	g := (i * 7919) % 40_000
	ip := net.IPv4(byte(20+(g/256%100)), byte(g%256), byte(i>>8), byte(i))
	sid := append([]byte(nil), id...)
	sid[19] = 2
	sg := i % 2_000
	sip := net.IPv4(byte(130+sg/256), byte(sg%256), 1, 1)
	a := p2p.NewNetAddressIPPort(ip, 26656)
	a.ID = p2p.ID(hex.EncodeToString(id))
	src := p2p.NewNetAddressIPPort(sip, 26656)
	src.ID = p2p.ID(hex.EncodeToString(sid))
	return a, src
}

func addrbook(s scale) {
	addrs := make([][2]*p2p.NetAddress, s.addrbook)
	for i := range addrs {
		a, src := bookAddr(i)
		addrs[i] = [2]*p2p.NetAddress{a, src}
	}
	book := pex.NewAddrBook(os.DevNull, true)
	book.SetLogger(log.NewNopLogger())
	start := time.Now()
	for _, p := range addrs {
		_ = book.AddAddress(p[0], p[1])
	}
	emit("ab_add_per_s", float64(len(addrs))/time.Since(start).Seconds())
	emit("ab_size", float64(book.Size()))
	for i := 0; i < len(addrs); i += 5 {
		book.MarkGood(addrs[i][0].ID)
	}
	start = time.Now()
	for i := 0; i < s.picks; i++ {
		_ = book.PickAddress(50)
	}
	emit("ab_pick_per_s", float64(s.picks)/time.Since(start).Seconds())
	start = time.Now()
	for i := 0; i < s.selections; i++ {
		_ = book.GetSelection()
	}
	emit("ab_select_per_s", float64(s.selections)/time.Since(start).Seconds())
}

// ---------------------------------------------------------------------------------------
// broadcast: a Switch with bcastPeers peers (all in a child process, one Switch each, so
// that only the sender's CPU is counted here) broadcasts 1 KiB mempool messages one at a
// time; the child reports when every peer has one.

const bcastChannel = byte(0x30)

type benchReactor struct {
	p2p.BaseReactor
	onReceive func(p2p.Envelope)
}

func newBenchReactor(onReceive func(p2p.Envelope)) *benchReactor {
	r := &benchReactor{onReceive: onReceive}
	r.BaseReactor = *p2p.NewBaseReactor("bench", r)
	r.SetLogger(log.NewNopLogger())
	return r
}

func (r *benchReactor) GetChannels() []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{{
		ID: bcastChannel, Priority: 5, SendQueueCapacity: 100,
		RecvBufferCapacity: 4096, RecvMessageCapacity: 1 << 20,
		MessageType: &tmmempool.Message{},
	}}
}

func (r *benchReactor) Receive(e p2p.Envelope) {
	if r.onReceive != nil {
		r.onReceive(e)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newSwitch starts a switch with the bench reactor, listening on 127.0.0.1:port.
func newSwitch(priv crypto.PrivKey, port int, inbound int, onReceive func(p2p.Envelope)) *p2p.Switch {
	cfg := config.DefaultP2PConfig()
	cfg.AllowDuplicateIP = true
	cfg.MaxNumInboundPeers = inbound
	nk := p2p.NodeKey{PrivKey: priv}
	ni := nodeInfo(priv, bcastChannel)
	ni.ListenAddr = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	t := p2p.NewMultiplexTransport(ni, nk, p2p.MConnConfig(cfg))
	addr, err := p2p.NewNetAddressString(p2p.IDAddressString(nk.ID(), fmt.Sprintf("127.0.0.1:%d", port)))
	must(err)
	must(t.Listen(*addr))
	sw := p2p.NewSwitch(cfg, t)
	sw.SetLogger(log.NewNopLogger())
	sw.AddReactor("bench", newBenchReactor(onReceive))
	sw.SetNodeKey(&nk)
	sw.SetNodeInfo(ni)
	must(sw.Start())
	return sw
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func broadcast(s scale) {
	port := freePort()
	priv := key(300)
	sw := newSwitch(priv, port, s.bcastPeers+10, nil)
	defer func() { _ = sw.Stop() }()
	addr := p2p.IDAddressString(p2p.PubKeyToID(priv.PubKey()), fmt.Sprintf("127.0.0.1:%d", port))
	child := exec.Command(os.Args[0], "bcast-sink", addr, strconv.Itoa(s.bcastPeers), "300")
	out, err := child.StdoutPipe()
	must(err)
	child.Stderr = os.Stderr
	must(child.Start())
	defer func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for sw.Peers().Size() < s.bcastPeers {
		if time.Now().After(deadline) {
			must(fmt.Errorf("only %d of %d peers connected", sw.Peers().Size(), s.bcastPeers))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	lines := bufio.NewScanner(out)
	tx := make([]byte, 1024)
	times := make([]time.Duration, 0, s.broadcasts)
	cpu0 := cpuTime()
	for k := 0; k < s.broadcasts; k++ {
		binary.BigEndian.PutUint64(tx, uint64(k))
		msg := &tmmempool.Txs{Txs: [][]byte{append([]byte(nil), tx...)}}
		t := time.Now()
		sw.Broadcast(p2p.Envelope{ChannelID: bcastChannel, Message: msg})
		want := fmt.Sprintf("D %d", k)
		for {
			if !lines.Scan() {
				must(fmt.Errorf("the sink ended: %v", lines.Err()))
			}
			if lines.Text() == want {
				break
			}
		}
		times = append(times, time.Since(t))
	}
	cpu := cpuTime() - cpu0
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	emit("bc_cpu_us", float64(cpu.Nanoseconds())/1e3/float64(s.broadcasts))
	emit("bc_p50_ms", float64(percentile(times, 0.5).Nanoseconds())/1e6)
	emit("bc_max_ms", float64(times[len(times)-1].Nanoseconds())/1e6)
}

func bcastSink(args []string) {
	if len(args) != 3 {
		os.Exit(2)
	}
	n, _ := strconv.Atoi(args[1])
	secs, _ := strconv.Atoi(args[2])
	target, err := p2p.NewNetAddressString(args[0])
	must(err)
	var mu sync.Mutex
	counts := map[uint64]int{}
	stdout := bufio.NewWriter(os.Stdout)
	var connected atomic.Int32
	onReceive := func(e p2p.Envelope) {
		txs, ok := e.Message.(*tmmempool.Txs)
		if !ok || len(txs.Txs) != 1 || len(txs.Txs[0]) < 8 {
			return
		}
		k := binary.BigEndian.Uint64(txs.Txs[0])
		mu.Lock()
		counts[k]++
		if counts[k] == n {
			delete(counts, k)
			fmt.Fprintf(stdout, "D %d\n", k)
			_ = stdout.Flush()
		}
		mu.Unlock()
	}
	for i := 0; i < n; i++ {
		sw := newSwitch(key(20_000+uint32(i)), freePort(), 1, onReceive)
		must(sw.DialPeerWithAddress(target))
		connected.Add(1)
	}
	time.Sleep(time.Duration(secs) * time.Second)
}
