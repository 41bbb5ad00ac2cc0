//! `testnet`: a local network on loopback, with nothing to set up. A seed and N nodes, each
//! in a temporary home made by `init`, find each other through the seed and PEX; a live
//! display shows addresses discovered, connections and messages; a summary follows once the
//! network has converged, then every node stops (address books saved) and the homes are
//! removed.
//!
//! Converged, up to [`SMALL`] nodes: every node knows every other node's address (its book
//! holds all N - 1 of them) and has at least `min(N - 1, 3)` connections to other nodes.
//! Above: every node has at least 3 connections and two crawls in a row from the seed list
//! all N (a
//! book of every address is not what a large network gives each node).
//!
//! With `keep`, the network stays up after converging (the seed serves the map on its RPC
//! address) until the `until` future resolves (Ctrl-C).

use std::fmt;
use std::future::Future;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use mukan_reactor_api::Network as _;

use crate::config::Overrides;
use crate::run::{Running, Tuning};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Nodes besides the seed.
    pub(crate) nodes: usize,
    /// Give up after this long.
    pub(crate) timeout: Duration,
    /// Show a live display (else plain progress lines).
    pub(crate) live: bool,
    /// Keep the network up after it converged, until stopped.
    pub(crate) keep: bool,
}

/// Up to this many nodes, converged means every node knows every other.
pub(crate) const SMALL: usize = 64;
/// The most nodes `testnet` runs.
pub(crate) const MAX_NODES: usize = 1000;

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 4,
            timeout: Duration::from_secs(60),
            live: std::io::stderr().is_terminal(),
            keep: false,
        }
    }
}

/// How far the network is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Sum over nodes of the other nodes each one knows.
    pub(crate) discovered: usize,
    /// What `discovered` is when every node knows every other.
    pub(crate) discovered_goal: usize,
    /// Connections between nodes (each counted once), the seed's excluded.
    pub(crate) connections: usize,
    /// Nodes with at least the connection target.
    pub(crate) nodes_connected: usize,
    /// Messages received, all nodes and the seed together.
    pub(crate) messages: u64,
    /// Nodes the last crawl from the seed listed (large networks).
    pub(crate) crawled: Option<usize>,
}

impl Progress {
    fn converged(&self, nodes: usize) -> bool {
        if nodes > SMALL {
            self.nodes_connected == nodes && self.crawled == Some(nodes)
        } else {
            self.discovered == self.discovered_goal && self.nodes_connected == nodes
        }
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "addresses discovered {}/{}, connections {}, messages {}",
            self.discovered, self.discovered_goal, self.connections, self.messages
        )?;
        if let Some(c) = self.crawled {
            write!(f, ", nodes a crawl from the seed lists {c}")?;
        }
        Ok(())
    }
}

/// What happened.
pub(crate) struct Report {
    nodes: Vec<NodeLine>,
    seed: String,
    progress: Progress,
    converged_in: Duration,
}

struct NodeLine {
    moniker: String,
    address: String,
    peers: usize,
    known: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "converged in {:.1} s: {} nodes found each other through one seed and PEX",
            self.converged_in.as_secs_f64(),
            self.nodes.len()
        )?;
        writeln!(f, "  seed   {}", self.seed)?;
        for n in &self.nodes {
            writeln!(
                f,
                "  {:<6} {}  peers {:>2}  addresses known {:>2}",
                n.moniker, n.address, n.peers, n.known
            )?;
        }
        write!(f, "{}", self.progress)
    }
}

/// The connection target of each node.
fn target(nodes: usize) -> usize {
    (nodes - 1).min(3)
}

fn start_options(
    home: &Path,
    seeds: Option<String>,
    seed_mode: bool,
    rpc: bool,
) -> Result<crate::NodeSetup, String> {
    let overrides = Overrides {
        p2p_laddr: Some("tcp://127.0.0.1:0".into()),
        rpc_laddr: Some(if rpc {
            "tcp://127.0.0.1:0".into()
        } else {
            String::new()
        }),
        p2p_seeds: seeds,
        p2p_seed_mode: Some(seed_mode),
        ..Overrides::default()
    };
    crate::load_node(home, &overrides).map_err(|e| e.to_string())
}

/// Writes a home for a loopback node: non-strict book, duplicate IPs allowed; in a large
/// network 4 outbound peers (file descriptors: every connection has both ends in this process).
fn make_home(dir: &Path, moniker: &str, large: bool) -> Result<std::path::PathBuf, String> {
    let home = dir.join(moniker);
    crate::home::init(&home, moniker, Some("mukan-testnet"))?;
    let path = crate::home::config_path(&home);
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let text = text
        .replace("addr_book_strict = true", "addr_book_strict = false")
        .replace("allow_duplicate_ip = false", "allow_duplicate_ip = true")
        .replace("log_level = \"info\"", "log_level = \"error\"");
    let text = if large {
        text.replace("max_num_outbound_peers = 10", "max_num_outbound_peers = 4")
    } else {
        text
    };
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(home)
}

fn progress(seed: &Running, nodes: &[Running]) -> Progress {
    let ids: std::collections::HashSet<mukan_reactor_api::NodeId> = nodes
        .iter()
        .filter_map(|n| n.main.node_info.node_id().ok())
        .collect();
    let mut p = Progress {
        discovered_goal: nodes.len() * (nodes.len() - 1),
        ..Progress::default()
    };
    let mut links = 0;
    for n in nodes {
        let me = n.main.node_info.node_id().ok();
        let known = {
            let book = n.main.book.lock();
            book.addresses()
                .filter(|a| Some(a.id()) != me && ids.contains(&a.id()))
                .count()
        };
        p.discovered += known;
        let peers = n
            .main
            .switch
            .peers()
            .iter()
            .filter(|peer| ids.contains(&peer.id()))
            .count();
        links += peers;
        if peers >= target(nodes.len()) {
            p.nodes_connected += 1;
        }
    }
    p.connections = links / 2;
    p.messages = std::iter::once(seed)
        .chain(nodes)
        .map(|n| {
            n.main
                .switch
                .stats()
                .channels
                .iter()
                .map(|c| c.received_messages)
                .sum::<u64>()
        })
        .sum();
    p
}

/// How many of `nodes` a crawl from the seed lists. The nodes earlier crawls reached
/// (`reached`) are visited again, as `crawl --watch` does with its history, and what this
/// crawl reaches is added to them: an answer is a random part of a book, so a node few
/// others know can be missing from one crawl's answers and not from the next.
async fn crawl_from_seed(
    seed: &str,
    chain: &str,
    nodes: &[Running],
    reached: &mut Vec<mukan_reactor_api::NetAddress>,
) -> usize {
    let Ok(seed) = seed.parse() else { return 0 };
    let report = crate::crawl::crawl(crate::crawl::Options {
        seeds: vec![seed],
        chain_id: Some(chain.to_owned()),
        timeout: Duration::from_secs(60),
        allow_private: true,
        known: reached.clone(),
        sink: None,
    })
    .await;
    let Ok(report) = report else { return 0 };
    let ids: std::collections::HashSet<&str> = report
        .reachable
        .iter()
        .map(|r| r.info.id.as_str())
        .collect();
    let before: std::collections::HashSet<_> = reached.iter().map(|a| a.id()).collect();
    reached.extend(
        report
            .reachable
            .iter()
            .map(|r| r.address)
            .filter(|a| !before.contains(&a.id())),
    );
    nodes
        .iter()
        .filter(|n| ids.contains(n.main.node_info.id.as_str()))
        .count()
}

/// Runs the network until it converged (or `opts.timeout`); with `opts.keep` until `until`
/// resolves; then stops it.
pub(crate) async fn run(opts: Options, until: impl Future<Output = ()>) -> Result<Report, String> {
    let large = opts.nodes > SMALL;
    let dir = tempfile::Builder::new()
        .prefix("mukan-testnet-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let tuning = Tuning {
        ensure_peers_period: Some(Duration::from_secs(1)),
    };
    let started = Instant::now();
    let seed_home = make_home(dir.path(), "seed", large)?;
    let seed = crate::run::start(
        &[start_options(&seed_home, None, true, opts.keep)?],
        &tuning,
    )
    .await?;
    let seed_addr = format!("{}@{}", seed.main.node_info.id, seed.main.p2p_addr);
    let chain = seed.main.node_info.network.clone();
    let mut nodes = Vec::with_capacity(opts.nodes);
    for i in 0..opts.nodes {
        let home = make_home(dir.path(), &format!("node{i}"), large)?;
        let setup = start_options(&home, Some(seed_addr.clone()), false, false)?;
        nodes.push(crate::run::start(std::slice::from_ref(&setup), &tuning).await?);
    }

    let bar = opts.live.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    eprintln!(
        "local network: seed {seed_addr} and {} nodes on 127.0.0.1 (temporary homes in {})",
        opts.nodes,
        dir.path().display()
    );
    let mut last_line = Instant::now();
    let mut crawled = None;
    let mut last_crawl: Option<Instant> = None;
    // Crawls in a row that listed every node, each also visiting the nodes earlier crawls
    // reached (see `crawl_from_seed`): two in a row say every node is up and known.
    let mut full_crawls = 0;
    let mut reached = Vec::new();
    let outcome = loop {
        let mut p = progress(&seed, &nodes);
        if large
            && p.nodes_connected == nodes.len()
            && last_crawl.is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            let found = crawl_from_seed(&seed_addr, &chain, &nodes, &mut reached).await;
            full_crawls = if found == nodes.len() {
                full_crawls + 1
            } else {
                0
            };
            // Below the goal until two crawls in a row saw everyone.
            crawled = Some(if full_crawls >= 2 {
                found
            } else {
                found.min(nodes.len() - 1)
            });
            last_crawl = Some(Instant::now());
        }
        p.crawled = crawled;
        if let Some(bar) = &bar {
            bar.set_message(p.to_string());
        } else if last_line.elapsed() >= Duration::from_secs(1) {
            eprintln!("{:>5.1} s  {p}", started.elapsed().as_secs_f64());
            last_line = Instant::now();
        }
        if p.converged(nodes.len()) {
            break Ok(p);
        }
        if started.elapsed() > opts.timeout {
            break Err(format!(
                "the network did not converge within {:?}: {p}",
                opts.timeout
            ));
        }
        let pause = if large { 1000 } else { 100 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    };
    let converged_in = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let lines: Vec<NodeLine> = nodes
        .iter()
        .map(|n| NodeLine {
            moniker: n.main.node_info.moniker.clone(),
            address: format!("{}@{}", n.main.node_info.id, n.main.p2p_addr),
            peers: n.main.switch.peers().len(),
            known: n.main.book.lock().addresses().count(),
        })
        .collect();

    if opts.keep && outcome.is_ok() {
        let report = Report {
            nodes: lines,
            seed: seed_addr.clone(),
            progress: outcome.clone()?,
            converged_in,
        };
        println!("{report}");
        // The seed serves the map.
        if let Some(rpc) = seed.rpc_addr {
            println!("map on http://{rpc}/");
        }
        println!("seed {seed_addr} on chain {chain}; the network stays up until Ctrl-C");
        return keep_until(seed, nodes, report, until).await;
    }
    // Stop everything, each node in order (switch, reactors, book).
    stop_all(seed, nodes).await?;
    let progress = outcome?;
    Ok(Report {
        nodes: lines,
        seed: seed_addr,
        progress,
        converged_in,
    })
}

/// Keeps the network up until `until`, then stops it.
async fn keep_until(
    seed: Running,
    nodes: Vec<Running>,
    report: Report,
    until: impl Future<Output = ()>,
) -> Result<Report, String> {
    until.await;
    stop_all(seed, nodes).await?;
    Ok(report)
}

async fn stop_all(seed: Running, nodes: Vec<Running>) -> Result<(), String> {
    let mut stops = tokio::task::JoinSet::new();
    for n in nodes.into_iter().chain(std::iter::once(seed)) {
        stops.spawn(n.stop());
    }
    while let Some(r) = stops.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_find_each_other_through_the_seed() {
        let report = run(
            Options {
                nodes: 3,
                timeout: Duration::from_secs(60),
                live: false,
                keep: false,
            },
            std::future::ready(()),
        )
        .await
        .unwrap();
        assert_eq!(report.nodes.len(), 3);
        for n in &report.nodes {
            assert!(n.peers >= 2, "{}", report);
            assert!(n.known >= 2, "{}", report);
        }
        assert!(report.progress.messages > 0);
        assert!(report.to_string().contains("converged in"));
    }
}
