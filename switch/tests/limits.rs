//! Peer limits and the deny list: inbound limit with unconditional peers exempt, the outbound
//! limit on every dial path (persistent and unconditional peers exempt), deny-listed IDs and
//! IPs refused both ways, and bans applied to connected peers at runtime.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mukan_reactor_api::testing::ReactorCall;
use mukan_reactor_api::{
    ChannelDescriptor, DenyEntry, DenyList, DialError, Dialer as _, Direction, Envelope,
    Network as _, NodeId, ParsedAddress, Peer, Reactor, StopReason,
};
use mukan_switch::Config;
use mukan_transport::MemoryNetwork;
use parking_lot::Mutex;

const SETTLE: Duration = Duration::from_secs(3);

fn saw(node: &Node, id: NodeId) -> bool {
    node.rec()
        .calls()
        .iter()
        .any(|c| *c == ReactorCall::InitPeer(id))
}

/// With one inbound slot, its holder is the only candidate for eviction and protected (the
/// oldest of its netgroup), so a second peer is refused (eviction itself is tested in
/// `admission.rs`).
#[tokio::test(start_paused = true)]
async fn inbound_limit_refuses_one_more_unless_unconditional() {
    let net = MemoryNetwork::default();
    let unconditional = key(60).node_id();
    let mut spec = NodeSpec::new(1);
    spec.config.max_num_inbound_peers = 1;
    spec.config.unconditional_peer_ids = vec![unconditional];
    let hub = memory_node(&net, spec).await;
    let mut clients = Vec::new();
    for seed in 51..=52 {
        let c = memory_node(&net, NodeSpec::new(seed)).await;
        let _ = c.sw.dial_peer_with_address(hub.addr).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        clients.push(c);
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(hub.sw.num_peers().inbound, 1);
    assert_eq!(hub.sw.peers().len(), 1);
    let second = &clients[1];
    assert!(
        second.sw.peers().is_empty(),
        "the 2nd connection was closed"
    );
    assert!(
        !saw(&hub, second.id()),
        "no reactor call for a refused peer"
    );
    assert_eq!(hub.sw.stats().inbound_refused.get("limit"), Some(&1));

    // An unconditional peer is let in past the limit, and not counted.
    let u = memory_node(&net, NodeSpec::new(60)).await;
    u.sw.dial_peer_with_address(hub.addr).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    assert_eq!(hub.sw.peers().len(), 2);
    assert!(hub.sw.peer(&unconditional).is_some());
    assert_eq!(hub.sw.num_peers().inbound, 1);

    // A freed slot takes the next peer.
    hub.sw.stop_peer_gracefully(&clients[0].id());
    tokio::time::sleep(SETTLE).await;
    second.sw.dial_peer_with_address(hub.addr).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    assert!(hub.sw.peer(&second.id()).is_some());
    assert_eq!(hub.sw.num_peers().inbound, 1);
}

/// Counts the connected outbound peers that count against the limit, at every `add_peer`.
struct OutboundWatch {
    exempt: HashSet<NodeId>,
    current: Mutex<HashSet<NodeId>>,
    max: Mutex<usize>,
}

impl Reactor for OutboundWatch {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        Vec::new()
    }
    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        if peer.direction() == Direction::Outbound && !self.exempt.contains(&peer.id()) {
            let mut cur = self.current.lock();
            cur.insert(peer.id());
            let mut max = self.max.lock();
            *max = (*max).max(cur.len());
        }
    }
    fn remove_peer(&self, peer: &Arc<dyn Peer>, _: &StopReason) {
        self.current.lock().remove(&peer.id());
    }
    fn receive(&self, _: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn outbound_limit_holds_on_every_dial_path() {
    let net = MemoryNetwork::default();
    let mut targets = Vec::new();
    for seed in 10..18 {
        targets.push(memory_node(&net, NodeSpec::new(seed)).await);
    }
    let persistent = memory_node(&net, NodeSpec::new(20)).await;
    let unconditional = memory_node(&net, NodeSpec::new(21)).await;
    let watch = Arc::new(OutboundWatch {
        exempt: [persistent.id(), unconditional.id()].into_iter().collect(),
        current: Mutex::new(HashSet::new()),
        max: Mutex::new(0),
    });
    let mut spec = NodeSpec::new(1);
    spec.config.max_num_outbound_peers = 2;
    spec.config.persistent_peers = vec![ParsedAddress::Resolved(persistent.addr)];
    spec.config.unconditional_peer_ids = vec![unconditional.id()];
    spec.extra = vec![("watch".into(), watch.clone())];
    let hub = memory_node(&net, spec).await;

    // Path 1: dial_peer_with_address (what PEX uses), four at once.
    let (r0, r1, r2, r3) = tokio::join!(
        hub.sw.dial_peer_with_address(targets[0].addr),
        hub.sw.dial_peer_with_address(targets[1].addr),
        hub.sw.dial_peer_with_address(targets[2].addr),
        hub.sw.dial_peer_with_address(targets[3].addr),
    );
    let results = [r0, r1, r2, r3];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(DialError::OutboundLimit)))
    );

    // Path 2: dial_peers_async.
    let addrs: Vec<ParsedAddress> = targets[4..]
        .iter()
        .map(|t| ParsedAddress::Resolved(t.addr))
        .collect();
    hub.sw.dial_peers_async(&addrs);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(watch.current.lock().len(), 2);

    // Path 3: persistent peers (exempt), and an unconditional peer (exempt).
    hub.sw.dial_persistent_peers();
    hub.sw
        .dial_peer_with_address(unconditional.addr)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(hub.sw.peer(&persistent.id()).is_some());
    assert!(hub.sw.peer(&unconditional.id()).is_some());
    assert_eq!(hub.sw.peers().len(), 4);

    // Path 4: a freed slot is taken by exactly one of many concurrent dials.
    let first = *watch.current.lock().iter().next().unwrap();
    hub.sw.stop_peer_gracefully(&first);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all: Vec<ParsedAddress> = targets
        .iter()
        .map(|t| ParsedAddress::Resolved(t.addr))
        .collect();
    hub.sw.dial_peers_async(&all);
    for t in &targets {
        let _ = hub.sw.dial_peer_with_address(t.addr).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(watch.current.lock().len(), 2);
    assert_eq!(*watch.max.lock(), 2, "the limit was never exceeded");
    let stats = hub.sw.stats();
    assert!(stats.dials.get("outbound_limit").copied().unwrap_or(0) >= 8);
}

#[tokio::test(start_paused = true)]
async fn deny_list_refuses_ids_and_ips_and_bans_at_runtime() {
    let net = MemoryNetwork::default();
    let by_id = memory_node(&net, NodeSpec::new(30)).await;
    let by_ip = memory_node(&net, NodeSpec::new(31)).await;
    let later = memory_node(&net, NodeSpec::new(32)).await;
    let deny = Arc::new(DenyList::with_entries([
        DenyEntry::Id(by_id.id()),
        format!("{}/32", by_ip.addr.ip()).parse().unwrap(),
    ]));
    let mut spec = NodeSpec::new(1);
    spec.config.deny_list = deny.clone();
    let hub = memory_node(&net, spec).await;

    // Outbound: refused before dialing.
    assert!(matches!(
        hub.sw.dial_peer_with_address(by_id.addr).await,
        Err(DialError::Denied(_))
    ));
    assert!(matches!(
        hub.sw.dial_peer_with_address(by_ip.addr).await,
        Err(DialError::Denied(_))
    ));
    // Inbound: refused, no reactor hears of them.
    let _ = by_id.sw.dial_peer_with_address(hub.addr).await;
    let _ = by_ip.sw.dial_peer_with_address(hub.addr).await;
    tokio::time::sleep(SETTLE).await;
    assert!(hub.sw.peers().is_empty());
    assert!(!saw(&hub, by_id.id()) && !saw(&hub, by_ip.id()));
    assert!(by_id.sw.peers().is_empty() && by_ip.sw.peers().is_empty());
    // The transport refused them (the IP before any handshake, the ID once authenticated).
    assert_eq!(hub.sw.transport().connection_count(), 0);

    // A ban at runtime stops the connected peer with the deny reason, without redial.
    later.sw.dial_peer_with_address(hub.addr).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    assert!(hub.sw.peer(&later.id()).is_some());
    assert_eq!(hub.sw.deny(DenyEntry::Id(later.id())), 1);
    tokio::time::sleep(SETTLE).await;
    assert!(hub.sw.peers().is_empty());
    assert!(hub.rec().calls().iter().any(
        |c| matches!(c, ReactorCall::RemovePeer(id, why) if *id == later.id() && why.contains("deny"))
    ));
    assert_eq!(hub.sw.stats().peer_stops.get("denied"), Some(&1));
    let _ = later.sw.dial_peer_with_address(hub.addr).await;
    tokio::time::sleep(SETTLE).await;
    assert!(hub.sw.peers().is_empty(), "still banned");
    // Unban.
    assert!(hub.sw.allow(&DenyEntry::Id(later.id())));
    later.sw.dial_peer_with_address(hub.addr).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    assert!(hub.sw.peer(&later.id()).is_some());
    // Config is the same list: what the node shares with its transport.
    assert!(deny.is_denied_id(&by_id.id()));
    let _ = Config::default();
}

#[tokio::test(start_paused = true)]
async fn one_dial_in_flight_per_id_and_per_address() {
    let net = MemoryNetwork::default();
    let hub = memory_node(&net, NodeSpec::new(1)).await;
    let target = memory_node(&net, NodeSpec::new(40)).await;
    // The target's host drops packets: a dial hangs until the dial timeout.
    net.set_unresponsive(target.addr.socket_addr(), true);
    let same_addr_other_id =
        mukan_reactor_api::NetAddress::new(key(41).node_id(), target.addr.ip(), target.addr.port());
    let same_id_other_addr = mukan_reactor_api::NetAddress::new(target.id(), ip(42), 1);
    let (first, second, third) = tokio::join!(
        hub.sw.dial_peer_with_address(target.addr),
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(hub.sw.num_peers().dialing, 1);
            assert!(hub.sw.is_dialing_or_existing_address(&target.addr));
            hub.sw.dial_peer_with_address(same_addr_other_id).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            hub.sw.dial_peer_with_address(same_id_other_addr).await
        },
    );
    assert!(matches!(first, Err(DialError::Transport(_))), "{first:?}");
    assert!(matches!(
        second,
        Err(DialError::AlreadyDialingOrConnected(_))
    ));
    assert!(matches!(
        third,
        Err(DialError::AlreadyDialingOrConnected(_))
    ));
    assert_eq!(hub.sw.stats().dials.get("timeout"), Some(&1));
    // Reachable again: the reservation is gone.
    net.set_unresponsive(target.addr.socket_addr(), false);
    hub.sw.dial_peer_with_address(target.addr).await.unwrap();
}
