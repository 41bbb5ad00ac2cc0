//! The in-memory transport runs the same upgrade and checks, on a virtual clock.
#![cfg(feature = "test-util")]
#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;

use mukan_node_key::NodeKey;
use std::time::Duration;

use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, DenyList, InboxItem, NetAddress, NodeInfo, Other, PeerConfig,
    ProtocolVersion, RejectReason, StopReason, TimeoutKind, Transport, TransportError,
};
use mukan_transport::{Config, MemoryNetwork, MemoryTransport};

fn transport(net: &MemoryNetwork, seed: u8, ip: [u8; 4], network: &str) -> MemoryTransport {
    transport_with(net, seed, ip, network, Config::default())
}

fn transport_with(
    net: &MemoryNetwork,
    seed: u8,
    ip: [u8; 4],
    network: &str,
    config: Config,
) -> MemoryTransport {
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
    MemoryTransport::new(net, IpAddr::V4(Ipv4Addr::from(ip)), key, info, config)
}

fn peer_config() -> PeerConfig {
    PeerConfig::new(vec![ChannelDescriptor::new(
        ChannelId(0x7e),
        NonZeroU32::MIN,
    )])
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
        Err(e @ TransportError::Rejected { .. }) => {
            assert_eq!(e.reject_reason(), Some(RejectReason::Duplicate));
        }
        Err(other) => panic!("expected a duplicate rejection, got {other:?}"),
        Ok(_) => panic!("expected a duplicate rejection"),
    }

    // Another network is incompatible.
    let d = transport(&net, 4, [10, 0, 0, 4], "other");
    let (dialed, _) = tokio::join!(d.dial(target, peer_config()), a.accept(peer_config()));
    match dialed {
        Err(e @ TransportError::Rejected { .. }) => {
            assert_eq!(e.reject_reason(), Some(RejectReason::Incompatible));
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

fn ip_bytes(ip: IpAddr) -> [u8; 4] {
    match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(_) => unreachable!("next_ip hands out IPv4"),
    }
}

/// A listening node `a` that never calls `accept`, and `n` nodes dialing it at once.
async fn dial_unaccepted(
    net: &MemoryNetwork,
    config: Config,
    n: u8,
) -> (
    MemoryTransport,
    Vec<Result<Arc<dyn mukan_reactor_api::ManagedPeer>, TransportError>>,
) {
    let a = transport_with(net, 1, ip_bytes(net.next_ip()), "chain", config);
    a.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let target = a.net_address();
    let dials = (0..n).map(|i| {
        let t = transport(net, 10 + i, ip_bytes(net.next_ip()), "chain");
        tokio::spawn(async move { t.dial(target, peer_config()).await })
    });
    let mut results = Vec::new();
    for d in dials.collect::<Vec<_>>() {
        results.push(d.await.unwrap());
    }
    (a, results)
}

#[tokio::test(start_paused = true)]
async fn upgraded_connections_waiting_for_accept_hold_their_place_in_the_pending_pool() {
    let net = MemoryNetwork::new();
    let mut config = Config::default();
    config.max_pending_upgrades = std::num::NonZeroUsize::new(2).unwrap();
    config.accept_queue = std::num::NonZeroUsize::MIN;
    let (a, results) = dial_unaccepted(&net, config, 5).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    // Two places in the pool and one in the queue: at most three connections are upgraded
    // while nobody accepts; the others are answered at once with a close, not left waiting
    // until their dialers give up.
    assert!((1..=3).contains(&ok), "{ok} upgraded past the bound");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(!matches!(r, TransportError::Timeout(_)), "{r:?}");
    }
    // Taking them frees their places.
    let mut peers = 0;
    while peers < ok {
        if a.accept(peer_config()).await.is_ok() {
            peers += 1;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn close_ends_queued_and_parked_connections() {
    let net = MemoryNetwork::new();
    let mut config = Config::default();
    config.max_pending_upgrades = std::num::NonZeroUsize::new(8).unwrap();
    config.accept_queue = std::num::NonZeroUsize::MIN;
    let (a, results) = dial_unaccepted(&net, config, 3).await;
    let dialed: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(a.connection_count(), 3);
    let mut inboxes: Vec<_> = dialed.iter().map(|p| p.start().unwrap()).collect();
    a.close();
    // Every connection a held (one queued, two parked) is closed: the dialers see it end.
    for inbox in &mut inboxes {
        let item = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
            .await
            .expect("the connection was closed");
        assert!(
            matches!(
                item,
                Some(InboxItem::Stopped(
                    StopReason::ClosedByPeer | StopReason::Io(_)
                ))
            ),
            "{item:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(a.connection_count(), 0);
    assert!(matches!(
        a.accept(peer_config()).await,
        Err(TransportError::Closed)
    ));
    assert!(!net.is_listening(a.net_address().socket_addr()));
}

#[tokio::test(start_paused = true)]
async fn memory_network_helpers_for_switch_tests() {
    let net = MemoryNetwork::new();
    let (ip1, ip2) = (net.next_ip(), net.next_ip());
    assert_ne!(ip1, ip2);
    let mut config = Config::default();
    config.dial_timeout = Duration::from_secs(2);
    let a = transport(&net, 1, ip_bytes(ip1), "chain");
    a.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let b = transport_with(&net, 2, ip_bytes(ip2), "chain", config);
    let target = a.net_address();
    // An unresponsive host is a dial timeout.
    net.set_unresponsive(target.socket_addr(), true);
    assert!(matches!(
        b.dial(target, peer_config()).await,
        Err(TransportError::Timeout(TimeoutKind::Dial))
    ));
    net.set_unresponsive(target.socket_addr(), false);
    // A killed listener refuses.
    assert!(net.kill_listener(target.socket_addr()));
    assert!(matches!(
        b.dial(target, peer_config()).await,
        Err(TransportError::Io(_))
    ));
    // It can listen again on the same address.
    a.listen(target.socket_addr()).await.unwrap();
    let (dialed, accepted) = tokio::join!(b.dial(target, peer_config()), a.accept(peer_config()));
    dialed.unwrap();
    accepted.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_denied_memory_ip_is_refused_before_the_handshake() {
    let net = MemoryNetwork::new();
    let (ip1, ip2, ip3) = (net.next_ip(), net.next_ip(), net.next_ip());
    let mut config = Config::default();
    config.deny = Arc::new(DenyList::with_entries([format!("{ip2}").parse().unwrap()]));
    let a = transport_with(&net, 1, ip_bytes(ip1), "chain", config);
    a.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let denied = transport(&net, 2, ip_bytes(ip2), "chain");
    let allowed = transport(&net, 3, ip_bytes(ip3), "chain");
    let (dialed, accepted) = tokio::join!(
        denied.dial(a.net_address(), peer_config()),
        a.accept(peer_config())
    );
    match accepted {
        Err(e @ TransportError::Rejected { .. }) => {
            assert_eq!(e.reject_reason(), Some(RejectReason::Denied));
        }
        other => panic!("expected a denial, got {:?}", other.map(|p| p.id())),
    }
    // The dialer saw the connection closed before any handshake byte.
    let err = dialed.err().unwrap();
    assert!(
        err.reject_reason() == Some(RejectReason::AuthFailure),
        "{err:?}"
    );
    let (dialed, accepted) = tokio::join!(
        allowed.dial(a.net_address(), peer_config()),
        a.accept(peer_config())
    );
    dialed.unwrap();
    accepted.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_started_peer_enforces_its_channel_budget_and_stops_a_stalled_receiver() {
    let net = MemoryNetwork::new();
    let stall = Duration::from_secs(2);
    let mut config = Config::default();
    config.mconn = config.mconn.clone().with_recv_stall_timeout(stall);
    let a = transport_with(&net, 1, ip_bytes(net.next_ip()), "chain", config);
    a.listen("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let b = transport(&net, 2, ip_bytes(net.next_ip()), "chain");
    let budget = 4096;
    let small = PeerConfig::new(vec![
        ChannelDescriptor::new(ChannelId(0x7e), NonZeroU32::MIN)
            .with_recv_message_capacity(std::num::NonZeroUsize::new(budget).unwrap()),
    ]);
    let (dialed, accepted) = tokio::join!(b.dial(a.net_address(), peer_config()), a.accept(small));
    let (sender, receiver) = (dialed.unwrap(), accepted.unwrap());
    let _sender_inbox = sender.start().unwrap();
    let mut inbox = receiver.start().unwrap();
    let flood = tokio::spawn(async move {
        while sender
            .send(ChannelId(0x7e), bytes::Bytes::from(vec![1u8; 1000]))
            .await
            .is_ok()
        {}
    });
    // The consumer keeps every message: what it holds stays within the budget, then the
    // peer is stopped as a slow receiver.
    let mut held = Vec::new();
    let reason = loop {
        match inbox.recv().await {
            Some(InboxItem::Received { message, lease, .. }) => {
                held.push((message, lease));
                let leased: usize = held.iter().map(|(_, l)| l.bytes()).sum();
                assert!(leased <= budget, "{leased} bytes leased");
            }
            Some(InboxItem::Stopped(reason)) => break reason,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        matches!(reason, StopReason::SlowReceiver { channel } if channel == ChannelId(0x7e)),
        "{reason:?}"
    );
    assert_eq!(held.len(), 3, "4096 bytes hold three 1000-byte messages");
    assert!(inbox.recv().await.is_none());
    flood.abort();
}
