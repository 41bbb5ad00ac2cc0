//! `rustpeer`: the Rust side of the interop harness, the twin of `go/cmd/gopeer`.
//!
//! Same flags (the subset our crates support) and the same JSON-line events on stdout, so
//! `go/run-interop.sh` can run every case as a matrix Go→Go, Go→Rust, Rust→Go, Rust→Rust.
//! Built on our crates only: node-key, transport (secret connection + NodeInfo exchange +
//! MConnection) and an echo handler on the echo channel whose messages are raw bytes (the
//! identity encoding of gopeer's `RawMessage`).
//!
//! Until the switch crate exists this program keeps its own small peer set: one connection
//! per peer ID, persistent peers redialed every second.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_conformance_tests::consensus;
use mukan_node_key::{NodeId, NodeKey};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, ManagedPeer, NetAddress, NodeInfo, Other, PeerConfig,
    ProtocolVersion, RejectReason, Transport, TransportError,
};
use mukan_transport::{TcpTransport, UpgradeError};
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
                "quiet-echo" | "allow-duplicate-ip" | "pex" | "seed-mode"
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
                "pex" | "seed-mode" => {
                    if boolean(&value)? {
                        return Err(format!("--{name} is not supported yet (no PEX crate)"));
                    }
                }
                // Accepted for flag compatibility with gopeer; no effect here.
                "send-rate" => cfg.send_rate = num(&value)?,
                "recv-rate" => cfg.recv_rate = num(&value)?,
                "flush-throttle" => cfg.flush_throttle = parse_duration(&value)?,
                "log-level" | "max-inbound" | "max-outbound" | "addrbook" | "seeds" => {}
                _ => return Err(format!("unknown flag --{name}")),
            }
        }
        Ok(cfg)
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

/// The state shared by the accept loop, the dialers and the peers' event handlers.
struct Node {
    cfg: Cfg,
    ev: Events,
    transport: TcpTransport,
    peer_config: PeerConfig,
    peers: Mutex<HashMap<NodeId, Arc<dyn ManagedPeer>>>,
    /// Echo-client role: the messages coming back from the target peer.
    client: Mutex<Option<ClientTap>>,
    first_peer: tokio::sync::watch::Sender<Option<NodeId>>,
}

struct ClientTap {
    peer: NodeId,
    tx: mpsc::Sender<Bytes>,
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
    let listen_addr = if cfg.external_address.is_empty() {
        cfg.listen.clone()
    } else {
        cfg.external_address.clone()
    };
    let node_info = NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: cfg.p2p_version,
            block: cfg.block_version,
            app: cfg.app_version,
        },
        id: key.node_id().to_string(),
        listen_addr,
        network: cfg.chain_id.clone(),
        version: cfg.node_version.clone(),
        channels: descriptors.iter().map(|d| d.id).collect(),
        moniker: cfg.moniker.clone(),
        other: Other {
            tx_index: cfg.tx_index.clone(),
            rpc_address: cfg.rpc_address.clone(),
        },
    };
    let mut tconfig = mukan_transport::Config::default();
    tconfig.allow_duplicate_ip = cfg.allow_duplicate_ip;
    tconfig.mconn = tconfig
        .mconn
        .with_rates(
            NonZeroU64::new(cfg.send_rate),
            NonZeroU64::new(cfg.recv_rate),
        )
        .with_flush_throttle(cfg.flush_throttle);
    let transport = TcpTransport::new(key.clone(), node_info, tconfig);
    let bind = cfg.listen.rsplit("://").next().unwrap_or("").to_owned();
    let bound = match bind.parse() {
        Ok(addr) => transport.listen(addr).await,
        Err(e) => Err(std::io::Error::other(format!("--listen {bind:?}: {e}"))),
    };
    let bound = match bound {
        Ok(b) => b,
        Err(e) => {
            ev.emit("error", kv!["error" => e.to_string()]);
            return ExitCode::from(2);
        }
    };
    let persistent: Vec<NetAddress> = cfg
        .persistent
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let peer_config = PeerConfig {
        channels: descriptors,
        is_persistent: Arc::new(move |addr: &NetAddress| persistent.iter().any(|p| p == addr)),
    };
    let (first_peer, _) = tokio::sync::watch::channel(None);
    let node = Arc::new(Node {
        cfg: cfg.clone(),
        ev: ev.clone(),
        transport,
        peer_config,
        peers: Mutex::new(HashMap::new()),
        client: Mutex::new(None),
        first_peer,
    });
    ev.emit(
        "listening",
        kv![
            "id" => key.node_id().to_string(),
            "addr" => format!("{}@{}", key.node_id(), bound),
            "listen_addr" => node.transport.node_info().listen_addr,
            "impl" => "rust",
        ],
    );

    tokio::spawn(accept_loop(node.clone()));
    for (addrs, persistent) in [(&cfg.persistent, true), (&cfg.dial, false)] {
        for text in addrs {
            match text.parse::<NetAddress>() {
                Ok(addr) => {
                    tokio::spawn(dial_loop(node.clone(), addr, persistent));
                }
                Err(e) => ev.emit(
                    "rejected",
                    kv!["direction" => "outbound", "reason" => "dial_failed", "detail" => "",
                        "addr" => text, "error" => e.to_string()],
                ),
            }
        }
    }

    let code = if cfg.echo_client > 0 {
        if run_client(&node).await {
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
    node.transport.close();
    let peers: Vec<_> = node.peers.lock().drain().map(|(_, p)| p).collect();
    for p in peers {
        p.flush_stop().await;
    }
    ev.emit("stopped", &[]);
    code
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

async fn accept_loop(node: Arc<Node>) {
    loop {
        match node.transport.accept(node.peer_config.clone()).await {
            Ok(peer) => add_peer(&node, peer),
            Err(TransportError::Closed) => return,
            Err(e) => emit_rejected(&node.ev, "inbound", &e, ""),
        }
    }
}

async fn dial_loop(node: Arc<Node>, addr: NetAddress, persistent: bool) {
    loop {
        let connected = node.peers.lock().contains_key(&addr.id());
        if !connected {
            node.ev.emit("dialing", kv!["addr" => addr.to_string()]);
            match node.transport.dial(addr, node.peer_config.clone()).await {
                Ok(peer) => add_peer(&node, peer),
                Err(TransportError::Closed) => return,
                Err(e) => emit_rejected(&node.ev, "outbound", &e, &addr.to_string()),
            }
        }
        if !persistent {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn add_peer(node: &Arc<Node>, peer: Arc<dyn ManagedPeer>) {
    let id = peer.id();
    {
        let mut peers = node.peers.lock();
        if peers.contains_key(&id) {
            drop(peers);
            node.ev.emit(
                "rejected",
                kv!["direction" => if peer.direction().is_outbound() { "outbound" } else { "inbound" },
                    "reason" => "duplicate", "detail" => "", "addr" => peer.socket_addr().to_string(),
                    "error" => "duplicate peer ID"],
            );
            node.transport.cleanup(&*peer);
            return;
        }
        peers.insert(id, peer.clone());
    }
    let handler = Arc::new(EchoHandler::new(node.clone(), peer.clone()));
    let started = peer.start().map(|inbox| tokio::spawn(pump(inbox, handler)));
    if let Err(e) = started {
        node.peers.lock().remove(&id);
        node.ev
            .emit("error", kv!["error" => format!("start peer {id}: {e}")]);
        return;
    }
    let info = peer.node_info();
    let channels: Vec<u8> = info.channels.iter().map(|c| c.0).collect();
    node.ev.emit(
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
    node.first_peer.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(id);
            true
        } else {
            false
        }
    });
}

/// Messages waiting to be echoed, per peer.
const ECHO_QUEUE_MESSAGES: usize = 100_000;
/// Bytes waiting to be echoed, per peer. Go's echo reactor blocks its receive path instead
/// (back-pressuring the sender through TCP); ours must not block, so it buffers up to this much
/// and counts a message beyond it as an `echo_failed`.
const ECHO_QUEUE_BYTES: usize = 256 << 20;

/// The echo reactor of one peer: messages on the echo channel go back unchanged, in order,
/// through a bounded queue and a task (the connection's receive path never blocks).
struct EchoHandler {
    node: Arc<Node>,
    peer: Arc<dyn ManagedPeer>,
    echo_tx: mpsc::Sender<Bytes>,
    /// Bytes in `echo_tx`.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Messages received per non-echo channel.
    counts: Mutex<HashMap<u8, u64>>,
    /// Consensus messages per kind.
    consensus: Mutex<consensus::Tally>,
}

impl EchoHandler {
    fn new(node: Arc<Node>, peer: Arc<dyn ManagedPeer>) -> Self {
        let (echo_tx, mut echo_rx) = mpsc::channel::<Bytes>(ECHO_QUEUE_MESSAGES);
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queued_in_task = queued.clone();
        let sender = peer.clone();
        let channel = ChannelId(node.cfg.echo_channel);
        let ev = node.ev.clone();
        tokio::spawn(async move {
            while let Some(msg) = echo_rx.recv().await {
                let len = msg.len();
                queued_in_task.fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
                if sender.send(channel, msg).await.is_err() {
                    ev.emit(
                        "echo_failed",
                        kv!["id" => sender.id().to_string(), "bytes" => len],
                    );
                    return;
                }
            }
        });
        Self {
            node,
            peer,
            echo_tx,
            queued,
            counts: Mutex::new(HashMap::new()),
            consensus: Mutex::new(consensus::Tally::default()),
        }
    }

    /// Decodes a consensus message (any of the consensus channels) with the suite's test
    /// decoder (`mukan_conformance_tests::consensus`) and reports the first three of each
    /// kind, then those whose count is a power of ten; the same for messages it does not
    /// understand (`consensus_error`).
    fn report_consensus(&self, channel: ChannelId, message: &[u8]) {
        let result = consensus::decode(message);
        let (count, report) = self.consensus.lock().record(&result);
        if !report {
            return;
        }
        let id = self.peer.id().to_string();
        let ch = hex::encode([channel.0]);
        match result {
            Ok(d) => {
                let step = d.step.map_or(serde_json::Value::Null, Into::into);
                self.node.ev.emit(
                    "consensus",
                    kv!["id" => id, "ch" => ch, "type" => d.kind.name(), "height" => d.height,
                        "round" => d.round, "step" => step, "count" => count],
                );
            }
            Err(e) => {
                self.node.ev.emit(
                    "consensus_error",
                    kv!["id" => id, "ch" => ch, "error" => e.to_string(),
                        "bytes" => message.len(), "count" => count],
                );
            }
        }
    }
}

fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

impl EchoHandler {
    fn received(&self, channel: ChannelId, message: Bytes) {
        let id = self.peer.id();
        if channel.0 != self.node.cfg.echo_channel {
            let count = {
                let mut counts = self.counts.lock();
                let c = counts.entry(channel.0).or_insert(0u64);
                *c += 1;
                *c
            };
            if is_power_of_ten(count) {
                self.node.ev.emit(
                    "recv",
                    kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                        "bytes" => message.len(), "count" => count],
                );
            }
            if consensus::CHANNELS.contains(&channel.0) {
                self.report_consensus(channel, &message);
            }
            return;
        }
        if let Some(tap) = &*self.node.client.lock() {
            if tap.peer == id {
                if tap.tx.try_send(message).is_err() {
                    self.node
                        .ev
                        .emit("error", kv!["error" => "echo client: queue full or closed"]);
                }
                return;
            }
        }
        if !self.node.cfg.quiet_echo {
            self.node.ev.emit(
                "echo",
                kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]), "bytes" => message.len()],
            );
        }
        let len = message.len();
        let queued = self
            .queued
            .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        if queued + len > ECHO_QUEUE_BYTES || self.echo_tx.try_send(message).is_err() {
            self.queued
                .fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
            self.node
                .ev
                .emit("echo_failed", kv!["id" => id.to_string(), "bytes" => len]);
        }
    }

    fn errored(&self, error: mukan_reactor_api::StopReason) {
        let id = self.peer.id();
        let removed = {
            let mut peers = self.node.peers.lock();
            match peers.get(&id) {
                Some(p) if Arc::ptr_eq(p, &self.peer) => peers.remove(&id),
                _ => None,
            }
        };
        if removed.is_some() {
            self.node.transport.cleanup(&*self.peer);
            self.node.ev.emit(
                "peer_removed",
                kv!["id" => id.to_string(), "reason" => error.to_string()],
            );
        }
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
    let TransportError::Rejected { reason, source, .. } = err else {
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
    let upgrade = source.downcast_ref::<UpgradeError>();
    match reason {
        RejectReason::AuthFailure => {
            let detail = match upgrade {
                Some(
                    UpgradeError::DialedIdMismatch { .. } | UpgradeError::NodeInfoIdMismatch { .. },
                ) => "id_mismatch",
                Some(UpgradeError::SecretConn(_)) => "secret_conn",
                Some(UpgradeError::Exchange(_)) => "handshake",
                _ => "",
            };
            ("auth_failure", detail)
        }
        RejectReason::Duplicate => ("duplicate", ""),
        RejectReason::Filtered => ("filtered", ""),
        RejectReason::Incompatible => {
            let detail = match upgrade {
                Some(UpgradeError::Incompatible(e)) => {
                    let text = e.to_string();
                    if text.contains("different network") {
                        "network"
                    } else if text.contains("no common channels") {
                        "channels"
                    } else if text.contains("different Block version") {
                        "block_version"
                    } else {
                        ""
                    }
                }
                _ => "",
            };
            ("incompatible", detail)
        }
        RejectReason::NodeInfoInvalid => ("invalid_node_info", ""),
        RejectReason::SelfConnection => ("self", ""),
        _ => ("other", ""),
    }
}

/// Echo-client role: sends `--echo-client` messages to the first peer (or `--echo-peer`),
/// checks that they come back byte-exact and in order, prints `echo_summary`.
async fn run_client(node: &Arc<Node>) -> bool {
    let ev = &node.ev;
    let cfg = &node.cfg;
    let mut first = node.first_peer.subscribe();
    let wanted: Option<NodeId> = cfg.echo_peer.as_deref().and_then(|s| s.parse().ok());
    let target = tokio::time::timeout(cfg.echo_connect_timeout, async {
        loop {
            if let Some(w) = wanted {
                if node.peers.lock().contains_key(&w) {
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
    let Some(peer) = node.peers.lock().get(&target).cloned() else {
        return false;
    };
    let (tx, mut rx) = mpsc::channel(cfg.echo_client.max(1));
    *node.client.lock() = Some(ClientTap { peer: target, tx });

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
        let send_all = async move {
            for msg in payloads {
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

    /// `addrbook-write --file F --src ID@IP:PORT --addrs A,B,… [--good ID,…]`: a fresh book
    /// with those addresses (the `--good` ones moved to old buckets), saved to F.
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

/// Drains a started peer's inbox into its handler.
async fn pump(mut inbox: Box<dyn mukan_reactor_api::PeerInbox>, handler: Arc<EchoHandler>) {
    while let Some(item) = inbox.recv().await {
        match item {
            mukan_reactor_api::InboxItem::Received {
                channel, message, ..
            } => handler.received(channel, message),
            mukan_reactor_api::InboxItem::Stopped(reason) => handler.errored(reason),
            _ => {}
        }
    }
}
