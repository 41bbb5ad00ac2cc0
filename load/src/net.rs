//! The node under load (a `mukan-switch` over `TcpTransport` with the load reactor) and the
//! peers that load it (a secret connection and an MConnection from a chosen 127.x address),
//! plus the process probes (RSS, fds, CPU).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_mconn::{Config as MConfig, Inbox, MConnection};
use mukan_node::NodeBuilder;
use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Envelope, Network as _, NodeId, NodeInfo, Other, Peer,
    ProtocolVersion, Reactor, StopReason,
};
use mukan_secret_conn::SecretStream;
use mukan_switch::Switch;
use mukan_transport::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

// ---------------------------------------------------------------------------------------
// probes

/// Resident set size of this process, bytes.
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Open file descriptors of this process.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// CPU time of this process so far (every thread), nanoseconds.
pub(crate) fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| {
            let text = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The kernel's `TcpExt ListenOverflows` counter (connections dropped because a listen
/// queue was full; the dialer retries its SYN after 1 s). Namespace-wide.
pub(crate) fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        if !names.starts_with("TcpExt:") {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if n == "ListenOverflows" {
                return v.parse().unwrap_or(0);
            }
        }
    }
    0
}

/// Live tokio tasks of the current runtime.
pub(crate) fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Raises the soft `RLIMIT_NOFILE` to `want` (and the hard one when allowed); returns the
/// soft limit in force afterwards.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    if cur.current.is_some_and(|c| c >= want) || cur.current.is_none() {
        return cur.current.unwrap_or(u64::MAX);
    }
    let both = Rlimit {
        current: Some(want),
        maximum: Some(cur.maximum.map_or(want, |m| m.max(want))),
    };
    if setrlimit(Resource::Nofile, both).is_err() {
        // Not allowed to raise the hard limit: go as far as it lets us.
        let soft = Rlimit {
            current: cur.maximum.map(|m| m.min(want)),
            maximum: cur.maximum,
        };
        let _ = setrlimit(Resource::Nofile, soft);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

pub(crate) const MIB: f64 = 1_048_576.0;

/// The `p` quantile (0..=1) of `sorted`.
pub(crate) fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

pub(crate) fn sort(v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
}

pub(crate) fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// identities and addresses

/// The deterministic key of peer `i`.
pub(crate) fn key(i: u32) -> NodeKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0x10;
    NodeKey::from_seed(seed)
}

/// The `i`-th distinct source address of block `block`: 127.`block`.x.y, y in 1..=250.
pub(crate) fn src_ip(block: u8, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        block,
        (i / 250) as u8,
        (i % 250) as u8 + 1,
    ))
}

// ---------------------------------------------------------------------------------------
// channels

/// Echoed back by the node (honest peers' round trips).
pub(crate) const ECHO: ChannelId = ChannelId(0x20);
/// Broadcast by the node (L6).
pub(crate) const BCAST: ChannelId = ChannelId(0x30);
/// Bulk both ways under the rate limits (L5).
pub(crate) const RATE: ChannelId = ChannelId(0x31);
/// One ordered stream of fixed-size messages, checked by the node (C10).
pub(crate) const STREAM: ChannelId = ChannelId(0x32);
/// Each peer's numbered stream to the node, counted per peer (L9); lowest priority.
pub(crate) const FLOW: ChannelId = ChannelId(0x33);
/// The highest-priority channel (priority 10): L10's lone urgent messages.
pub(crate) const URGENT: ChannelId = ChannelId(DATA0 + 9);
/// The ten data channels of L4 (0x40..0x49), priority `index + 1`.
pub(crate) const DATA0: u8 = 0x40;
pub(crate) const DATA_CHANNELS: usize = 10;
/// Largest L4 message (header + body).
pub(crate) const MAX_MSG: usize = (1 << 20) + 16;

fn nz(v: usize) -> NonZeroUsize {
    NonZeroUsize::new(v).unwrap_or(NonZeroUsize::MIN)
}

/// The channels of the node and of every peer.
pub(crate) fn descriptors() -> Vec<ChannelDescriptor> {
    let p = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
    let mut d = vec![
        ChannelDescriptor::new(ECHO, p(5))
            .with_send_queue_capacity(nz(100))
            .with_recv_message_capacity(nz(4096)),
        ChannelDescriptor::new(BCAST, p(5))
            .with_send_queue_capacity(nz(1000))
            .with_recv_message_capacity(nz(4096)),
        ChannelDescriptor::new(RATE, p(5))
            .with_send_queue_capacity(nz(16))
            .with_recv_message_capacity(nz(128 * 1024)),
        ChannelDescriptor::new(STREAM, p(5))
            .with_send_queue_capacity(nz(100))
            .with_recv_message_capacity(nz(4096)),
        // A receive budget of 16 messages: the node's reading is paced by its bandwidth
        // budget, not by how promptly each peer's messages are handed to the reactor.
        ChannelDescriptor::new(FLOW, p(1))
            .with_send_queue_capacity(nz(16))
            .with_recv_message_capacity(nz(64 * 1024)),
    ];
    for i in 0..DATA_CHANNELS {
        d.push(
            ChannelDescriptor::new(ChannelId(DATA0 + i as u8), p(i as u32 + 1))
                .with_send_queue_capacity(nz(64))
                .with_recv_message_capacity(nz(2 * MAX_MSG)),
        );
    }
    d
}

pub(crate) fn node_info(key: &NodeKey) -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        id: key.node_id().to_string(),
        listen_addr: "tcp://127.0.0.1:26656".into(),
        network: "load".into(),
        version: "0.38.25".into(),
        channels: descriptors().iter().map(|d| d.id).collect(),
        moniker: "load".into(),
        other: Other::default(),
    }
}

// ---------------------------------------------------------------------------------------
// L4 message format: [seq u64 LE][hash u64 LE][body]; body and its size follow from
// (channel, seq).

/// 64-bit mix (SplitMix64 finaliser).
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fast 64-bit hash of `data` (8 bytes at a time, multiply-rotate).
pub(crate) fn hash(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ data.len() as u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// Body size of message `seq` on data channel `ch` (0..10): 1 B to 1 MiB, log-uniform within
/// three bands: 90% 1 B–255 B, 9.9% 256 B–64 KiB, 0.1% 64 KiB–1 MiB.
pub(crate) fn body_len(ch: usize, seq: u64) -> usize {
    let r = mix(seq ^ ((ch as u64) << 56) ^ 0x4c34);
    let band = r % 1000;
    let (lo, hi) = if band < 1 {
        (16u64, 20u64)
    } else if band < 100 {
        (8, 16)
    } else {
        (0, 8)
    };
    let k = lo + (r >> 20) % (hi - lo + 1);
    let size = ((r >> 32) % (1u64 << k)).max(1);
    size as usize
}

/// Pool the bodies are cut from.
pub(crate) const POOL: usize = 4 << 20;

pub(crate) fn pool() -> Arc<Vec<u8>> {
    let mut v = vec![0u8; POOL];
    for (i, c) in v.chunks_mut(8).enumerate() {
        let w = mix(i as u64).to_le_bytes();
        c.copy_from_slice(&w[..c.len()]);
    }
    Arc::new(v)
}

/// Message `seq` of data channel `ch`.
pub(crate) fn data_message(pool: &[u8], ch: usize, seq: u64) -> Bytes {
    let len = body_len(ch, seq);
    let off = (mix(seq.wrapping_mul(31) ^ ch as u64) as usize) % (POOL - len);
    let body = &pool[off..off + len];
    let mut m = Vec::with_capacity(16 + len);
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(&hash(body).to_le_bytes());
    m.extend_from_slice(body);
    Bytes::from(m)
}

/// The receiving side's check of the data channels (L4).
#[derive(Debug, Default)]
pub(crate) struct Verifier {
    pub(crate) expected_per_channel: u64,
    pub(crate) next: [u64; DATA_CHANNELS],
    pub(crate) bytes: [u64; DATA_CHANNELS],
    pub(crate) ok: u64,
    pub(crate) lost: u64,
    pub(crate) dup_or_reordered: u64,
    pub(crate) corrupted: u64,
    /// Bytes per channel when the first channel finished (the saturated period).
    pub(crate) first_done: Option<[u64; DATA_CHANNELS]>,
    pub(crate) last: Option<Instant>,
    /// Count bytes per channel only (the saturation phase), no checks.
    pub(crate) share_only: bool,
}

impl Verifier {
    fn check(&mut self, ch: usize, m: &[u8]) {
        self.bytes[ch] += m.len() as u64;
        if self.share_only {
            return;
        }
        self.last = Some(Instant::now());
        let Some((seq, h, body)) = split_message(m) else {
            self.corrupted += 1;
            return;
        };
        if body.len() != body_len(ch, seq) || hash(body) != h {
            self.corrupted += 1;
        }
        let next = self.next[ch];
        if seq == next {
            self.ok += 1;
            self.next[ch] = next + 1;
        } else if seq > next {
            self.lost += seq - next;
            self.next[ch] = seq + 1;
        } else {
            self.dup_or_reordered += 1;
        }
        if self.next[ch] == self.expected_per_channel && self.first_done.is_none() {
            self.first_done = Some(self.bytes);
        }
    }
}

/// A checked message `[seq u64 LE][hash u64 LE][body]` split into its parts; `None` if it
/// is shorter than the 16-byte header.
fn split_message(m: &[u8]) -> Option<(u64, u64, &[u8])> {
    let seq = u64::from_le_bytes(m.get(..8)?.try_into().ok()?);
    let h = u64::from_le_bytes(m.get(8..16)?.try_into().ok()?);
    Some((seq, h, m.get(16..)?))
}

/// Size of a `STREAM` message.
pub(crate) const STREAM_MSG: usize = 1024;

/// `STREAM` message `seq`: `[seq u64 LE][hash u64 LE][body]`, 1024 bytes, the body cut from
/// the pool by `seq`.
pub(crate) fn stream_message(pool: &[u8], seq: u64) -> Bytes {
    let len = STREAM_MSG - 16;
    let off = (mix(seq ^ 0x5eed) as usize) % (POOL - len);
    let body = &pool[off..off + len];
    let mut m = Vec::with_capacity(STREAM_MSG);
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(&hash(body).to_le_bytes());
    m.extend_from_slice(body);
    Bytes::from(m)
}

/// The node's check of the `STREAM` channel: order and integrity, bytes delivered.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamCheck {
    pub(crate) next: u64,
    pub(crate) bytes: u64,
    pub(crate) lost: u64,
    pub(crate) dup_or_reordered: u64,
    pub(crate) corrupted: u64,
}

impl StreamCheck {
    pub(crate) fn check(&mut self, m: &[u8]) {
        self.bytes += m.len() as u64;
        let Some((seq, h, body)) = split_message(m) else {
            self.corrupted += 1;
            return;
        };
        if m.len() != STREAM_MSG || hash(body) != h {
            self.corrupted += 1;
        }
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.lost += seq - self.next;
            self.next = seq + 1;
        } else {
            self.dup_or_reordered += 1;
        }
    }

    /// Every message `0..sent` arrived once, in order, intact.
    pub(crate) fn all_of(&self, sent: u64) -> bool {
        self.next == sent && self.lost == 0 && self.dup_or_reordered == 0 && self.corrupted == 0
    }
}

/// A peer's `FLOW` as the node sees it: `[seq u64 LE][body]`, every `seq` once, in order.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Flow {
    pub(crate) bytes: u64,
    pub(crate) next: u64,
    pub(crate) lost: u64,
    pub(crate) dup_or_reordered: u64,
}

impl Flow {
    pub(crate) fn check(&mut self, m: &[u8]) {
        self.bytes += m.len() as u64;
        let Some(seq) = m
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
        else {
            self.lost += 1;
            return;
        };
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.lost += seq - self.next;
            self.next = seq + 1;
        } else {
            self.dup_or_reordered += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// the node's reactor

/// The reactor of the node under load: echoes `ECHO`, counts `RATE`, checks the data
/// channels, records when each peer was added and why each was removed; optionally streams
/// `RATE` to every new peer (L5).
#[derive(Debug, Default)]
pub(crate) struct LoadReactor {
    pub(crate) added: Mutex<HashMap<NodeId, Instant>>,
    pub(crate) removed: Mutex<BTreeMap<&'static str, u64>>,
    pub(crate) echo_failed: AtomicU64,
    pub(crate) rate_bytes: AtomicU64,
    pub(crate) verifier: Mutex<Verifier>,
    pub(crate) stream: Mutex<StreamCheck>,
    /// `FLOW` per peer.
    pub(crate) flows: Mutex<HashMap<NodeId, Flow>>,
    /// Stream `RATE` to each new peer until `stream_stop`.
    pub(crate) stream_to_peers: AtomicBool,
    pub(crate) stream_stop: Arc<AtomicBool>,
}

impl Reactor for LoadReactor {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        descriptors()
    }

    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        self.added
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(peer.id(), Instant::now());
        if self.stream_to_peers.load(Ordering::Relaxed) {
            let peer = peer.clone();
            let stop = self.stream_stop.clone();
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![0x5au8; 64 * 1024]);
                while !stop.load(Ordering::Relaxed) {
                    if peer.send(RATE, chunk.clone()).await.is_err() {
                        break;
                    }
                }
            });
        }
    }

    fn remove_peer(&self, _peer: &Arc<dyn Peer>, reason: &StopReason) {
        *self
            .removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(reason.label())
            .or_default() += 1;
    }

    fn receive(&self, env: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
        match env.channel {
            ECHO => self.echo(env),
            RATE => {
                self.rate_bytes
                    .fetch_add(env.message.len() as u64, Ordering::Relaxed);
            }
            STREAM => self
                .stream
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .check(&env.message),
            FLOW => self
                .flows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(env.src.id())
                .or_default()
                .check(&env.message),
            ChannelId(c) if (DATA0..DATA0 + DATA_CHANNELS as u8).contains(&c) => {
                self.verifier
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .check(usize::from(c - DATA0), &env.message);
            }
            _ => {}
        }
        Ok(())
    }
}

impl LoadReactor {
    /// The `FLOW` of every peer so far.
    pub(crate) fn flows(&self) -> HashMap<NodeId, Flow> {
        self.flows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn echo(&self, env: Envelope) {
        if env.src.try_send(ECHO, env.message).is_err() {
            self.echo_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub(crate) fn stream(&self) -> StreamCheck {
        *self
            .stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub(crate) fn added_at(&self, id: &NodeId) -> Option<Instant> {
        self.added
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    }
    pub(crate) fn removed_total(&self) -> u64 {
        self.removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }
    pub(crate) fn removed_summary(&self) -> String {
        let m = self
            .removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if m.is_empty() {
            return "none".into();
        }
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The node under load.
pub(crate) struct Hub {
    pub(crate) sw: Arc<Switch<TcpTransport>>,
    pub(crate) reactor: Arc<LoadReactor>,
    pub(crate) addr: SocketAddr,
    pub(crate) id: NodeId,
}

impl Hub {
    /// Starts a node listening on 127.0.0.1 with `max_inbound` inbound peers.
    pub(crate) async fn start(
        max_inbound: usize,
        tconfig: mukan_transport::Config,
        reactor: LoadReactor,
    ) -> Self {
        let key = Arc::new(key(0xffff_0000));
        let reactor = Arc::new(reactor);
        let mut config = mukan_switch::Config::default();
        config.max_num_inbound_peers = max_inbound;
        config.allow_duplicate_ip = tconfig.allow_duplicate_ip;
        let info = node_info(&key);
        let node = NodeBuilder::new(key.clone(), info.network)
            .moniker(info.moniker)
            .version(info.version)
            .tx_index("")
            .external_address(info.listen_addr)
            .listen("127.0.0.1:0".parse().unwrap())
            .switch_config(config)
            .transport_config(tconfig)
            .reactor("load", reactor.clone())
            .start()
            .await
            .unwrap();
        let sw = node.switch().clone();
        let addr = node.local_addr().unwrap();
        Self {
            sw,
            reactor,
            addr,
            id: key.node_id(),
        }
    }

    pub(crate) fn inbound(&self) -> usize {
        self.sw.num_peers().inbound
    }

    /// Waits until `pred(inbound peers)` holds or `limit` passes; true if it held.
    pub(crate) async fn wait_inbound(&self, limit: Duration, pred: impl Fn(usize) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if pred(self.inbound()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// a peer

/// A connected peer: its MConnection and its inbox.
pub(crate) type Conn = (MConnection, Inbox);

/// Dials the node from `src` (bound before connecting) as the peer `key`: TCP, secret
/// connection (the node's ID checked), `NodeInfo` exchange, then an MConnection with
/// `config`. Everything within `limit`.
pub(crate) async fn connect_peer(
    src: IpAddr,
    hub: SocketAddr,
    hub_id: NodeId,
    key: &NodeKey,
    config: MConfig,
    limit: Duration,
) -> Result<Conn, String> {
    tokio::time::timeout(limit, connect_inner(src, hub, hub_id, key, config))
        .await
        .map_err(|_| "timed out".to_owned())?
}

async fn connect_inner(
    src: IpAddr,
    hub: SocketAddr,
    hub_id: NodeId,
    key: &NodeKey,
    config: MConfig,
) -> Result<Conn, String> {
    let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    sock.bind(SocketAddr::new(src, 0))
        .map_err(|e| format!("bind {src}: {e}"))?;
    let s = sock
        .connect(hub)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    let sc = mukan_secret_conn::Config::new(Duration::from_secs(30));
    let mut stream = SecretStream::handshake(s, key, &sc)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    if stream.remote_node_id() != hub_id {
        return Err("the node's ID is not the expected one".into());
    }
    let ours = node_info(key).encode_length_delimited_to_vec();
    stream
        .write_all(&ours)
        .await
        .map_err(|e| format!("write node info: {e}"))?;
    stream.flush().await.map_err(|e| format!("flush: {e}"))?;
    // uvarint length, then the body; nothing past it (MConnection's bytes follow).
    let mut len = 0usize;
    for shift in (0..35).step_by(7) {
        let b = stream
            .read_u8()
            .await
            .map_err(|e| format!("read node info: {e}"))?;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    if len > NodeInfo::MAX_SIZE {
        return Err(format!("node info of {len} bytes"));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("read node info: {e}"))?;
    let theirs = NodeInfo::decode(&body).map_err(|e| format!("node info: {e}"))?;
    if theirs.id != hub_id.to_string() {
        return Err("node info of another ID".into());
    }
    MConnection::spawn(stream, &descriptors(), config).map_err(|e| format!("mconn: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_counts_in_order_messages_and_catches_loss_duplicates_and_corruption() {
        let pool = pool();
        let mut v = Verifier {
            expected_per_channel: 5,
            ..Verifier::default()
        };
        for seq in 0..3 {
            v.check(2, &data_message(&pool, 2, seq));
        }
        assert_eq!(
            (v.ok, v.lost, v.dup_or_reordered, v.corrupted),
            (3, 0, 0, 0)
        );
        // seq 3 lost, seq 1 again, seq 4 corrupted in its body.
        v.check(2, &data_message(&pool, 2, 1));
        let mut bad = data_message(&pool, 2, 4).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        v.check(2, &bad);
        assert_eq!(
            (v.ok, v.lost, v.dup_or_reordered, v.corrupted),
            (3, 1, 1, 1)
        );
        assert_eq!(v.next[2], 5);
        assert!(v.first_done.is_some());
        // A message of another channel's sequence has the wrong size or hash.
        v.check(3, &data_message(&pool, 2, 0));
        v.check(3, &[1, 2, 3]);
        assert!(v.corrupted >= 2);
    }

    #[test]
    fn stream_check_counts_in_order_messages_and_catches_loss_duplicates_and_corruption() {
        let pool = pool();
        let mut c = StreamCheck::default();
        for seq in 0..3 {
            c.check(&stream_message(&pool, seq));
        }
        assert!(c.all_of(3));
        assert!(!c.all_of(4));
        assert_eq!(c.bytes, 3 * STREAM_MSG as u64);
        // seq 3 lost, seq 1 again, seq 5 with one body bit flipped, one truncated.
        c.check(&stream_message(&pool, 4));
        c.check(&stream_message(&pool, 1));
        let mut bad = stream_message(&pool, 5).to_vec();
        bad[100] ^= 1;
        c.check(&bad);
        c.check(&stream_message(&pool, 6)[..STREAM_MSG - 1]);
        c.check(&[1, 2]);
        assert_eq!(
            (c.next, c.lost, c.dup_or_reordered, c.corrupted),
            (7, 1, 1, 3)
        );
        assert!(!c.all_of(7));
    }

    #[test]
    fn flow_check_catches_loss_duplicates_and_reordering() {
        let m = |seq: u64| {
            let mut v = seq.to_le_bytes().to_vec();
            v.extend_from_slice(&[0; 8]);
            v
        };
        let mut f = Flow::default();
        for seq in 0..3 {
            f.check(&m(seq));
        }
        assert_eq!((f.next, f.lost, f.dup_or_reordered, f.bytes), (3, 0, 0, 48));
        f.check(&m(5)); // 3 and 4 lost
        f.check(&m(4)); // late
        f.check(&[1, 2]); // no sequence number
        assert_eq!((f.next, f.lost, f.dup_or_reordered), (6, 3, 1));
    }

    #[test]
    fn body_sizes_span_1_byte_to_1_mib_mostly_small() {
        let sizes: Vec<usize> = (0..200_000).map(|s| body_len(s as usize % 10, s)).collect();
        assert!(sizes.iter().all(|&s| (1..=1 << 20).contains(&s)));
        assert!(sizes.iter().any(|&s| s > 512 * 1024));
        assert!(sizes.contains(&1));
        let small = sizes.iter().filter(|&&s| s < 256).count();
        assert!(small > 170_000 && small < 190_000, "{small}");
    }

    #[test]
    fn source_addresses_are_distinct_loopback_addresses() {
        let ips: std::collections::HashSet<IpAddr> = (0..10_000).map(|i| src_ip(30, i)).collect();
        assert_eq!(ips.len(), 10_000);
        assert!(ips.iter().all(IpAddr::is_loopback));
    }
}
