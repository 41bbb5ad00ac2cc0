//! A node for the two programs: a CometBFT home's key, chain and `[p2p]` settings, the
//! programs' reactors, and a switch over TCP dialing the persistent peers, assembled by
//! `mukan_node::NodeBuilder` (which checks our `NodeInfo` and fills its channels).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mukan_node::NodeBuilder;
use mukan_node_key::NodeKey;
use mukan_reactor_api::{ParsedAddress, Reactor};
use mukan_switch::Switch;
use mukan_transport::TcpTransport;

/// The running switch.
pub type Node = Arc<Switch<TcpTransport>>;

/// Starts a node on `home` (`config/node_key.json`, `config/genesis.json`'s chain ID,
/// `config/config.toml`'s `[p2p] laddr` and `persistent_peers`) with `reactors`. `laddr` and
/// `peers` (`id@host:port`), when given, replace the file's.
///
/// # Errors
/// The home cannot be read, or the node cannot start.
pub async fn start(
    home: &Path,
    moniker: &str,
    reactors: Vec<(&str, Arc<dyn Reactor>)>,
    peers: &[String],
    laddr: Option<&str>,
) -> Result<Node, String> {
    let text =
        std::fs::read_to_string(home.join("config/config.toml")).map_err(|e| e.to_string())?;
    let config: toml::Table = text.parse().map_err(|e| format!("config.toml: {e}"))?;
    let p2p = |key: &str| {
        config
            .get("p2p")
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
    };
    let laddr = laddr.or(p2p("laddr")).unwrap_or("tcp://0.0.0.0:26656");
    let listen: SocketAddr = laddr
        .trim_start_matches("tcp://")
        .parse()
        .map_err(|e| format!("laddr {laddr}: {e}"))?;
    let peers: Vec<String> = if peers.is_empty() {
        let list = p2p("persistent_peers").unwrap_or_default().split(',');
        list.map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        peers.to_vec()
    };
    let key = NodeKey::load(home.join("config/node_key.json")).map_err(|e| e.to_string())?;
    let genesis = std::fs::read(home.join("config/genesis.json")).map_err(|e| e.to_string())?;
    let genesis: serde_json::Value = serde_json::from_slice(&genesis).map_err(|e| e.to_string())?;
    let chain = genesis
        .get("chain_id")
        .and_then(|c| c.as_str())
        .ok_or("genesis.json has no chain_id")?
        .to_owned();
    let peers = peers
        .iter()
        .map(|p| p.parse().map_err(|e| format!("peer {p:?}: {e}")))
        .collect::<Result<Vec<ParsedAddress>, String>>()?;
    let mut builder = NodeBuilder::new(Arc::new(key), chain)
        .moniker(moniker)
        .version("0.38.25")
        .listen(listen)
        .persistent_peers(peers)
        .map_switch_config(|c| {
            c.allow_duplicate_ip = true;
            c.dial_randomizer = Duration::ZERO;
        });
    for (name, r) in reactors {
        builder = builder.reactor(name, r);
    }
    let node = builder.start().await.map_err(|e| e.to_string())?;
    Ok(node.switch().clone())
}
