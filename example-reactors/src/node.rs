//! A node for the two programs, as `mukan-p2p start` builds one: the CometBFT home is read by
//! `mukan_node::load_node` (`config.toml` with the flags applied, the node key, the chain ID)
//! and assembled by `mukan_node::NodeBuilder::from_home` (the `[p2p]` settings, the address
//! book, PEX when `pex = true`), with the program's reactor added.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mukan_node::NodeBuilder;
use mukan_node::config::Overrides;
use mukan_reactor_api::Reactor;
use mukan_transport::TcpTransport;

/// The running node.
pub type Node = mukan_node::Node<TcpTransport>;

/// The options both programs take: the home, whom to dial, where to listen.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// CometBFT home: config/node_key.json and config/genesis.json.
    #[arg(long)]
    pub home: PathBuf,
    /// Peers, `id@host:port`, comma-separated, dialed and redialed (default: the home's
    /// `[p2p] persistent_peers`).
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Listen address (default: the home's `[p2p] laddr`).
    #[arg(long = "p2p.laddr")]
    pub laddr: Option<String>,
}

/// Starts the node of `args.home` (`config/config.toml`, `config/node_key.json`,
/// `config/genesis.json`) with `reactor` registered as `name` after the home's own (PEX).
/// `args.peers` (`id@host:port`) and `args.laddr`, when given, replace `[p2p]
/// persistent_peers` and `laddr`, as `--p2p.persistent_peers` and `--p2p.laddr` do for
/// `mukan-p2p start`. Persistent peers are dialed at once (no start-up jitter: these
/// programs have one job).
///
/// # Errors
/// The home cannot be read (the message names the file and the key), or the node cannot
/// start.
pub async fn start(
    args: &NodeArgs,
    moniker: &str,
    (name, reactor): (&str, Arc<dyn Reactor>),
) -> Result<Node, String> {
    let overrides = Overrides {
        moniker: Some(moniker.into()),
        p2p_laddr: args.laddr.clone(),
        p2p_persistent_peers: (!args.peers.is_empty()).then(|| args.peers.join(",")),
        ..Overrides::default()
    };
    let setup = mukan_node::load_node(&args.home, &overrides).map_err(|e| e.to_string())?;
    let (builder, _book) = NodeBuilder::from_home(&setup)
        .await
        .map_err(|e| format!("[p2p] laddr: {e}"))?;
    builder
        .map_switch_config(|c| c.dial_randomizer = Duration::ZERO)
        .reactor(name, reactor)
        .start()
        .await
        .map_err(|e| e.to_string())
}
