//! Prometheus metrics: CometBFT v0.38's p2p metrics under their own names, types and labels
//! (`<namespace>_p2p_*`, a `chain_id` label on every series), plus ours. One process serves
//! one [`Metrics`] for all its chains (a multi-chain seed): each chain counts into it through
//! its [`ChainMetrics`], and `chain_id` tells the chains apart.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `p2p_peers` | gauge | — |
//! | `p2p_peer_receive_bytes_total` | counter | `peer_id`, `chID` |
//! | `p2p_peer_send_bytes_total` | counter | `peer_id`, `chID` |
//! | `p2p_peer_pending_send_bytes` | gauge | `peer_id` |
//! | `p2p_message_receive_bytes_total` | counter | `message_type` |
//! | `p2p_message_send_bytes_total` | counter | `message_type` |
//! | `p2p_peers_by_direction` (ours) | gauge | `direction` |
//! | `p2p_addr_book_size` (ours) | gauge | `bucket_type` (`new`, `old`) |
//! | `p2p_dials_total` (ours) | counter | `outcome` |
//! | `p2p_peer_stops_total` (ours) | counter | `reason` |
//! | `p2p_inbound_refused_total` (ours) | counter | `reason` ([`INBOUND_REFUSALS`]) |
//! | `p2p_pex_messages_total` (ours) | counter | `direction`, `message_type` |
//! | `p2p_bandwidth_budget_bytes_per_second` (ours) | gauge | `direction` (`send`, `recv`) |
//! | `p2p_bandwidth_used_bytes_total` (ours) | counter | `direction` |
//! | `p2p_bandwidth_throttled_seconds_total` (ours) | counter | `direction` |
//! | `p2p_seed_verify_dials_total` (ours, seeds) | counter | `outcome`, `stage` |
//! | `p2p_seed_addrs_served` (ours, seeds) | histogram | — |
//! | `p2p_seed_served_reached_ratio` (ours, seeds) | gauge | — |
//!
//! Per-peer series are removed when the peer goes, so churn does not grow memory.
//!
//! The counters are fed by the switch, through [`MetricsObserver`] (one of the switch's
//! observers): the traffic of each peer, each dial, each stop, each inbound connection
//! refused (by the switch, or by the transport for lack of room). The gauges (peers, pending
//! messages, address book) are read from the switch and the book at scrape time, and so are
//! the node-wide bandwidth budgets' figures (`[p2p] max_send_rate_total` /
//! `max_recv_rate_total` of each home: the budget, 0 when there is none; the packet bytes the
//! connections spent from it; the time during which it held at least one connection back).
//!
//! Seed quality (families served when a chain of the process runs in seed mode): a seed's
//! dials are its verify dials (PEX dials the addresses it learned, to serve those it
//! reached; the persistent peers' dials are not counted), by outcome and by the stage the
//! dial ended at ([`dial_stage`]); the addresses of each PEX answer (PEX's observer, the
//! one thing the switch cannot see); and the share of the addresses served in the last hour
//! that this seed had reached itself (an outbound handshake) within the hour before serving
//! them (`0` when nothing was served in the last hour).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use mukan_reactor_api::{
    AdmissionRefusal, ChannelId, DialError, DialOutcome, NetAddress, NodeId, Observer,
    ParsedAddress, Peer, PeerObserver, RejectDetail, StopReason, TimeoutKind, TransportError,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A label value: a fixed word, a shared string (a chain ID: cloned without allocating) or
/// an owned one (a peer ID, a channel). Equal and hashed by its text.
#[derive(Clone, Debug)]
pub(crate) enum V {
    Word(&'static str),
    Shared(Arc<str>),
    Owned(String),
}

impl V {
    fn as_str(&self) -> &str {
        match self {
            Self::Word(w) => w,
            Self::Shared(s) => s,
            Self::Owned(s) => s,
        }
    }
}

impl PartialEq for V {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for V {}

impl Hash for V {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for V {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// `chain_id` first, then the family's own labels.
type L<const N: usize> = [(&'static str, V); N];

/// The reasons of `p2p_inbound_refused`: the switch's refusals of an upgraded peer
/// ([`mukan_reactor_api::AdmissionRefusal::label`]: the inbound limit with nobody to evict, the
/// netgroup's cap, a duplicate, the deny list, not running), then the transport's for lack of
/// room (the pending pool full, its netgroup's share of the pool full, the inbound connection
/// bound reached with nobody silent to displace, and a silent pending connection closed to make
/// room). Each series exists, at zero, from the chain's start.
pub(crate) const INBOUND_REFUSALS: [&str; 9] = [
    "limit",
    "netgroup_limit",
    "duplicate",
    "denied",
    "not_running",
    "pending_full",
    "pending_netgroup_full",
    "inbound_full",
    "idle_displaced",
];

/// Buckets of `p2p_seed_addrs_served`: Go answers with at most 250 addresses (a seed: 30).
const SERVED_BUCKETS: [f64; 9] = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 100.0, 250.0];

fn served_histogram() -> Histogram {
    Histogram::new(SERVED_BUCKETS)
}

/// The seed-quality families.
struct SeedFamilies {
    verify_dials: Family<L<3>, Counter>,
    addrs_served: Family<L<1>, Histogram, fn() -> Histogram>,
    served_reached: Family<L<1>, Gauge<f64, AtomicU64>>,
}

/// Every metric of the process (all its chains).
pub(crate) struct Metrics {
    registry: Registry,
    peers: Family<L<1>, Gauge>,
    peer_receive_bytes: Family<L<3>, Counter>,
    peer_send_bytes: Family<L<3>, Counter>,
    peer_pending_send_bytes: Family<L<2>, Gauge>,
    message_receive_bytes: Family<L<2>, Counter>,
    message_send_bytes: Family<L<2>, Counter>,
    peers_by_direction: Family<L<2>, Gauge>,
    addr_book_size: Family<L<2>, Gauge>,
    dials: Family<L<2>, Counter>,
    peer_stops: Family<L<2>, Counter>,
    inbound_refused: Family<L<2>, Counter>,
    pex_messages: Family<L<3>, Counter>,
    bandwidth_budget: Family<L<2>, Gauge>,
    bandwidth_used: Family<L<2>, Counter>,
    bandwidth_throttled: Family<L<2>, Counter<f64, AtomicU64>>,
    /// Two scrapes at once must not both bring a counter up to the same total.
    bandwidth_scrape: parking_lot::Mutex<()>,
    seed: Option<SeedFamilies>,
    /// Connections announced per (chain, peer ID) (`peer_started` minus `peer_stopped`). A
    /// per-peer series is only created for a peer in here, and only while this lock is held,
    /// so that once a peer's series are removed nothing racing its removal (a scrape) brings
    /// them back; a connection's counters, made at its start, only ever add to its own series.
    live: parking_lot::Mutex<HashMap<(Arc<str>, String), usize>>,
}

/// The channel label as Go's `fmt "%#x"` prints it (`0x0`, `0x20`).
pub(crate) fn channel_label(ch: u8) -> String {
    format!("{ch:#x}")
}

impl Metrics {
    /// Registers every metric under `namespace` (the seed-quality families too when `seeds`:
    /// a chain of the process runs in seed mode).
    pub(crate) fn new(namespace: &str, seeds: bool) -> Self {
        let mut root = if namespace.is_empty() {
            Registry::default()
        } else {
            Registry::with_prefix(namespace)
        };
        let r = root.sub_registry_with_prefix("p2p");
        let peers = Family::<L<1>, Gauge>::default();
        r.register("peers", "Number of peers.", peers.clone());
        let peer_receive_bytes = Family::<L<3>, Counter>::default();
        r.register(
            "peer_receive_bytes",
            "Number of bytes received from a given peer.",
            peer_receive_bytes.clone(),
        );
        let peer_send_bytes = Family::<L<3>, Counter>::default();
        r.register(
            "peer_send_bytes",
            "Number of bytes sent to a given peer.",
            peer_send_bytes.clone(),
        );
        let peer_pending_send_bytes = Family::<L<2>, Gauge>::default();
        r.register(
            "peer_pending_send_bytes",
            "Messages waiting in a peer's send queues.",
            peer_pending_send_bytes.clone(),
        );
        let message_receive_bytes = Family::<L<2>, Counter>::default();
        r.register(
            "message_receive_bytes",
            "Number of bytes of each message type received.",
            message_receive_bytes.clone(),
        );
        let message_send_bytes = Family::<L<2>, Counter>::default();
        r.register(
            "message_send_bytes",
            "Number of bytes of each message type sent.",
            message_send_bytes.clone(),
        );
        let peers_by_direction = Family::<L<2>, Gauge>::default();
        r.register(
            "peers_by_direction",
            "Number of peers that dialed us (inbound) and that we dialed (outbound).",
            peers_by_direction.clone(),
        );
        let addr_book_size = Family::<L<2>, Gauge>::default();
        r.register(
            "addr_book_size",
            "Addresses in the address book, by bucket type (new, old).",
            addr_book_size.clone(),
        );
        let dials = Family::<L<2>, Counter>::default();
        r.register("dials", "Outbound dials, by outcome.", dials.clone());
        let peer_stops = Family::<L<2>, Counter>::default();
        r.register(
            "peer_stops",
            "Peers disconnected, by reason.",
            peer_stops.clone(),
        );
        let inbound_refused = Family::<L<2>, Counter>::default();
        r.register(
            "inbound_refused",
            "Inbound connections refused, or closed for lack of room, by reason.",
            inbound_refused.clone(),
        );
        let pex_messages = Family::<L<3>, Counter>::default();
        r.register(
            "pex_messages",
            "PEX messages sent and received, by type.",
            pex_messages.clone(),
        );
        let bandwidth_budget = Family::<L<2>, Gauge>::default();
        r.register(
            "bandwidth_budget_bytes_per_second",
            "The node-wide bandwidth budget of each direction, bytes per second (0: none).",
            bandwidth_budget.clone(),
        );
        let bandwidth_used = Family::<L<2>, Counter>::default();
        r.register(
            "bandwidth_used_bytes",
            "Packet bytes the connections spent from the node-wide budget of each direction.",
            bandwidth_used.clone(),
        );
        let bandwidth_throttled = Family::<L<2>, Counter<f64, AtomicU64>>::default();
        r.register(
            "bandwidth_throttled_seconds",
            "Time during which the node-wide budget of each direction held a connection back.",
            bandwidth_throttled.clone(),
        );
        let seed = seeds.then(|| {
            let verify_dials = Family::<L<3>, Counter>::default();
            r.register(
                "seed_verify_dials",
                "A seed's dials of the addresses it learned, by outcome and by the stage the \
                 dial ended at (precheck, resolve, connect, secret_conn, node_info, done).",
                verify_dials.clone(),
            );
            let addrs_served = Family::<L<1>, Histogram, fn() -> Histogram>::new_with_constructor(
                served_histogram,
            );
            r.register(
                "seed_addrs_served",
                "Addresses in each PEX answer.",
                addrs_served.clone(),
            );
            let served_reached = Family::<L<1>, Gauge<f64, AtomicU64>>::default();
            r.register(
                "seed_served_reached_ratio",
                "Share of the addresses served in the last hour that this seed reached itself \
                 (an outbound handshake) within the hour before serving them.",
                served_reached.clone(),
            );
            SeedFamilies {
                verify_dials,
                addrs_served,
                served_reached,
            }
        });
        Self {
            registry: root,
            peers,
            peer_receive_bytes,
            peer_send_bytes,
            peer_pending_send_bytes,
            message_receive_bytes,
            message_send_bytes,
            peers_by_direction,
            addr_book_size,
            dials,
            peer_stops,
            inbound_refused,
            pex_messages,
            bandwidth_budget,
            bandwidth_used,
            bandwidth_throttled,
            bandwidth_scrape: parking_lot::Mutex::new(()),
            seed,
            live: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The handle of chain `chain_id`; its series that always exist are created (at zero), so
    /// that dashboards see zeros, not gaps. `seed` (its seed-quality metrics) needs
    /// the families: [`Metrics::new`] with `seeds`.
    pub(crate) fn chain(self: &Arc<Self>, chain_id: &str, seed: Option<SeedSetup>) -> ChainMetrics {
        let chain: Arc<str> = Arc::from(chain_id);
        let c = || ("chain_id", V::Shared(chain.clone()));
        self.peers.get_or_create(&[c()]).set(0);
        for d in ["inbound", "outbound"] {
            self.peers_by_direction
                .get_or_create(&[c(), ("direction", V::Word(d))])
                .set(0);
        }
        for b in ["new", "old"] {
            self.addr_book_size
                .get_or_create(&[c(), ("bucket_type", V::Word(b))])
                .set(0);
        }
        for reason in INBOUND_REFUSALS {
            let _ = self
                .inbound_refused
                .get_or_create(&[c(), ("reason", V::Word(reason))]);
        }
        for d in ["send", "recv"] {
            let labels = [c(), ("direction", V::Word(d))];
            self.bandwidth_budget.get_or_create(&labels).set(0);
            let _ = self.bandwidth_used.get_or_create(&labels);
            let _ = self.bandwidth_throttled.get_or_create(&labels);
        }
        let seed = match (seed, &self.seed) {
            (Some(setup), Some(f)) => {
                let _ = f.addrs_served.get_or_create(&[c()]);
                f.served_reached.get_or_create(&[c()]).set(0.0);
                Some(SeedState {
                    persistent: setup.persistent,
                    window: parking_lot::Mutex::new(ServeWindow::default()),
                })
            }
            _ => None,
        };
        ChainMetrics {
            metrics: self.clone(),
            chain,
            seed,
        }
    }

    /// The OpenMetrics text of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// What a seed's quality metrics need to know.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeedSetup {
    /// The persistent peers' IDs: their dials are not verify dials.
    pub(crate) persistent: HashSet<NodeId>,
}

/// A seed chain's state for its quality metrics.
struct SeedState {
    persistent: HashSet<NodeId>,
    window: parking_lot::Mutex<ServeWindow>,
}

/// The window of the reached share.
const WINDOW: Duration = Duration::from_secs(3600);
/// The window's buckets are this long.
const SLICE: Duration = Duration::from_secs(60);
/// At most this many reached IDs are remembered (each an outbound handshake of the last hour).
const MAX_REACHED: usize = 100_000;

/// Which nodes we reached in the last hour, and what we served in the last hour by minute:
/// sans-IO (every method takes `now`), bounded (≤ [`MAX_REACHED`] IDs, ≤ 61 slices).
#[derive(Debug, Default)]
pub(crate) struct ServeWindow {
    reached: HashMap<NodeId, Instant>,
    /// (start of the slice, addresses served, of which reached)
    slices: VecDeque<(Instant, u64, u64)>,
}

impl ServeWindow {
    /// We reached `id` at `now` (an outbound handshake).
    pub(crate) fn reached(&mut self, id: NodeId, now: Instant) {
        if self.reached.len() >= MAX_REACHED && !self.reached.contains_key(&id) {
            self.reached
                .retain(|_, t| now.saturating_duration_since(*t) < WINDOW);
            if self.reached.len() >= MAX_REACHED {
                return;
            }
        }
        self.reached.insert(id, now);
    }

    /// We served `addrs` at `now`.
    pub(crate) fn served(&mut self, addrs: &[NetAddress], now: Instant) {
        let hit = addrs
            .iter()
            .filter(|a| {
                self.reached
                    .get(&a.id())
                    .is_some_and(|t| now.saturating_duration_since(*t) < WINDOW)
            })
            .count() as u64;
        self.expire(now);
        match self.slices.back_mut() {
            Some((start, n, r)) if now.saturating_duration_since(*start) < SLICE => {
                *n += addrs.len() as u64;
                *r += hit;
            }
            _ => self.slices.push_back((now, addrs.len() as u64, hit)),
        }
    }

    fn expire(&mut self, now: Instant) {
        while self
            .slices
            .front()
            .is_some_and(|(start, _, _)| now.saturating_duration_since(*start) >= WINDOW)
        {
            self.slices.pop_front();
        }
    }

    /// The share of the addresses served in the hour before `now` that were reached (`0`
    /// when none was served).
    pub(crate) fn ratio(&mut self, now: Instant) -> f64 {
        self.expire(now);
        self.reached
            .retain(|_, t| now.saturating_duration_since(*t) < WINDOW);
        let (n, r) = self
            .slices
            .iter()
            .fold((0u64, 0u64), |(n, r), (_, a, b)| (n + a, r + b));
        if n == 0 { 0.0 } else { r as f64 / n as f64 }
    }
}

/// The stage a dial ended at: `precheck` (refused before any socket: a duplicate, our own
/// address, a deny list, the outbound limit, not running), `resolve` (the host name),
/// `connect` (TCP, and the connection filters right after it), `secret_conn` (the
/// secret-connection handshake, the dialed ID), `node_info` (the `NodeInfo` exchange and its
/// checks: another chain, incompatible, ourselves), `done` (connected).
pub(crate) fn dial_stage(result: &Result<(), DialError>) -> &'static str {
    let e = match result {
        Ok(()) => return "done",
        Err(e) => e,
    };
    match e {
        DialError::Unresolved(_) => "resolve",
        DialError::Transport(t) => match t {
            TransportError::Closed => "precheck",
            TransportError::FilterTimeout | TransportError::Io(_) => "connect",
            TransportError::Timeout(k) => match k {
                TimeoutKind::Handshake => "secret_conn",
                TimeoutKind::NodeInfo => "node_info",
                _ => "connect",
            },
            TransportError::Rejected { detail, .. } => match detail {
                RejectDetail::DeniedIp(_) | RejectDetail::DeniedId(_) => "precheck",
                RejectDetail::Handshake(_) | RejectDetail::DialedIdMismatch { .. } => "secret_conn",
                RejectDetail::Exchange(_)
                | RejectDetail::InvalidNodeInfo(_)
                | RejectDetail::NodeInfoIdMismatch { .. }
                | RejectDetail::SelfConnection
                | RejectDetail::Incompatible(_) => "node_info",
                _ => "connect",
            },
            _ => "connect",
        },
        _ => "precheck",
    }
}

/// One chain's metrics: every series it makes carries its `chain_id`.
pub(crate) struct ChainMetrics {
    metrics: Arc<Metrics>,
    chain: Arc<str>,
    seed: Option<SeedState>,
}

impl ChainMetrics {
    fn c(&self) -> (&'static str, V) {
        ("chain_id", V::Shared(self.chain.clone()))
    }

    /// Sets the peer counts.
    pub(crate) fn set_peers(&self, inbound: usize, outbound: usize) {
        let m = &self.metrics;
        let g = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        m.peers
            .get_or_create(&[self.c()])
            .set(g(inbound + outbound));
        m.peers_by_direction
            .get_or_create(&[self.c(), ("direction", V::Word("inbound"))])
            .set(g(inbound));
        m.peers_by_direction
            .get_or_create(&[self.c(), ("direction", V::Word("outbound"))])
            .set(g(outbound));
    }

    fn peer_labels(&self, peer_id: &str, ch: u8) -> L<3> {
        [
            self.c(),
            ("peer_id", V::Owned(peer_id.to_owned())),
            ("chID", V::Owned(channel_label(ch))),
        ]
    }

    fn live_key(&self, peer_id: &str) -> (Arc<str>, String) {
        (self.chain.clone(), peer_id.to_owned())
    }

    /// A connection of `peer_id` begins: its series exist from now on. Returns its send and
    /// receive byte counters on each of `channels`, created (at zero) under the lock.
    fn peer_started(&self, peer_id: &str, channels: &[u8]) -> Vec<(u8, Counter, Counter)> {
        let m = &self.metrics;
        let mut live = m.live.lock();
        *live.entry(self.live_key(peer_id)).or_insert(0) += 1;
        channels
            .iter()
            .map(|&ch| {
                let labels = self.peer_labels(peer_id, ch);
                (
                    ch,
                    m.peer_send_bytes.get_or_create(&labels).clone(),
                    m.peer_receive_bytes.get_or_create(&labels).clone(),
                )
            })
            .collect()
    }

    /// Sets how many messages wait in a peer's send queues (nothing for a peer that is not
    /// connected).
    pub(crate) fn peer_pending(&self, peer_id: &str, messages: u64) {
        let m = &self.metrics;
        let live = m.live.lock();
        if live.contains_key(&self.live_key(peer_id)) {
            m.peer_pending_send_bytes
                .get_or_create(&[self.c(), ("peer_id", V::Owned(peer_id.to_owned()))])
                .set(i64::try_from(messages).unwrap_or(i64::MAX));
        }
    }

    /// A connection of `peer_id` ended: counts why, and forgets the peer's series (its
    /// channels `channels`) once its last connection is gone.
    pub(crate) fn peer_stopped(&self, peer_id: &str, channels: &[u8], reason: &'static str) {
        let m = &self.metrics;
        {
            let mut live = m.live.lock();
            let key = self.live_key(peer_id);
            let last = match live.get_mut(&key) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    live.remove(&key);
                    true
                }
            };
            if last {
                for &ch in channels {
                    let labels = self.peer_labels(peer_id, ch);
                    m.peer_send_bytes.remove(&labels);
                    m.peer_receive_bytes.remove(&labels);
                }
                m.peer_pending_send_bytes
                    .remove(&[self.c(), ("peer_id", V::Owned(peer_id.to_owned()))]);
            }
        }
        m.peer_stops
            .get_or_create(&[self.c(), ("reason", V::Word(reason))])
            .inc();
    }

    /// Counts one inbound connection refused (or a silent pending one closed) for `reason`.
    pub(crate) fn inbound_refused(&self, reason: &'static str) {
        self.metrics
            .inbound_refused
            .get_or_create(&[self.c(), ("reason", V::Word(reason))])
            .inc();
    }

    /// Counts one dial of `target` that ended with `result`; on a seed, a verify dial too
    /// (unless `target` is a persistent peer), and a reached node when it connected.
    pub(crate) fn dial(
        &self,
        target: &ParsedAddress,
        result: &Result<(), DialError>,
        now: Instant,
    ) {
        let m = &self.metrics;
        let outcome = DialOutcome::of(result);
        m.dials
            .get_or_create(&[self.c(), ("outcome", V::Word(outcome.label()))])
            .inc();
        let (Some(seed), Some(f)) = (&self.seed, &m.seed) else {
            return;
        };
        let id = match target {
            ParsedAddress::Resolved(a) => a.id(),
            ParsedAddress::Unresolved(u) => u.id,
        };
        if seed.persistent.contains(&id) {
            return;
        }
        f.verify_dials
            .get_or_create(&[
                self.c(),
                ("outcome", V::Word(outcome.label())),
                ("stage", V::Word(dial_stage(result))),
            ])
            .inc();
        if result.is_ok() {
            seed.window.lock().reached(id, now);
        }
    }

    /// We answered a PEX request with `addrs` (a seed counts them).
    pub(crate) fn served(&self, addrs: &[NetAddress], now: Instant) {
        let (Some(seed), Some(f)) = (&self.seed, &self.metrics.seed) else {
            return;
        };
        f.addrs_served
            .get_or_create(&[self.c()])
            .observe(addrs.len() as f64);
        seed.window.lock().served(addrs, now);
    }

    /// Adds `bytes` of a message of `message_type` (Go's `pkg_Type`, e.g. `p2p_PexRequest`).
    pub(crate) fn message(&self, sent: bool, message_type: &'static str, bytes: u64) {
        let f = if sent {
            &self.metrics.message_send_bytes
        } else {
            &self.metrics.message_receive_bytes
        };
        f.get_or_create(&[self.c(), ("message_type", V::Word(message_type))])
            .inc_by(bytes);
    }

    /// Counts one PEX message (`PexRequest` or `PexAddrs`).
    pub(crate) fn pex_message(&self, sent: bool, message_type: &'static str) {
        let direction = if sent { "sent" } else { "received" };
        self.metrics
            .pex_messages
            .get_or_create(&[
                self.c(),
                ("direction", V::Word(direction)),
                ("message_type", V::Word(message_type)),
            ])
            .inc();
    }

    /// Sets the figures of the chain's node-wide budget of `direction` (`send`, `recv`) from
    /// its running totals; `None`: there is none.
    pub(crate) fn set_bandwidth(
        &self,
        direction: &'static str,
        stats: Option<mukan_mconn::BudgetStats>,
    ) {
        let m = &self.metrics;
        let labels = [self.c(), ("direction", V::Word(direction))];
        let _one_at_a_time = m.bandwidth_scrape.lock();
        let Some(stats) = stats else {
            m.bandwidth_budget.get_or_create(&labels).set(0);
            return;
        };
        m.bandwidth_budget
            .get_or_create(&labels)
            .set(i64::try_from(stats.rate).unwrap_or(i64::MAX));
        let used = m.bandwidth_used.get_or_create(&labels);
        used.inc_by(stats.used.saturating_sub(used.get()));
        let throttled = m.bandwidth_throttled.get_or_create(&labels);
        let secs = stats.throttled.as_secs_f64();
        if secs > throttled.get() {
            throttled.inc_by(secs - throttled.get());
        }
    }

    /// Sets the address book's sizes and, on a seed, the reached share at `now` (scrape time).
    pub(crate) fn set_addr_book(&self, new: usize, old: usize, now: Instant) {
        for (b, n) in [("new", new), ("old", old)] {
            self.metrics
                .addr_book_size
                .get_or_create(&[self.c(), ("bucket_type", V::Word(b))])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        if let (Some(seed), Some(f)) = (&self.seed, &self.metrics.seed) {
            let ratio = seed.window.lock().ratio(now);
            f.served_reached.get_or_create(&[self.c()]).set(ratio);
        }
    }
}

/// Feeds a chain's counters from its switch (one of the switch's observers) and from its
/// PEX reactor (what it serves).
pub(crate) struct MetricsObserver {
    metrics: Arc<ChainMetrics>,
    /// The channels of our reactors: the only ones a peer's messages travel on.
    channels: Vec<u8>,
}

impl MetricsObserver {
    /// Counts into `metrics` the traffic on `channels` (those of the registered reactors).
    pub(crate) fn new(metrics: Arc<ChainMetrics>, channels: &[ChannelId]) -> Self {
        Self {
            metrics,
            channels: channels.iter().map(|c| c.0).collect(),
        }
    }
}

impl Observer for MetricsObserver {
    /// The peer's byte counters, made once for each of our channels, so that counting a
    /// message neither allocates nor formats.
    fn peer_connected(&self, peer: &dyn Peer) -> Box<dyn PeerObserver> {
        let channels = self
            .metrics
            .peer_started(&peer.id().to_string(), &self.channels);
        Box::new(PeerMetrics {
            metrics: self.metrics.clone(),
            channels,
        })
    }

    fn peer_stopped(&self, peer: &dyn Peer, reason: &StopReason) {
        self.metrics
            .peer_stopped(&peer.id().to_string(), &self.channels, reason.label());
    }

    fn dial_finished(&self, target: &ParsedAddress, result: &Result<(), DialError>) {
        self.metrics.dial(target, result, Instant::now());
    }

    /// The switch's refusals of an upgraded peer: the inbound limit with nobody to evict, a
    /// full netgroup, ….
    fn inbound_refused(&self, _: &dyn Peer, refusal: AdmissionRefusal) {
        self.metrics.inbound_refused(refusal.label());
    }

    /// The transport's refusals for lack of room, and the silent connections it closed to
    /// make room (other failed upgrades are not counted here).
    fn inbound_failed(&self, error: &TransportError) {
        let TransportError::Rejected { detail, .. } = error else {
            return;
        };
        let reason = match detail {
            RejectDetail::PendingFull(_) => "pending_full",
            RejectDetail::PendingGroupFull(_) => "pending_netgroup_full",
            RejectDetail::InboundFull(_) => "inbound_full",
            RejectDetail::Displaced(_) => "idle_displaced",
            _ => return,
        };
        self.metrics.inbound_refused(reason);
    }
}

/// What a chain's PEX serves, into its metrics.
pub(crate) struct ServedObserver(pub(crate) Arc<ChainMetrics>);

impl mukan_pex::PexObserver for ServedObserver {
    fn addrs_served(&self, _: &NodeId, addrs: &[NetAddress]) {
        self.0.served(addrs, Instant::now());
    }
}

/// One peer's counters. Byte counts are message sizes, as in Go (not wire bytes).
struct PeerMetrics {
    metrics: Arc<ChainMetrics>,
    /// (channel, sent bytes, received bytes) for each of our channels.
    channels: Vec<(u8, Counter, Counter)>,
}

impl PeerMetrics {
    fn count(&self, sent: bool, channel: ChannelId, message_type: Option<&'static str>, n: usize) {
        let bytes = n as u64;
        // Every message travels on one of our channels (the connection has no other).
        if let Some((_, s, r)) = self.channels.iter().find(|(c, _, _)| *c == channel.0) {
            let _ = if sent {
                s.inc_by(bytes)
            } else {
                r.inc_by(bytes)
            };
        }
        if let Some(t) = message_type {
            self.metrics.message(sent, t, bytes);
            if channel == ChannelId::PEX {
                self.metrics
                    .pex_message(sent, t.strip_prefix("p2p_").unwrap_or(t));
            }
        }
    }
}

impl PeerObserver for PeerMetrics {
    fn received(&self, channel: ChannelId, message_type: Option<&'static str>, bytes: usize) {
        self.count(false, channel, message_type, bytes);
    }

    fn sent(&self, channel: ChannelId, message_type: Option<&'static str>, bytes: usize) {
        self.count(true, channel, message_type, bytes);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    /// `(name, type, labels)` of every documented metric, as a scraper sees it.
    pub(crate) const DOCUMENTED: &[(&str, &str, &[&str])] = &[
        ("p2p_peers", "gauge", &[]),
        (
            "p2p_peer_receive_bytes_total",
            "counter",
            &["peer_id", "chID"],
        ),
        ("p2p_peer_send_bytes_total", "counter", &["peer_id", "chID"]),
        ("p2p_peer_pending_send_bytes", "gauge", &["peer_id"]),
        (
            "p2p_message_receive_bytes_total",
            "counter",
            &["message_type"],
        ),
        ("p2p_message_send_bytes_total", "counter", &["message_type"]),
        ("p2p_peers_by_direction", "gauge", &["direction"]),
        ("p2p_addr_book_size", "gauge", &["bucket_type"]),
        ("p2p_dials_total", "counter", &["outcome"]),
        ("p2p_peer_stops_total", "counter", &["reason"]),
        ("p2p_inbound_refused_total", "counter", &["reason"]),
        (
            "p2p_pex_messages_total",
            "counter",
            &["direction", "message_type"],
        ),
        (
            "p2p_seed_verify_dials_total",
            "counter",
            &["outcome", "stage"],
        ),
        (
            "p2p_bandwidth_budget_bytes_per_second",
            "gauge",
            &["direction"],
        ),
        ("p2p_bandwidth_used_bytes_total", "counter", &["direction"]),
        (
            "p2p_bandwidth_throttled_seconds_total",
            "counter",
            &["direction"],
        ),
        ("p2p_seed_addrs_served_count", "histogram", &[]),
        ("p2p_seed_addrs_served_bucket", "histogram", &["le"]),
        ("p2p_seed_served_reached_ratio", "gauge", &[]),
    ];

    /// The family of a sample: `x_total` is in counter family `x`, `x_bucket`, `x_sum` and
    /// `x_count` in histogram family `x`.
    fn family_of<'a>(types: &impl Fn(&str) -> bool, sample: &'a str) -> &'a str {
        if types(sample) {
            return sample;
        }
        for suffix in ["_total", "_bucket", "_sum", "_count"] {
            if let Some(f) = sample.strip_suffix(suffix) {
                if types(f) {
                    return f;
                }
            }
        }
        sample
    }

    pub(crate) type Parsed = (
        HashMap<String, String>,
        Vec<(String, Vec<(String, String)>, f64)>,
    );

    /// Parses OpenMetrics text: family name → type, and every sample's name and labels.
    pub(crate) fn parse(text: &str) -> Parsed {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), ty.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let (head, value) = line.rsplit_once(' ').unwrap();
                let (name, labels) = match head.split_once('{') {
                    Some((n, l)) => (n, l.trim_end_matches('}')),
                    None => (head, ""),
                };
                let labels = labels
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let (k, v) = l.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                samples.push((name.to_owned(), labels, value.parse().unwrap()));
            }
        }
        (types, samples)
    }

    /// The type of the family a sample belongs to ([`family_of`]).
    pub(crate) fn family_type<'a>(
        types: &'a HashMap<String, String>,
        sample: &str,
    ) -> Option<&'a String> {
        types.get(family_of(&|f| types.contains_key(f), sample))
    }

    /// The committed list of every family the node serves: name → (type, label names).
    pub(crate) fn golden() -> std::collections::BTreeMap<String, (String, String)> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/metrics.golden");
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut f = l.split_whitespace();
                let (name, ty, labels) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
                (name.to_owned(), (ty.to_owned(), labels.to_owned()))
            })
            .collect()
    }

    /// The families of the scrapes `texts` as the golden list spells them: name → (type,
    /// label names of its series, sorted and comma-separated; several sets are joined by
    /// `|`, a family without series has none).
    pub(crate) fn served(texts: &[&str]) -> std::collections::BTreeMap<String, (String, String)> {
        use std::collections::{BTreeMap, BTreeSet};
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for text in texts {
            let (t, samples) = parse(text);
            types.extend(t);
            for (name, l, _) in samples {
                let family = family_of(&|f| types.contains_key(f), &name).to_owned();
                let mut keys: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort_unstable();
                labels.entry(family).or_default().insert(keys.join(","));
            }
        }
        let mut out: BTreeMap<String, (String, String)> = types
            .into_iter()
            .map(|(name, ty)| {
                let sets = labels.remove(&name).unwrap_or_default();
                let sets: Vec<String> = sets.into_iter().collect();
                (name, (ty, sets.join("|")))
            })
            .collect();
        // Samples of a family with no TYPE line would be a broken exposition: show them.
        for (name, sets) in labels {
            let sets: Vec<String> = sets.into_iter().collect();
            out.insert(name, ("untyped".into(), sets.join("|")));
        }
        out
    }

    /// Every family served is in the golden list with its type and labels, and every family
    /// of the golden list is served.
    pub(crate) fn assert_golden(texts: &[&str]) {
        let golden = golden();
        let served = served(texts);
        let extra: Vec<_> = served
            .iter()
            .filter(|(n, v)| golden.get(*n) != Some(v))
            .collect();
        let missing: Vec<_> = golden
            .iter()
            .filter(|(n, v)| served.get(*n) != Some(v))
            .collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "served but not in metrics.golden (or different): {extra:?}\n\
             in metrics.golden but not served (or different): {missing:?}"
        );
    }

    /// Every family of the scrape `text` is in the golden list with its type and labels (a
    /// scrape of one process, which need not serve every family).
    pub(crate) fn assert_golden_subset(text: &str) {
        let golden = golden();
        let extra: Vec<_> = served(&[text])
            .into_iter()
            .filter(|(n, v)| {
                // A family without series yet shows no labels: only its type is compared.
                golden
                    .get(n)
                    .is_none_or(|g| g.0 != v.0 || (!v.1.is_empty() && g.1 != v.1))
            })
            .collect();
        assert!(
            extra.is_empty(),
            "served but not in metrics.golden: {extra:?}"
        );
    }

    /// A peer announcing channels 0x00 and 0x20, as the observer sees it.
    pub(crate) fn peer(id: u8) -> mukan_reactor_api::testing::FakePeer {
        mukan_reactor_api::testing::FakePeer::new(
            NodeId([id; 20]),
            vec![ChannelId(0x00), ChannelId(0x20)],
        )
    }

    /// Feeds every metric through the observer (and the scrape-time setters).
    /// A seed chain `chain` of a process with seed families: its metrics and observer.
    pub(crate) fn seed_chain(namespace: &str, chain: &str) -> (Arc<Metrics>, Arc<ChainMetrics>) {
        let m = Arc::new(Metrics::new(namespace, true));
        let c = Arc::new(m.chain(chain, Some(SeedSetup::default())));
        (m, c)
    }

    /// Feeds every metric through the observers (and the scrape-time setters).
    pub(crate) fn exercise(m: &Arc<ChainMetrics>) {
        let o = MetricsObserver::new(m.clone(), &[ChannelId(0x00), ChannelId(0x20)]);
        m.set_peers(2, 3);
        let p = peer(0xab);
        let id = p.id().to_string();
        let t = o.peer_connected(&p);
        t.sent(ChannelId(0x00), Some("p2p_PexRequest"), 10);
        t.received(ChannelId(0x00), Some("p2p_PexAddrs"), 20);
        t.sent(ChannelId(0x20), None, 5);
        m.peer_pending(&id, 4);
        let target: ParsedAddress = format!("{id}@1.2.3.4:5").parse().unwrap();
        for _ in 0..3 {
            o.dial_finished(&target, &Ok(()));
        }
        let served = ServedObserver(m.clone());
        let a = NetAddress::new(p.id(), std::net::Ipv4Addr::new(1, 2, 3, 4).into(), 5);
        mukan_pex::PexObserver::addrs_served(&served, &p.id(), &[a]);
        m.set_addr_book(7, 1, Instant::now());
        let budget = mukan_mconn::Budget::new(
            std::num::NonZeroU64::MIN.saturating_add(999),
            Instant::now(),
        );
        m.set_bandwidth("send", Some(budget.stats(Instant::now())));
        m.set_bandwidth("recv", None);
        let gone = peer(0xcd);
        let _ = o.peer_connected(&gone);
        o.peer_stopped(&gone, &StopReason::Timeout(TimeoutKind::Pong));
        o.inbound_refused(&gone, AdmissionRefusal::NetgroupLimit);
    }

    #[test]
    fn every_documented_metric_is_scraped_with_its_type_and_labels() {
        let (m, c) = seed_chain("cometbft", "test-chain-x");
        exercise(&c);
        let (types, samples) = parse(&m.encode());
        for (name, ty, labels) in DOCUMENTED {
            let full = format!("cometbft_{name}");
            let found: Vec<_> = samples.iter().filter(|s| s.0 == full).collect();
            assert!(!found.is_empty(), "{full} not scraped");
            assert_eq!(
                family_type(&types, &full).map(String::as_str),
                Some(*ty),
                "{full}"
            );
            for (_, l, _) in found {
                let mut keys: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort_unstable();
                let mut want: Vec<&str> = labels.iter().copied().chain(["chain_id"]).collect();
                want.sort_unstable();
                assert_eq!(keys, want, "{full}");
                assert!(
                    l.contains(&("chain_id".into(), "test-chain-x".into())),
                    "{full}"
                );
            }
        }
        let get = |name: &str, label: (&str, &str)| {
            samples
                .iter()
                .find(|s| s.0 == name && s.1.contains(&(label.0.into(), label.1.into())))
                .map(|s| s.2)
        };
        assert_eq!(
            get("cometbft_p2p_peer_send_bytes_total", ("chID", "0x0")),
            Some(10.0)
        );
        assert_eq!(
            get("cometbft_p2p_peer_receive_bytes_total", ("chID", "0x0")),
            Some(20.0)
        );
        assert_eq!(
            get("cometbft_p2p_peers_by_direction", ("direction", "outbound")),
            Some(3.0)
        );
        assert_eq!(
            get("cometbft_p2p_addr_book_size", ("bucket_type", "new")),
            Some(7.0)
        );
        assert_eq!(
            get("cometbft_p2p_dials_total", ("outcome", "connected")),
            Some(3.0)
        );
        assert_eq!(
            get(
                "cometbft_p2p_inbound_refused_total",
                ("reason", "netgroup_limit")
            ),
            Some(1.0)
        );
        assert_eq!(
            get("cometbft_p2p_seed_verify_dials_total", ("stage", "done")),
            Some(3.0)
        );
        // One answer of one address, which we had reached.
        assert_eq!(
            get(
                "cometbft_p2p_seed_addrs_served_count",
                ("chain_id", "test-chain-x")
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                "cometbft_p2p_seed_addrs_served_sum",
                ("chain_id", "test-chain-x")
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                "cometbft_p2p_seed_served_reached_ratio",
                ("chain_id", "test-chain-x")
            ),
            Some(1.0)
        );
    }

    #[test]
    fn names_and_types_match_a_real_cometbft_node() {
        // What a v0.38.25 node served (node/tests/data/rpc/v0.38.25-p2p-metrics.txt).
        let go = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/rpc/v0.38.25-p2p-metrics.txt"),
        )
        .unwrap();
        let (m, c) = seed_chain("cometbft", "c");
        exercise(&c);
        let (types, samples) = parse(&m.encode());
        let mut checked = 0;
        for line in go.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                assert_eq!(
                    family_type(&types, name).map(String::as_str),
                    Some(ty),
                    "{name}"
                );
                checked += 1;
            } else {
                let (name, labels, _) = &parse(line).1[0];
                let ours = samples.iter().find(|s| &s.0 == name).expect(name);
                let mut a: Vec<_> = labels.iter().map(|l| l.0.clone()).collect();
                let mut b: Vec<_> = ours.1.iter().map(|l| l.0.clone()).collect();
                a.sort();
                b.sort();
                assert_eq!(a, b, "{name}");
            }
        }
        assert_eq!(checked, 6);
    }

    #[test]
    fn counters_add_up_and_stopped_peers_are_forgotten() {
        let root = Arc::new(Metrics::new("ns", false));
        let m = Arc::new(root.chain("c", None));
        let o = MetricsObserver::new(m.clone(), &[ChannelId(0x30), ChannelId(0x31)]);
        let p =
            mukan_reactor_api::testing::FakePeer::new(NodeId([0xef; 20]), vec![ChannelId(0x30)]);
        let id = p.id().to_string();
        let t = o.peer_connected(&p);
        for bytes in [100, 150] {
            t.sent(ChannelId(0x30), None, bytes);
        }
        // A channel of ours the peer did not announce is counted too.
        t.received(ChannelId(0x31), None, 7);
        m.peer_pending(&id, 1);
        let text = root.encode();
        assert!(
            text.contains(&format!(
                "ns_p2p_peer_send_bytes_total{{chain_id=\"c\",peer_id=\"{id}\",chID=\"0x30\"}} 250"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "ns_p2p_peer_receive_bytes_total{{chain_id=\"c\",peer_id=\"{id}\",chID=\"0x31\"}} 7"
            )),
            "{text}"
        );
        o.peer_stopped(&p, &StopReason::ClosedByPeer);
        let text = root.encode();
        assert!(!text.contains(&id), "{text}");
        assert!(
            text.contains("ns_p2p_peer_stops_total{chain_id=\"c\",reason=\"closed_by_peer\"} 1")
        );
        // What races a removal (a scrape's pending count, a late send) creates nothing.
        m.peer_pending(&id, 3);
        t.sent(ChannelId(0x30), None, 7);
        assert!(!root.encode().contains(&id));
        // Two connections of one ID (a replacement): the series live until the last ends,
        // and both connections count into them.
        let first = o.peer_connected(&p);
        let second = o.peer_connected(&p);
        first.sent(ChannelId(0x30), None, 1);
        o.peer_stopped(&p, &StopReason::Graceful);
        second.sent(ChannelId(0x30), None, 2);
        let text = root.encode();
        assert!(
            text.contains(&format!(
                "ns_p2p_peer_send_bytes_total{{chain_id=\"c\",peer_id=\"{id}\",chID=\"0x30\"}} 3"
            )),
            "{text}"
        );
        o.peer_stopped(&p, &StopReason::Graceful);
        assert!(!root.encode().contains(&id));
    }

    /// The switch's refusals and the transport's lack of room are counted by reason, on the
    /// chain whose observer was told; every reason shows from the start (zero); other failed
    /// upgrades are not counted.
    #[test]
    fn inbound_refusals_are_counted_by_reason_and_chain() {
        let root = Arc::new(Metrics::new("ns", false));
        let a = Arc::new(root.chain("chain-a", None));
        // Another chain of the process: its series stay at zero.
        let _b = root.chain("chain-b", None);
        let oa = MetricsObserver::new(a.clone(), &[ChannelId(0x00)]);
        let value = |chain: &str, reason: &str| {
            let (_, samples) = parse(&root.encode());
            samples
                .iter()
                .find(|s| {
                    s.0 == "ns_p2p_inbound_refused_total"
                        && s.1.contains(&("chain_id".into(), chain.into()))
                        && s.1.contains(&("reason".into(), reason.into()))
                })
                .map(|s| s.2)
        };
        for chain in ["chain-a", "chain-b"] {
            for reason in INBOUND_REFUSALS {
                assert_eq!(value(chain, reason), Some(0.0), "{chain} {reason}");
            }
        }
        let p = peer(0x21);
        oa.inbound_refused(&p, AdmissionRefusal::NetgroupLimit);
        oa.inbound_refused(&p, AdmissionRefusal::InboundLimit);
        oa.inbound_refused(&p, AdmissionRefusal::InboundLimit);
        let from: std::net::SocketAddr = "45.34.1.1:4000".parse().unwrap();
        for detail in [
            RejectDetail::Displaced(from),
            RejectDetail::Displaced(from),
            RejectDetail::PendingGroupFull(from),
            RejectDetail::InboundFull(from),
            RejectDetail::PendingFull(from),
        ] {
            oa.inbound_failed(&TransportError::rejected(detail, None));
        }
        // Not for lack of room: not counted.
        oa.inbound_failed(&TransportError::Timeout(TimeoutKind::Handshake));
        oa.inbound_failed(&TransportError::rejected(
            RejectDetail::DeniedIp(from.ip()),
            None,
        ));
        let want = [
            ("limit", 2.0),
            ("netgroup_limit", 1.0),
            ("duplicate", 0.0),
            ("denied", 0.0),
            ("not_running", 0.0),
            ("pending_full", 1.0),
            ("pending_netgroup_full", 1.0),
            ("inbound_full", 1.0),
            ("idle_displaced", 2.0),
        ];
        for (reason, n) in want {
            assert_eq!(value("chain-a", reason), Some(n), "{reason}");
            assert_eq!(value("chain-b", reason), Some(0.0), "{reason}");
        }
    }

    #[test]
    fn bandwidth_figures_follow_the_budgets_totals() {
        let root = Arc::new(Metrics::new("cometbft", false));
        let m = root.chain("c", None);
        let mut stats = mukan_mconn::BudgetStats::default();
        stats.rate = 10_000_000;
        stats.used = 1_000;
        stats.throttled = Duration::from_millis(1_500);
        m.set_bandwidth("recv", Some(stats));
        stats.used = 5_000;
        stats.throttled = Duration::from_millis(2_500);
        m.set_bandwidth("recv", Some(stats));
        m.set_bandwidth("recv", Some(stats));
        m.set_bandwidth("send", None);
        let (_, samples) = parse(&root.encode());
        let value = |name: &str, dir: &str| {
            samples
                .iter()
                .find(|s| s.0 == name && s.1.iter().any(|(k, v)| k == "direction" && v == dir))
                .map(|s| s.2)
        };
        let budget = "cometbft_p2p_bandwidth_budget_bytes_per_second";
        let used = "cometbft_p2p_bandwidth_used_bytes_total";
        let throttled = "cometbft_p2p_bandwidth_throttled_seconds_total";
        assert_eq!(value(budget, "recv"), Some(10_000_000.0));
        assert_eq!(value(used, "recv"), Some(5_000.0));
        assert_eq!(value(throttled, "recv"), Some(2.5));
        assert_eq!(value(budget, "send"), Some(0.0));
        assert_eq!(value(used, "send"), Some(0.0));
        assert_eq!(value(throttled, "send"), Some(0.0));
    }

    /// Two chains in one process: one family each, told apart by `chain_id`; a peer ID on
    /// both chains has a series on each, and its stop on one leaves the other's.
    #[test]
    fn chains_share_the_families_and_keep_their_series_apart() {
        let root = Arc::new(Metrics::new("ns", false));
        let a = Arc::new(root.chain("chain-a", None));
        let b = Arc::new(root.chain("chain-b", None));
        let oa = MetricsObserver::new(a.clone(), &[ChannelId(0x00)]);
        let ob = MetricsObserver::new(b.clone(), &[ChannelId(0x00)]);
        a.set_peers(1, 0);
        b.set_peers(0, 2);
        let p = peer(0x11);
        let id = p.id().to_string();
        let ta = oa.peer_connected(&p);
        let _tb = ob.peer_connected(&p);
        ta.sent(ChannelId(0x00), Some("p2p_PexAddrs"), 9);
        let text = root.encode();
        // One HELP/TYPE per family: a valid exposition.
        assert_eq!(
            text.matches("# TYPE ns_p2p_peers gauge").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("ns_p2p_peers{chain_id=\"chain-a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ns_p2p_peers{chain_id=\"chain-b\"} 2"),
            "{text}"
        );
        assert!(text.contains(&format!(
            "ns_p2p_peer_send_bytes_total{{chain_id=\"chain-a\",peer_id=\"{id}\",chID=\"0x0\"}} 9"
        )), "{text}");
        assert!(text.contains(&format!(
            "ns_p2p_peer_send_bytes_total{{chain_id=\"chain-b\",peer_id=\"{id}\",chID=\"0x0\"}} 0"
        )), "{text}");
        oa.peer_stopped(&p, &StopReason::Graceful);
        let text = root.encode();
        assert!(
            !text.contains(&format!("chain_id=\"chain-a\",peer_id=\"{id}\"")),
            "{text}"
        );
        assert!(
            text.contains(&format!("chain_id=\"chain-b\",peer_id=\"{id}\"")),
            "{text}"
        );
        // No seed families in a process without a seed.
        assert!(!text.contains("seed_"), "{text}");
    }

    /// The stage of each kind of failed dial.
    #[test]
    fn dial_stages() {
        use mukan_reactor_api::{HandshakeFailure, IncompatibleError};
        let a = NetAddress::new(
            NodeId([1; 20]),
            std::net::Ipv4Addr::new(1, 2, 3, 4).into(),
            5,
        );
        let rejected = |d| Err(DialError::Transport(TransportError::rejected(d, Some(a))));
        let cases: Vec<(Result<(), DialError>, &str)> = vec![
            (Ok(()), "done"),
            (Err(DialError::OutboundLimit), "precheck"),
            (Err(DialError::AlreadyDialingOrConnected(a)), "precheck"),
            (Err(DialError::Unresolved(a)), "resolve"),
            (
                Err(DialError::Transport(TransportError::Io(
                    std::io::ErrorKind::ConnectionRefused.into(),
                ))),
                "connect",
            ),
            (
                Err(DialError::Transport(TransportError::Timeout(
                    TimeoutKind::Dial,
                ))),
                "connect",
            ),
            (
                Err(DialError::Transport(TransportError::Timeout(
                    TimeoutKind::Handshake,
                ))),
                "secret_conn",
            ),
            (
                rejected(RejectDetail::Handshake(HandshakeFailure::Closed)),
                "secret_conn",
            ),
            (
                Err(DialError::Transport(TransportError::Timeout(
                    TimeoutKind::NodeInfo,
                ))),
                "node_info",
            ),
            (
                rejected(RejectDetail::Incompatible(IncompatibleError::Network {
                    got: "a".into(),
                    expected: "b".into(),
                })),
                "node_info",
            ),
            (rejected(RejectDetail::DeniedIp(a.ip())), "precheck"),
        ];
        for (result, stage) in cases {
            assert_eq!(dial_stage(&result), stage, "{result:?}");
        }
    }

    /// A seed's verify dials (not its persistent peers'), its answers, and the reached share
    /// over the last hour.
    #[test]
    fn seed_quality_counts_verify_dials_answers_and_the_reached_share() {
        let root = Arc::new(Metrics::new("ns", true));
        let persistent = NodeId([0x77; 20]);
        let c = root.chain(
            "s",
            Some(SeedSetup {
                persistent: [persistent].into_iter().collect(),
            }),
        );
        let addr = |n: u8| {
            NetAddress::new(
                NodeId([n; 20]),
                std::net::Ipv4Addr::new(8, n, 1, 1).into(),
                26656,
            )
        };
        let t0 = Instant::now();
        let refused = || {
            Err(DialError::Transport(TransportError::Io(
                std::io::ErrorKind::ConnectionRefused.into(),
            )))
        };
        c.dial(&ParsedAddress::Resolved(addr(1)), &Ok(()), t0);
        c.dial(&ParsedAddress::Resolved(addr(2)), &refused(), t0);
        c.dial(&ParsedAddress::Resolved(addr(9)), &Ok(()), t0);
        let persistent_addr = NetAddress::new(persistent, addr(9).ip(), 1);
        c.dial(&ParsedAddress::Resolved(persistent_addr), &Ok(()), t0);
        // Served: 1 (reached), 2 (failed), 3 (never dialed), then 1 again 2 h later.
        c.served(&[addr(1), addr(2), addr(3)], t0 + Duration::from_secs(10));
        c.served(&[], t0 + Duration::from_secs(20));
        c.set_addr_book(0, 0, t0 + Duration::from_secs(30));
        let text = root.encode();
        let (_, samples) = parse(&text);
        let get = |name: &str, want: &[(&str, &str)]| {
            samples
                .iter()
                .find(|s| {
                    s.0 == name
                        && want
                            .iter()
                            .all(|(k, v)| s.1.contains(&((*k).into(), (*v).into())))
                })
                .map(|s| s.2)
        };
        let vd = "ns_p2p_seed_verify_dials_total";
        assert_eq!(
            get(vd, &[("outcome", "connected"), ("stage", "done")]),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            get(vd, &[("outcome", "failed"), ("stage", "connect")]),
            Some(1.0),
            "{text}"
        );
        // Every dial counts in dials_total, the persistent peer's too.
        assert_eq!(
            get("ns_p2p_dials_total", &[("outcome", "connected")]),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            get("ns_p2p_seed_addrs_served_count", &[]),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            get("ns_p2p_seed_addrs_served_sum", &[]),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            get("ns_p2p_seed_addrs_served_bucket", &[("le", "0.0")]),
            Some(1.0),
            "{text}"
        );
        let ratio = get("ns_p2p_seed_served_reached_ratio", &[]).unwrap();
        assert!((ratio - 1.0 / 3.0).abs() < 1e-9, "{ratio}");
        // Two hours on: 1 is served again, but it was reached too long ago.
        let later = t0 + Duration::from_secs(7200);
        c.served(&[addr(1)], later);
        c.set_addr_book(0, 0, later);
        let (_, samples) = parse(&root.encode());
        let ratio = samples
            .iter()
            .find(|s| s.0 == "ns_p2p_seed_served_reached_ratio")
            .map(|s| s.2);
        assert_eq!(ratio, Some(0.0));
    }

    /// The window forgets what is older than an hour, and stays bounded.
    #[test]
    fn the_serve_window_slides_and_is_bounded() {
        let mut w = ServeWindow::default();
        let t0 = Instant::now();
        let a = |n: u32| {
            let mut id = [0u8; 20];
            id[..4].copy_from_slice(&n.to_be_bytes());
            NetAddress::new(NodeId(id), std::net::Ipv4Addr::new(8, 8, 8, 8).into(), 1)
        };
        assert_eq!(w.ratio(t0), 0.0);
        w.reached(a(1).id(), t0);
        w.served(&[a(1), a(2)], t0);
        assert_eq!(w.ratio(t0 + Duration::from_secs(59 * 60)), 0.5);
        w.served(&[a(2)], t0 + Duration::from_secs(30 * 60));
        assert!((w.ratio(t0 + Duration::from_secs(59 * 60)) - 1.0 / 3.0).abs() < 1e-9);
        // The first slice leaves the window.
        assert_eq!(w.ratio(t0 + Duration::from_secs(61 * 60)), 0.0);
        // A served burst every second for 3 hours keeps at most one slice per minute.
        for s in 0..3 * 3600 {
            w.served(&[a(3)], t0 + Duration::from_secs(s));
        }
        assert!(w.slices.len() <= 61, "{}", w.slices.len());
        for n in 0..(MAX_REACHED as u32 + 10) {
            w.reached(a(n).id(), t0 + Duration::from_secs(4 * 3600));
        }
        assert!(w.reached.len() <= MAX_REACHED);
    }
}
