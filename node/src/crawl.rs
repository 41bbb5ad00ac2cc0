//! `crawl`: a one-shot crawl over the p2p protocol itself. For each address: dial, secret
//! connection, `NodeInfo` exchange (that gives ID, moniker, version, network, channels and the
//! handshake latency), one PEX request, the addresses of the answer queued, disconnect. No
//! RPC is needed, so nodes whose RPC is closed are found too.
//!
//! The crawler has its own throw-away key and does not listen; it announces `0.0.0.0:0`,
//! which PEX never stores, so it does not end up in anyone's address book.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mukan_node::NodeBuilder;
use mukan_pex::{PexMessage, channel_descriptor};
use mukan_reactor_api::{
    ChannelId, InboxItem, ManagedPeer, NetAddress, NodeId, NodeInfo, ParsedAddress, PeerConfig,
    Transport, TransportError,
};
use mukan_transport::TcpTransport;
use serde_json::json;
use tokio::task::JoinSet;

/// Dials in flight at once.
const CONCURRENCY: usize = 32;
/// Time a node has to answer the PEX request.
const PEX_WAIT: Duration = Duration::from_secs(5);
/// Time a node has to answer the second PEX request.
const SECOND_WAIT: Duration = Duration::from_secs(2);
/// The most addresses crawled in one run.
pub(crate) const MAX_NODES: usize = 10_000;

/// What to crawl.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Where to start.
    pub(crate) seeds: Vec<ParsedAddress>,
    /// The chain; `None`: the network of the first node that answers.
    pub(crate) chain_id: Option<String>,
    /// Stop starting new dials after this long.
    pub(crate) timeout: Duration,
    /// Also follow non-routable addresses (loopback, private, link-local…) learned from PEX
    /// (`--allow-private`). They are followed anyway when a seed given is itself such an
    /// address (a local or private network); the seeds given are always dialed.
    pub(crate) allow_private: bool,
    /// Nodes an earlier crawl reached, visited after the seeds whether or not an answer
    /// lists them (a PEX answer is a random part of a book, so one crawl can miss a node
    /// that the last one saw; and a node that left shows as unreachable instead of
    /// vanishing). Deduplicated by ID with the seeds and bounded like every other address.
    pub(crate) known: Vec<NetAddress>,
    /// Where each node is sent as soon as it is reached or given up (the watch loop writes
    /// them to its database while the crawl goes on). Bounded: the crawl waits for room.
    pub(crate) sink: Option<tokio::sync::mpsc::Sender<Found>>,
}

/// One node of a crawl, reached or not.
#[derive(Clone, Debug)]
pub(crate) enum Found {
    /// It completed the handshake.
    Reached(Box<Reached>),
    /// It could not be reached.
    Unreached(Unreached),
}

/// An address that could not be reached.
#[derive(Clone, Debug)]
pub(crate) struct Unreached {
    /// The address (`id@host:port`).
    pub(crate) address: String,
    /// The node ID of the address.
    pub(crate) id: NodeId,
    /// Why.
    pub(crate) error: String,
}

/// A node that completed the handshake.
#[derive(Clone, Debug)]
pub(crate) struct Reached {
    /// The address dialed.
    pub(crate) address: NetAddress,
    /// What it announced.
    pub(crate) info: NodeInfo,
    /// Dial + secret connection + `NodeInfo` exchange.
    pub(crate) latency: Duration,
    /// Addresses it gave in its PEX answer (`None`: it did not answer in time).
    pub(crate) shared: Option<usize>,
    /// The addresses of its PEX answer (the edges of the network graph). Bounded by the PEX
    /// decoder's limit on one message.
    pub(crate) listed: Vec<NetAddress>,
}

/// The result of a crawl.
#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    /// The network crawled.
    pub(crate) network: String,
    /// Nodes reached, in the order they were reached.
    pub(crate) reachable: Vec<Reached>,
    /// Addresses that could not be reached, with why.
    pub(crate) unreachable: Vec<Unreached>,
}

/// The crawler's transport, assembled by [`NodeBuilder`]: our `NodeInfo` (the PEX channel, an
/// address nobody dials) checked as a node's is, one connection per node but many nodes per IP.
fn transport(key: &Arc<mukan_node_key::NodeKey>, network: &str) -> Result<TcpTransport, String> {
    NodeBuilder::new(key.clone(), network)
        .moniker("mukan-crawler")
        .version(crate::VERSION)
        .external_address("tcp://0.0.0.0:0")
        .map_switch_config(|c| c.allow_duplicate_ip = true)
        .build_transport(&[channel_descriptor()], |p| {
            TcpTransport::new(p.key, p.node_info, p.config)
        })
        .map_err(|e| e.to_string())
}

fn peer_config() -> PeerConfig {
    PeerConfig::new(vec![channel_descriptor()])
}

/// The network a node is on, learned from the refusal of a handshake on another network.
fn network_of(e: &TransportError) -> Option<String> {
    match e {
        TransportError::Rejected {
            detail:
                mukan_reactor_api::RejectDetail::Incompatible(
                    mukan_reactor_api::IncompatibleError::Network { got, .. },
                ),
            ..
        } => Some(got.clone()),
        _ => None,
    }
}

async fn resolve(a: &ParsedAddress) -> Result<NetAddress, String> {
    match a {
        ParsedAddress::Resolved(a) => Ok(*a),
        ParsedAddress::Unresolved(u) => {
            let mut it = tokio::net::lookup_host(u.host_port())
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", u.host))?;
            it.next()
                .map(|s| u.with_ip(s.ip()))
                .ok_or_else(|| format!("{} did not resolve", u.host))
        }
    }
}

/// A node reached, or why it was not reached.
type VisitResult = Result<Reached, String>;

/// Dials `addr`, asks for addresses, disconnects.
async fn visit(t: TcpTransport, addr: NetAddress) -> VisitResult {
    let started = Instant::now();
    let peer = t
        .dial(addr, peer_config())
        .await
        .map_err(|e| e.to_string())?;
    let latency = started.elapsed();
    let info = peer.node_info().clone();
    let mut listed = Vec::new();
    let shared = match ask(peer.as_ref()).await {
        Ok(list) => {
            let n = list.len();
            listed = list;
            Some(n)
        }
        Err(e) => {
            tracing::debug!(target: "mukan_p2p::crawl", "{addr}: no PEX answer: {e}");
            None
        }
    };
    peer.stop();
    Ok(Reached {
        address: addr,
        info,
        latency,
        shared,
        listed,
    })
}

/// Waits for a `PexAddrs` on `inbox`.
async fn answer(
    inbox: &mut Box<dyn mukan_reactor_api::PeerInbox>,
) -> Result<Vec<NetAddress>, String> {
    while let Some(item) = inbox.recv().await {
        match item {
            InboxItem::Received {
                channel: ChannelId(0x00),
                message,
                ..
            } => match PexMessage::decode(&message) {
                Ok(PexMessage::Addrs(list)) => return Ok(list),
                Ok(PexMessage::Request) => {}
                Err(e) => return Err(format!("bad PEX message: {e}")),
            },
            InboxItem::Received { .. } => {}
            InboxItem::Stopped(reason) => return Err(format!("disconnected: {reason}")),
            _ => {}
        }
    }
    Err("disconnected".to_owned())
}

/// Asks for addresses twice: an answer is a random part of the node's book, and CometBFT
/// (Go and ours) answers the first two requests of a peer whatever their timing. A seed
/// disconnects after its first answer; the first answer is then all there is.
async fn ask(peer: &dyn ManagedPeer) -> Result<Vec<NetAddress>, String> {
    let mut inbox = peer.start().map_err(|e| e.to_string())?;
    let request = || {
        peer.try_send(ChannelId(0x00), PexMessage::Request.encode().into())
            .map_err(|e| e.to_string())
    };
    request()?;
    let mut list = tokio::time::timeout(PEX_WAIT, answer(&mut inbox))
        .await
        .map_err(|_| "no answer".to_owned())??;
    if request().is_ok() {
        if let Ok(Ok(more)) = tokio::time::timeout(SECOND_WAIT, answer(&mut inbox)).await {
            let known: HashSet<NodeId> = list.iter().map(NetAddress::id).collect();
            list.extend(more.into_iter().filter(|a| !known.contains(&a.id())));
        }
    }
    Ok(list)
}

/// Why a crawl without a chain ID could not start.
pub(crate) const NO_NETWORK: &str =
    "no seed answered the handshake (pass --chain-id to crawl anyway)";

/// The network of the first of `seeds` that answers a handshake on a made-up network (its
/// refusal names its own).
async fn learn_network(
    key: &Arc<mukan_node_key::NodeKey>,
    seeds: &VecDeque<NetAddress>,
) -> Option<String> {
    let probe = match transport(key, "mukan-crawler-probe") {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(target: "mukan_p2p::crawl", "cannot build the probe: {e}");
            return None;
        }
    };
    let mut found = None;
    for a in seeds {
        let r = tokio::time::timeout(Duration::from_secs(10), probe.dial(*a, peer_config())).await;
        match r {
            Ok(Err(e)) => {
                if let Some(n) = network_of(&e) {
                    found = Some(n);
                    break;
                }
            }
            Ok(Ok(p)) => {
                // Only a node on our made-up network would accept.
                p.stop();
            }
            Err(_) => {}
        }
    }
    probe.close();
    found
}

/// The network of the first of `seeds` that answers (`None`: none did).
pub(crate) async fn network_of_seeds(seeds: &[ParsedAddress]) -> Option<String> {
    let key = Arc::new(mukan_node_key::NodeKey::generate_os());
    let mut queue = VecDeque::new();
    for s in seeds {
        if let Ok(a) = resolve(s).await {
            queue.push_back(a);
        }
    }
    learn_network(&key, &queue).await
}

/// Crawls from `opts.seeds`.
pub(crate) async fn crawl(opts: Options) -> Result<Report, String> {
    let key = Arc::new(mukan_node_key::NodeKey::generate_os());
    let mut report = Report::default();
    let mut queue: VecDeque<NetAddress> = VecDeque::new();
    let mut seen_ids: HashSet<NodeId> = HashSet::new();
    let sink = opts.sink.clone();
    let found = async |report: &mut Report, f: Found| {
        if let Some(sink) = &sink {
            // A closed sink (its writer failed) ends nothing here: the report still holds it.
            let _ = sink.send(f.clone()).await;
        }
        match f {
            Found::Reached(r) => report.reachable.push(*r),
            Found::Unreached(u) => report.unreachable.push(u),
        }
    };
    for s in &opts.seeds {
        match resolve(s).await {
            Ok(a) => {
                if seen_ids.insert(a.id()) {
                    queue.push_back(a);
                }
            }
            Err(e) => {
                let id = match s {
                    ParsedAddress::Resolved(a) => a.id(),
                    ParsedAddress::Unresolved(u) => u.id,
                };
                let u = Unreached {
                    address: s.to_string(),
                    id,
                    error: e,
                };
                found(&mut report, Found::Unreached(u)).await;
            }
        }
    }
    let allow_private = opts.allow_private || private_network(queue.iter());
    for a in &opts.known {
        if seen_ids.len() < MAX_NODES && a.id() != key.node_id() && seen_ids.insert(a.id()) {
            queue.push_back(*a);
        }
    }
    let deadline = Instant::now() + opts.timeout;

    // The network: given, or learned from the first node that answers.
    let network = match opts.chain_id {
        Some(n) => n,
        None => learn_network(&key, &queue).await.ok_or(NO_NETWORK)?,
    };
    report.network.clone_from(&network);
    let t = transport(&key, &network)?;

    // An address that failed is tried once more after the others (a busy node may miss a
    // handshake deadline); its second answer is the one recorded.
    let mut retry: VecDeque<(NetAddress, String)> = VecDeque::new();
    let mut retrying = false;
    let mut tasks: JoinSet<(NetAddress, bool, VisitResult)> = JoinSet::new();
    loop {
        retrying |= queue.is_empty() && tasks.is_empty();
        while tasks.len() < CONCURRENCY && Instant::now() < deadline {
            let (addr, last_try) = match queue.pop_front() {
                Some(a) => (a, false),
                None if retrying => match retry.pop_front() {
                    Some((a, _)) => (a, true),
                    None => break,
                },
                None => break,
            };
            let t = t.clone();
            let left = deadline.saturating_duration_since(Instant::now())
                + PEX_WAIT
                + Duration::from_secs(10);
            tasks.spawn(async move {
                let r = tokio::time::timeout(left, visit(t, addr))
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()));
                (addr, last_try, r)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let Ok((addr, last_try, result)) = joined else {
            continue;
        };
        match result {
            Ok(reached) => {
                for a in &reached.listed {
                    if seen_ids.len() < MAX_NODES
                        && a.id() != key.node_id()
                        && followed(a, allow_private)
                        && seen_ids.insert(a.id())
                    {
                        queue.push_back(*a);
                    }
                }
                found(&mut report, Found::Reached(Box::new(reached))).await;
            }
            Err(error) if !last_try => retry.push_back((addr, error)),
            Err(error) => {
                let u = Unreached {
                    address: addr.to_string(),
                    id: addr.id(),
                    error,
                };
                found(&mut report, Found::Unreached(u)).await;
            }
        }
    }
    for a in queue {
        let u = Unreached {
            address: a.to_string(),
            id: a.id(),
            error: "not tried before the timeout".into(),
        };
        found(&mut report, Found::Unreached(u)).await;
    }
    for (a, error) in retry {
        let u = Unreached {
            address: a.to_string(),
            id: a.id(),
            error,
        };
        found(&mut report, Found::Unreached(u)).await;
    }
    t.close();
    Ok(report)
}

impl Report {
    /// The graph of this crawl: every node reached or not, and who listed whom. The seeds it
    /// started from are ours.
    pub(crate) fn to_graph(&self) -> crate::graph::Graph {
        let mut nodes: Vec<crate::graph::GraphNode> = self
            .reachable
            .iter()
            .map(|r| crate::graph::GraphNode {
                id: r.info.id.clone(),
                address: r.address.to_string(),
                moniker: r.info.moniker.clone(),
                version: r.info.version.clone(),
                reachable: true,
                latency_ms: Some((r.latency.as_secs_f64() * 1e4).round() / 10.0),
                ours: false,
            })
            .collect();
        nodes.extend(self.unreachable.iter().map(|u| crate::graph::GraphNode {
            id: u.id.to_string(),
            address: u.address.clone(),
            ..crate::graph::GraphNode::default()
        }));
        let edges = self
            .reachable
            .iter()
            .flat_map(|r| {
                r.listed
                    .iter()
                    .map(|a| (r.info.id.clone(), a.id().to_string()))
            })
            .collect();
        let mut g = crate::graph::Graph {
            chain_id: self.network.clone(),
            source: "crawl".into(),
            taken_at: 0,
            nodes,
            edges,
        };
        g.prune_edges();
        g
    }

    /// `id@ip:port,…` of every reachable node.
    pub(crate) fn persistent_peers(&self) -> String {
        self.reachable
            .iter()
            .map(|r| r.address.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The report as JSON.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let reachable: Vec<_> = self
            .reachable
            .iter()
            .map(|r| {
                json!({
                    "id": r.info.id,
                    "address": r.address.to_string(),
                    "moniker": r.info.moniker,
                    "version": r.info.version,
                    "network": r.info.network,
                    "channels": hex::encode_upper(r.info.channels.iter().map(|c| c.0).collect::<Vec<u8>>()),
                    "listen_addr": r.info.listen_addr,
                    "rpc_address": r.info.other.rpc_address,
                    "handshake_latency_ms": (r.latency.as_secs_f64() * 1e3 * 10.0).round() / 10.0,
                    "addresses_shared": r.shared,
                    "listed": r.listed.iter().map(|a| a.id().to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let unreachable: Vec<_> = self
            .unreachable
            .iter()
            .map(|u| json!({"id": u.id.to_string(), "address": u.address, "error": u.error}))
            .collect();
        json!({
            "network": self.network,
            "reachable": reachable,
            "unreachable": unreachable,
            "persistent_peers": self.persistent_peers(),
        })
    }

    /// The report as a table.
    pub(crate) fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "network {}: {} reachable, {} unreachable\n",
            self.network,
            self.reachable.len(),
            self.unreachable.len()
        );
        let _ = writeln!(
            s,
            "{:<40}  {:<21}  {:<16}  {:<10}  {:<20}  {:>8}",
            "ID", "ADDRESS", "MONIKER", "VERSION", "CHANNELS", "LATENCY"
        );
        for r in &self.reachable {
            let channels =
                hex::encode_upper(r.info.channels.iter().map(|c| c.0).collect::<Vec<u8>>());
            let _ = writeln!(
                s,
                "{:<40}  {:<21}  {:<16}  {:<10}  {:<20}  {:>6.1}ms",
                r.info.id,
                r.address.dial_string(),
                r.info.moniker,
                r.info.version,
                channels,
                r.latency.as_secs_f64() * 1e3
            );
        }
        if !self.unreachable.is_empty() {
            let _ = writeln!(s, "\nunreachable:");
            for u in &self.unreachable {
                let _ = writeln!(s, "  {}  {}", u.address, u.error);
            }
        }
        let _ = write!(s, "\npersistent_peers = \"{}\"", self.persistent_peers());
        s
    }
}

/// A seed in private space means a private network: what it tells us is followed.
fn private_network<'a>(mut seeds: impl Iterator<Item = &'a NetAddress>) -> bool {
    seeds.any(|a| !a.routable())
}

/// Whether an address learned from PEX is crawled: routable ones always, the others only on
/// a private network or with `--allow-private`.
fn followed(a: &NetAddress, allow_private: bool) -> bool {
    allow_private || a.routable()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::run::tests::{loopback_home, setup};
    use crate::run::{Tuning, start};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crawl_finds_every_node_from_one_address_and_reports_the_dead_one() {
        let dir = tempfile::tempdir().unwrap();
        let tuning = Tuning {
            ensure_peers_period: Some(Duration::from_secs(1)),
        };
        let first = start(
            &[setup(
                &loopback_home(dir.path(), "n0", "crawl-chain"),
                &Overrides::default(),
            )],
            &tuning,
        )
        .await
        .unwrap();
        let first_addr = format!("{}@{}", first.main.node_info.id, first.main.p2p_addr);
        let mut nodes = vec![first];
        for i in 1..4 {
            let o = Overrides {
                p2p_persistent_peers: Some(first_addr.clone()),
                ..Overrides::default()
            };
            nodes.push(
                start(
                    &[setup(
                        &loopback_home(dir.path(), &format!("n{i}"), "crawl-chain"),
                        &o,
                    )],
                    &tuning,
                )
                .await
                .unwrap(),
            );
        }
        // Wait until the first node knows the others (they dialed it, PEX told it).
        for _ in 0..200 {
            if nodes[0].main.book.lock().addresses().count() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dead = format!("{}@127.0.0.1:1", "ab".repeat(20));
        let report = crawl(Options {
            seeds: vec![first_addr.parse().unwrap(), dead.parse().unwrap()],
            chain_id: None,
            timeout: Duration::from_secs(20),
            allow_private: true,
            known: Vec::new(),
            sink: None,
        })
        .await
        .unwrap();
        assert_eq!(report.network, "crawl-chain");
        let mut monikers: Vec<&str> = report
            .reachable
            .iter()
            .map(|r| r.info.moniker.as_str())
            .collect();
        monikers.sort_unstable();
        assert_eq!(monikers, ["n0", "n1", "n2", "n3"], "{}", report.to_table());
        for (r, n) in report.reachable.iter().filter_map(|r| {
            nodes
                .iter()
                .find(|n| n.main.node_info.id == r.info.id)
                .map(|n| (r, n))
        }) {
            assert_eq!(r.info.moniker, n.main.node_info.moniker);
        }
        assert!(
            report.unreachable.iter().any(|u| u.address == dead),
            "{:?}",
            report.unreachable
        );
        let json = report.to_json();
        assert_eq!(json["reachable"].as_array().unwrap().len(), 4);
        assert_eq!(report.persistent_peers().split(',').count(), 4);
        assert!(report.to_table().contains("persistent_peers = \""));

        // A node no book lists is found only through what an earlier crawl knew; a known
        // node that is gone is reported, not forgotten.
        let lonely = start(
            &[setup(
                &loopback_home(dir.path(), "lonely", "crawl-chain"),
                &Overrides::default(),
            )],
            &tuning,
        )
        .await
        .unwrap();
        let lonely_addr: NetAddress =
            format!("{}@{}", lonely.main.node_info.id, lonely.main.p2p_addr)
                .parse()
                .unwrap();
        let gone: NetAddress = format!("{}@127.0.0.1:1", "cd".repeat(20)).parse().unwrap();
        let with_history = |known: Vec<NetAddress>| {
            crawl(Options {
                seeds: vec![first_addr.parse().unwrap()],
                chain_id: Some("crawl-chain".into()),
                timeout: Duration::from_secs(20),
                allow_private: false,
                known,
                sink: None,
            })
        };
        let without = with_history(Vec::new()).await.unwrap();
        assert_eq!(without.reachable.len(), 4, "{}", without.to_table());
        let with = with_history(vec![lonely_addr, gone]).await.unwrap();
        let mut monikers: Vec<&str> = with
            .reachable
            .iter()
            .map(|r| r.info.moniker.as_str())
            .collect();
        monikers.sort_unstable();
        assert_eq!(monikers, ["lonely", "n0", "n1", "n2", "n3"]);
        assert!(
            with.unreachable.iter().any(|u| u.id == gone.id()),
            "{:?}",
            with.unreachable
        );
        lonely.stop().await.unwrap();
        for n in nodes {
            n.stop().await.unwrap();
        }
    }

    /// A crawl from public seeds skips loopback, private and link-local addresses learned
    /// from PEX unless `--allow-private`; a seed in private space allows them.
    #[test]
    fn private_addresses_learned_from_pex_are_skipped_unless_allowed() {
        let a = |s: &str| -> NetAddress { format!("{}@{s}", "ab".repeat(20)).parse().unwrap() };
        let public = [a("8.8.8.8:26656"), a("1.2.3.4:26656")];
        assert!(!private_network(public.iter()));
        for inside in [
            "127.0.0.1:26656",
            "10.1.2.3:26656",
            "192.168.1.1:26656",
            "169.254.1.1:26656",
        ] {
            assert!(!followed(&a(inside), false), "{inside}");
            assert!(followed(&a(inside), true), "{inside}");
            assert!(private_network([public[0], a(inside)].iter()), "{inside}");
        }
        assert!(followed(&a("9.9.9.9:26656"), false));
    }
}
