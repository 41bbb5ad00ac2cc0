//! `testnet`: a local network on loopback, with nothing to set up. A seed and N nodes, each
//! in a temporary home made by `init`, find each other through the seed and PEX; a live
//! display shows addresses discovered, connections and messages; a summary follows once the
//! network has converged, then every node stops (address books saved) and the homes are
//! removed.
//!
//! Converged: every node knows every other node's address (its book holds all N - 1 of them)
//! and has at least `min(N - 1, 3)` connections to other nodes.

use std::fmt;
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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 4,
            timeout: Duration::from_secs(60),
            live: std::io::stderr().is_terminal(),
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
}

impl Progress {
    fn converged(&self, nodes: usize) -> bool {
        self.discovered == self.discovered_goal && self.nodes_connected == nodes
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "addresses discovered {}/{}, connections {}, messages {}",
            self.discovered, self.discovered_goal, self.connections, self.messages
        )
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
) -> Result<crate::NodeSetup, String> {
    let overrides = Overrides {
        p2p_laddr: Some("tcp://127.0.0.1:0".into()),
        rpc_laddr: Some(String::new()),
        p2p_seeds: seeds,
        p2p_seed_mode: Some(seed_mode),
        ..Overrides::default()
    };
    crate::load_node(home, &overrides).map_err(|e| e.to_string())
}

/// Writes a home for a loopback node: non-strict book, duplicate IPs allowed.
fn make_home(dir: &Path, moniker: &str) -> Result<std::path::PathBuf, String> {
    let home = dir.join(moniker);
    crate::home::init(&home, moniker, Some("mukan-testnet"))?;
    let path = crate::home::config_path(&home);
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let text = text
        .replace("addr_book_strict = true", "addr_book_strict = false")
        .replace("allow_duplicate_ip = false", "allow_duplicate_ip = true")
        .replace("log_level = \"info\"", "log_level = \"error\"");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(home)
}

fn progress(seed: &Running, nodes: &[Running]) -> Progress {
    let ids: Vec<String> = nodes.iter().map(|n| n.node_info.id.clone()).collect();
    let mut p = Progress {
        discovered_goal: nodes.len() * (nodes.len() - 1),
        ..Progress::default()
    };
    let mut links = 0;
    for n in nodes {
        let known = {
            let book = n.book.lock();
            book.addresses()
                .filter(|a| {
                    ids.contains(&a.id().to_string()) && a.id().to_string() != n.node_info.id
                })
                .count()
        };
        p.discovered += known;
        let peers = n
            .switch
            .peers()
            .iter()
            .filter(|peer| ids.contains(&peer.id().to_string()))
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
            n.switch
                .stats()
                .channels
                .iter()
                .map(|c| c.received_messages)
                .sum::<u64>()
        })
        .sum();
    p
}

/// Runs the network until it converged (or `opts.timeout`), then stops it.
pub(crate) async fn run(opts: Options) -> Result<Report, String> {
    let dir = tempfile::Builder::new()
        .prefix("mukan-testnet-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let tuning = Tuning {
        ensure_peers_period: Some(Duration::from_secs(1)),
    };
    let started = Instant::now();
    let seed_home = make_home(dir.path(), "seed")?;
    let seed = crate::run::start(&start_options(&seed_home, None, true)?, &tuning).await?;
    let seed_addr = format!("{}@{}", seed.node_info.id, seed.p2p_addr);
    let mut nodes = Vec::with_capacity(opts.nodes);
    for i in 0..opts.nodes {
        let home = make_home(dir.path(), &format!("node{i}"))?;
        let setup = start_options(&home, Some(seed_addr.clone()), false)?;
        nodes.push(crate::run::start(&setup, &tuning).await?);
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
    let outcome = loop {
        let p = progress(&seed, &nodes);
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let converged_in = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let lines: Vec<NodeLine> = nodes
        .iter()
        .map(|n| NodeLine {
            moniker: n.node_info.moniker.clone(),
            address: format!("{}@{}", n.node_info.id, n.p2p_addr),
            peers: n.switch.peers().len(),
            known: n.book.lock().addresses().count(),
        })
        .collect();

    // Stop everything, each node in order (switch, reactors, book).
    let mut stops = tokio::task::JoinSet::new();
    for n in nodes.into_iter().chain(std::iter::once(seed)) {
        stops.spawn(n.stop());
    }
    while let Some(r) = stops.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    let progress = outcome?;
    Ok(Report {
        nodes: lines,
        seed: seed_addr,
        progress,
        converged_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_find_each_other_through_the_seed() {
        let report = run(Options {
            nodes: 3,
            timeout: Duration::from_secs(60),
            live: false,
        })
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
