//! `mukan-p2p`: a CometBFT-compatible p2p node, seed and crawler.
//!
//! Commands: `init`, `start`, `seed`, `crawl`, `testnet` (the default), `show-node-id`,
//! `version`. The node reads a CometBFT home (`config/config.toml`, `config/node_key.json`,
//! `config/genesis.json`, `config/addrbook.json`); CometBFT's flags override the file.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod crawl;
mod graph;
mod http;
mod logging;
mod metrics;
mod nodemap;
mod rpc;
mod run;
mod store;
mod testnet;
mod watch;
mod web;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use mukan_node::config::{self, Overrides};
use mukan_node::{NodeSetup, home, load_node};

/// The version this program reports (`version`, `NodeInfo.version`, `/status`).
pub(crate) use mukan_node::VERSION;

#[derive(Parser, Debug)]
#[command(
    name = "mukan-p2p",
    version,
    about = "A CometBFT-compatible p2p node, seed and crawler",
    long_about = "A CometBFT-compatible p2p node, seed and crawler.\n\n\
        Without a command it runs `testnet`: a local network on loopback."
)]
struct Cli {
    /// Home directory (default: $CMTHOME, else ~/.cometbft). `start` and `seed` take it
    /// several times: one chain per home, all in one process (see node/README.md).
    #[arg(long, global = true, value_name = "DIR", action = clap::ArgAction::Append)]
    home: Vec<PathBuf>,
    /// Log level as CometBFT spells it: "info", "debug", "p2p:debug,*:error".
    #[arg(long = "log_level", global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log format: "plain" or "json".
    #[arg(long = "log_format", global = true, value_name = "FORMAT")]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a home directory: config.toml, node_key.json, genesis.json (with --chain-id).
    /// Existing files are never overwritten.
    Init {
        /// Chain ID for a new genesis.json (written only when there is none).
        #[arg(long = "chain-id", value_name = "ID")]
        chain_id: Option<String>,
        /// The node's name.
        #[arg(long)]
        moniker: Option<String>,
    },
    /// Run the node: switch, PEX and address book from the home directory.
    Start(NodeFlags),
    /// Run the node as a seed (`start --p2p.seed_mode`).
    Seed(NodeFlags),
    /// Crawl a network over the p2p protocol (handshake + PEX) and report every node.
    Crawl(CrawlFlags),
    /// Run a local network on loopback (temporary homes), show it converge, then exit.
    Testnet {
        /// How many nodes besides the seed.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Give up (exit 1) if the network has not converged after this long.
        #[arg(long, default_value = "60s", value_name = "DURATION")]
        timeout: String,
        /// Once converged, keep the network up (the seed serves the map) until Ctrl-C.
        #[arg(long)]
        keep: bool,
    },
    /// Print this node's ID (from the home's node key).
    ShowNodeId,
    /// Print the version.
    Version,
}

/// The flags of `crawl`.
#[derive(Args, Debug, Default, Clone)]
struct CrawlFlags {
    /// Where to start: id@host:port, separated by commas. Repeat it to crawl several chains
    /// (one list per chain) into one database.
    #[arg(long, value_name = "LIST")]
    seeds: Vec<String>,
    /// The chain ID the nodes must be on (default: the network of the first node reached).
    /// With one --seeds only; with --graphml and no --seeds: the chain to export.
    #[arg(long = "chain-id", value_name = "ID")]
    chain_id: Option<String>,
    /// How long one crawl may dial, as a Go duration ("30s", "2m").
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    timeout: String,
    /// Print JSON instead of a table (with --watch: one JSON object a line per crawl).
    #[arg(long)]
    json: bool,
    /// Keep crawling every --interval, writing each crawl to --db, and serve the map.
    #[arg(long, requires = "db")]
    watch: bool,
    /// Time between the starts of two crawls of --watch.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    interval: String,
    /// The crawl database (SQLite); created if missing.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Write the graph (of this crawl, or without --seeds the latest in --db) as GraphML.
    #[arg(long, value_name = "FILE")]
    graphml: Option<PathBuf>,
    /// Where --watch serves the map ("" for nowhere).
    #[arg(
        long = "rpc.laddr",
        default_value = "tcp://127.0.0.1:26680",
        value_name = "ADDR"
    )]
    rpc_laddr: String,
    /// Crawls kept per chain in --db (older ones are deleted).
    #[arg(long = "keep-crawls", default_value_t = 1008, value_name = "N")]
    keep_crawls: usize,
    /// Stop --watch after this many rounds (default: until SIGINT or SIGTERM).
    #[arg(long, value_name = "N", hide = true)]
    rounds: Option<usize>,
    /// Also follow loopback, private and other non-routable addresses learned from PEX
    /// (followed anyway when a seed given is itself such an address).
    #[arg(long = "allow-private")]
    allow_private: bool,
}

/// CometBFT's flags for `start` and `seed`; each overrides the file.
#[derive(Args, Debug, Default, Clone)]
struct NodeFlags {
    /// The node's name.
    #[arg(long)]
    moniker: Option<String>,
    /// Where to accept peers, e.g. tcp://0.0.0.0:26656.
    #[arg(long = "p2p.laddr", value_name = "ADDR")]
    p2p_laddr: Option<String>,
    /// The address peers should dial.
    #[arg(long = "p2p.external-address", value_name = "ADDR")]
    p2p_external_address: Option<String>,
    /// Seed nodes, id@host:port separated by commas.
    #[arg(long = "p2p.seeds", value_name = "LIST")]
    p2p_seeds: Option<String>,
    /// Persistent peers, id@host:port separated by commas.
    #[arg(long = "p2p.persistent_peers", value_name = "LIST")]
    p2p_persistent_peers: Option<String>,
    /// Node IDs exempt from the peer limits.
    #[arg(long = "p2p.unconditional_peer_ids", value_name = "IDS")]
    p2p_unconditional_peer_ids: Option<String>,
    /// Node IDs whose addresses are never shared.
    #[arg(long = "p2p.private_peer_ids", value_name = "IDS")]
    p2p_private_peer_ids: Option<String>,
    /// Exchange addresses with peers (PEX).
    #[arg(long = "p2p.pex", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    p2p_pex: Option<bool>,
    /// Run as a seed.
    #[arg(long = "p2p.seed_mode", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    p2p_seed_mode: Option<bool>,
    /// Bytes per second the node may send over all its connections together, shared fairly
    /// between peers (on top of send_rate); 0: no total.
    #[arg(long = "p2p.max_send_rate_total", value_name = "BYTES")]
    p2p_max_send_rate_total: Option<u64>,
    /// Bytes per second the node may receive over all its connections together (on top of
    /// recv_rate); 0: no total.
    #[arg(long = "p2p.max_recv_rate_total", value_name = "BYTES")]
    p2p_max_recv_rate_total: Option<u64>,
    /// Where the RPC (/status, /net_info, /peers) listens.
    #[arg(long = "rpc.laddr", value_name = "ADDR")]
    rpc_laddr: Option<String>,
}

impl NodeFlags {
    fn overrides(&self, log_level: Option<String>, log_format: Option<String>) -> Overrides {
        Overrides {
            moniker: self.moniker.clone(),
            p2p_laddr: self.p2p_laddr.clone(),
            p2p_external_address: self.p2p_external_address.clone(),
            p2p_seeds: self.p2p_seeds.clone(),
            p2p_persistent_peers: self.p2p_persistent_peers.clone(),
            p2p_unconditional_peer_ids: self.p2p_unconditional_peer_ids.clone(),
            p2p_private_peer_ids: self.p2p_private_peer_ids.clone(),
            p2p_pex: self.p2p_pex,
            p2p_seed_mode: self.p2p_seed_mode,
            p2p_max_send_rate_total: self.p2p_max_send_rate_total,
            p2p_max_recv_rate_total: self.p2p_max_recv_rate_total,
            rpc_laddr: self.rpc_laddr.clone(),
            log_level,
            log_format,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let homes = if cli.home.is_empty() {
        vec![home::default_home()]
    } else {
        cli.home.clone()
    };
    let one_home = || match homes.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err("--home: this command takes one home (start and seed take several)".to_owned()),
    };
    let result = match cli.command {
        None => run_testnet(4, "60s", false, &cli.log_level, &cli.log_format),
        Some(Command::Testnet {
            nodes,
            timeout,
            keep,
        }) => run_testnet(nodes, &timeout, keep, &cli.log_level, &cli.log_format),
        Some(Command::Init { chain_id, moniker }) => {
            one_home().and_then(|home| init(&home, chain_id, moniker))
        }
        Some(Command::Start(flags)) => start(&homes, &flags, cli.log_level, cli.log_format, false),
        Some(Command::Seed(flags)) => start(&homes, &flags, cli.log_level, cli.log_format, true),
        Some(Command::Crawl(flags)) => crawl(&flags, &cli.log_level, &cli.log_format),
        Some(Command::ShowNodeId) => one_home().and_then(|home| show_node_id(&home)),
        Some(Command::Version) => {
            println!("{VERSION}");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mukan-p2p: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logging for the commands that do not read a home (testnet, crawl).
fn plain_logging(
    level: &Option<String>,
    format: &Option<String>,
    default: &str,
) -> Result<(), String> {
    let spec = level.as_deref().unwrap_or(default);
    let format = match format.as_deref() {
        None | Some("plain") => config::LogFormat::Plain,
        Some("json") => config::LogFormat::Json,
        Some(other) => {
            return Err(format!(
                "--log_format: {other:?}: expected \"plain\" or \"json\""
            ));
        }
    };
    logging::init(spec, format).map_err(|e| format!("--log_level: {e}"))
}

fn run_testnet(
    nodes: usize,
    timeout: &str,
    keep: bool,
    level: &Option<String>,
    format: &Option<String>,
) -> Result<(), String> {
    plain_logging(level, format, "error")?;
    if !(2..=testnet::MAX_NODES).contains(&nodes) {
        return Err(format!(
            "--nodes must be between 2 and {}",
            testnet::MAX_NODES
        ));
    }
    let timeout = config::parse_go_duration(timeout).map_err(|e| format!("--timeout: {e}"))?;
    let opts = testnet::Options {
        nodes,
        timeout,
        keep,
        ..testnet::Options::default()
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let signals = {
        let _guard = runtime.enter();
        run::Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?
    };
    let report = runtime.block_on(async {
        let net = testnet::run(opts, signals.wait());
        if keep {
            return net.await;
        }
        // The run gives up at `timeout`; this bounds the stopping too.
        tokio::time::timeout(timeout + Duration::from_secs(60), net)
            .await
            .map_err(|_| "the local network did not stop in time".to_owned())?
    })?;
    if !keep {
        println!("{report}");
    }
    Ok(())
}

fn init(home: &Path, chain_id: Option<String>, moniker: Option<String>) -> Result<(), String> {
    let moniker = moniker.unwrap_or_else(config::default_moniker);
    if moniker.trim().is_empty() || !moniker.bytes().all(|b| (32..=126).contains(&b)) {
        return Err(format!(
            "--moniker {moniker:?}: must be non-empty printable ASCII"
        ));
    }
    for outcome in home::init(home, &moniker, chain_id.as_deref())? {
        match outcome {
            home::Outcome::Created(p) => println!("created {}", p.display()),
            home::Outcome::Kept(p) => println!("kept existing {}", p.display()),
            home::Outcome::Skipped(p) => println!(
                "no {} written: pass --chain-id ID, or copy the chain's genesis file there",
                p.display()
            ),
        }
    }
    Ok(())
}

fn show_node_id(home: &Path) -> Result<(), String> {
    let loaded =
        config::load(&home::config_path(home), &Overrides::default()).map_err(|e| e.to_string())?;
    let key = home::node_key(&config::rootify(home, &loaded.config.node_key_file))
        .map_err(|e| e.to_string())?;
    println!("{}", key.node_id());
    Ok(())
}

/// The flags that belong to one chain: refused with several homes (each home's config.toml
/// says them).
fn per_chain_flags(flags: &NodeFlags) -> Vec<&'static str> {
    [
        ("--p2p.laddr", flags.p2p_laddr.is_some()),
        (
            "--p2p.external-address",
            flags.p2p_external_address.is_some(),
        ),
        ("--p2p.seeds", flags.p2p_seeds.is_some()),
        (
            "--p2p.persistent_peers",
            flags.p2p_persistent_peers.is_some(),
        ),
        (
            "--p2p.unconditional_peer_ids",
            flags.p2p_unconditional_peer_ids.is_some(),
        ),
        (
            "--p2p.private_peer_ids",
            flags.p2p_private_peer_ids.is_some(),
        ),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect()
}

/// `start` and `seed` on one or more homes (one chain each, one process): every home is read
/// and checked before anything starts; the first home's log, RPC and metrics settings are
/// the process's.
fn start(
    homes: &[PathBuf],
    flags: &NodeFlags,
    log_level: Option<String>,
    log_format: Option<String>,
    seed: bool,
) -> Result<(), String> {
    let mut flags = flags.clone();
    if seed {
        flags.p2p_seed_mode = Some(true);
    }
    if homes.len() > 1 {
        let given = per_chain_flags(&flags);
        if !given.is_empty() {
            return Err(format!(
                "{}: with several --home, set it in each home's config.toml",
                given.join(", ")
            ));
        }
    }
    let overrides = flags.overrides(log_level, log_format);
    let setups = homes
        .iter()
        .map(|home| load_node(home, &overrides).map_err(|e| e.to_string()))
        .collect::<Result<Vec<NodeSetup>, String>>()?;
    let Some(first) = setups.first() else {
        return Err("--home: give at least one".into());
    };
    logging::init(&first.config.log_level, first.config.log_format)
        .map_err(|e| format!("log_level: {e}"))?;
    for setup in &setups {
        if !setup.ignored.is_empty() {
            tracing::warn!(
                target: "mukan_p2p",
                "{}: ignoring what a p2p node does not use: {}",
                home::config_path(&setup.home).display(),
                setup.ignored.join(", ")
            );
        }
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let signals = {
        let _guard = runtime.enter();
        run::Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?
    };
    runtime.block_on(run::run_until(&setups, signals.wait()))
}

fn parse_seeds(list: &str) -> Result<Vec<mukan_reactor_api::ParsedAddress>, String> {
    let seeds = config::split_list(list)
        .map(|s| {
            s.parse::<mukan_reactor_api::ParsedAddress>()
                .map_err(|e| format!("--seeds: bad address {s:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if seeds.is_empty() {
        return Err("--seeds: give at least one id@host:port".into());
    }
    Ok(seeds)
}

fn write_graphml(path: &Path, graph: &graph::Graph) -> Result<(), String> {
    std::fs::write(path, graph.to_graphml())
        .map_err(|e| format!("--graphml: {}: {e}", path.display()))?;
    eprintln!(
        "graph of {} ({} nodes, {} edges) written to {}",
        graph.chain_id,
        graph.nodes.len(),
        graph.edges.len(),
        path.display()
    );
    Ok(())
}

/// The graph of the latest finished crawl in `db` (of `chain`, or of its only chain).
fn export_graphml(db: &Path, chain: Option<&str>, out: &Path) -> Result<(), String> {
    let store = store::Store::open_read_only(db).map_err(|e| e.to_string())?;
    let chains = store.chains().map_err(|e| e.to_string())?;
    let chain = match chain {
        Some(c) => c.to_owned(),
        None => match chains.as_slice() {
            [one] => one.clone(),
            [] => return Err(format!("{}: no crawl in the database", db.display())),
            many => {
                return Err(format!(
                    "{}: several chains ({}): pick one with --chain-id",
                    db.display(),
                    many.join(", ")
                ));
            }
        },
    };
    let graph = store
        .latest_graph(&chain, &[])
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: no finished crawl of {chain}", db.display()))?;
    write_graphml(out, &graph)
}

fn crawl(
    flags: &CrawlFlags,
    level: &Option<String>,
    format: &Option<String>,
) -> Result<(), String> {
    plain_logging(level, format, "error")?;
    let timeout =
        config::parse_go_duration(&flags.timeout).map_err(|e| format!("--timeout: {e}"))?;
    if flags.seeds.is_empty() {
        return match (&flags.db, &flags.graphml, flags.watch) {
            (Some(db), Some(out), false) => export_graphml(db, flags.chain_id.as_deref(), out),
            _ => Err("--seeds: give at least one id@host:port".into()),
        };
    }
    let lists = flags
        .seeds
        .iter()
        .map(|l| parse_seeds(l))
        .collect::<Result<Vec<_>, _>>()?;
    if lists.len() > 1 && flags.chain_id.is_some() {
        return Err(
            "--chain-id: give it with one --seeds only (each list's chain is learned)".into(),
        );
    }
    if lists.len() > 1 && flags.graphml.is_some() {
        return Err("--graphml: give it with one --seeds only".into());
    }
    let retention = store::Retention {
        crawls: flags.keep_crawls.max(1),
        ..store::Retention::default()
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    if flags.watch {
        let interval =
            config::parse_go_duration(&flags.interval).map_err(|e| format!("--interval: {e}"))?;
        let map_addr = if flags.rpc_laddr.is_empty() {
            None
        } else {
            let hp = config::parse_host_port(&flags.rpc_laddr, false)
                .map_err(|e| format!("--rpc.laddr: {e}"))?;
            Some(
                runtime
                    .block_on(config::resolve(&hp))
                    .map_err(|e| format!("--rpc.laddr: {e}"))?,
            )
        };
        let opts = watch::Options {
            chains: lists
                .into_iter()
                .map(|seeds| watch::Chain {
                    seeds,
                    chain_id: flags.chain_id.clone(),
                })
                .collect(),
            interval,
            timeout,
            db: flags.db.clone().ok_or("--watch needs --db FILE")?,
            retention,
            json: flags.json,
            map_addr,
            rounds: flags.rounds,
            allow_private: flags.allow_private,
        };
        let signals = {
            let _guard = runtime.enter();
            run::Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?
        };
        return runtime.block_on(watch::run(opts, signals.wait()));
    }
    for seeds in lists {
        let (report, crawl_id) = runtime.block_on(async {
            let bounded = async {
                match &flags.db {
                    Some(db) => {
                        let store = watch::open(db).await?;
                        let chain = match flags.chain_id.clone() {
                            Some(c) => c,
                            None => crawl::network_of_seeds(&seeds)
                                .await
                                .ok_or(crawl::NO_NETWORK)?,
                        };
                        let (id, report) = watch::crawl_into(
                            &store,
                            &chain,
                            &seeds,
                            timeout,
                            retention,
                            flags.allow_private,
                        )
                        .await?;
                        Ok::<_, String>((report, Some(id)))
                    }
                    None => {
                        let report = crawl::crawl(crawl::Options {
                            seeds: seeds.clone(),
                            chain_id: flags.chain_id.clone(),
                            timeout,
                            allow_private: flags.allow_private,
                            known: Vec::new(),
                            sink: None,
                        })
                        .await?;
                        Ok((report, None))
                    }
                }
            };
            tokio::time::timeout(timeout + Duration::from_secs(60), bounded)
                .await
                .map_err(|_| "the crawl did not finish in time".to_owned())?
        })?;
        if flags.json {
            let mut j = report.to_json();
            if let (Some(o), Some(id)) = (j.as_object_mut(), crawl_id) {
                o.insert("crawl_id".into(), id.into());
            }
            println!("{j:#}");
        } else {
            println!("{}", report.to_table());
        }
        if let Some(out) = &flags.graphml {
            write_graphml(out, &report.to_graph())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent_and_takes_cometbft_flags() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "mukan-p2p",
            "start",
            "--home",
            "/h",
            "--moniker",
            "m",
            "--p2p.laddr",
            "tcp://127.0.0.1:1",
            "--p2p.external-address",
            "1.2.3.4:5",
            "--p2p.seeds",
            "s",
            "--p2p.persistent_peers",
            "p",
            "--p2p.unconditional_peer_ids",
            "u",
            "--p2p.private_peer_ids",
            "x",
            "--p2p.pex=false",
            "--p2p.seed_mode",
            "--rpc.laddr",
            "tcp://127.0.0.1:2",
            "--log_level",
            "p2p:debug,*:error",
            "--log_format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.home, [PathBuf::from("/h")]);
        assert_eq!(cli.log_level.as_deref(), Some("p2p:debug,*:error"));
        let Some(Command::Start(f)) = cli.command else {
            panic!()
        };
        assert_eq!(f.p2p_pex, Some(false));
        assert_eq!(f.p2p_seed_mode, Some(true));
        assert_eq!(f.p2p_external_address.as_deref(), Some("1.2.3.4:5"));
        let o = f.overrides(None, None);
        assert_eq!(o.rpc_laddr.as_deref(), Some("tcp://127.0.0.1:2"));
        let cli = Cli::try_parse_from(["mukan-p2p", "crawl", "--seeds", "a", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Crawl(CrawlFlags { json: true, .. }))
        ));
        let cli = Cli::try_parse_from([
            "mukan-p2p",
            "crawl",
            "--watch",
            "--db",
            "c.sqlite",
            "--seeds",
            "a",
            "--seeds",
            "b",
        ])
        .unwrap();
        let Some(Command::Crawl(f)) = cli.command else {
            panic!()
        };
        assert_eq!(f.seeds, ["a", "b"]);
        assert!(f.watch);
        assert_eq!(f.interval, "10m");
        // --watch needs a database.
        assert!(Cli::try_parse_from(["mukan-p2p", "crawl", "--watch", "--seeds", "a"]).is_err());
        assert!(
            Cli::try_parse_from(["mukan-p2p"])
                .unwrap()
                .command
                .is_none()
        );
    }
}
