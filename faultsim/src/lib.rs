//! `mukan-faultsim`: deterministic fault simulation of the Mukan P2P stack.
//!
//! Real `mukan-switch` + `mukan-pex` + `mukan-addrbook` nodes run over the fault-injecting
//! [`MemoryNetwork`] of `mukan-transport` (feature `test-util`) on a current-thread tokio
//! runtime with paused time, so a scenario of minutes of simulated time takes milliseconds
//! and every random choice (node keys, switch and PEX RNGs, address-book RNGs, link jitter
//! and loss) comes from one seed. See `README.md` for the design and the scenarios
//! (`tests/scenarios.rs`).
//!
//! [`run_seeds`] runs a scenario for every seed (`SEEDS=N`, default 100; `SEED=x` replays
//! one), prints each failing seed with its trace hash and how to replay it.

#![allow(
    clippy::unwrap_used,
    clippy::missing_panics_doc,
    reason = "a test harness: a failed expectation is a test failure"
)]

pub mod eclipse;

use std::cell::Cell;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use mukan_addrbook::AddrBook;
use mukan_node::NodeBuilder;
use mukan_node_key::NodeKey;
use mukan_pex::{PexConfig, PexReactor};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Envelope, NetAddress, Network as _, NodeId, Peer, Reactor,
    SharedAddressBook, StopReason,
};
use mukan_switch::Switch;
use mukan_transport::{MemoryNetwork, MemoryTransport, NetEvent};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

pub use mukan_transport::LinkProfile;

/// The port every simulated node listens on.
pub const PORT: u16 = 26_656;
/// The application channel of [`AppReactor`].
pub const APP_CHANNEL: ChannelId = ChannelId(0x60);

/// Timeouts and limits of simulated nodes, scaled down from CometBFT's defaults as Go's
/// tests do.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// MConnection ping interval.
    pub ping: Duration,
    /// MConnection pong timeout.
    pub pong: Duration,
    /// PEX ensure-peers period.
    pub ensure_period: Duration,
    /// Dial (connect) timeout.
    pub dial_timeout: Duration,
    /// Handshake and `NodeInfo` timeouts.
    pub handshake_timeout: Duration,
    /// `max_num_outbound_peers`.
    pub max_outbound: usize,
    /// `max_num_inbound_peers`.
    pub max_inbound: usize,
    /// MConnection send and receive rate (`None`: unlimited).
    pub rate: Option<u64>,
    /// Address-book strictness (false: private addresses are kept).
    pub strict_book: bool,
    /// PEX outbound diversity (peers per /16; 0 = off).
    pub max_outbound_per_group: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            ping: Duration::from_millis(900),
            pong: Duration::from_millis(450),
            ensure_period: Duration::from_secs(3),
            dial_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_millis(500),
            max_outbound: 10,
            max_inbound: 40,
            rate: None,
            strict_book: false,
            max_outbound_per_group: 1,
        }
    }
}

thread_local! {
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Panics counted on this thread (the simulation's tasks run on it) since the hook was set.
pub fn panics() -> usize {
    PANICS.with(Cell::get)
}

fn install_panic_counter() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            prev(info);
        }));
    });
}

/// One simulation: the network, the seed's RNG and the trace.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<SimInner>,
}

struct SimInner {
    seed: u64,
    net: MemoryNetwork,
    rng: Mutex<ChaCha8Rng>,
    start: Instant,
    notes: Mutex<Vec<String>>,
}

/// A running node.
#[derive(Clone)]
pub struct Node {
    /// Its key.
    pub key: Arc<NodeKey>,
    /// Its IP (it listens on [`PORT`]).
    pub ip: IpAddr,
    /// The switch.
    pub sw: Arc<Switch<MemoryTransport>>,
    /// The PEX reactor, if any.
    pub pex: Option<PexReactor>,
    /// The address book.
    pub book: Arc<Mutex<AddrBook>>,
    /// The application reactor (channel [`APP_CHANNEL`]).
    pub app: Arc<AppReactor>,
}

impl Node {
    /// Its ID.
    pub fn id(&self) -> NodeId {
        self.key.node_id()
    }

    /// `id@ip:port`.
    pub fn addr(&self) -> NetAddress {
        NetAddress::new(self.id(), self.ip, PORT)
    }

    /// The IDs of its peers.
    pub fn peer_ids(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.sw.peers().iter().map(|p| p.id()).collect();
        v.sort_unstable();
        v
    }

    /// Outbound peers.
    pub fn outbound(&self) -> usize {
        self.sw.num_peers().outbound
    }

    /// Whether `id` is a peer.
    pub fn has_peer(&self, id: &NodeId) -> bool {
        self.sw.peer(id).is_some()
    }
}

/// What a node is started with.
#[derive(Clone, Debug, Default)]
pub struct NodeSpec {
    /// Distinguishes node keys within one seed (same value → same key).
    pub key_id: u64,
    /// Its IP.
    pub ip: Option<IpAddr>,
    /// Seeds `id@ip:port`.
    pub seeds: Vec<String>,
    /// Seed mode.
    pub seed_mode: bool,
    /// Persistent peers `id@ip:port`.
    pub persistent: Vec<String>,
    /// Run PEX.
    pub pex: bool,
    /// Settings.
    pub cfg: SimConfig,
    /// A book to start with (e.g. loaded from disk).
    pub book: Option<Arc<Mutex<AddrBook>>>,
}

impl NodeSpec {
    /// A PEX node with key `key_id` at `ip`.
    pub fn pex(key_id: u64, ip: IpAddr, cfg: &SimConfig) -> Self {
        Self {
            key_id,
            ip: Some(ip),
            pex: true,
            cfg: cfg.clone(),
            ..Self::default()
        }
    }

    /// A node without PEX.
    pub fn plain(key_id: u64, ip: IpAddr, cfg: &SimConfig) -> Self {
        Self {
            pex: false,
            ..Self::pex(key_id, ip, cfg)
        }
    }
}

/// `10.a.b.c` from a node index (distinct /16 per `group`).
pub fn ip(group: u8, host: u16) -> IpAddr {
    let [h, l] = host.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, group, h, l))
}

impl Sim {
    /// A simulation for `seed` (call inside the runtime).
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Arc::new(SimInner {
                seed,
                net: MemoryNetwork::with_faults(seed ^ 0x5eed_fa17),
                rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
                start: Instant::now(),
                notes: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// The network.
    pub fn net(&self) -> &MemoryNetwork {
        &self.inner.net
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.inner.start.elapsed()
    }

    /// A number from the seed's RNG.
    pub fn rand_u64(&self) -> u64 {
        self.inner.rng.lock().r#gen()
    }

    /// A duration in `[lo, hi)` from the seed's RNG.
    pub fn rand_duration(&self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo).as_micros() as u64;
        lo + Duration::from_micros(self.inner.rng.lock().gen_range(0..span))
    }

    /// Records a line in the trace.
    pub fn note(&self, what: impl std::fmt::Display) {
        let t = self.elapsed().as_millis();
        self.inner.notes.lock().push(format!("{t} {what}"));
    }

    /// The node key `key_id` of this seed.
    pub fn key(&self, key_id: u64) -> Arc<NodeKey> {
        let mut r = ChaCha8Rng::seed_from_u64(self.inner.seed.wrapping_mul(1_000_003) ^ key_id);
        let mut s = [0u8; 32];
        r.fill(&mut s);
        Arc::new(NodeKey::from_seed(s))
    }

    /// The trace: the notes and the network's events, times relative to the start, sorted
    /// by (millisecond, text). Events of one simulated instant are a set: tokio polls the
    /// branches of an unbiased `select!` in a random order, which may reorder (never change)
    /// what happens within one instant; connection numbers are left out for the same reason.
    pub fn trace(&self) -> Vec<String> {
        let start = self.inner.start;
        let ms = |at: Instant| at.saturating_duration_since(start).as_millis();
        let mut out: Vec<(u128, String)> = Vec::new();
        for line in self.inner.notes.lock().iter() {
            let t = line
                .split(' ')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            out.push((t, line.clone()));
        }
        for e in self.inner.net.events() {
            out.push(match e {
                NetEvent::Connect {
                    at,
                    from,
                    to,
                    outcome,
                    ..
                } => (ms(at), format!("{} connect {from}->{to} {outcome}", ms(at))),
                NetEvent::Closed {
                    at, from, to, cut, ..
                } => (ms(at), format!("{} closed {from}->{to} cut={cut}", ms(at))),
                other => (u128::MAX, format!("{other:?}")),
            });
        }
        out.sort();
        out.into_iter().map(|(_, l)| l).collect()
    }

    /// FNV-1a of the trace.
    pub fn trace_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for line in self.trace() {
            for b in line.bytes().chain(std::iter::once(b'\n')) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// Times (since the start) of the connection attempts from `from` to `to`.
    pub fn connect_times(&self, from: IpAddr, to: SocketAddr) -> Vec<Duration> {
        let start = self.inner.start;
        self.inner
            .net
            .events()
            .into_iter()
            .filter_map(|e| match e {
                NetEvent::Connect {
                    at, from: f, to: t, ..
                } if f == from && t == to => Some(at.saturating_duration_since(start)),
                _ => None,
            })
            .collect()
    }

    /// Tasks alive on the runtime.
    pub fn tasks(&self) -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    /// Builds and starts a node.
    pub async fn node(&self, spec: NodeSpec) -> Node {
        let key = self.key(spec.key_id);
        let ip = spec.ip.unwrap_or_else(|| self.inner.net.next_ip());
        let cfg = &spec.cfg;
        let mut sw_cfg = mukan_switch::Config::default();
        sw_cfg.max_num_outbound_peers = cfg.max_outbound;
        sw_cfg.max_num_inbound_peers = cfg.max_inbound;
        sw_cfg.persistent_peers = spec.persistent.iter().map(|p| p.parse().unwrap()).collect();
        sw_cfg.dial_randomizer = Duration::from_millis(300);
        sw_cfg.rng_seed = Some(self.rand_u64());
        sw_cfg.flush_timeout = Duration::from_millis(500);
        sw_cfg.allow_duplicate_ip = false;
        let book = spec.book.clone().unwrap_or_else(|| {
            let rng = ChaCha8Rng::seed_from_u64(self.rand_u64());
            Arc::new(Mutex::new(AddrBook::new(
                mukan_addrbook::Config::with_strict(cfg.strict_book),
                rng,
            )))
        });
        let shared: SharedAddressBook = book.clone();
        let mut tcfg = mukan_transport::Config::default();
        tcfg.dial_timeout = cfg.dial_timeout;
        tcfg.handshake_timeout = cfg.handshake_timeout;
        tcfg.node_info_timeout = cfg.handshake_timeout;
        let rate = cfg.rate.and_then(std::num::NonZeroU64::new);
        tcfg.mconn = mukan_mconn::Config::node_default()
            .with_rates(rate, rate)
            .with_ping(cfg.ping, cfg.pong)
            .with_flush_throttle(Duration::from_millis(10))
            .with_recv_stall_timeout(Duration::from_secs(2));
        let app = Arc::new(AppReactor::default());
        let mut builder = NodeBuilder::new(key.clone(), "faultsim")
            .moniker(format!("n{}", spec.key_id))
            .version("0.38.25")
            .tx_index("")
            .external_address(format!("tcp://{ip}:{PORT}"))
            .listen(SocketAddr::new(ip, PORT))
            .switch_config(sw_cfg)
            .transport_config(tcfg)
            .address_book(shared)
            .reactor("app", app.clone());
        if spec.pex {
            let mut pc = PexConfig::default();
            pc.seeds = spec.seeds.clone();
            pc.seed_mode = spec.seed_mode;
            pc.ensure_peers_period = cfg.ensure_period;
            pc.strict_addr_book = cfg.strict_book;
            pc.rng_seed = Some(self.rand_u64());
            pc.max_outbound_per_group = cfg.max_outbound_per_group;
            builder = builder.pex(pc);
        }
        let net = &self.inner.net;
        let node = builder
            .start_with(|p| MemoryTransport::new(net, ip, p.key, p.node_info, p.config))
            .await
            .unwrap();
        let sw = node.switch().clone();
        let pex = node.pex().cloned();
        self.note(format_args!(
            "start n{} {ip} {}",
            spec.key_id,
            key.node_id()
        ));
        Node {
            key,
            ip,
            sw,
            pex,
            book,
            app,
        }
    }

    /// Kills a node (`kill -9`): its listener and connections vanish at once; its switch is
    /// stopped in the background.
    pub fn crash(&self, node: &Node) {
        let cut = self.inner.net.crash(node.ip, &[PORT]);
        self.note(format_args!("crash {} cut={cut}", node.ip));
        let sw = node.sw.clone();
        drop(tokio::spawn(async move { sw.stop().await }));
    }

    /// Polls `cond` every `step` for at most `limit`; returns the time it took.
    pub async fn wait_until(
        &self,
        limit: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if cond() {
                return Some(start.elapsed());
            }
            if start.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Lets simulated time pass.
pub async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Whether the undirected graph over `nodes` (edges: their peer lists) is connected.
pub fn connected(nodes: &[Node]) -> bool {
    if nodes.is_empty() {
        return true;
    }
    let ids: Vec<NodeId> = nodes.iter().map(Node::id).collect();
    let mut seen = vec![false; nodes.len()];
    let mut stack = vec![0usize];
    seen[0] = true;
    while let Some(i) = stack.pop() {
        for p in nodes[i].peer_ids() {
            if let Some(j) = ids.iter().position(|x| *x == p) {
                if !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
    }
    seen.into_iter().all(|s| s)
}

/// An application reactor on [`APP_CHANNEL`]: messages are `u64` sequence numbers (big
/// endian, padded to any size); it records what arrived from whom, in order.
#[derive(Default)]
pub struct AppReactor {
    received: Mutex<std::collections::BTreeMap<NodeId, Vec<u64>>>,
    removed: Mutex<Vec<(NodeId, String, Instant)>>,
}

impl AppReactor {
    /// The sequence numbers received from `id`, in arrival order.
    pub fn from(&self, id: &NodeId) -> Vec<u64> {
        self.received.lock().get(id).cloned().unwrap_or_default()
    }

    /// Bytes-equivalent count of messages received from `id`.
    pub fn count(&self, id: &NodeId) -> usize {
        self.received.lock().get(id).map_or(0, Vec::len)
    }

    /// Peers removed so far, with the reason and when.
    pub fn removed(&self) -> Vec<(NodeId, String, Instant)> {
        self.removed.lock().clone()
    }

    /// When `id` was last removed at or after `since`.
    pub fn removed_since(&self, id: &NodeId, since: Instant) -> Option<Instant> {
        self.removed
            .lock()
            .iter()
            .filter(|(p, _, at)| p == id && *at >= since)
            .map(|(_, _, at)| *at)
            .next()
    }

    /// A message carrying `seq`, `size` bytes long (at least 8).
    pub fn message(seq: u64, size: usize) -> Bytes {
        let mut v = vec![0u8; size.max(8)];
        v[..8].copy_from_slice(&seq.to_be_bytes());
        Bytes::from(v)
    }
}

impl Reactor for AppReactor {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        let mut d = ChannelDescriptor::new(APP_CHANNEL, NonZeroU32::MIN);
        d.send_queue_capacity = std::num::NonZeroUsize::new(64).unwrap();
        d.recv_message_capacity = std::num::NonZeroUsize::new(1 << 20).unwrap();
        vec![d]
    }

    fn add_peer(&self, _peer: &Arc<dyn Peer>) {}

    fn remove_peer(&self, peer: &Arc<dyn Peer>, reason: &StopReason) {
        self.removed
            .lock()
            .push((peer.id(), format!("{reason:?}"), Instant::now()));
    }

    fn receive(&self, envelope: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
        let mut seq = [0u8; 8];
        if let Some(b) = envelope.message.get(..8) {
            seq.copy_from_slice(b);
        }
        self.received
            .lock()
            .entry(envelope.src.id())
            .or_default()
            .push(u64::from_be_bytes(seq));
        Ok(())
    }
}

/// The seeds to run: `SEED=x` → just `x`; else `0..SEEDS` (default `default`).
pub fn seeds(default: u64) -> Vec<u64> {
    if let Some(s) = std::env::var("SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![s];
    }
    let n = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (0..n).collect()
}

/// Runs one seed of a scenario on a fresh current-thread runtime with paused time; returns
/// the trace hash and the outcome (a panic inside counts as a failure).
pub fn run_one<F, Fut>(seed: u64, scenario: &F) -> (u64, Result<(), String>)
where
    F: Fn(Sim) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    install_panic_counter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let before = panics();
    let (sim, mut result) = rt.block_on(async {
        let sim = Sim::new(seed);
        let r = scenario(sim.clone()).await;
        (sim, r)
    });
    if result.is_ok() && panics() != before {
        result = Err(format!(
            "{} panic(s) in simulation tasks",
            panics() - before
        ));
    }
    let hash = sim.trace_hash();
    if std::env::var("TRACE").is_ok() {
        for line in sim.trace() {
            eprintln!("  {line}");
        }
    }
    drop(rt);
    (hash, result)
}

/// Runs `scenario` over [`seeds`]; prints every failing seed with its trace hash and how
/// to replay it, then panics if any failed.
pub fn run_seeds<F, Fut>(name: &str, scenario: F)
where
    F: Fn(Sim) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut failed = Vec::new();
    let list = seeds(100);
    for seed in &list {
        let seed = *seed;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_one(seed, &scenario)));
        match r {
            Ok((hash, Ok(()))) => {
                if list.len() == 1 {
                    eprintln!("FAULTSIM {name} seed {seed} ok (trace hash {hash:016x})");
                }
            }
            Ok((hash, Err(e))) => {
                eprintln!(
                    "FAULTSIM {name} seed {seed} FAILED (trace hash {hash:016x}): {e}\n  replay: SEED={seed} cargo test -p mukan-faultsim {name}"
                );
                failed.push(seed);
            }
            Err(_) => {
                eprintln!(
                    "FAULTSIM {name} seed {seed} PANICKED\n  replay: SEED={seed} cargo test -p mukan-faultsim {name}"
                );
                failed.push(seed);
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{name}: {} of {} seeds failed: {failed:?}",
        failed.len(),
        list.len()
    );
}

/// Returns `Err(msg)` from the scenario unless `cond`.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// The wall-clock time of the address book (unused by the simulation's assertions).
pub fn wall() -> SystemTime {
    SystemTime::now()
}
