//! Dial a CometBFT v0.38 node (or another copy of this example) and print its `NodeInfo`;
//! or listen and print the `NodeInfo` of each node that dials in. Uses `mukan-transport`
//! alone: TCP, secret connection, NodeInfo exchange and checks.
//!
//! ```text
//! cargo run -p mukan-transport --example node_info -- listen 127.0.0.1:26656 [--count N]
//! cargo run -p mukan-transport --example node_info -- dial <node id>@127.0.0.1:26656
//! ```
//!
//! Options (both modes): `--network <chain id>` (default `mukan-example`; a real node only
//! accepts its own chain id), `--timeout <seconds>` (default 10: how long to wait for a
//! connection before giving up). The listener prints `listening <id>@<address>` first, the
//! address to dial.

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, ManagedPeer, NetAddress, NodeInfo, PeerConfig, ProtocolVersion,
    Transport,
};
use mukan_transport::{Config, TcpTransport};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// What we announce: a CometBFT v0.38 node (p2p protocol 8, block protocol 11) serving the
/// PEX channel, so that a real node finds a channel in common with us.
fn our_info(key: &NodeKey, network: &str) -> NodeInfo {
    let protocol_version = ProtocolVersion {
        p2p: 8,
        block: 11,
        app: 0,
    };
    NodeInfo {
        protocol_version,
        id: key.node_id().to_string(),
        network: network.to_owned(),
        version: "0.38.25".to_owned(),
        channels: vec![ChannelId::PEX],
        moniker: "mukan-node-info-example".to_owned(),
        // No listen address yet: `listen` fills in the bound one. No RPC, no tx index.
        ..NodeInfo::default()
    }
}

fn peer_config() -> PeerConfig {
    PeerConfig::new(vec![ChannelDescriptor::new(
        ChannelId::PEX,
        NonZeroU32::MIN,
    )])
}

fn print_peer(peer: &dyn ManagedPeer) {
    let info = peer.node_info();
    println!(
        "peer {} ({:?}, from {})",
        peer.id(),
        peer.direction(),
        peer.socket_addr()
    );
    println!("{info:#?}");
}

struct Args {
    mode: String,
    target: String,
    network: String,
    timeout: Duration,
    count: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: node_info (listen <ip:port> [--count N] | dial <id>@<ip:port>) \
                 [--network <chain id>] [--timeout <seconds>]";
    let mode = args.next().ok_or(usage)?;
    let target = args.next().ok_or(usage)?;
    let mut parsed = Args {
        mode,
        target,
        network: "mukan-example".to_owned(),
        timeout: Duration::from_secs(10),
        count: 1,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(usage)?;
        match flag.as_str() {
            "--network" => parsed.network = value,
            "--timeout" => parsed.timeout = Duration::from_secs(value.parse()?),
            "--count" => parsed.count = value.parse()?,
            _ => return Err(usage.into()),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    // A fresh identity for this run; a real program would load `node_key.json`.
    let key = Arc::new(NodeKey::generate(&mut rand_core::OsRng));
    let transport = TcpTransport::new(
        key.clone(),
        our_info(&key, &args.network),
        Config::default(),
    );
    match args.mode.as_str() {
        "listen" => {
            let bound = transport.listen(args.target.parse::<SocketAddr>()?).await?;
            println!("listening {}@{bound}", key.node_id());
            std::io::stdout().flush()?;
            let mut seen = 0;
            while seen < args.count {
                let accepted = tokio::time::timeout(args.timeout, transport.accept(peer_config()))
                    .await
                    .map_err(|_| "no node dialed in before the timeout")?;
                match accepted {
                    Ok(peer) => {
                        print_peer(&*peer);
                        peer.stop();
                        seen += 1;
                    }
                    // A refused connection (typed: why, and which stage) is not the end.
                    Err(e) => println!("refused a connection: {e} ({e:?})"),
                }
            }
        }
        "dial" => {
            // A node's NodeInfo must carry a listen address its peers accept (Go validates
            // it), so the dialer listens too, on an ephemeral loopback port.
            transport
                .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await?;
            let addr: NetAddress = args.target.parse()?;
            let peer = tokio::time::timeout(args.timeout, transport.dial(addr, peer_config()))
                .await
                .map_err(|_| "dial timed out")??;
            print_peer(&*peer);
            peer.stop();
        }
        other => return Err(format!("unknown mode {other:?}: listen or dial").into()),
    }
    transport.close();
    Ok(())
}
