//! `start` and `seed`: the nodes one or more homes describe (one chain each), each assembled
//! by [`NodeBuilder::from_home`] (a TCP transport, the switch, PEX and the address book), in
//! one runtime, with one RPC server and one metrics server for all of them, until SIGINT or
//! SIGTERM.
//!
//! Several homes (`--home A --home B`): each chain keeps its own home (node key,
//! `config.toml`, address book, listen address, seeds); the first home's `[rpc]` and
//! `[instrumentation]` settings (and log settings) are the process's. `/status`, `/net_info`
//! and `/peers` take `?chain=ID` (default: the first home's chain); every metric carries
//! `chain_id`; the map on `/` has a view per chain. Every home is read and checked, and every
//! listen address probed, before any node starts; a node that still fails to start stops
//! the ones started before it.
//!
//! Shutdown order: stop the HTTP servers; then each chain at once: note the anchors (the
//! outbound peers connected longest), stop the switch (stop accepting, flush and close every
//! peer, stop the reactors), save the address book and the anchors (`anchors.json` beside
//! the book, read and deleted at the next start, whose PEX dials them first).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use mukan_node::{BuildError, HomeBook, Node, NodeBuilder};
use mukan_reactor_api::{HostPort, NodeInfo};
use mukan_switch::Switch;
use mukan_transport::TcpTransport;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::NodeSetup;
use crate::config::{ConfigError, parse_host_port};
use crate::http::{self, Handler, Req, Resp};
use crate::metrics::{ChainMetrics, Metrics, MetricsObserver, SeedSetup, ServedObserver};
use crate::rpc::{NodeView, PeerView};

/// How long a switch may take to stop before we save and exit anyway.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// One running chain: the node of one home.
pub(crate) struct ChainNode {
    /// The home.
    pub(crate) home: PathBuf,
    /// The chain ID.
    pub(crate) chain_id: String,
    /// The switch.
    pub(crate) switch: Arc<Switch<TcpTransport>>,
    /// The address book.
    pub(crate) book: Arc<Mutex<mukan_addrbook::AddrBook>>,
    /// Where the book is saved.
    pub(crate) book_path: PathBuf,
    /// The p2p listen address.
    pub(crate) p2p_addr: SocketAddr,
    /// Our node info.
    pub(crate) node_info: NodeInfo,
    metrics: Arc<ChainMetrics>,
    totals: Totals,
    node: Node<TcpTransport>,
    home_book: HomeBook,
}

/// A chain's node-wide bandwidth budgets (`[p2p] max_send_rate_total` /
/// `max_recv_rate_total`; `None`: no total), shared by every connection of its node; the
/// metrics read them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Totals {
    pub(crate) send: Option<mukan_mconn::Budget>,
    pub(crate) recv: Option<mukan_mconn::Budget>,
}

/// The running process: its chains and its HTTP servers.
pub(crate) struct Running {
    /// The chain of the first home.
    pub(crate) main: ChainNode,
    /// The chains of the other homes, in order.
    pub(crate) others: Vec<ChainNode>,
    /// The RPC address, if serving.
    pub(crate) rpc_addr: Option<SocketAddr>,
    /// The metrics address, if serving.
    pub(crate) metrics_addr: Option<SocketAddr>,
    stop_servers: watch::Sender<bool>,
    servers: tokio::task::JoinSet<()>,
}

/// What to start besides the config (the testnet sets these).
#[derive(Clone, Debug, Default)]
pub(crate) struct Tuning {
    /// Period of PEX's ensure-peers round (default: CometBFT's 30 s).
    pub(crate) ensure_peers_period: Option<Duration>,
}

/// A problem with a setting found while starting (a port in use, a name that does not
/// resolve), reported against the config file (which names the home).
fn err(setup: &NodeSetup, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(
        crate::home::config_path(&setup.home).display().to_string(),
        key,
        problem,
    )
}

/// Binds an HTTP listener for the setting `key` (`[rpc] laddr`, …): every check before the
/// node starts.
async fn bind_http(
    setup: &NodeSetup,
    key: &str,
    value: &str,
    allow_empty_host: bool,
) -> Result<(HostPort, tokio::net::TcpListener), String> {
    let hp =
        parse_host_port(value, allow_empty_host).map_err(|e| err(setup, key, e).to_string())?;
    let addr = crate::config::resolve(&hp)
        .await
        .map_err(|e| err(setup, key, e.to_string()).to_string())?;
    let listener = http::bind(addr)
        .await
        .map_err(|e| err(setup, key, format!("cannot listen on {addr}: {e}")).to_string())?;
    Ok((hp, listener))
}

/// Every home's chain is its own: two homes of one chain (the RPC, the metrics and the map
/// could not tell them apart) are refused, naming the second home.
fn check_distinct_chains(setups: &[NodeSetup]) -> Result<(), String> {
    let mut seen: HashMap<&str, &NodeSetup> = HashMap::new();
    for s in setups {
        if let Some(first) = seen.insert(&s.chain_id, s) {
            return Err(err(
                s,
                "genesis_file",
                format!(
                    "chain {:?} is already served by the home {}: one home per chain",
                    s.chain_id,
                    first.home.display()
                ),
            )
            .to_string());
        }
    }
    Ok(())
}

/// Probes each p2p listen address (bind, then release) and refuses two homes on one
/// address, so that a port in use fails the start before any node runs.
fn probe_listen(setups: &[NodeSetup], binds: &[SocketAddr]) -> Result<(), String> {
    let mut seen: HashMap<SocketAddr, &NodeSetup> = HashMap::new();
    for (s, addr) in setups.iter().zip(binds) {
        if addr.port() == 0 {
            continue;
        }
        if let Some(first) = seen.insert(*addr, s) {
            return Err(err(
                s,
                "[p2p] laddr",
                format!(
                    "{addr} is the listen address of the home {} too",
                    first.home.display()
                ),
            )
            .to_string());
        }
        std::net::TcpListener::bind(addr).map_err(|e| {
            err(s, "[p2p] laddr", format!("cannot listen on {addr}: {e}")).to_string()
        })?;
    }
    Ok(())
}

/// Starts the node of one home (its builder made by [`NodeBuilder::from_home`]).
async fn start_chain(
    setup: &NodeSetup,
    builder: NodeBuilder,
    home_book: HomeBook,
    metrics: Arc<ChainMetrics>,
    tuning: &Tuning,
) -> Result<ChainNode, String> {
    let c = &setup.config;
    // The budgets `from_home` gave the transport (one per direction, shared by every
    // connection), read by the metrics at each scrape.
    let totals = Totals {
        send: builder.transport_settings().mconn.send_total.clone(),
        recv: builder.transport_settings().mconn.recv_total.clone(),
    };
    let observed = metrics.clone();
    let builder = builder
        .map_pex(|p| {
            if let Some(period) = tuning.ensure_peers_period {
                p.ensure_peers_period = period;
            }
        })
        .pex_observer(Arc::new(ServedObserver(metrics.clone())))
        .observer_with(move |channels| Arc::new(MetricsObserver::new(observed, channels)));
    let node = builder.start().await.map_err(|e| match e {
        BuildError::Listen { addr, source } => err(
            setup,
            "[p2p] laddr",
            format!("cannot listen on {addr}: {source}"),
        )
        .to_string(),
        BuildError::Pex(e) => err(setup, "[p2p] seeds", e.to_string()).to_string(),
        other => format!(
            "{}: {other}",
            crate::home::config_path(&setup.home).display()
        ),
    })?;
    let switch = node.switch().clone();
    let node_info = node.node_info().clone();
    let Some(p2p_addr) = node.local_addr() else {
        node.stop().await;
        return Err("the node does not listen".to_owned());
    };
    tracing::info!(
        target: "mukan_p2p::run",
        "node {} ({}) on chain {} listening on {p2p_addr}",
        setup.key.node_id(),
        c.moniker,
        setup.chain_id
    );
    Ok(ChainNode {
        home: setup.home.clone(),
        chain_id: setup.chain_id.clone(),
        switch,
        book: home_book.book.clone(),
        book_path: home_book.path.clone(),
        p2p_addr,
        node_info,
        metrics,
        totals,
        node,
        home_book,
    })
}

/// Starts one node per setup (one per home; at least one): every home is checked (distinct
/// chains, listen addresses that resolve and are free), the HTTP listeners of the first
/// home are bound, then the nodes start in order with the metrics observers; a node that
/// fails to start stops those started before it. Nothing is written before every check
/// passed.
pub(crate) async fn start(setups: &[NodeSetup], tuning: &Tuning) -> Result<Running, String> {
    let Some((first, rest)) = setups.split_first() else {
        return Err("no home given".into());
    };
    check_distinct_chains(setups)?;
    let c = &first.config;
    for s in rest {
        let r = &s.config;
        if r.rpc.laddr != c.rpc.laddr
            || r.instrumentation.prometheus != c.instrumentation.prometheus
            || r.instrumentation.prometheus_listen_addr != c.instrumentation.prometheus_listen_addr
        {
            tracing::warn!(
                target: "mukan_p2p",
                "{}: [rpc] and [instrumentation] are not used: the first home's ({}) serve every chain",
                crate::home::config_path(&s.home).display(),
                first.home.display()
            );
        }
    }
    // Every home's builder (its listen address resolved, its book loaded), then the probes.
    let mut builders = Vec::with_capacity(setups.len());
    let mut binds = Vec::with_capacity(setups.len());
    for s in setups {
        let (builder, book) = NodeBuilder::from_home(s).await.map_err(|e| {
            err(s, "[p2p] laddr", format!("{:?}: {e}", s.config.p2p.laddr)).to_string()
        })?;
        let hp = parse_host_port(&s.config.p2p.laddr, false)
            .map_err(|e| err(s, "[p2p] laddr", e).to_string())?;
        let addr = crate::config::resolve(&hp)
            .await
            .map_err(|e| err(s, "[p2p] laddr", e.to_string()).to_string())?;
        binds.push(addr);
        builders.push((builder, book));
    }
    probe_listen(setups, &binds)?;
    let rpc = if c.rpc.laddr.is_empty() {
        None
    } else {
        Some(bind_http(first, "[rpc] laddr", &c.rpc.laddr, false).await?)
    };
    let prometheus = if c.instrumentation.prometheus {
        let key = "[instrumentation] prometheus_listen_addr";
        Some(bind_http(first, key, &c.instrumentation.prometheus_listen_addr, true).await?)
    } else {
        None
    };
    let metrics = Arc::new(Metrics::new(
        &c.instrumentation.namespace,
        setups.iter().any(|s| s.config.p2p.seed_mode),
    ));
    let mut chains: Vec<ChainNode> = Vec::with_capacity(setups.len());
    for (s, (builder, book)) in setups.iter().zip(builders) {
        let seed = s.config.p2p.seed_mode.then(|| SeedSetup {
            persistent: s
                .config
                .p2p
                .persistent_peers
                .iter()
                .map(|p| match p {
                    mukan_reactor_api::ParsedAddress::Resolved(a) => a.id(),
                    mukan_reactor_api::ParsedAddress::Unresolved(u) => u.id,
                })
                .collect(),
        });
        let chain_metrics = Arc::new(metrics.chain(&s.chain_id, seed));
        match start_chain(s, builder, book, chain_metrics, tuning).await {
            Ok(chain) => chains.push(chain),
            Err(e) => {
                for started in chains {
                    let _ = tokio::time::timeout(STOP_TIMEOUT, started.node.stop()).await;
                }
                return Err(e);
            }
        }
    }
    let mut chains = chains.into_iter();
    let Some(main) = chains.next() else {
        return Err("no home given".into());
    };
    let others: Vec<ChainNode> = chains.collect();
    let all: Vec<&ChainNode> = std::iter::once(&main).chain(&others).collect();
    // The anchors were read by `from_home`; deleted once every node has started (a crash
    // must not replay them; a start that fails writes nothing).
    for chain in &all {
        if let Err(e) = mukan_addrbook::remove_anchors(&chain.home_book.anchors) {
            tracing::warn!(target: "mukan_p2p::run", "{e}");
        }
    }

    let (stop_servers, stop_rx) = watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    let mut rpc_addr = None;
    if let Some((hp, listener)) = rpc {
        rpc_addr = listener.local_addr().ok();
        let mut views: Vec<(String, Arc<dyn NodeView>)> = Vec::new();
        let mut maps: Vec<Arc<crate::nodemap::NodeMap>> = Vec::new();
        for (chain, s) in all.iter().zip(setups) {
            let hidden: HashSet<mukan_reactor_api::NodeId> = if s.config.rpc.show_private_peers {
                HashSet::new()
            } else {
                s.config.p2p.private_peer_ids.iter().copied().collect()
            };
            views.push((
                chain.chain_id.clone(),
                Arc::new(SwitchView {
                    switch: chain.switch.clone(),
                    info: chain.node_info.clone(),
                    p2p_addr: chain.p2p_addr,
                    hidden: hidden.clone(),
                }),
            ));
            // The map on `/` (private peers hidden as in the RPC), the RPC behind it.
            maps.push(Arc::new(crate::nodemap::NodeMap::new(
                chain.switch.clone(),
                chain.book.clone(),
                chain.node_info.clone(),
                chain.p2p_addr,
                s.config.p2p.seed_mode,
                hidden,
            )));
        }
        let map: Arc<dyn crate::web::MapSource> = Arc::new(crate::nodemap::Chains::new(maps));
        let handler = crate::web::handler(map, Some(crate::rpc::chains_handler(views)));
        servers.spawn(http::serve(
            listener,
            handler,
            http::Limits::rpc(),
            http::HostAllow::new(&hp.host, &c.rpc.allowed_hosts),
            stop_rx.clone(),
        ));
    }
    let mut metrics_addr = None;
    if let Some((hp, listener)) = prometheus {
        metrics_addr = listener.local_addr().ok();
        let scraped: Vec<Scraped> = all
            .iter()
            .map(|n| Scraped {
                switch: n.switch.clone(),
                book: n.book.clone(),
                metrics: n.metrics.clone(),
                totals: n.totals.clone(),
            })
            .collect();
        let handler = metrics_handler(Arc::new(scraped), metrics.clone());
        servers.spawn(http::serve(
            listener,
            handler,
            http::Limits::metrics(),
            http::HostAllow::new(&hp.host, &c.rpc.allowed_hosts),
            stop_rx.clone(),
        ));
    }
    Ok(Running {
        main,
        others,
        rpc_addr,
        metrics_addr,
        stop_servers,
        servers,
    })
}

impl ChainNode {
    /// Stops the node and saves its address book and its anchors.
    async fn stop(self) -> Result<(), String> {
        // Before the switch closes the peers.
        let anchors = self.node.pex().map(mukan_pex::PexReactor::anchors);
        if tokio::time::timeout(STOP_TIMEOUT, self.node.stop())
            .await
            .is_err()
        {
            tracing::warn!(
                target: "mukan_p2p::run",
                "the switch of chain {} did not stop within {STOP_TIMEOUT:?}",
                self.chain_id
            );
        }
        let book = self.home_book.clone();
        tokio::task::spawn_blocking(move || book.save())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                format!(
                    "cannot save the address book {}: {e}",
                    self.book_path.display()
                )
            })?;
        if let Some(anchors) = anchors {
            let path = self.home_book.anchors.clone();
            let n = anchors.len();
            match tokio::task::spawn_blocking(move || mukan_addrbook::save_anchors(&path, &anchors))
                .await
            {
                Ok(Ok(())) => tracing::info!(
                    target: "mukan_p2p::run",
                    "{n} anchors saved to {}",
                    self.home_book.anchors.display()
                ),
                Ok(Err(e)) => tracing::warn!(target: "mukan_p2p::run", "{e}"),
                Err(e) => tracing::warn!(target: "mukan_p2p::run", "cannot save the anchors: {e}"),
            }
        }
        tracing::info!(
            target: "mukan_p2p::run",
            "chain {} stopped; address book saved to {}",
            self.chain_id,
            self.book_path.display()
        );
        Ok(())
    }
}

impl Running {
    /// Every chain, the first home's first.
    pub(crate) fn chains(&self) -> impl Iterator<Item = &ChainNode> {
        std::iter::once(&self.main).chain(&self.others)
    }

    /// Stops everything (the chains at once) and saves every address book; the first error
    /// is returned once every chain has stopped and tried to save.
    pub(crate) async fn stop(mut self) -> Result<(), String> {
        self.stop_servers.send_replace(true);
        let mut stops = tokio::task::JoinSet::new();
        for chain in std::iter::once(self.main).chain(self.others) {
            stops.spawn(chain.stop());
        }
        let mut first_error = None;
        while let Some(r) = stops.join_next().await {
            let r = r.map_err(|e| e.to_string()).and_then(|r| r);
            if let Err(e) = r {
                tracing::error!(target: "mukan_p2p::run", "{e}");
                first_error.get_or_insert(e);
            }
        }
        while self.servers.join_next().await.is_some() {}
        first_error.map_or(Ok(()), Err)
    }
}

/// What a scrape reads of one chain.
struct Scraped {
    switch: Arc<Switch<TcpTransport>>,
    book: Arc<Mutex<mukan_addrbook::AddrBook>>,
    metrics: Arc<ChainMetrics>,
    totals: Totals,
}

/// Updates the scrape-time metrics of every chain and encodes them.
fn metrics_handler(chains: Arc<Vec<Scraped>>, metrics: Arc<Metrics>) -> Handler {
    Arc::new(move |req: Req| {
        let chains = chains.clone();
        let metrics = metrics.clone();
        Box::pin(async move {
            if req.path != "/metrics" {
                return Resp::new(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    "404 page not found\n".into(),
                );
            }
            let now = Instant::now();
            for c in chains.iter() {
                let stats = c.switch.stats();
                c.metrics
                    .set_peers(stats.peers_inbound, stats.peers_outbound);
                for p in c.switch.peer_infos() {
                    let pending: usize = p.status.channels.iter().map(|c| c.send_queue_size).sum();
                    c.metrics.peer_pending(&p.node_info.id, pending as u64);
                }
                let (new, old) = {
                    let b = c.book.lock();
                    (b.new_count(), b.old_count())
                };
                c.metrics.set_addr_book(new, old, now);
                for (direction, budget) in [("send", &c.totals.send), ("recv", &c.totals.recv)] {
                    c.metrics
                        .set_bandwidth(direction, budget.as_ref().map(|b| b.stats(now)));
                }
            }
            Resp::new(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.encode(),
            )
        }) as std::pin::Pin<Box<dyn Future<Output = Resp> + Send>>
    })
}

/// The RPC's view of a running switch.
struct SwitchView {
    switch: Arc<Switch<TcpTransport>>,
    info: NodeInfo,
    p2p_addr: SocketAddr,
    /// Peers left out of `/net_info` and `/peers` (`private_peer_ids`, unless
    /// `show_private_peers`).
    hidden: HashSet<mukan_reactor_api::NodeId>,
}

impl NodeView for SwitchView {
    fn node_info(&self) -> NodeInfo {
        self.info.clone()
    }

    fn listeners(&self) -> Vec<String> {
        vec![format!("Listener(@{})", self.p2p_addr)]
    }

    fn listening(&self) -> bool {
        true
    }

    fn peers(&self) -> Vec<PeerView> {
        self.switch
            .peer_infos()
            .into_iter()
            .filter(|p| !self.hidden.contains(&p.socket_addr.id()))
            .map(|p| PeerView {
                is_outbound: p.direction.is_outbound(),
                remote_ip: p.socket_addr.ip(),
                remote_port: p.socket_addr.port(),
                status: p.status,
                node_info: p.node_info,
            })
            .collect()
    }
}

/// SIGINT and SIGTERM handlers, installed before the node starts so that no signal is
/// missed (an early SIGTERM would otherwise kill the process before the address book is
/// saved).
pub(crate) struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (inside a runtime).
    pub(crate) fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the first SIGINT or SIGTERM.
    pub(crate) async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs the nodes of `setups` until `until` resolves, then stops them.
pub(crate) async fn run_until(
    setups: &[NodeSetup],
    until: impl Future<Output = ()>,
) -> Result<(), String> {
    let running = start(setups, &Tuning::default()).await?;
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
    for c in running.chains() {
        tracing::info!(
            target: "mukan_p2p::run",
            "serving chain {}: p2p {}@{} (home {})",
            c.chain_id,
            c.node_info.id,
            c.p2p_addr,
            c.home.display()
        );
    }
    // The first home's address, then the servers: the line scripts wait for.
    tracing::info!(
        target: "mukan_p2p::run",
        "serving: p2p {}@{}, rpc {}, metrics {}",
        running.main.node_info.id,
        running.main.p2p_addr,
        show(running.rpc_addr),
        show(running.metrics_addr)
    );
    until.await;
    tracing::info!(target: "mukan_p2p::run", "shutting down");
    running.stop().await
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::path::Path;
    use std::time::SystemTime;

    use mukan_node::save_book;

    use super::*;
    use crate::config::Overrides;
    use crate::http::client::get;

    /// A home in `dir` for a loopback node: every listener on 127.0.0.1 port 0, metrics on,
    /// non-strict book and duplicate IPs allowed (every node is on 127.0.0.1).
    pub(crate) fn loopback_home(dir: &Path, moniker: &str, chain: &str) -> PathBuf {
        let home = dir.join(moniker);
        crate::home::init(&home, moniker, Some(chain)).unwrap();
        let path = crate::home::config_path(&home);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("addr_book_strict = true", "addr_book_strict = false")
            .replace("allow_duplicate_ip = false", "allow_duplicate_ip = true")
            .replace("prometheus = false", "prometheus = true")
            .replace("\"127.0.0.1:26660\"", "\"127.0.0.1:0\"")
            .replace("tcp://127.0.0.1:26657", "tcp://127.0.0.1:0")
            .replace("tcp://0.0.0.0:26656", "tcp://127.0.0.1:0");
        std::fs::write(&path, text).unwrap();
        home
    }

    /// The node's save: the directory is created, and the file loads back to an equal book.
    #[test]
    fn save_book_writes_a_file_that_loads_back_equal() {
        use rand::SeedableRng;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/addrbook.json");
        let mut book = mukan_addrbook::AddrBook::new(
            mukan_addrbook::Config::with_strict(true),
            rand::rngs::StdRng::seed_from_u64(1),
        );
        let addr = |n: u8| {
            mukan_reactor_api::NetAddress::new(
                mukan_reactor_api::NodeId([n; 20]),
                std::net::Ipv4Addr::new(8, n, 1, 1).into(),
                26656,
            )
        };
        for n in 1..=20u8 {
            mukan_reactor_api::AddressBook::add_address(
                &mut book,
                addr(n),
                addr(100),
                SystemTime::now(),
            )
            .unwrap();
        }
        assert_eq!(mukan_reactor_api::AddressBook::size(&book), 20);
        let book = Mutex::new(book);
        save_book(&book, &path).unwrap();
        let mut again = mukan_addrbook::AddrBook::new(
            mukan_addrbook::Config::with_strict(true),
            rand::rngs::StdRng::seed_from_u64(2),
        );
        let report = again.load(&path, SystemTime::now()).unwrap();
        assert_eq!(report.loaded, 20);
        assert_eq!(again, *book.lock());
    }

    pub(crate) fn setup(home: &Path, o: &Overrides) -> NodeSetup {
        crate::load_node(home, o).unwrap()
    }

    async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
        for _ in 0..200 {
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what} did not happen within 10 s");
    }

    /// A peer of chain `chain` with a fresh key dials `target` and starts MConnection.
    async fn dial_fresh(
        target: mukan_reactor_api::NetAddress,
        chain: &str,
    ) -> Option<Arc<dyn mukan_reactor_api::ManagedPeer>> {
        dial_with(dial_key(), target, chain).await
    }

    /// 1,000 peers (each with a new ID) connect and disconnect while `/metrics` is scraped
    /// without pause: once they are all gone, no `peer_id` series is left. A scrape that read
    /// the peer list just before a peer left used to recreate that peer's series for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn removed_peers_series_never_come_back_under_racing_scrapes() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let home = loopback_home(dir.path(), "racy", "chain-r");
        let node = start(&[setup(&home, &Overrides::default())], &Tuning::default())
            .await
            .unwrap();
        let metrics = node.metrics_addr.unwrap();
        let target = mukan_reactor_api::NetAddress::new(
            node.main.node_info.id.parse().unwrap(),
            node.main.p2p_addr.ip(),
            node.main.p2p_addr.port(),
        );
        let done = Arc::new(AtomicBool::new(false));
        let mut scrapers = Vec::new();
        for _ in 0..2 {
            let done = done.clone();
            scrapers.push(tokio::spawn(async move {
                let mut n = 0u32;
                while !done.load(Ordering::Relaxed) {
                    let _ = get(metrics, "/metrics").await;
                    n += 1;
                }
                n
            }));
        }
        let mut connected = 0;
        for i in 0..1000u32 {
            let Some(peer) = dial_fresh(target, "chain-r").await else {
                continue;
            };
            connected += 1;
            let inbox = peer.start().unwrap();
            // Vary how long each lives, so removals land at every point of a scrape.
            if i % 3 == 0 {
                tokio::time::sleep(Duration::from_millis(u64::from(i % 7))).await;
            } else {
                tokio::task::yield_now().await;
            }
            peer.stop();
            drop(inbox);
        }
        assert!(connected > 900, "only {connected} of 1,000 dials connected");
        wait_for("every peer gone", async || {
            node.main.switch.peer_infos().is_empty() && node.main.switch.stats().peers_inbound == 0
        })
        .await;
        // Scrapes go on a little after the last removal, then one more look.
        tokio::time::sleep(Duration::from_millis(300)).await;
        done.store(true, Ordering::Relaxed);
        let mut scrapes = 0;
        for s in scrapers {
            scrapes += s.await.unwrap();
        }
        let (_, text) = get(metrics, "/metrics").await;
        let leaked: Vec<&str> = text.lines().filter(|l| l.contains("peer_id=")).collect();
        assert!(
            leaked.is_empty(),
            "{} series of removed peers after {scrapes} scrapes:\n{}",
            leaked.len(),
            leaked.join("\n")
        );
        assert!(scrapes > 50, "only {scrapes} scrapes raced the cycles");
        node.stop().await.unwrap();
    }

    /// `/net_info`, `/peers` and the map leave out a private peer unless `show_private_peers`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn private_peers_are_left_out_of_net_info_and_peers() {
        let dir = tempfile::tempdir().unwrap();
        for show in [false, true] {
            let home = loopback_home(dir.path(), &format!("priv-{show}"), "chain-p");
            let public = dial_key();
            let private = dial_key();
            let o = Overrides {
                p2p_private_peer_ids: Some(private.node_id().to_string()),
                ..Overrides::default()
            };
            if show {
                let path = crate::home::config_path(&home);
                let text = std::fs::read_to_string(&path)
                    .unwrap()
                    .replace("show_private_peers = false", "show_private_peers = true");
                std::fs::write(&path, text).unwrap();
            }
            let node = start(&[setup(&home, &o)], &Tuning::default())
                .await
                .unwrap();
            let target = mukan_reactor_api::NetAddress::new(
                node.main.node_info.id.parse().unwrap(),
                node.main.p2p_addr.ip(),
                node.main.p2p_addr.port(),
            );
            let mut held = Vec::new();
            for key in [&public, &private] {
                let peer = dial_with(key.clone(), target, "chain-p").await.unwrap();
                held.push((peer.start().unwrap(), peer));
            }
            wait_for("two peers", async || {
                node.main.switch.peer_infos().len() == 2
            })
            .await;
            let rpc = node.rpc_addr.unwrap();
            let (_, net_info) = get(rpc, "/net_info").await;
            let (_, peers) = get(rpc, "/peers").await;
            // The map on `/` hides it too.
            let (_, graph) = get(rpc, "/map/api/graph").await;
            let private_id = private.node_id().to_string();
            let public_id = public.node_id().to_string();
            for text in [&net_info, &peers, &graph] {
                assert!(text.contains(&public_id), "{text}");
                assert_eq!(text.contains(&private_id), show, "show={show}: {text}");
            }
            let want = if show {
                "\"n_peers\":\"2\""
            } else {
                "\"n_peers\":\"1\""
            };
            assert!(net_info.contains(want), "{net_info}");
            for (_, peer) in &held {
                peer.stop();
            }
            node.stop().await.unwrap();
        }
    }

    fn dial_key() -> Arc<mukan_node_key::NodeKey> {
        Arc::new(mukan_node_key::NodeKey::generate(&mut rand::rngs::OsRng))
    }

    async fn dial_with(
        key: Arc<mukan_node_key::NodeKey>,
        target: mukan_reactor_api::NetAddress,
        chain: &str,
    ) -> Option<Arc<dyn mukan_reactor_api::ManagedPeer>> {
        use mukan_reactor_api::{ChannelDescriptor, ChannelId, Transport};
        let mut info = crate::rpc::tests::sample_info("dialer", "tcp://127.0.0.1:1");
        info.id = key.node_id().to_string();
        info.network = chain.into();
        let transport = TcpTransport::new(key, info, mukan_transport::Config::default());
        let config = mukan_reactor_api::PeerConfig::new(vec![ChannelDescriptor::new(
            ChannelId(0x00),
            std::num::NonZeroU32::MIN,
        )]);
        transport.dial(target, config).await.ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_connect_serve_rpc_and_metrics_and_save_their_books() {
        let dir = tempfile::tempdir().unwrap();
        let a_home = loopback_home(dir.path(), "alpha", "chain-t");
        let a = start(&[setup(&a_home, &Overrides::default())], &Tuning::default())
            .await
            .unwrap();
        let a_addr = format!("{}@{}", a.main.node_info.id, a.main.p2p_addr);
        let b_home = loopback_home(dir.path(), "beta", "chain-t");
        let b = start(
            &[setup(
                &b_home,
                &Overrides {
                    p2p_persistent_peers: Some(a_addr.clone()),
                    ..Overrides::default()
                },
            )],
            &Tuning::default(),
        )
        .await
        .unwrap();
        let rpc = a.rpc_addr.unwrap();
        wait_for("a peer on alpha", async || {
            get(rpc, "/net_info").await.1.contains("\"n_peers\":\"1\"")
        })
        .await;
        let (_, net_info) = get(rpc, "/net_info").await;
        assert!(net_info.contains("\"moniker\":\"beta\""), "{net_info}");
        assert!(net_info.contains("\"is_outbound\":false"), "{net_info}");
        let (_, status) = get(rpc, "/status").await;
        assert!(status.contains("\"network\":\"chain-t\""), "{status}");
        let (_, line) = get(b.rpc_addr.unwrap(), "/peers?format=persistent_peers").await;
        assert_eq!(line.trim(), a_addr);

        let (code, text) = get(a.metrics_addr.unwrap(), "/metrics").await;
        assert_eq!(code, 200);
        assert!(
            text.contains("cometbft_p2p_peers{chain_id=\"chain-t\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "cometbft_p2p_peers_by_direction{chain_id=\"chain-t\",direction=\"inbound\"} 1"
            ),
            "{text}"
        );
        let (_, text) = get(b.metrics_addr.unwrap(), "/metrics").await;
        assert!(text.contains("outcome=\"connected\"} 1"), "{text}");

        let a_id = a.main.node_info.id.clone();
        // A seed, gamma, with alpha as its seed: its verify dial of alpha makes the series of
        // the seed families.
        let g_home = loopback_home(dir.path(), "gamma", "chain-t");
        let g = start(
            &[setup(
                &g_home,
                &Overrides {
                    p2p_seeds: Some(a_addr.clone()),
                    p2p_seed_mode: Some(true),
                    ..Overrides::default()
                },
            )],
            &Tuning::default(),
        )
        .await
        .unwrap();
        let g_metrics = g.metrics_addr.unwrap();
        wait_for("a verify dial of the seed", async || {
            get(g_metrics, "/metrics")
                .await
                .1
                .contains("p2p_seed_verify_dials_total")
        })
        .await;
        let (_, g_text) = get(g_metrics, "/metrics").await;
        assert!(
            g_text.contains(
                "cometbft_p2p_seed_verify_dials_total{chain_id=\"chain-t\",outcome=\"connected\",stage=\"done\"} 1"
            ),
            "{g_text}"
        );
        g.stop().await.unwrap();
        // Not a seed: no seed families.
        assert!(!text.contains("p2p_seed_"), "{text}");
        // PEX ran: beta (outbound) asked alpha for addresses.
        let b_metrics = b.metrics_addr.unwrap();
        wait_for("a PEX exchange", async || {
            get(b_metrics, "/metrics")
                .await
                .1
                .contains("p2p_pex_messages_total")
        })
        .await;
        let (_, b_text) = get(b_metrics, "/metrics").await;
        b.stop().await.unwrap();
        // alpha counts beta's departure.
        let a_metrics = a.metrics_addr.unwrap();
        wait_for("a peer stop on alpha", async || {
            get(a_metrics, "/metrics")
                .await
                .1
                .contains("p2p_peer_stops_total")
        })
        .await;
        let (_, a_text) = get(a_metrics, "/metrics").await;
        // Every documented metric, scraped from the running nodes, with its type and labels.
        let scrapes = [&a_text, &b_text, &g_text].map(|t| crate::metrics::tests::parse(t));
        for (name, ty, labels) in crate::metrics::tests::DOCUMENTED {
            let full = format!("cometbft_{name}");
            let found: Vec<_> = scrapes
                .iter()
                .flat_map(|(_, samples)| samples)
                .filter(|s| s.0 == full)
                .collect();
            assert!(
                !found.is_empty(),
                "{full} not scraped:\n{a_text}\n{b_text}\n{g_text}"
            );
            for (types, _) in &scrapes {
                if let Some(t) = crate::metrics::tests::family_type(types, &full) {
                    assert_eq!(t, ty, "{full}");
                }
            }
            for (_, l, _) in found {
                let mut keys: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort_unstable();
                let mut want: Vec<&str> = labels.iter().copied().chain(["chain_id"]).collect();
                want.sort_unstable();
                assert_eq!(keys, want, "{full}");
            }
        }
        // Exhaustive both ways against the committed list.
        crate::metrics::tests::assert_golden(&[&a_text, &b_text, &g_text]);
        assert!(
            b_text.contains("message_type=\"p2p_PexRequest\""),
            "{b_text}"
        );
        a.stop().await.unwrap();
        for home in [&a_home, &b_home] {
            let book = std::fs::read_to_string(home.join("config/addrbook.json")).unwrap();
            let v: serde_json::Value = serde_json::from_str(&book).unwrap();
            assert!(v["key"].is_string(), "{book}");
        }
        // beta learned alpha's address from its persistent peers.
        let book = std::fs::read_to_string(b_home.join("config/addrbook.json")).unwrap();
        assert!(book.contains(&a_id), "{book}");
    }

    /// A feeler's probe completes the handshake with the ID dialed and closes: the node probed
    /// never keeps it as a peer; a wrong ID or a closed port is a failed probe.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feeler_probe_reaches_the_id_dialed_and_leaves_no_peer() {
        let dir = tempfile::tempdir().unwrap();
        let home = loopback_home(dir.path(), "probed", "chain-f");
        let node = start(&[setup(&home, &Overrides::default())], &Tuning::default())
            .await
            .unwrap();
        let target = mukan_reactor_api::NetAddress::new(
            node.main.node_info.id.parse().unwrap(),
            node.main.p2p_addr.ip(),
            node.main.p2p_addr.port(),
        );
        let key = dial_key();
        let mut info = crate::rpc::tests::sample_info("feeler", "tcp://127.0.0.1:1");
        info.id = key.node_id().to_string();
        info.network = "chain-f".into();
        let probe = mukan_node::feeler_probe(Arc::new(TcpTransport::new(
            key,
            info,
            mukan_transport::Config::default(),
        )));
        assert!(probe(target).await, "the probe reaches the node");
        let wrong = mukan_reactor_api::NetAddress::new(
            mukan_reactor_api::NodeId([7; 20]),
            node.main.p2p_addr.ip(),
            node.main.p2p_addr.port(),
        );
        assert!(!probe(wrong).await, "another ID answered");
        let closed = mukan_reactor_api::NetAddress::new(target.id(), node.main.p2p_addr.ip(), 1);
        assert!(!probe(closed).await, "nothing listens");
        wait_for("the probe's connection gone", async || {
            node.main.switch.peer_infos().is_empty()
        })
        .await;
        node.stop().await.unwrap();
    }

    /// What a probed node sees of feelers: each probe is an inbound connection that completes
    /// the handshake and the `NodeInfo` exchange and closes at once; the switch admits it and
    /// removes it as closed by the peer. 40 probes of one node back to back (its feelers, one
    /// ID from one IP, the shipped `allow_duplicate_ip = false`), then 40 of 40 nodes (fresh
    /// IDs; duplicate IPs allowed, as they all come from 127.0.0.1): every probe succeeds,
    /// none leaves a peer or a ban behind, and the probing node then connects as a peer and
    /// stays.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_feeler_probes_leave_no_peer_and_no_ban_on_the_probed_node() {
        let dir = tempfile::tempdir().unwrap();
        for (moniker, one_node) in [("probed-by-one", true), ("probed-by-many", false)] {
            let home = loopback_home(dir.path(), moniker, "chain-p");
            if one_node {
                let path = crate::home::config_path(&home);
                let text = std::fs::read_to_string(&path).unwrap();
                let shipped =
                    text.replace("allow_duplicate_ip = true", "allow_duplicate_ip = false");
                std::fs::write(&path, shipped).unwrap();
            }
            let node = start(&[setup(&home, &Overrides::default())], &Tuning::default())
                .await
                .unwrap();
            let target = mukan_reactor_api::NetAddress::new(
                node.main.node_info.id.parse().unwrap(),
                node.main.p2p_addr.ip(),
                node.main.p2p_addr.port(),
            );
            let prober = |key: Arc<mukan_node_key::NodeKey>| {
                let mut info = crate::rpc::tests::sample_info("feeler", "tcp://127.0.0.1:1");
                info.id = key.node_id().to_string();
                info.network = "chain-p".into();
                mukan_node::feeler_probe(Arc::new(TcpTransport::new(
                    key,
                    info,
                    mukan_transport::Config::default(),
                )))
            };
            let one = dial_key();
            let same = prober(one.clone());
            for i in 0..40 {
                let ok = if one_node {
                    same(target).await
                } else {
                    prober(dial_key())(target).await
                };
                assert!(ok, "{moniker}: probe {i} failed");
            }
            let stopped = async || {
                let (_, metrics) = get(node.metrics_addr.unwrap(), "/metrics").await;
                metrics
                    .lines()
                    .filter(|l| l.starts_with("cometbft_p2p_peer_stops_total{"))
                    .map(|l| {
                        let (labels, n) = l.rsplit_once(' ').unwrap();
                        (labels.to_owned(), n.parse::<u64>().unwrap())
                    })
                    .collect::<Vec<_>>()
            };
            wait_for("every probe admitted and removed", async || {
                node.main.switch.peer_infos().is_empty()
                    && stopped().await.iter().map(|(_, n)| n).sum::<u64>() == 40
            })
            .await;
            let stops = stopped().await;
            // Closed by the peer (or, for one node reconnecting, its older connection let go
            // gracefully): never a misbehaviour, the stops PEX bans for.
            assert!(
                stops.iter().all(|(l, _)| {
                    !l.contains("reason=\"protocol\"") && !l.contains("reason=\"reactor\"")
                }),
                "{moniker}: {stops:?}"
            );
            assert_eq!(
                node.main.book.lock().banned_count(),
                0,
                "{moniker}: a probe was banned"
            );
            // The probing node, as a peer: admitted, and kept (PEX stops a peer it banned).
            let peer = dial_with(one.clone(), target, "chain-p").await.unwrap();
            let _inbox = peer.start().unwrap();
            let id = one.node_id().to_string();
            let connected = || {
                node.main
                    .switch
                    .peer_infos()
                    .iter()
                    .any(|p| p.node_info.id == id)
            };
            wait_for("the prober admitted as a peer", async || connected()).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                connected(),
                "{moniker}: the prober was stopped after admission"
            );
            peer.stop();
            node.stop().await.unwrap();
        }
    }

    /// Three chains in one seed process: a node of each chain registers with the seed, a
    /// second node of chains a and b bootstraps from it (the seed's answer holds the first
    /// node); the RPC, the metrics and the map tell the chains apart; nothing of one chain
    /// reaches another's book; stopping saves every book.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_chains_in_one_seed_process_bootstrap_their_own_nodes_only() {
        let dir = tempfile::tempdir().unwrap();
        let tuning = Tuning {
            ensure_peers_period: Some(Duration::from_secs(1)),
        };
        let chains = ["chain-a", "chain-b", "chain-c"];
        let seed_mode = Overrides {
            p2p_seed_mode: Some(true),
            ..Overrides::default()
        };
        let seed_homes: Vec<PathBuf> = chains
            .iter()
            .map(|c| loopback_home(dir.path(), &format!("seed-{c}"), c))
            .collect();
        let setups: Vec<NodeSetup> = seed_homes.iter().map(|h| setup(h, &seed_mode)).collect();
        let seed = start(&setups, &tuning).await.unwrap();
        let seed_addr: HashMap<String, String> = seed
            .chains()
            .map(|c| {
                (
                    c.chain_id.clone(),
                    format!("{}@{}", c.node_info.id, c.p2p_addr),
                )
            })
            .collect();
        assert_eq!(seed.chains().count(), 3);
        let node = async |name: &str, chain: &str| {
            let o = Overrides {
                p2p_seeds: Some(seed_addr[chain].clone()),
                ..Overrides::default()
            };
            let home = loopback_home(dir.path(), name, chain);
            start(&[setup(&home, &o)], &tuning).await.unwrap()
        };
        let seed_chain = |chain: &str| seed.chains().find(|c| c.chain_id == chain).unwrap();
        // The first node of each chain: the seed learns its address.
        let mut firsts = Vec::new();
        for c in chains {
            let n = node(&format!("{c}-1"), c).await;
            let id = n.main.node_info.node_id().unwrap();
            let book = seed_chain(c).book.clone();
            wait_for("the seed's book to hold the first node", async || {
                book.lock().addresses().any(|a| a.id() == id)
            })
            .await;
            firsts.push(n);
        }
        // The second node of chains a and b learns the first from the seed and dials it.
        let mut seconds = Vec::new();
        for (i, c) in chains.iter().take(2).enumerate() {
            let n = node(&format!("{c}-2"), c).await;
            let first = firsts[i].main.node_info.node_id().unwrap();
            let sw = n.main.switch.clone();
            wait_for("the second node to connect to the first", async || {
                sw.peer_infos().iter().any(|p| p.socket_addr.id() == first)
            })
            .await;
            seconds.push(n);
        }
        // The RPC: one server, a chain per query.
        let rpc = seed.rpc_addr.unwrap();
        for c in seed.chains() {
            let (code, status) = get(rpc, &format!("/status?chain={}", c.chain_id)).await;
            assert_eq!(code, 200);
            assert!(
                status.contains(&format!("\"network\":\"{}\"", c.chain_id)),
                "{status}"
            );
            assert!(status.contains(&c.node_info.id), "{status}");
            let (code, _) = get(rpc, &format!("/peers?chain={}", c.chain_id)).await;
            assert_eq!(code, 200);
        }
        let (_, status) = get(rpc, "/status").await;
        assert!(status.contains("\"network\":\"chain-a\""), "{status}");
        assert_eq!(get(rpc, "/peers?chain=chain-x").await.0, 404);
        let (_, map) = get(rpc, "/map/api/chains").await;
        assert!(
            map.contains("\"chains\":[\"chain-a\",\"chain-b\",\"chain-c\"]")
                && map.contains("\"kind\":\"seed\""),
            "{map}"
        );
        let (_, graph) = get(rpc, "/map/api/graph?chain=chain-b").await;
        assert!(graph.contains(&firsts[1].main.node_info.id), "{graph}");
        assert!(!graph.contains(&firsts[0].main.node_info.id), "{graph}");
        // The metrics: every chain's series, and the answers that held addresses.
        let (_, text) = get(seed.metrics_addr.unwrap(), "/metrics").await;
        for c in chains {
            assert!(
                text.contains(&format!("cometbft_p2p_peers{{chain_id=\"{c}\"}}")),
                "{text}"
            );
        }
        let (_, samples) = crate::metrics::tests::parse(&text);
        let served = |chain: &str| {
            samples
                .iter()
                .find(|s| {
                    s.0 == "cometbft_p2p_seed_addrs_served_sum"
                        && s.1.contains(&("chain_id".into(), chain.into()))
                })
                .map(|s| s.2)
        };
        assert!(served("chain-a").unwrap() >= 1.0, "{text}");
        assert!(served("chain-b").unwrap() >= 1.0, "{text}");
        crate::metrics::tests::assert_golden_subset(&text);
        // Each second node knows nodes of its own chain only.
        let id_chain: HashMap<String, String> = firsts
            .iter()
            .chain(&seconds)
            .map(|n| {
                (
                    n.main.node_info.id.clone(),
                    n.main.node_info.network.clone(),
                )
            })
            .chain(
                seed.chains()
                    .map(|c| (c.node_info.id.clone(), c.chain_id.clone())),
            )
            .collect();
        for n in &seconds {
            let own = n.main.node_info.network.as_str();
            for a in n.main.book.lock().addresses() {
                let chain = id_chain.get(&a.id().to_string()).map(String::as_str);
                assert_eq!(chain, Some(own), "{own} node knows {a}");
            }
        }
        let seed_books: Vec<PathBuf> = seed.chains().map(|c| c.book_path.clone()).collect();
        seed.stop().await.unwrap();
        for (path, chain) in seed_books.iter().zip(chains) {
            let book = std::fs::read_to_string(path).unwrap();
            let v: serde_json::Value = serde_json::from_str(&book).unwrap();
            let addrs = v["addrs"].as_array().unwrap();
            assert!(!addrs.is_empty(), "{chain}: {book}");
            for a in addrs {
                let id = a["addr"]["id"].as_str().unwrap();
                assert_eq!(
                    id_chain.get(id).map(String::as_str),
                    Some(chain),
                    "{chain}: {book}"
                );
            }
        }
        for n in firsts.into_iter().chain(seconds) {
            n.stop().await.unwrap();
        }
    }

    /// Two homes of one chain, or on one listen address, are refused before anything starts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_homes_of_one_chain_or_one_address_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = loopback_home(dir.path(), "a", "chain-a");
        let a2 = loopback_home(dir.path(), "a2", "chain-a");
        let Err(e) = start(
            &[
                setup(&a, &Overrides::default()),
                setup(&a2, &Overrides::default()),
            ],
            &Tuning::default(),
        )
        .await
        else {
            panic!("two homes of one chain started");
        };
        assert!(e.contains("already served by the home"), "{e}");
        assert!(e.contains(&a2.display().to_string()), "{e}");
        let b = loopback_home(dir.path(), "b", "chain-b");
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let laddr = format!("tcp://{}", free.local_addr().unwrap());
        drop(free);
        let o = Overrides {
            p2p_laddr: Some(laddr),
            ..Overrides::default()
        };
        let Err(e) = start(&[setup(&a, &o), setup(&b, &o)], &Tuning::default()).await else {
            panic!("two homes on one address started");
        };
        assert!(e.contains("is the listen address of the home"), "{e}");
        assert!(!a.join("config/addrbook.json").exists());
    }
}
