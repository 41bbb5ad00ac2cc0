//! The in-memory transport runs the same upgrade and checks, on a virtual clock.
#![cfg(feature = "test-util")]
#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;

use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, NetAddress, NodeInfo, Other, PeerConfig, ProtocolVersion,
    RejectReason, Transport, TransportError,
};
use mukan_transport::{Config, MemoryNetwork, MemoryTransport};

fn transport(net: &MemoryNetwork, seed: u8, ip: [u8; 4], network: &str) -> MemoryTransport {
    let key = Arc::new(NodeKey::from_seed([seed; 32]));
    let info = NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        id: key.node_id().to_string(),
        // Dial-only nodes still announce a syntactically valid listen address.
        listen_addr: format!("tcp://{}.{}.{}.{}:1", ip[0], ip[1], ip[2], ip[3]),
        network: network.into(),
        version: "0.38.25".into(),
        channels: vec![ChannelId(0x7e)],
        moniker: format!("m{seed}"),
        other: Other::default(),
    };
    MemoryTransport::new(
        net,
        IpAddr::V4(Ipv4Addr::from(ip)),
        key,
        info,
        Config::default(),
    )
}

fn peer_config() -> PeerConfig {
    PeerConfig {
        channels: vec![ChannelDescriptor::new(ChannelId(0x7e), NonZeroU32::MIN)],
        is_persistent: Arc::new(|_: &NetAddress| false),
    }
}

#[tokio::test(start_paused = true)]
async fn memory_nodes_connect_and_reject_like_tcp_ones() {
    let net = MemoryNetwork::default();
    let a = transport(&net, 1, [10, 0, 0, 1], "chain");
    let bound = a.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
    assert_eq!(
        a.node_info().listen_addr,
        "tcp://10.0.0.1:1",
        "an announced address is kept"
    );
    assert_eq!(bound.ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let b = transport(&net, 2, [10, 0, 0, 2], "chain");
    let target = a.net_address();
    assert_eq!(target.socket_addr(), bound);

    let (dialed, accepted) = tokio::join!(b.dial(target, peer_config()), a.accept(peer_config()));
    assert_eq!(dialed.unwrap().id(), NodeKey::from_seed([1; 32]).node_id());
    let accepted = accepted.unwrap();
    assert_eq!(
        accepted.socket_addr().ip(),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
    );

    // A second connection from the same IP is a duplicate (allow_duplicate_ip is off).
    let c = transport(&net, 3, [10, 0, 0, 2], "chain");
    let (_, second) = tokio::join!(c.dial(target, peer_config()), a.accept(peer_config()));
    match second {
        Err(TransportError::Rejected { reason, .. }) => assert_eq!(reason, RejectReason::Duplicate),
        Err(other) => panic!("expected a duplicate rejection, got {other:?}"),
        Ok(_) => panic!("expected a duplicate rejection"),
    }

    // Another network is incompatible.
    let d = transport(&net, 4, [10, 0, 0, 4], "other");
    let (dialed, _) = tokio::join!(d.dial(target, peer_config()), a.accept(peer_config()));
    match dialed {
        Err(TransportError::Rejected { reason, .. }) => {
            assert_eq!(reason, RejectReason::Incompatible);
        }
        Err(other) => panic!("expected an incompatible rejection, got {other:?}"),
        Ok(_) => panic!("expected an incompatible rejection"),
    }

    // Nobody listens at this address.
    let nowhere = NetAddress::new(target.id(), IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 1);
    assert!(matches!(
        b.dial(nowhere, peer_config()).await,
        Err(TransportError::Io(_))
    ));
}
