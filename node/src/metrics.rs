//! Prometheus metrics: CometBFT v0.38's p2p metrics under their own names, types and labels
//! (`<namespace>_p2p_*`, a `chain_id` label on every series), plus ours.
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
//! | `p2p_pex_messages_total` (ours) | counter | `direction`, `message_type` |
//! | `p2p_bandwidth_budget_bytes_per_second` (ours) | gauge | `direction` (`send`, `recv`) |
//! | `p2p_bandwidth_used_bytes_total` (ours) | counter | `direction` |
//! | `p2p_bandwidth_throttled_seconds_total` (ours) | counter | `direction` |
//!
//! Per-peer series are removed when the peer goes, so churn does not grow memory.
//!
//! The counters are fed by the switch, through [`MetricsObserver`] (one of the switch's
//! observers): the traffic of each peer, each dial, each stop. The gauges (peers, pending
//! messages, address book) are read from the switch and the book at scrape time, and so are
//! the node-wide bandwidth budgets' figures (`[p2p] max_send_rate_total` /
//! `max_recv_rate_total`: the budget, 0 when there is none; the packet bytes the connections
//! spent from it; the time during which it held at least one connection back).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use mukan_reactor_api::{
    AdmissionRefusal, ChannelId, DialError, DialOutcome, Observer, ParsedAddress, Peer,
    PeerObserver, RejectDetail, StopReason, TransportError,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type L1 = [(&'static str, String); 1];
type L2 = [(&'static str, String); 2];
/// Labels whose values are fixed words: no allocation to find their series.
type S1 = [(&'static str, &'static str); 1];
type S2 = [(&'static str, &'static str); 2];

/// The reasons of `p2p_inbound_refused`: the switch's (`AdmissionRefusal::label`), then the
/// transport's lack of room. Each series exists from the start.
const INBOUND_REFUSALS: [&str; 9] = [
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

/// Every metric of the node.
pub(crate) struct Metrics {
    registry: Registry,
    peers: Gauge,
    peer_receive_bytes: Family<L2, Counter>,
    peer_send_bytes: Family<L2, Counter>,
    peer_pending_send_bytes: Family<L1, Gauge>,
    message_receive_bytes: Family<S1, Counter>,
    message_send_bytes: Family<S1, Counter>,
    peers_by_direction: Family<S1, Gauge>,
    addr_book_size: Family<S1, Gauge>,
    dials: Family<S1, Counter>,
    peer_stops: Family<S1, Counter>,
    /// Inbound connections refused for lack of room, by reason.
    inbound_refused: Family<S1, Counter>,
    pex_messages: Family<S2, Counter>,
    bandwidth_budget: Family<S1, Gauge>,
    bandwidth_used: Family<S1, Counter>,
    bandwidth_throttled: Family<S1, Counter<f64, AtomicU64>>,
    /// Two scrapes at once must not both bring a counter up to the same total.
    bandwidth_scrape: parking_lot::Mutex<()>,
    /// Connections announced per peer ID (`peer_started` minus `peer_stopped`). A per-peer
    /// series is only created for an ID in here, and only while this lock is held, so that
    /// once a peer's series are removed nothing racing its removal (a scrape) brings them
    /// back; a connection's counters, made at its start, only ever add to its own series.
    live: parking_lot::Mutex<std::collections::HashMap<String, usize>>,
}

/// The channel label as Go's `fmt "%#x"` prints it (`0x0`, `0x20`).
pub(crate) fn channel_label(ch: u8) -> String {
    format!("{ch:#x}")
}

impl Metrics {
    /// Registers every metric under `namespace` with a `chain_id` label.
    pub(crate) fn new(namespace: &str, chain_id: &str) -> Self {
        let labels = [(Cow::Borrowed("chain_id"), Cow::Owned(chain_id.to_owned()))];
        let mut root = if namespace.is_empty() {
            Registry::with_labels(labels.into_iter())
        } else {
            Registry::with_prefix_and_labels(namespace, labels.into_iter())
        };
        let r = root.sub_registry_with_prefix("p2p");
        let peers = Gauge::default();
        r.register("peers", "Number of peers.", peers.clone());
        let peer_receive_bytes = Family::<L2, Counter>::default();
        r.register(
            "peer_receive_bytes",
            "Number of bytes received from a given peer.",
            peer_receive_bytes.clone(),
        );
        let peer_send_bytes = Family::<L2, Counter>::default();
        r.register(
            "peer_send_bytes",
            "Number of bytes sent to a given peer.",
            peer_send_bytes.clone(),
        );
        let peer_pending_send_bytes = Family::<L1, Gauge>::default();
        r.register(
            "peer_pending_send_bytes",
            "Messages waiting in a peer's send queues.",
            peer_pending_send_bytes.clone(),
        );
        let message_receive_bytes = Family::<S1, Counter>::default();
        r.register(
            "message_receive_bytes",
            "Number of bytes of each message type received.",
            message_receive_bytes.clone(),
        );
        let message_send_bytes = Family::<S1, Counter>::default();
        r.register(
            "message_send_bytes",
            "Number of bytes of each message type sent.",
            message_send_bytes.clone(),
        );
        let peers_by_direction = Family::<S1, Gauge>::default();
        r.register(
            "peers_by_direction",
            "Number of peers that dialed us (inbound) and that we dialed (outbound).",
            peers_by_direction.clone(),
        );
        let addr_book_size = Family::<S1, Gauge>::default();
        r.register(
            "addr_book_size",
            "Addresses in the address book, by bucket type (new, old).",
            addr_book_size.clone(),
        );
        let dials = Family::<S1, Counter>::default();
        r.register("dials", "Outbound dials, by outcome.", dials.clone());
        let peer_stops = Family::<S1, Counter>::default();
        r.register(
            "peer_stops",
            "Peers disconnected, by reason.",
            peer_stops.clone(),
        );
        let inbound_refused = Family::<S1, Counter>::default();
        r.register(
            "inbound_refused",
            "Inbound connections refused or closed for lack of room, by reason.",
            inbound_refused.clone(),
        );
        let pex_messages = Family::<S2, Counter>::default();
        r.register(
            "pex_messages",
            "PEX messages sent and received, by type.",
            pex_messages.clone(),
        );
        let bandwidth_budget = Family::<S1, Gauge>::default();
        r.register(
            "bandwidth_budget_bytes_per_second",
            "The node-wide bandwidth budget of each direction, bytes per second (0: none).",
            bandwidth_budget.clone(),
        );
        let bandwidth_used = Family::<S1, Counter>::default();
        r.register(
            "bandwidth_used_bytes",
            "Packet bytes the connections spent from the node-wide budget of each direction.",
            bandwidth_used.clone(),
        );
        let bandwidth_throttled = Family::<S1, Counter<f64, AtomicU64>>::default();
        r.register(
            "bandwidth_throttled_seconds",
            "Time during which the node-wide budget of each direction held a connection back.",
            bandwidth_throttled.clone(),
        );
        // Series that exist from the start, so that dashboards see zeros, not gaps.
        for d in ["send", "recv"] {
            bandwidth_budget.get_or_create(&[("direction", d)]).set(0);
            let _ = bandwidth_used.get_or_create(&[("direction", d)]);
            let _ = bandwidth_throttled.get_or_create(&[("direction", d)]);
        }
        for d in ["inbound", "outbound"] {
            peers_by_direction.get_or_create(&[("direction", d)]).set(0);
        }
        for b in ["new", "old"] {
            addr_book_size.get_or_create(&[("bucket_type", b)]).set(0);
        }
        for reason in INBOUND_REFUSALS {
            let _ = inbound_refused.get_or_create(&[("reason", reason)]);
        }
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
            live: parking_lot::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The OpenMetrics text of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Sets the peer counts.
    pub(crate) fn set_peers(&self, inbound: usize, outbound: usize) {
        let g = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.peers.set(g(inbound + outbound));
        self.peers_by_direction
            .get_or_create(&[("direction", "inbound")])
            .set(g(inbound));
        self.peers_by_direction
            .get_or_create(&[("direction", "outbound")])
            .set(g(outbound));
    }

    /// A connection of `peer_id` begins: its series exist from now on. Returns its send and
    /// receive byte counters on each of `channels`, created (at zero) under the lock.
    fn peer_started(&self, peer_id: &str, channels: &[u8]) -> Vec<(u8, Counter, Counter)> {
        let mut live = self.live.lock();
        *live.entry(peer_id.to_owned()).or_insert(0) += 1;
        channels
            .iter()
            .map(|&ch| {
                let labels = [("peer_id", peer_id.to_owned()), ("chID", channel_label(ch))];
                (
                    ch,
                    self.peer_send_bytes.get_or_create(&labels).clone(),
                    self.peer_receive_bytes.get_or_create(&labels).clone(),
                )
            })
            .collect()
    }

    /// Sets how many messages wait in a peer's send queues (nothing for a peer that is not
    /// connected).
    pub(crate) fn peer_pending(&self, peer_id: &str, messages: u64) {
        let live = self.live.lock();
        if live.contains_key(peer_id) {
            self.peer_pending_send_bytes
                .get_or_create(&[("peer_id", peer_id.to_owned())])
                .set(i64::try_from(messages).unwrap_or(i64::MAX));
        }
    }

    /// A connection of `peer_id` ended: counts why, and forgets the peer's series (its
    /// channels `channels`) once its last connection is gone.
    pub(crate) fn peer_stopped(&self, peer_id: &str, channels: &[u8], reason: &'static str) {
        {
            let mut live = self.live.lock();
            let last = match live.get_mut(peer_id) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    live.remove(peer_id);
                    true
                }
            };
            if last {
                for &ch in channels {
                    let labels = [("peer_id", peer_id.to_owned()), ("chID", channel_label(ch))];
                    self.peer_send_bytes.remove(&labels);
                    self.peer_receive_bytes.remove(&labels);
                }
                self.peer_pending_send_bytes
                    .remove(&[("peer_id", peer_id.to_owned())]);
            }
        }
        self.peer_stops.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts one inbound connection refused (or an idle one closed) for `reason`.
    pub(crate) fn inbound_refused(&self, reason: &'static str) {
        self.inbound_refused
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Counts one dial that ended with `outcome`.
    pub(crate) fn dial(&self, outcome: DialOutcome) {
        self.dials
            .get_or_create(&[("outcome", outcome.label())])
            .inc();
    }

    /// Adds `bytes` of a message of `message_type` (Go's `pkg_Type`, e.g. `p2p_PexRequest`).
    pub(crate) fn message(&self, sent: bool, message_type: &'static str, bytes: u64) {
        let f = if sent {
            &self.message_send_bytes
        } else {
            &self.message_receive_bytes
        };
        f.get_or_create(&[("message_type", message_type)])
            .inc_by(bytes);
    }

    /// Counts one PEX message (`PexRequest` or `PexAddrs`).
    pub(crate) fn pex_message(&self, sent: bool, message_type: &'static str) {
        let direction = if sent { "sent" } else { "received" };
        self.pex_messages
            .get_or_create(&[("direction", direction), ("message_type", message_type)])
            .inc();
    }

    /// Sets the figures of the node-wide budget of `direction` (`send`, `recv`) from its
    /// running totals; `None`: there is none.
    pub(crate) fn set_bandwidth(
        &self,
        direction: &'static str,
        stats: Option<mukan_mconn::BudgetStats>,
    ) {
        let labels = [("direction", direction)];
        let _one_at_a_time = self.bandwidth_scrape.lock();
        let Some(stats) = stats else {
            self.bandwidth_budget.get_or_create(&labels).set(0);
            return;
        };
        self.bandwidth_budget
            .get_or_create(&labels)
            .set(i64::try_from(stats.rate).unwrap_or(i64::MAX));
        let used = self.bandwidth_used.get_or_create(&labels);
        used.inc_by(stats.used.saturating_sub(used.get()));
        let throttled = self.bandwidth_throttled.get_or_create(&labels);
        let secs = stats.throttled.as_secs_f64();
        if secs > throttled.get() {
            throttled.inc_by(secs - throttled.get());
        }
    }

    /// Sets the address book's sizes.
    pub(crate) fn set_addr_book(&self, new: usize, old: usize) {
        for (b, n) in [("new", new), ("old", old)] {
            self.addr_book_size
                .get_or_create(&[("bucket_type", b)])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// Feeds the node's counters from the switch: one of its observers.
pub(crate) struct MetricsObserver {
    metrics: Arc<Metrics>,
    /// The channels of our reactors: the only ones a peer's messages travel on.
    channels: Vec<u8>,
}

impl MetricsObserver {
    /// Counts into `metrics` the traffic on `channels` (those of the registered reactors).
    pub(crate) fn new(metrics: Arc<Metrics>, channels: &[ChannelId]) -> Self {
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

    fn dial_finished(&self, _: &ParsedAddress, result: &Result<(), DialError>) {
        self.metrics.dial(DialOutcome::of(result));
    }

    /// The switch's refusals: the inbound limit with nobody to evict, a full netgroup, ….
    fn inbound_refused(&self, _: &dyn Peer, refusal: AdmissionRefusal) {
        self.metrics.inbound_refused(refusal.label());
    }

    /// The transport's refusals for lack of room (other failed upgrades are not counted
    /// here).
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

/// One peer's counters. Byte counts are message sizes, as in Go (not wire bytes).
struct PeerMetrics {
    metrics: Arc<Metrics>,
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
    ];

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

    /// The type of the family a sample belongs to (`x_total` is in family `x`).
    pub(crate) fn family_type<'a>(
        types: &'a HashMap<String, String>,
        sample: &str,
    ) -> Option<&'a String> {
        types
            .get(sample)
            .or_else(|| types.get(sample.strip_suffix("_total")?))
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
                let family = if types.contains_key(&name) {
                    name
                } else {
                    name.strip_suffix("_total").unwrap_or(&name).to_owned()
                };
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

    /// A peer announcing channels 0x00 and 0x20, as the observer sees it.
    pub(crate) fn peer(id: u8) -> mukan_reactor_api::testing::FakePeer {
        mukan_reactor_api::testing::FakePeer::new(
            mukan_reactor_api::NodeId([id; 20]),
            vec![ChannelId(0x00), ChannelId(0x20)],
        )
    }

    /// Feeds every metric through the observer (and the scrape-time setters).
    pub(crate) fn exercise(m: &Arc<Metrics>) {
        let o = MetricsObserver::new(m.clone(), &[ChannelId(0x00), ChannelId(0x20)]);
        m.set_peers(2, 3);
        let p = peer(0xab);
        let id = p.id().to_string();
        let t = o.peer_connected(&p);
        t.sent(ChannelId(0x00), Some("p2p_PexRequest"), 10);
        t.received(ChannelId(0x00), Some("p2p_PexAddrs"), 20);
        t.sent(ChannelId(0x20), None, 5);
        m.peer_pending(&id, 4);
        m.set_addr_book(7, 1);
        let budget = mukan_mconn::Budget::new(
            std::num::NonZeroU64::MIN.saturating_add(999),
            std::time::Instant::now(),
        );
        m.set_bandwidth("send", Some(budget.stats(std::time::Instant::now())));
        m.set_bandwidth("recv", None);
        let target: ParsedAddress = format!("{id}@1.2.3.4:5").parse().unwrap();
        for _ in 0..3 {
            o.dial_finished(&target, &Ok(()));
        }
        let gone = peer(0xcd);
        let _ = o.peer_connected(&gone);
        o.peer_stopped(
            &gone,
            &StopReason::Timeout(mukan_reactor_api::TimeoutKind::Pong),
        );
    }

    #[test]
    fn bandwidth_figures_follow_the_budgets_totals() {
        let m = Metrics::new("cometbft", "c");
        let mut stats = mukan_mconn::BudgetStats::default();
        stats.rate = 10_000_000;
        stats.used = 1_000;
        stats.throttled = std::time::Duration::from_millis(1_500);
        m.set_bandwidth("recv", Some(stats));
        stats.used = 5_000;
        stats.throttled = std::time::Duration::from_millis(2_500);
        m.set_bandwidth("recv", Some(stats));
        m.set_bandwidth("recv", Some(stats));
        m.set_bandwidth("send", None);
        let (_, samples) = parse(&m.encode());
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

    #[test]
    fn every_documented_metric_is_scraped_with_its_type_and_labels() {
        let m = Arc::new(Metrics::new("cometbft", "test-chain-x"));
        exercise(&m);
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
    }

    #[test]
    fn names_and_types_match_a_real_cometbft_node() {
        // What a v0.38.25 node served (node/tests/data/rpc/v0.38.25-p2p-metrics.txt).
        let go = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/rpc/v0.38.25-p2p-metrics.txt"),
        )
        .unwrap();
        let m = Arc::new(Metrics::new("cometbft", "c"));
        exercise(&m);
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
        let m = Arc::new(Metrics::new("ns", "c"));
        let o = MetricsObserver::new(m.clone(), &[ChannelId(0x30), ChannelId(0x31)]);
        let p = mukan_reactor_api::testing::FakePeer::new(
            mukan_reactor_api::NodeId([0xef; 20]),
            vec![ChannelId(0x30)],
        );
        let id = p.id().to_string();
        let t = o.peer_connected(&p);
        for bytes in [100, 150] {
            t.sent(ChannelId(0x30), None, bytes);
        }
        // A channel of ours the peer did not announce is counted too.
        t.received(ChannelId(0x31), None, 7);
        m.peer_pending(&id, 1);
        let text = m.encode();
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
        let text = m.encode();
        assert!(!text.contains(&id), "{text}");
        assert!(
            text.contains("ns_p2p_peer_stops_total{chain_id=\"c\",reason=\"closed_by_peer\"} 1")
        );
        // What races a removal (a scrape's pending count, a late send) creates nothing.
        m.peer_pending(&id, 3);
        t.sent(ChannelId(0x30), None, 7);
        assert!(!m.encode().contains(&id));
        // Two connections of one ID (a replacement): the series live until the last ends,
        // and both connections count into them.
        let first = o.peer_connected(&p);
        let second = o.peer_connected(&p);
        first.sent(ChannelId(0x30), None, 1);
        o.peer_stopped(&p, &StopReason::Graceful);
        second.sent(ChannelId(0x30), None, 2);
        let text = m.encode();
        assert!(
            text.contains(&format!(
                "ns_p2p_peer_send_bytes_total{{chain_id=\"c\",peer_id=\"{id}\",chID=\"0x30\"}} 3"
            )),
            "{text}"
        );
        o.peer_stopped(&p, &StopReason::Graceful);
        assert!(!m.encode().contains(&id));
    }
}
