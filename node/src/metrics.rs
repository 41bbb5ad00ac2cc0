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
//!
//! Per-peer series are removed when the peer goes, so churn does not grow memory.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::borrow::Cow;

type L1 = [(&'static str, String); 1];
type L2 = [(&'static str, String); 2];

/// Every metric of the node.
pub(crate) struct Metrics {
    registry: Registry,
    peers: Gauge,
    peer_receive_bytes: Family<L2, Counter>,
    peer_send_bytes: Family<L2, Counter>,
    peer_pending_send_bytes: Family<L1, Gauge>,
    message_receive_bytes: Family<L1, Counter>,
    message_send_bytes: Family<L1, Counter>,
    peers_by_direction: Family<L1, Gauge>,
    addr_book_size: Family<L1, Gauge>,
    dials: Family<L1, Counter>,
    peer_stops: Family<L1, Counter>,
    pex_messages: Family<L2, Counter>,
    /// Connections announced per peer ID (`peer_started` minus `peer_stopped`). A per-peer
    /// series is only created for an ID in here, and only while this lock is held, so that
    /// once a peer's series are removed nothing racing its removal (a scrape, a late send)
    /// brings them back.
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
        let message_receive_bytes = Family::<L1, Counter>::default();
        r.register(
            "message_receive_bytes",
            "Number of bytes of each message type received.",
            message_receive_bytes.clone(),
        );
        let message_send_bytes = Family::<L1, Counter>::default();
        r.register(
            "message_send_bytes",
            "Number of bytes of each message type sent.",
            message_send_bytes.clone(),
        );
        let peers_by_direction = Family::<L1, Gauge>::default();
        r.register(
            "peers_by_direction",
            "Number of peers that dialed us (inbound) and that we dialed (outbound).",
            peers_by_direction.clone(),
        );
        let addr_book_size = Family::<L1, Gauge>::default();
        r.register(
            "addr_book_size",
            "Addresses in the address book, by bucket type (new, old).",
            addr_book_size.clone(),
        );
        let dials = Family::<L1, Counter>::default();
        r.register("dials", "Outbound dials, by outcome.", dials.clone());
        let peer_stops = Family::<L1, Counter>::default();
        r.register(
            "peer_stops",
            "Peers disconnected, by reason.",
            peer_stops.clone(),
        );
        let pex_messages = Family::<L2, Counter>::default();
        r.register(
            "pex_messages",
            "PEX messages sent and received, by type.",
            pex_messages.clone(),
        );
        // Series that exist from the start, so that dashboards see zeros, not gaps.
        for d in ["inbound", "outbound"] {
            peers_by_direction
                .get_or_create(&[("direction", d.into())])
                .set(0);
        }
        for b in ["new", "old"] {
            addr_book_size
                .get_or_create(&[("bucket_type", b.into())])
                .set(0);
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
            pex_messages,
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
            .get_or_create(&[("direction", "inbound".into())])
            .set(g(inbound));
        self.peers_by_direction
            .get_or_create(&[("direction", "outbound".into())])
            .set(g(outbound));
    }

    /// A connection of `peer_id` begins: its series may be created from now on.
    pub(crate) fn peer_started(&self, peer_id: &str) {
        *self.live.lock().entry(peer_id.to_owned()).or_insert(0) += 1;
    }

    /// Counts `bytes` of one message sent to or received from `peer_id` on `ch` (nothing
    /// for a peer that is not connected).
    pub(crate) fn peer_bytes(&self, peer_id: &str, ch: u8, sent: bool, bytes: u64) {
        let family = if sent {
            &self.peer_send_bytes
        } else {
            &self.peer_receive_bytes
        };
        let live = self.live.lock();
        if live.contains_key(peer_id) {
            family
                .get_or_create(&[("peer_id", peer_id.to_owned()), ("chID", channel_label(ch))])
                .inc_by(bytes);
        }
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

    /// A connection of `peer_id` ended: counts why, and forgets the peer's series once its
    /// last connection is gone.
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
        self.peer_stops
            .get_or_create(&[("reason", reason.into())])
            .inc();
    }

    /// Brings the dial counter of `outcome` up to `total` (the switch keeps running totals).
    pub(crate) fn dials_total(&self, outcome: &'static str, total: u64) {
        let c = self.dials.get_or_create(&[("outcome", outcome.into())]);
        let now = c.get();
        if total > now {
            c.inc_by(total - now);
        }
    }

    /// Adds `bytes` of a message of `message_type` (Go's `pkg_Type`, e.g. `p2p_PexRequest`).
    pub(crate) fn message(&self, sent: bool, message_type: &'static str, bytes: u64) {
        let f = if sent {
            &self.message_send_bytes
        } else {
            &self.message_receive_bytes
        };
        f.get_or_create(&[("message_type", message_type.into())])
            .inc_by(bytes);
    }

    /// Counts one PEX message (`request` or `addrs`).
    pub(crate) fn pex_message(&self, sent: bool, message_type: &'static str) {
        let direction = if sent { "sent" } else { "received" };
        self.pex_messages
            .get_or_create(&[
                ("direction", direction.into()),
                ("message_type", message_type.into()),
            ])
            .inc();
    }

    /// Sets the address book's sizes.
    pub(crate) fn set_addr_book(&self, new: usize, old: usize) {
        for (b, n) in [("new", new), ("old", old)] {
            self.addr_book_size
                .get_or_create(&[("bucket_type", b.into())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
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
        (
            "p2p_pex_messages_total",
            "counter",
            &["direction", "message_type"],
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

    pub(crate) fn exercise(m: &Metrics) {
        m.set_peers(2, 3);
        let id = "ab".repeat(20);
        m.peer_started(&id);
        m.peer_bytes(&id, 0x00, true, 10);
        m.peer_bytes(&id, 0x00, false, 20);
        m.peer_bytes(&id, 0x20, true, 5);
        m.peer_bytes(&id, 0x20, false, 0);
        m.peer_pending(&id, 4);
        m.message(true, "p2p_PexRequest", 2);
        m.message(false, "p2p_PexAddrs", 61);
        m.set_addr_book(7, 1);
        m.dials_total("connected", 3);
        m.dials_total("connected", 2);
        m.peer_stopped(&"cd".repeat(20), &[0], "timeout");
        m.pex_message(true, "request");
    }

    #[test]
    fn every_documented_metric_is_scraped_with_its_type_and_labels() {
        let m = Metrics::new("cometbft", "test-chain-x");
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
        let m = Metrics::new("cometbft", "c");
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
        let m = Metrics::new("ns", "c");
        let id = "ef".repeat(20);
        m.peer_started(&id);
        for bytes in [100, 150] {
            m.peer_bytes(&id, 0x30, true, bytes);
        }
        m.peer_pending(&id, 1);
        let text = m.encode();
        assert!(
            text.contains(&format!(
                "ns_p2p_peer_send_bytes_total{{chain_id=\"c\",peer_id=\"{id}\",chID=\"0x30\"}} 250"
            )),
            "{text}"
        );
        m.peer_stopped(&id, &[0x30], "closed_by_peer");
        let text = m.encode();
        assert!(!text.contains(&id), "{text}");
        assert!(
            text.contains("ns_p2p_peer_stops_total{chain_id=\"c\",reason=\"closed_by_peer\"} 1")
        );
        // What races a removal (a scrape's pending count, a late send) creates nothing.
        m.peer_pending(&id, 3);
        m.peer_bytes(&id, 0x30, true, 7);
        assert!(!m.encode().contains(&id));
        // Two connections of one ID (a replacement): the series live until the last ends.
        m.peer_started(&id);
        m.peer_started(&id);
        m.peer_bytes(&id, 0x30, true, 1);
        m.peer_stopped(&id, &[0x30], "graceful");
        assert!(m.encode().contains(&id));
        m.peer_stopped(&id, &[0x30], "graceful");
        assert!(!m.encode().contains(&id));
    }
}
