//! A node for the two programs: a CometBFT home's key and chain, the programs' reactors, and
//! a switch over TCP dialing the given peers.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mukan_node_key::NodeKey;
use mukan_reactor_api::{NodeInfo, Other, ProtocolVersion, Reactor};
use mukan_switch::{Builder, Switch};
use mukan_transport::TcpTransport;

/// The running switch.
pub type Node = Arc<Switch<TcpTransport>>;

/// Starts a node on `home` (`config/node_key.json`, `config/genesis.json`'s chain ID) with
/// `reactors`, listening on `listen`, and dials `peers` (`id@host:port`) as persistent peers.
///
/// # Errors
/// The home cannot be read, or the node cannot start.
pub async fn start(
    home: &Path,
    moniker: &str,
    reactors: Vec<(&str, Arc<dyn Reactor>)>,
    peers: &[String],
    listen: SocketAddr,
) -> Result<Node, String> {
    let key = NodeKey::load(home.join("config/node_key.json")).map_err(|e| e.to_string())?;
    let genesis = std::fs::read(home.join("config/genesis.json")).map_err(|e| e.to_string())?;
    let genesis: serde_json::Value = serde_json::from_slice(&genesis).map_err(|e| e.to_string())?;
    let chain = genesis
        .get("chain_id")
        .and_then(|c| c.as_str())
        .ok_or("genesis.json has no chain_id")?
        .to_owned();
    let mut config = mukan_switch::Config::default();
    config.persistent_peers = peers.to_vec();
    config.allow_duplicate_ip = true;
    config.dial_randomizer = Duration::ZERO;
    let mut builder = Builder::new(config);
    for (name, r) in reactors {
        builder.add_reactor(name, r).map_err(|e| e.to_string())?;
    }
    let key = Arc::new(key);
    let info = NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        id: key.node_id().to_string(),
        listen_addr: format!("tcp://{listen}"),
        network: chain,
        version: "0.38.25".into(),
        channels: builder.channel_ids(),
        moniker: moniker.into(),
        other: Other::default(),
    };
    let mut tconfig = mukan_transport::Config::default();
    tconfig.allow_duplicate_ip = true;
    let transport = TcpTransport::new(key, info, tconfig);
    transport.listen(listen).await.map_err(|e| e.to_string())?;
    let switch = builder.build(transport).map_err(|e| e.to_string())?;
    switch.start().map_err(|e| e.to_string())?;
    switch.dial_persistent_peers();
    Ok(switch)
}
