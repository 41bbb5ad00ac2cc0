//! `rustpeer`: the Rust side of the interop harness, the twin of `go/cmd/gopeer`.
//!
//! Same flags (the subset our crates support) and the same JSON-line events on stdout, so
//! `go/run-interop.sh` can run every case as a matrix Go→Go, Go→Rust, Rust→Go, Rust→Rust.
//! Built on our crates only: a `mukan_switch::Switch` over the TCP transport (secret
//! connection + NodeInfo exchange + MConnection), with an echo reactor on the echo channel
//! whose messages are raw bytes (the identity encoding of gopeer's `RawMessage`). The switch
//! keeps the peer set, the limits and the persistent-peer redials (Go's schedule); this
//! program only prints what happens.
//!
//! Flags gopeer does not have, for the network-namespace fault tests (`netns/`):
//! `--ping-interval`/`--pong-timeout` (MConnection timers), `--dial-timeout`,
//! `--handshake-timeout`, `--persistent-peers-max-dial-period`, `--redial-forever`,
//! `--echo-interval` (paced echo client), and sequenced per-channel streams on the extra
//! channels: `--stream-count N --stream-interval D` to send, `--stream-check` to verify
//! (complete and in order per channel, `stream_done` / `stream_gap` events).

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use mukan_addrbook::{AddrBook, Config as AddrBookConfig};
use mukan_conformance_tests::consensus;
use mukan_node_key::{NodeId, NodeKey};
use mukan_pex::{PexConfig, PexReactor, SaveCallback};
use std::future::Future;
use std::pin::Pin;

use mukan_node::{BindTransport, NodeBuilder};
use mukan_reactor_api::{
    AddressBook, ChannelDescriptor, ChannelId, DialError, Dialer, Envelope, IncompatibleError,
    ManagedPeer, NetAddress, Network, NodeInfo, ParsedAddress, Peer, PeerConfig, ProtocolVersion,
    Reactor, RecvLease, RejectDetail, StopReason, Transport, TransportError,
};
use mukan_switch::Switch;
use mukan_transport::TcpTransport;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("addrbook-dump") => return addrbook_tool::dump(&args[1..]),
        Some("addrbook-write") => return addrbook_tool::write(&args[1..]),
        _ => {}
    }
    let cfg = match Cfg::parse(&args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("rustpeer: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rustpeer: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cfg))
}

#[derive(Clone, Debug)]
struct Cfg {
    show_id: bool,
    home: PathBuf,
    key: Option<PathBuf>,
    listen: String,
    external_address: String,
    persistent: Vec<String>,
    dial: Vec<String>,
    chain_id: String,
    moniker: String,
    echo_channel: u8,
    echo_max_msg: usize,
    channels: Vec<u8>,
    allow_duplicate_ip: bool,
    p2p_version: u64,
    block_version: u64,
    app_version: u64,
    node_version: String,
    tx_index: String,
    rpc_address: String,
    quiet_echo: bool,
    exit_after: Option<Duration>,
    echo_client: usize,
    echo_seed: u64,
    echo_max_size: usize,
    echo_peer: Option<String>,
    echo_timeout: Duration,
    echo_connect_timeout: Duration,
    /// MConnection send / receive rate in bytes/s; 0 means unlimited (as in Go).
    send_rate: u64,
    recv_rate: u64,
    flush_throttle: Duration,
    max_inbound: usize,
    max_outbound: usize,
    addrbook: Option<PathBuf>,
    pex: bool,
    seed_mode: bool,
    seeds: Vec<String>,
    addr_book_strict: bool,
    mark_good: bool,
    /// MConnection ping interval and pong timeout (`--ping-interval`, `--pong-timeout`);
    /// `None` keeps the defaults (60 s, 45 s). The netns fault tests scale them down.
    ping_interval: Option<Duration>,
    pong_timeout: Option<Duration>,
    /// Transport dial and secret-handshake bounds; `None` keeps the defaults (3 s each).
    dial_timeout: Option<Duration>,
    handshake_timeout: Option<Duration>,
    /// Cap on the wait between two dials of a persistent peer (zero: Go's schedule).
    persistent_max_dial_period: Duration,
    /// Keep redialing persistent peers after Go's 30 attempts.
    redial_forever: bool,
    /// Echo-client role: the pause between two sends (zero: send as fast as possible).
    echo_interval: Duration,
    /// Stream role (`--stream-count N`): sends N sequenced messages on each of the extra
    /// channels (`--channels`) to the first peer, one round every `--stream-interval`.
    stream_count: u64,
    stream_interval: Duration,
    /// `--stream-check`: extra-channel messages are checked as such a stream (complete and
    /// in order, per channel); `stream_done` is printed when a channel's last one arrives.
    stream_check: bool,
}

impl Cfg {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut cfg = Self {
            show_id: false,
            home: PathBuf::from(".rustpeer"),
            key: None,
            listen: "tcp://127.0.0.1:26656".into(),
            external_address: String::new(),
            persistent: Vec::new(),
            dial: Vec::new(),
            chain_id: "mukan-interop".into(),
            moniker: "rustpeer".into(),
            echo_channel: 0x7e,
            echo_max_msg: 1 << 20,
            channels: Vec::new(),
            allow_duplicate_ip: true,
            p2p_version: 8,
            block_version: 11,
            app_version: 0,
            node_version: "0.38.25".into(),
            tx_index: "off".into(),
            rpc_address: String::new(),
            quiet_echo: false,
            exit_after: None,
            echo_client: 0,
            echo_seed: 1,
            echo_max_size: 1 << 20,
            echo_peer: None,
            echo_timeout: Duration::from_secs(120),
            echo_connect_timeout: Duration::from_secs(20),
            send_rate: 5_120_000,
            recv_rate: 5_120_000,
            flush_throttle: Duration::from_millis(100),
            max_inbound: 40,
            max_outbound: 10,
            addrbook: None,
            pex: false,
            seed_mode: false,
            seeds: Vec::new(),
            addr_book_strict: false,
            mark_good: false,
            ping_interval: None,
            pong_timeout: None,
            dial_timeout: None,
            handshake_timeout: None,
            persistent_max_dial_period: Duration::ZERO,
            redial_forever: false,
            echo_interval: Duration::ZERO,
            stream_count: 0,
            stream_interval: Duration::from_millis(100),
            stream_check: false,
        };
        let mut it = args.iter().peekable();
        if it.peek().map(|s| s.as_str()) == Some("show-id") {
            cfg.show_id = true;
            it.next();
        }
        while let Some(arg) = it.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (flag, None),
            };
            let bool_flag = matches!(
                name,
                "quiet-echo"
                    | "allow-duplicate-ip"
                    | "pex"
                    | "seed-mode"
                    | "addr-book-strict"
                    | "mark-good"
                    | "redial-forever"
                    | "stream-check"
            );
            let value = if bool_flag {
                inline.unwrap_or_else(|| "true".into())
            } else if let Some(v) = inline {
                v
            } else {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("--{name} needs a value"))?
            };
            let num = |v: &str| v.parse::<u64>().map_err(|e| format!("--{name}: {e}"));
            let boolean = |v: &str| v.parse::<bool>().map_err(|e| format!("--{name}: {e}"));
            match name {
                "home" => cfg.home = value.into(),
                "key" => cfg.key = Some(value.into()),
                "listen" => cfg.listen = value,
                "external-address" => cfg.external_address = value,
                "persistent-peers" => cfg.persistent = split_list(&value),
                "dial" => cfg.dial = split_list(&value),
                "chain-id" => cfg.chain_id = value,
                "moniker" => cfg.moniker = value,
                "echo-channel" => {
                    let ch = parse_channels(&value)?;
                    let [one] = ch.as_slice() else {
                        return Err("--echo-channel needs one hex byte".into());
                    };
                    cfg.echo_channel = *one;
                }
                "echo-max-msg" => cfg.echo_max_msg = num(&value)? as usize,
                "channels" => cfg.channels = parse_channels(&value)?,
                "allow-duplicate-ip" => cfg.allow_duplicate_ip = boolean(&value)?,
                "p2p-version" => cfg.p2p_version = num(&value)?,
                "block-version" => cfg.block_version = num(&value)?,
                "app-version" => cfg.app_version = num(&value)?,
                "node-version" => cfg.node_version = value,
                "tx-index" => cfg.tx_index = value,
                "rpc-address" => cfg.rpc_address = value,
                "quiet-echo" => cfg.quiet_echo = boolean(&value)?,
                "exit-after" => cfg.exit_after = Some(parse_duration(&value)?),
                "echo-client" => cfg.echo_client = num(&value)? as usize,
                "echo-seed" => cfg.echo_seed = num(&value)?,
                "echo-max-size" => cfg.echo_max_size = num(&value)? as usize,
                "echo-peer" => cfg.echo_peer = Some(value),
                "echo-timeout" => cfg.echo_timeout = parse_duration(&value)?,
                "echo-connect-timeout" => cfg.echo_connect_timeout = parse_duration(&value)?,
                "pex" => cfg.pex = boolean(&value)?,
                "seed-mode" => cfg.seed_mode = boolean(&value)?,
                "seeds" => cfg.seeds = split_list(&value),
                "addrbook" => cfg.addrbook = Some(value.into()),
                "addr-book-strict" => cfg.addr_book_strict = boolean(&value)?,
                "mark-good" => cfg.mark_good = boolean(&value)?,
                "send-rate" => cfg.send_rate = num(&value)?,
                "recv-rate" => cfg.recv_rate = num(&value)?,
                "flush-throttle" => cfg.flush_throttle = parse_duration(&value)?,
                "max-inbound" => cfg.max_inbound = num(&value)? as usize,
                "max-outbound" => cfg.max_outbound = num(&value)? as usize,
                "ping-interval" => cfg.ping_interval = Some(parse_duration(&value)?),
                "pong-timeout" => cfg.pong_timeout = Some(parse_duration(&value)?),
                "dial-timeout" => cfg.dial_timeout = Some(parse_duration(&value)?),
                "handshake-timeout" => cfg.handshake_timeout = Some(parse_duration(&value)?),
                "persistent-peers-max-dial-period" => {
                    cfg.persistent_max_dial_period = parse_duration(&value)?;
                }
                "redial-forever" => cfg.redial_forever = boolean(&value)?,
                "stream-count" => cfg.stream_count = num(&value)?,
                "stream-interval" => cfg.stream_interval = parse_duration(&value)?,
                "stream-check" => cfg.stream_check = boolean(&value)?,
                "echo-interval" => cfg.echo_interval = parse_duration(&value)?,
                // Accepted for flag compatibility with gopeer; no effect here.
                "log-level" => {}
                _ => return Err(format!("unknown flag --{name}")),
            }
        }
        if cfg.seed_mode && !cfg.pex {
            return Err("--seed-mode needs --pex".into());
        }
        cfg.transport_config()
            .mconn
            .validate()
            .map_err(|e| format!("--ping-interval/--pong-timeout: {e}"))?;
        Ok(cfg)
    }

    /// The transport configuration: the defaults with the duplicate-IP rule, the dial and
    /// handshake bounds, and an MConnection configuration with the rates, the flush throttle
    /// and the ping/pong timers given on the command line.
    fn transport_config(&self) -> mukan_transport::Config {
        let mut tconfig = mukan_transport::Config::default();
        tconfig.allow_duplicate_ip = self.allow_duplicate_ip;
        if let Some(d) = self.dial_timeout {
            tconfig.dial_timeout = d;
        }
        if let Some(d) = self.handshake_timeout {
            tconfig.handshake_timeout = d;
        }
        let ping = self.ping_interval.unwrap_or(tconfig.mconn.ping_interval);
        let pong = self.pong_timeout.unwrap_or(tconfig.mconn.pong_timeout);
        tconfig.mconn = tconfig
            .mconn
            .with_rates(
                NonZeroU64::new(self.send_rate),
                NonZeroU64::new(self.recv_rate),
            )
            .with_flush_throttle(self.flush_throttle)
            .with_ping(ping, pong);
        tconfig
    }

    fn addrbook_file(&self) -> PathBuf {
        self.addrbook
            .clone()
            .unwrap_or_else(|| self.home.join("config").join("addrbook.json"))
    }

    fn key_file(&self) -> PathBuf {
        self.key
            .clone()
            .unwrap_or_else(|| self.home.join("config").join("node_key.json"))
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_channels(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in split_list(s) {
        let lower = part.to_lowercase();
        let p = lower.trim_start_matches("0x");
        if p.len() > 2 {
            out.extend(hex::decode(p).map_err(|e| format!("channel list {s:?}: {e}"))?);
        } else {
            out.push(u8::from_str_radix(p, 16).map_err(|e| format!("channel {p:?}: {e}"))?);
        }
    }
    Ok(out)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|e| format!("duration {s:?}: {e}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("duration {s:?}: unknown unit")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Prints one JSON event per line: `"event"` first, then the given keys, then `"t_ms"`.
#[derive(Clone)]
struct Events {
    start: Instant,
    out: Arc<Mutex<()>>,
}

impl Events {
    fn emit(&self, name: &str, kv: &[(&str, serde_json::Value)]) {
        let mut line = String::from("{\"event\":");
        line.push_str(&serde_json::Value::from(name).to_string());
        for (k, v) in kv {
            line.push(',');
            line.push_str(&serde_json::Value::from(*k).to_string());
            line.push(':');
            line.push_str(&v.to_string());
        }
        line.push_str(&format!(",\"t_ms\":{}}}", self.start.elapsed().as_millis()));
        let _guard = self.out.lock();
        println!("{line}");
    }
}

macro_rules! kv {
    ($($k:literal => $v:expr),* $(,)?) => {
        &[$(($k, serde_json::json!($v))),*]
    };
}

/// What `run` builds: the switch, the echo reactor and the event printer.
struct Node {
    cfg: Cfg,
    ev: Events,
    switch: Arc<Switch<EventTransport>>,
    /// The bound listen address.
    local_addr: std::net::SocketAddr,
    echo: Arc<EchoReactor>,
    /// With `--pex`: the PEX reactor and its address book.
    pex: Option<Pex>,
}

/// The PEX reactor (`--pex`) and the address book it shares with the switch.
struct Pex {
    reactor: Option<PexReactor>,
    book: Arc<Mutex<AddrBook>>,
    path: PathBuf,
}

impl Pex {
    /// Loads (or starts) the book at `--addrbook`.
    fn load(cfg: &Cfg) -> Result<Self, String> {
        let path = cfg.addrbook_file();
        let mut book = AddrBook::new(
            AddrBookConfig::with_strict(cfg.addr_book_strict),
            rand_chacha::ChaCha8Rng::from_entropy(),
        );
        book.load(&path, SystemTime::now())
            .map_err(|e| format!("address book {}: {e}", path.display()))?;
        Ok(Self {
            reactor: None,
            book: Arc::new(Mutex::new(book)),
            path,
        })
    }

    /// Saves the book (PEX's schedule and stop).
    fn saver(&self) -> SaveCallback {
        let (book, path) = (self.book.clone(), self.path.clone());
        Arc::new(move || {
            let _ = save_book(&book, &path);
        })
    }

    /// The PEX settings of `cfg` (the builder adds the persistent peers' IDs).
    fn config(&self, cfg: &Cfg) -> PexConfig {
        let mut pc = PexConfig::default();
        pc.seeds = cfg.seeds.clone();
        pc.seed_mode = cfg.seed_mode;
        pc.strict_addr_book = cfg.addr_book_strict;
        pc
    }

    fn with_reactor(mut self, reactor: PexReactor) -> Self {
        self.reactor = Some(reactor);
        self
    }

    fn size(&self) -> usize {
        self.book.lock().size()
    }
}

/// Writes the book atomically (a temporary file, then rename); the lock is held only to
/// encode it.
fn save_book(book: &Mutex<AddrBook>, path: &std::path::Path) -> std::io::Result<()> {
    let json = book.lock().to_json();
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".addrbook.json.tmp");
    std::fs::write(&tmp, &json)?;
    std::fs::rename(&tmp, path)
}

/// Prints `addrbook` with the book's size whenever it changes (checked every 200 ms).
async fn watch_book(node: Arc<Node>) {
    let Some(pex) = &node.pex else {
        return;
    };
    let mut last = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let n = pex.size();
        if last != Some(n) {
            last = Some(n);
            node.ev.emit("addrbook", kv!["size" => n]);
        }
    }
}

async fn run(cfg: Cfg) -> ExitCode {
    let ev = Events {
        start: Instant::now(),
        out: Arc::new(Mutex::new(())),
    };
    let key_file = cfg.key_file();
    if let Some(dir) = key_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let key = match NodeKey::load_or_generate(&key_file, &mut rand::rngs::OsRng) {
        Ok(k) => Arc::new(k),
        Err(e) => {
            ev.emit("error", kv!["error" => e.to_string()]);
            return ExitCode::from(2);
        }
    };
    if cfg.show_id {
        println!("{}", key.node_id());
        return ExitCode::SUCCESS;
    }
    let node = match build(&cfg, &ev, key.clone()).await {
        Ok(node) => node,
        Err(e) => {
            ev.emit("error", kv!["error" => e]);
            return ExitCode::from(2);
        }
    };
    let transport = node.switch.transport();
    ev.emit(
        "listening",
        kv![
            "id" => key.node_id().to_string(),
            "addr" => format!("{}@{}", key.node_id(), node.local_addr),
            "listen_addr" => transport.inner.node_info().listen_addr,
            "moniker" => cfg.moniker.clone(),
            "network" => cfg.chain_id.clone(),
            "channels" => hex::encode(node.switch.channel_ids().iter().map(|c| c.0).collect::<Vec<u8>>()),
            "p2p_version" => cfg.p2p_version,
            "block_version" => cfg.block_version,
            "pex" => cfg.pex,
            "seed_mode" => cfg.seed_mode,
            "key_file" => key_file.display().to_string(),
            "addrbook_file" => if cfg.pex { cfg.addrbook_file().display().to_string() } else { String::new() },
            "impl" => "rust",
        ],
    );
    let watcher = tokio::spawn(watch_book(node.clone()));
    // Persistent peers: dialed at once (the switch's dial randomizer is zero here), then
    // redialed by the switch on Go's schedule.
    node.switch.dial_persistent_peers();
    for text in &cfg.dial {
        match text.parse::<NetAddress>() {
            Ok(addr) => {
                tokio::spawn(dial_once(node.clone(), addr));
            }
            Err(e) => ev.emit(
                "rejected",
                kv!["direction" => "outbound", "reason" => "dial_failed", "detail" => "",
                    "addr" => text, "error" => e.to_string()],
            ),
        }
    }

    let mut streamer = (cfg.stream_count > 0).then(|| tokio::spawn(run_stream(node.clone())));
    let code = if cfg.echo_client > 0 {
        let ok = run_client(&node).await;
        // The streams end before the program does (bounded by the echo timeout).
        if let Some(s) = streamer.as_mut() {
            let _ = tokio::time::timeout(cfg.echo_timeout, s).await;
        }
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    } else {
        let exit_after = async {
            match cfg.exit_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => ev.emit("signal", kv!["signal" => "interrupt"]),
            _ = terminate() => ev.emit("signal", kv!["signal" => "terminated"]),
            () = exit_after => {}
        }
        ExitCode::SUCCESS
    };
    // Ordered stop: no more accepts or dials, every peer flushed (bounded) and removed from
    // the reactors, then the reactors stopped.
    if let Some(s) = streamer {
        s.abort();
    }
    node.switch.stop().await;
    watcher.abort();
    if let Some(pex) = &node.pex {
        // The reactor's own last save (started at its stop), then ours, reported.
        if let Some(reactor) = &pex.reactor {
            reactor.wait_saved().await;
        }
        let (book, path) = (pex.book.clone(), pex.path.clone());
        let saved = tokio::task::spawn_blocking(move || save_book(&book, &path)).await;
        match saved {
            Ok(Ok(())) => ev.emit(
                "addrbook_saved",
                kv!["path" => pex.path.display().to_string(), "size" => pex.size()],
            ),
            Ok(Err(e)) => ev.emit(
                "error",
                kv!["error" => format!("saving the address book: {e}")],
            ),
            Err(e) => ev.emit(
                "error",
                kv!["error" => format!("saving the address book: {e}")],
            ),
        }
    }
    ev.emit("stopped", &[]);
    code
}

/// The echo reactor (and PEX), the transport (listening) and the switch over it, assembled by
/// `mukan_node::NodeBuilder` and started (the persistent peers are dialed by the caller, once
/// it printed `listening`).
async fn build(cfg: &Cfg, ev: &Events, key: Arc<NodeKey>) -> Result<Arc<Node>, String> {
    let echo = Arc::new(EchoReactor::new(cfg, ev.clone()));
    let persistent = cfg
        .persistent
        .iter()
        .map(|s| {
            s.parse::<ParsedAddress>()
                .map_err(|e| format!("--persistent-peers {s:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sconfig = mukan_switch::Config::default();
    sconfig.persistent_peers = persistent;
    sconfig.max_num_inbound_peers = cfg.max_inbound;
    sconfig.max_num_outbound_peers = cfg.max_outbound;
    sconfig.allow_duplicate_ip = cfg.allow_duplicate_ip;
    // gopeer dials its persistent peers at once; so do we.
    sconfig.dial_randomizer = Duration::ZERO;
    sconfig.persistent_peers_max_dial_period = cfg.persistent_max_dial_period;
    sconfig.redial_persistent_forever = cfg.redial_forever;
    let listen_addr = if cfg.external_address.is_empty() {
        cfg.listen.clone()
    } else {
        cfg.external_address.clone()
    };
    let bind = cfg.listen.rsplit("://").next().unwrap_or("").to_owned();
    let bind: std::net::SocketAddr = bind
        .parse()
        .map_err(|e| format!("--listen {bind:?}: {e}"))?;
    let mut builder = NodeBuilder::new(key.clone(), cfg.chain_id.clone())
        .moniker(cfg.moniker.clone())
        .version(cfg.node_version.clone())
        .protocol_version(ProtocolVersion {
            p2p: cfg.p2p_version,
            block: cfg.block_version,
            app: cfg.app_version,
        })
        .tx_index(cfg.tx_index.clone())
        .rpc_address(cfg.rpc_address.clone())
        .external_address(listen_addr)
        .listen(bind)
        .switch_config(sconfig)
        .transport_config(cfg.transport_config())
        .dial_persistent_peers(false)
        .reactor(ECHO_REACTOR, echo.clone());
    let pex = if cfg.pex {
        let pex = Pex::load(cfg)?;
        // After the echo reactor, as gopeer (and a Go node) list the PEX channel last.
        builder = builder
            .address_book(pex.book.clone())
            .save_book_with(pex.saver())
            .pex(pex.config(cfg));
        Some(pex)
    } else {
        None
    };
    let started = builder
        .start_with(|p| EventTransport {
            inner: TcpTransport::new(p.key, p.node_info, p.config),
            ev: ev.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let pex = match (pex, started.pex()) {
        (Some(p), Some(reactor)) => Some(p.with_reactor(reactor.clone())),
        _ => None,
    };
    Ok(Arc::new(Node {
        cfg: cfg.clone(),
        ev: ev.clone(),
        switch: started.switch().clone(),
        local_addr: started.local_addr().unwrap_or(bind),
        echo,
        pex,
    }))
}

/// A one-time dial (`--dial`) through the switch. An address with our own ID goes to the
/// transport directly: the switch refuses it before dialing (`DialError::SelfAddress`), and the
/// `reject-self` cases check the transport's own detection of a self-connection on both ends.
async fn dial_once(node: Arc<Node>, addr: NetAddress) {
    let transport = node.switch.transport();
    if addr.id() == Network::net_address(&*node.switch).id() {
        let config = PeerConfig::new(node.echo.channels());
        if let Ok(peer) = transport.dial(addr, config).await {
            peer.stop();
        }
        return;
    }
    if let Some(pex) = &node.pex {
        // As a node's DialPeersAsync (and gopeer) do: the dialed address goes into the book.
        let ours = Network::net_address(&*node.switch);
        let _ = pex.book.lock().add_address(addr, ours, SystemTime::now());
    }
    let (reason, error) = match Dialer::dial_peer_with_address(&*node.switch, addr).await {
        // Transport errors were reported by the transport wrapper.
        Ok(()) | Err(DialError::Transport(_)) => return,
        Err(e @ DialError::AlreadyDialingOrConnected(_)) => ("already_connected", e.to_string()),
        Err(e @ DialError::SelfAddress(_)) => ("self", e.to_string()),
        Err(e @ DialError::Denied(_)) => ("filtered", e.to_string()),
        Err(e) => ("other", e.to_string()),
    };
    node.ev.emit(
        "rejected",
        kv!["direction" => "outbound", "reason" => reason, "detail" => "",
            "addr" => addr.to_string(), "error" => error],
    );
}

/// The TCP transport, printing `dialing` for every dial and `rejected` for every dial or
/// accept the transport refused (the switch's own refusals happen above it).
struct EventTransport {
    inner: TcpTransport,
    ev: Events,
}

impl BindTransport for EventTransport {
    fn bind(
        &self,
        addr: std::net::SocketAddr,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<std::net::SocketAddr>> + Send + '_>> {
        self.inner.bind(addr)
    }

    fn announced(&self) -> NodeInfo {
        self.inner.announced()
    }
}

type PeerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + 'a>>;

impl Transport for EventTransport {
    fn net_address(&self) -> NetAddress {
        self.inner.net_address()
    }

    fn dial(&self, addr: NetAddress, config: PeerConfig) -> PeerFuture<'_> {
        Box::pin(async move {
            self.ev.emit("dialing", kv!["addr" => addr.to_string()]);
            let result = self.inner.dial(addr, config).await;
            if let Err(e) = &result {
                if !matches!(e, TransportError::Closed) {
                    emit_rejected(&self.ev, "outbound", e, &addr.to_string());
                }
            }
            result
        })
    }

    fn accept(&self, config: PeerConfig) -> PeerFuture<'_> {
        Box::pin(async move {
            let result = self.inner.accept(config).await;
            if let Err(e) = &result {
                if !matches!(e, TransportError::Closed) {
                    emit_rejected(&self.ev, "inbound", e, "");
                }
            }
            result
        })
    }

    fn close(&self) {
        self.inner.close();
    }
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}

/// The echo reactor's name in the switch.
const ECHO_REACTOR: &str = "ECHO";

/// Messages waiting to be echoed, per peer.
const ECHO_QUEUE_MESSAGES: usize = 100_000;
/// Bytes waiting to be echoed, per peer. Go's echo reactor blocks its receive path instead
/// (back-pressuring the sender through TCP); ours must not block, so it queues each message
/// with its receive-budget lease (the switch's back-pressure on that channel), and counts a
/// message beyond this bound as an `echo_failed`.
const ECHO_QUEUE_BYTES: usize = 256 << 20;

/// The echo reactor: owns the echo channel and the extra channels (`--channels`). Echo-channel
/// messages go back unchanged, in order, through a bounded per-peer queue and task (the
/// switch's delivery path never blocks); extra-channel messages are counted, consensus ones
/// decoded; peers joining and leaving are printed.
struct EchoReactor {
    ev: Events,
    descriptors: Vec<ChannelDescriptor>,
    echo_channel: ChannelId,
    quiet_echo: bool,
    stream_check: bool,
    /// `--mark-good`: every added peer is marked good in the book (through the switch).
    mark_good: bool,
    switch: Mutex<Option<Weak<dyn Network>>>,
    peers: Mutex<HashMap<NodeId, Arc<EchoPeer>>>,
    /// Echo-client role: the messages coming back from the target peer.
    client: Mutex<Option<ClientTap>>,
    /// The first peer added (echo-client role).
    first_peer: tokio::sync::watch::Sender<Option<NodeId>>,
}

struct ClientTap {
    peer: NodeId,
    tx: mpsc::Sender<Bytes>,
}

/// One peer's state in the echo reactor, from `init_peer` to `remove_peer`.
struct EchoPeer {
    added: std::sync::atomic::AtomicBool,
    /// Echo queue to the peer's sender task; dropped at `remove_peer`, which ends the task.
    echo_tx: mpsc::Sender<(Bytes, RecvLease)>,
    /// Bytes in `echo_tx`.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Messages received per non-echo channel.
    counts: Mutex<HashMap<u8, u64>>,
    /// `--stream-check`: per channel, the next sequence number expected and the number of
    /// messages that were not it.
    streams: Mutex<HashMap<u8, (u64, u64)>>,
    /// Consensus messages per kind.
    consensus: Mutex<consensus::Tally>,
}

impl EchoReactor {
    fn new(cfg: &Cfg, ev: Events) -> Self {
        let echo = ChannelId(cfg.echo_channel);
        let mut descriptors = vec![
            ChannelDescriptor::new(echo, NonZeroU32::MIN)
                .with_send_queue_capacity(NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN))
                .with_recv_message_capacity(
                    NonZeroUsize::new(cfg.echo_max_msg).unwrap_or(NonZeroUsize::MIN),
                ),
        ];
        for &ch in &cfg.channels {
            if ch != cfg.echo_channel {
                descriptors.push(ChannelDescriptor::new(ChannelId(ch), NonZeroU32::MIN));
            }
        }
        let (first_peer, _) = tokio::sync::watch::channel(None);
        Self {
            ev,
            descriptors,
            echo_channel: echo,
            quiet_echo: cfg.quiet_echo,
            stream_check: cfg.stream_check,
            mark_good: cfg.mark_good,
            switch: Mutex::new(None),
            peers: Mutex::new(HashMap::new()),
            client: Mutex::new(None),
            first_peer,
        }
    }

    /// Decodes a consensus message (any of the consensus channels) with the suite's test
    /// decoder (`mukan_conformance_tests::consensus`) and reports the first three of each
    /// kind, then those whose count is a power of ten; the same for messages it does not
    /// understand (`consensus_error`).
    fn report_consensus(&self, state: &EchoPeer, id: NodeId, channel: ChannelId, message: &[u8]) {
        let result = consensus::decode(message);
        let (count, report) = state.consensus.lock().record(&result);
        if !report {
            return;
        }
        let id = id.to_string();
        let ch = hex::encode([channel.0]);
        match result {
            Ok(d) => {
                let step = d.step.map_or(serde_json::Value::Null, Into::into);
                self.ev.emit(
                    "consensus",
                    kv!["id" => id, "ch" => ch, "type" => d.kind.name(), "height" => d.height,
                        "round" => d.round, "step" => step, "count" => count],
                );
            }
            Err(e) => {
                self.ev.emit(
                    "consensus_error",
                    kv!["id" => id, "ch" => ch, "error" => e.to_string(),
                        "bytes" => message.len(), "count" => count],
                );
            }
        }
    }
}

impl EchoReactor {
    /// `--stream-check`: one message of a `--stream-count` stream (`[seq u64 LE][total u64
    /// LE][padding]`). Counts the messages whose sequence number is not the next expected
    /// one (prints the first as `stream_gap`), and prints `stream_done` when the last one
    /// arrives.
    fn check_stream(&self, state: &EchoPeer, id: NodeId, channel: ChannelId, message: &[u8]) {
        let field = |at: usize| {
            message
                .get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
        };
        let (Some(seq), Some(total)) = (field(0), field(8)) else {
            self.ev.emit(
                "stream_gap",
                kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                    "error" => "message shorter than 16 bytes"],
            );
            return;
        };
        let (received, bad) = {
            let mut streams = state.streams.lock();
            let entry = streams.entry(channel.0).or_insert((0, 0));
            let expected = entry.0;
            if seq != expected {
                entry.1 += 1;
                if entry.1 == 1 {
                    self.ev.emit(
                        "stream_gap",
                        kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                            "expected" => expected, "got" => seq],
                    );
                }
            }
            entry.0 = seq.saturating_add(1);
            (entry.0, entry.1)
        };
        if seq.saturating_add(1) == total {
            self.ev.emit(
                "stream_done",
                kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                    "total" => total, "next" => received, "out_of_order" => bad],
            );
        }
    }
}

/// Stream role: `--stream-count` sequenced messages on each extra channel to the first peer;
/// prints `stream_sent` at the end (or on the first failed send).
async fn run_stream(node: Arc<Node>) {
    let cfg = &node.cfg;
    let mut first = node.echo.first_peer.subscribe();
    let target = loop {
        if let Some(id) = *first.borrow() {
            break id;
        }
        if first.changed().await.is_err() {
            return;
        }
    };
    let Some(peer) = Network::peer(&*node.switch, &target) else {
        node.ev.emit(
            "stream_sent",
            kv!["ok" => false, "sent" => 0, "error" => "peer gone"],
        );
        return;
    };
    let channels: Vec<u8> = cfg
        .channels
        .iter()
        .copied()
        .filter(|&c| c != cfg.echo_channel)
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.echo_seed);
    let mut tick = tokio::time::interval(cfg.stream_interval.max(Duration::from_millis(1)));
    for seq in 0..cfg.stream_count {
        tick.tick().await;
        for &ch in &channels {
            let pad = rng.gen_range(0..4096usize);
            let mut msg = Vec::with_capacity(16 + pad);
            msg.extend_from_slice(&seq.to_le_bytes());
            msg.extend_from_slice(&cfg.stream_count.to_le_bytes());
            msg.resize(16 + pad, ch);
            if let Err(e) = peer.send(ChannelId(ch), Bytes::from(msg)).await {
                node.ev.emit(
                    "stream_sent",
                    kv!["ok" => false, "sent" => seq, "ch" => hex::encode([ch]),
                        "error" => e.to_string()],
                );
                return;
            }
        }
    }
    node.ev.emit(
        "stream_sent",
        kv!["ok" => true, "sent" => cfg.stream_count, "channels" => hex::encode(&channels),
            "peer" => target.to_string()],
    );
}

fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

impl Reactor for EchoReactor {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        self.descriptors.clone()
    }

    fn set_switch(&self, switch: Weak<dyn Network>) {
        *self.switch.lock() = Some(switch);
    }

    fn init_peer(&self, peer: &Arc<dyn Peer>) {
        let (echo_tx, mut echo_rx) = mpsc::channel::<(Bytes, RecvLease)>(ECHO_QUEUE_MESSAGES);
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queued_in_task = queued.clone();
        let sender = peer.clone();
        let channel = self.echo_channel;
        let ev = self.ev.clone();
        tokio::spawn(async move {
            while let Some((msg, lease)) = echo_rx.recv().await {
                let len = msg.len();
                queued_in_task.fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
                let sent = sender.send(channel, msg).await;
                drop(lease);
                if sent.is_err() {
                    ev.emit(
                        "echo_failed",
                        kv!["id" => sender.id().to_string(), "bytes" => len],
                    );
                    return;
                }
            }
        });
        let state = Arc::new(EchoPeer {
            added: std::sync::atomic::AtomicBool::new(false),
            echo_tx,
            queued,
            counts: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            consensus: Mutex::new(consensus::Tally::default()),
        });
        self.peers.lock().insert(peer.id(), state);
    }

    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        let id = peer.id();
        if let Some(state) = self.peers.lock().get(&id) {
            state
                .added
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let info = peer.node_info();
        let channels: Vec<u8> = info.channels.iter().map(|c| c.0).collect();
        self.ev.emit(
            "peer_added",
            kv![
                "id" => id.to_string(),
                "moniker" => info.moniker,
                "channels" => hex::encode(&channels),
                "network" => info.network,
                "version" => info.version,
                "listen_addr" => info.listen_addr,
                "p2p_version" => info.protocol_version.p2p,
                "block_version" => info.protocol_version.block,
                "app_version" => info.protocol_version.app,
                "tx_index" => info.other.tx_index,
                "rpc_address" => info.other.rpc_address,
                "outbound" => peer.direction().is_outbound(),
                "persistent" => peer.is_persistent(),
                "remote_addr" => peer.socket_addr().dial_string(),
            ],
        );
        if self.mark_good {
            let switch = self.switch.lock().as_ref().and_then(Weak::upgrade);
            if let Some(switch) = switch {
                switch.mark_peer_as_good(&id);
            }
        }
        self.first_peer.send_if_modified(|first| {
            if first.is_none() {
                *first = Some(id);
                true
            } else {
                false
            }
        });
    }

    fn remove_peer(&self, peer: &Arc<dyn Peer>, reason: &StopReason) {
        let id = peer.id();
        let state = self.peers.lock().remove(&id);
        if state.is_some_and(|s| s.added.load(std::sync::atomic::Ordering::Relaxed)) {
            self.ev.emit(
                "peer_removed",
                kv!["id" => id.to_string(), "reason" => reason.to_string()],
            );
        }
    }

    fn receive(&self, envelope: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
        let Envelope {
            src,
            channel,
            message,
            lease,
        } = envelope;
        let id = src.id();
        let Some(state) = self.peers.lock().get(&id).cloned() else {
            return Ok(());
        };
        if channel != self.echo_channel {
            let count = {
                let mut counts = state.counts.lock();
                let c = counts.entry(channel.0).or_insert(0u64);
                *c += 1;
                *c
            };
            if is_power_of_ten(count) {
                self.ev.emit(
                    "recv",
                    kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                        "bytes" => message.len(), "count" => count],
                );
            }
            if self.stream_check {
                self.check_stream(&state, id, channel, &message);
            }
            if consensus::CHANNELS.contains(&channel.0) {
                self.report_consensus(&state, id, channel, &message);
            }
            return Ok(());
        }
        if let Some(tap) = &*self.client.lock() {
            if tap.peer == id {
                if tap.tx.try_send(message).is_err() {
                    self.ev
                        .emit("error", kv!["error" => "echo client: queue full or closed"]);
                }
                return Ok(());
            }
        }
        if !self.quiet_echo {
            self.ev.emit(
                "echo",
                kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]), "bytes" => message.len()],
            );
        }
        let len = message.len();
        let queued = state
            .queued
            .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        if queued + len > ECHO_QUEUE_BYTES || state.echo_tx.try_send((message, lease)).is_err() {
            state
                .queued
                .fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
            self.ev
                .emit("echo_failed", kv!["id" => id.to_string(), "bytes" => len]);
        }
        Ok(())
    }
}

fn emit_rejected(ev: &Events, direction: &str, err: &TransportError, addr: &str) {
    let (reason, detail) = classify(err);
    let addr = match err {
        TransportError::Rejected { addr: Some(a), .. } if addr.is_empty() => a.to_string(),
        _ => addr.to_owned(),
    };
    ev.emit(
        "rejected",
        kv!["direction" => direction, "reason" => reason, "detail" => detail, "addr" => addr,
            "error" => err.to_string()],
    );
}

/// The same tokens gopeer prints (`go/internal/peer/reject.go`).
fn classify(err: &TransportError) -> (&'static str, &'static str) {
    let TransportError::Rejected { detail, .. } = err else {
        return match err {
            TransportError::FilterTimeout => ("filter_timeout", ""),
            // Go reports these as authentication failures; keep its tokens.
            TransportError::Timeout(mukan_reactor_api::TimeoutKind::Handshake) => {
                ("auth_failure", "secret_conn")
            }
            TransportError::Timeout(mukan_reactor_api::TimeoutKind::NodeInfo) => {
                ("auth_failure", "handshake")
            }
            _ => ("dial_failed", ""),
        };
    };
    // By variant, never by message text.
    match detail {
        RejectDetail::DialedIdMismatch { .. } | RejectDetail::NodeInfoIdMismatch { .. } => {
            ("auth_failure", "id_mismatch")
        }
        RejectDetail::Handshake(_) => ("auth_failure", "secret_conn"),
        RejectDetail::Exchange(_) => ("auth_failure", "handshake"),
        RejectDetail::DuplicateConnection(_) | RejectDetail::DuplicateIp(_) => ("duplicate", ""),
        RejectDetail::Filtered(_) => ("filtered", ""),
        RejectDetail::Incompatible(e) => {
            let detail = match e {
                IncompatibleError::Network { .. } => "network",
                IncompatibleError::NoCommonChannels { .. } => "channels",
                IncompatibleError::BlockVersion { .. } => "block_version",
                _ => "",
            };
            ("incompatible", detail)
        }
        RejectDetail::InvalidNodeInfo(_) => ("invalid_node_info", ""),
        RejectDetail::SelfConnection => ("self", ""),
        _ => ("other", ""),
    }
}

/// Echo-client role: sends `--echo-client` messages to the first peer (or `--echo-peer`),
/// checks that they come back byte-exact and in order, prints `echo_summary`.
async fn run_client(node: &Arc<Node>) -> bool {
    let ev = &node.ev;
    let cfg = &node.cfg;
    let mut first = node.echo.first_peer.subscribe();
    let wanted: Option<NodeId> = cfg.echo_peer.as_deref().and_then(|s| s.parse().ok());
    let target = tokio::time::timeout(cfg.echo_connect_timeout, async {
        loop {
            if let Some(w) = wanted {
                if Network::peer(&*node.switch, &w).is_some() {
                    return Some(w);
                }
            } else if let Some(id) = *first.borrow() {
                return Some(id);
            }
            if first.changed().await.is_err() {
                return None;
            }
            if wanted.is_some() {
                continue;
            }
        }
    })
    .await
    .ok()
    .flatten();
    let Some(target) = target else {
        ev.emit(
            "echo_summary",
            kv!["ok" => false, "error" => format!("no peer connected within {:?}", cfg.echo_connect_timeout),
                "sent" => 0, "received" => 0],
        );
        return false;
    };
    let Some(peer) = Network::peer(&*node.switch, &target) else {
        return false;
    };
    let (tx, mut rx) = mpsc::channel(cfg.echo_client.max(1));
    *node.echo.client.lock() = Some(ClientTap { peer: target, tx });

    let sizes = echo_sizes(cfg.echo_client, cfg.echo_max_size, cfg.echo_seed);
    let started = Instant::now();
    let channel = ChannelId(cfg.echo_channel);
    let mut mismatches = 0usize;
    let mut first_mismatch: i64 = -1;
    let mut received = 0usize;
    let mut total = 0usize;
    let exchange = async {
        let sender = peer.clone();
        let payloads: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| echo_payload(i, n, cfg.echo_seed))
            .collect();
        let expected = payloads.clone();
        let interval = cfg.echo_interval;
        let send_all = async move {
            for (i, msg) in payloads.into_iter().enumerate() {
                if i > 0 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                sender.send(channel, msg).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        let recv_all = async {
            for (i, want) in expected.iter().enumerate() {
                let Some(got) = rx.recv().await else {
                    return Err("echo stream ended".to_owned());
                };
                received += 1;
                total += got.len();
                if got != *want {
                    mismatches += 1;
                    if first_mismatch < 0 {
                        first_mismatch = i as i64;
                        ev.emit(
                            "echo_mismatch",
                            kv!["index" => i, "want_bytes" => want.len(), "got_bytes" => got.len()],
                        );
                    }
                }
            }
            Ok(())
        };
        let (s, r) = tokio::join!(send_all, recv_all);
        s.and(r)
    };
    let failure = match tokio::time::timeout(cfg.echo_timeout, exchange).await {
        Ok(Ok(())) => String::new(),
        Ok(Err(e)) => e,
        Err(_) => format!("timed out after {:?}", cfg.echo_timeout),
    };
    let ok = failure.is_empty() && mismatches == 0 && received == sizes.len();
    ev.emit(
        "echo_summary",
        kv!["ok" => ok, "peer" => target.to_string(), "sent" => sizes.len(), "received" => received,
            "mismatches" => mismatches, "first_mismatch" => first_mismatch, "bytes" => total,
            "elapsed_ms" => started.elapsed().as_millis() as u64, "error" => failure],
    );
    ok
}

/// Edge sizes first, then seeded random sizes (85% ≤ 2 KiB, 12% ≤ 64 KiB, 3% up to max),
/// shuffled.
fn echo_sizes(n: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let edges = [
        0,
        1,
        2,
        3,
        4,
        1023,
        1024,
        1025,
        2047,
        2048,
        65535,
        65536,
        max.saturating_sub(1),
        max,
    ];
    let mut sizes: Vec<usize> = edges.into_iter().filter(|&e| e <= max).take(n).collect();
    while sizes.len() < n {
        let r = rng.gen_range(0..100);
        let (lo, hi) = match r {
            0..85 => (0, 2048),
            85..97 => (2049, 65536),
            _ => (65537, max),
        };
        let hi = hi.min(max);
        let lo = lo.min(hi);
        sizes.push(rng.gen_range(lo..=hi));
    }
    for i in (1..sizes.len()).rev() {
        let j = rng.gen_range(0..=i);
        sizes.swap(i, j);
    }
    sizes
}

/// Message `i`: its index in the first 4 bytes (little-endian), then seeded random bytes.
fn echo_payload(i: usize, size: usize, seed: u64) -> Bytes {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ ((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    let mut buf = vec![0u8; size];
    rng.fill(buf.as_mut_slice());
    let idx = (i as u32).to_le_bytes();
    let n = size.min(4);
    buf[..n].copy_from_slice(&idx[..n]);
    Bytes::from(buf)
}

/// `addrbook.json` interop helpers for `go/run-interop.sh`, built on `mukan-addrbook`.
mod addrbook_tool {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::SystemTime;

    use mukan_addrbook::{AddrBook, Config};
    use mukan_reactor_api::{AddressBook, NetAddress};
    use rand::SeedableRng;

    fn flag(args: &[String], name: &str) -> Option<String> {
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == name {
                return it.next().cloned();
            }
            if let Some(v) = a.strip_prefix(&format!("{name}=")) {
                return Some(v.to_owned());
            }
        }
        None
    }

    fn book() -> AddrBook {
        // Loopback addresses are what the interop suite uses: not strict.
        AddrBook::new(
            Config::with_strict(false),
            rand_chacha::ChaCha8Rng::from_entropy(),
        )
    }

    /// `addrbook-dump --file F`: loads a book and prints `new|old id@ip:port` per entry,
    /// sorted; exit 1 if the file does not load.
    pub(crate) fn dump(args: &[String]) -> ExitCode {
        let Some(file) = flag(args, "--file") else {
            eprintln!("addrbook-dump: --file is required");
            return ExitCode::from(2);
        };
        let mut book = book();
        match book.load(&PathBuf::from(&file), SystemTime::now()) {
            Ok(report) if report.found => {}
            Ok(_) => {
                eprintln!("addrbook-dump: {file} does not exist");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("addrbook-dump: {e}");
                return ExitCode::from(1);
            }
        }
        let mut lines: Vec<String> = book
            .addresses()
            .map(|a| {
                let kind = if book.is_good(&a) { "old" } else { "new" };
                format!("{kind} {a}")
            })
            .collect();
        lines.sort();
        for line in lines {
            println!("{line}");
        }
        ExitCode::SUCCESS
    }

    /// `addrbook-write --file F --src ID@IP:PORT --addrs A,B,… [--good ID,…]
    /// [--unverified A,…] [--ban A,…]`: a fresh book with those addresses (the `--good` ones
    /// moved to old buckets, the `--unverified` ones added as unverified self-adverts, the
    /// `--ban` ones banned without entering the table), saved to F.
    pub(crate) fn write(args: &[String]) -> ExitCode {
        let (Some(file), Some(src), Some(addrs)) = (
            flag(args, "--file"),
            flag(args, "--src"),
            flag(args, "--addrs"),
        ) else {
            eprintln!("addrbook-write: --file, --src and --addrs are required");
            return ExitCode::from(2);
        };
        let parse = |s: &str| {
            s.trim()
                .parse::<NetAddress>()
                .map_err(|e| format!("{s}: {e}"))
        };
        let result = (|| {
            let src = parse(&src)?;
            let now = SystemTime::now();
            let mut book = book();
            for a in addrs.split(',').filter(|a| !a.trim().is_empty()) {
                book.add_address(parse(a)?, src, now)
                    .map_err(|e| format!("{a}: {e}"))?;
            }
            for id in flag(args, "--good").unwrap_or_default().split(',') {
                if let Ok(id) = id.trim().parse() {
                    book.mark_good(id, now);
                }
            }
            let list = |name: &str| flag(args, name).unwrap_or_default();
            for a in list("--unverified")
                .split(',')
                .filter(|a| !a.trim().is_empty())
            {
                book.add_unverified_address(parse(a)?, src, now)
                    .map_err(|e| format!("{a}: {e}"))?;
            }
            for a in list("--ban").split(',').filter(|a| !a.trim().is_empty()) {
                book.mark_bad(&parse(a)?, std::time::Duration::from_secs(24 * 3600), now);
            }
            book.save(&PathBuf::from(&file))
                .map_err(|e| e.to_string())?;
            Ok::<usize, String>(book.size())
        })();
        match result {
            Ok(n) => {
                println!("{n}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("addrbook-write: {e}");
                ExitCode::from(1)
            }
        }
    }
}
