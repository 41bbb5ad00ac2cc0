//! The map of a running node (`start`, `seed`): the node itself (ours), the peers it is
//! connected to (reachable, with their versions) and the addresses of its book (reachable
//! when in the book's old buckets, i.e. connected once; hollow when only heard of). The
//! history is a sample of the node's peers and book taken at most once a minute while the
//! page is open, the last [`SAMPLES`] kept.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mukan_reactor_api::NodeInfo;
use mukan_switch::Switch;
use mukan_transport::TcpTransport;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::graph::{Graph, GraphNode};
use crate::store::CrawlSummary;
use crate::web::MapSource;

/// Samples kept.
pub(crate) const SAMPLES: usize = 60;
/// At most one sample per this long.
const SAMPLE_EVERY: Duration = Duration::from_secs(60);

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One node's map.
pub(crate) struct NodeMap {
    pub(crate) switch: Arc<Switch<TcpTransport>>,
    pub(crate) book: Arc<Mutex<mukan_addrbook::AddrBook>>,
    pub(crate) info: NodeInfo,
    pub(crate) p2p_addr: std::net::SocketAddr,
    pub(crate) seed_mode: bool,
    /// Peers never shown (`private_peer_ids`, unless `[rpc] show_private_peers`).
    hidden: HashSet<mukan_reactor_api::NodeId>,
    samples: Mutex<(Option<Instant>, VecDeque<CrawlSummary>, i64)>,
}

impl NodeMap {
    pub(crate) fn new(
        switch: Arc<Switch<TcpTransport>>,
        book: Arc<Mutex<mukan_addrbook::AddrBook>>,
        info: NodeInfo,
        p2p_addr: std::net::SocketAddr,
        seed_mode: bool,
        hidden: HashSet<mukan_reactor_api::NodeId>,
    ) -> Self {
        Self {
            switch,
            book,
            info,
            p2p_addr,
            seed_mode,
            hidden,
            samples: Mutex::new((None, VecDeque::new(), 0)),
        }
    }

    fn snapshot(&self) -> Graph {
        let me = GraphNode {
            id: self.info.id.clone(),
            address: format!("{}@{}", self.info.id, self.p2p_addr),
            moniker: self.info.moniker.clone(),
            version: self.info.version.clone(),
            reachable: true,
            latency_ms: None,
            ours: true,
        };
        let mut nodes = vec![me];
        let mut edges = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        seen.insert(self.info.id.clone());
        for p in self.switch.peer_infos() {
            if self.hidden.contains(&p.socket_addr.id()) {
                continue;
            }
            let id = p.node_info.id.clone();
            if !seen.insert(id.clone()) {
                continue;
            }
            edges.push((self.info.id.clone(), id.clone()));
            nodes.push(GraphNode {
                address: format!("{id}@{}", p.socket_addr),
                id,
                moniker: p.node_info.moniker.clone(),
                version: p.node_info.version.clone(),
                reachable: true,
                latency_ms: None,
                ours: false,
            });
        }
        let book: Vec<(mukan_reactor_api::NetAddress, bool)> = {
            let b = self.book.lock();
            b.addresses()
                .filter(|a| !self.hidden.contains(&a.id()))
                .map(|a| {
                    let old = matches!(
                        b.buckets_of(&a.id()),
                        Some((mukan_addrbook::BucketKind::Old, _))
                    );
                    (a, old)
                })
                .collect()
        };
        for (a, old) in book {
            let id = a.id().to_string();
            if seen.insert(id.clone()) {
                nodes.push(GraphNode {
                    id,
                    address: a.to_string(),
                    reachable: old,
                    ..GraphNode::default()
                });
            }
        }
        let mut g = Graph {
            chain_id: self.info.network.clone(),
            source: if self.seed_mode { "seed" } else { "node" }.into(),
            taken_at: now_millis(),
            nodes,
            edges,
        };
        g.prune_edges();
        g
    }

    /// Takes a sample if the last one is old enough.
    fn sample(&self, g: &Graph) {
        let mut s = self.samples.lock();
        if s.0.is_some_and(|t| t.elapsed() < SAMPLE_EVERY) {
            return;
        }
        s.0 = Some(Instant::now());
        s.2 += 1;
        let mut versions = BTreeMap::new();
        for n in g
            .nodes
            .iter()
            .filter(|n| n.reachable && !n.version.is_empty())
        {
            *versions.entry(n.version.clone()).or_insert(0) += 1;
        }
        let summary = CrawlSummary {
            id: s.2,
            chain_id: g.chain_id.clone(),
            started_at: g.taken_at,
            finished_at: Some(g.taken_at),
            reachable: g.nodes.iter().filter(|n| n.reachable).count(),
            unreachable: g.nodes.iter().filter(|n| !n.reachable).count(),
            versions,
        };
        s.1.push_front(summary);
        s.1.truncate(SAMPLES);
    }
}

impl MapSource for NodeMap {
    fn kind(&self) -> &'static str {
        if self.seed_mode { "seed" } else { "node" }
    }

    fn chains(&self) -> Vec<String> {
        vec![self.info.network.clone()]
    }

    fn graph(&self, chain: &str) -> Result<Option<Graph>, String> {
        if chain != self.info.network {
            return Ok(None);
        }
        let g = self.snapshot();
        self.sample(&g);
        Ok(Some(g))
    }

    fn history(&self, chain: &str) -> Result<Vec<CrawlSummary>, String> {
        if chain != self.info.network {
            return Ok(Vec::new());
        }
        let g = self.snapshot();
        self.sample(&g);
        Ok(self.samples.lock().1.iter().cloned().collect())
    }

    fn book(&self, chain: &str) -> Option<Value> {
        if chain != self.info.network {
            return None;
        }
        let (new, old) = {
            let b = self.book.lock();
            (b.new_count(), b.old_count())
        };
        let stats = self.switch.stats();
        Some(json!({
            "new": new,
            "old": old,
            "peers_inbound": stats.peers_inbound,
            "peers_outbound": stats.peers_outbound,
        }))
    }
}

/// The maps of several chains (a multi-chain `seed` or `start`), one view per chain.
pub(crate) struct Chains(Vec<Arc<NodeMap>>);

impl Chains {
    /// The maps, in the order of the homes.
    pub(crate) fn new(maps: Vec<Arc<NodeMap>>) -> Self {
        Self(maps)
    }

    fn of(&self, chain: &str) -> Option<&Arc<NodeMap>> {
        self.0.iter().find(|m| m.info.network == chain)
    }
}

impl MapSource for Chains {
    /// `seed` when a chain runs in seed mode.
    fn kind(&self) -> &'static str {
        if self.0.iter().any(|m| m.seed_mode) {
            "seed"
        } else {
            "node"
        }
    }

    fn chains(&self) -> Vec<String> {
        self.0.iter().map(|m| m.info.network.clone()).collect()
    }

    fn graph(&self, chain: &str) -> Result<Option<Graph>, String> {
        self.of(chain).map_or(Ok(None), |m| m.graph(chain))
    }

    fn history(&self, chain: &str) -> Result<Vec<CrawlSummary>, String> {
        self.of(chain).map_or(Ok(Vec::new()), |m| m.history(chain))
    }

    fn book(&self, chain: &str) -> Option<Value> {
        self.of(chain).and_then(|m| m.book(chain))
    }
}
