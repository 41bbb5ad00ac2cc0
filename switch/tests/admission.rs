//! Inbound admission when slots are scarce, on the real switch over the memory transport:
//! the per-netgroup cap (loopback and private addresses exempt), eviction when the inbound
//! slots are full (the victim by `select_victim`, outbound peers never touched), refusal when
//! every inbound peer is protected, and `Network::mark_useful` protecting a peer.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use mukan_reactor_api::{Dialer as _, Network as _, NodeId};
use mukan_transport::MemoryNetwork;

const SETTLE: Duration = Duration::from_secs(3);

fn at(ip: &str) -> IpAddr {
    ip.parse().unwrap()
}

/// A node at `ip` (its own seed) that dials `target` and waits for the outcome.
async fn dial_from(net: &MemoryNetwork, seed: u16, ip: &str, target: &Node) -> Node {
    let mut spec = NodeSpec::new(seed);
    spec.ip = at(ip);
    let node = memory_node(net, spec).await;
    let _ = node.sw.dial_peer_with_address(target.addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    node
}

fn connected(hub: &Node, ids: &[NodeId]) -> Vec<bool> {
    ids.iter().map(|id| hub.sw.peer(id).is_some()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_netgroup_holds_at_most_its_cap_of_inbound_peers() {
    let net = MemoryNetwork::default();
    let mut spec = NodeSpec::new(1);
    spec.config.max_num_inbound_peers = 20;
    spec.config.max_inbound_per_netgroup = 2;
    let hub = memory_node(&net, spec).await;
    let mut same_group = Vec::new();
    for (i, ip) in ["45.34.1.1", "45.34.200.7", "45.34.3.3"]
        .into_iter()
        .enumerate()
    {
        same_group.push(dial_from(&net, 10 + i as u16, ip, &hub).await);
    }
    let ids: Vec<NodeId> = same_group.iter().map(Node::id).collect();
    assert_eq!(
        connected(&hub, &ids),
        [true, true, false],
        "45.34.0.0/16 capped at 2"
    );
    assert_eq!(
        hub.sw.stats().inbound_refused.get("netgroup_limit"),
        Some(&1)
    );
    // Another /16 gets in; an IPv6 /32 is one group too.
    let other = dial_from(&net, 20, "81.1.0.2", &hub).await;
    let mut v6 = Vec::new();
    for (seed, ip) in [
        (21, "2a01:4f8:1::1"),
        (22, "2a01:4f8:ffff::1"),
        (23, "2a01:4f8:9::9"),
    ] {
        v6.push(dial_from(&net, seed, ip, &hub).await);
    }
    assert!(hub.sw.peer(&other.id()).is_some());
    let v6_ids: Vec<NodeId> = v6.iter().map(Node::id).collect();
    assert_eq!(
        connected(&hub, &v6_ids),
        [true, true, false],
        "2a01:4f8::/32 capped at 2"
    );
    // Loopback and private addresses are exempt.
    let mut local = Vec::new();
    for (seed, ip) in [
        (30, "127.0.0.5"),
        (31, "127.0.0.6"),
        (32, "127.0.0.7"),
        (33, "10.0.0.1"),
        (34, "10.0.0.2"),
        (35, "10.0.0.3"),
    ] {
        local.push(dial_from(&net, seed, ip, &hub).await);
    }
    let local_ids: Vec<NodeId> = local.iter().map(Node::id).collect();
    assert_eq!(connected(&hub, &local_ids), [true; 6]);
    assert_eq!(hub.sw.num_peers().inbound, 2 + 1 + 2 + 6);
    assert_eq!(
        hub.sw.stats().inbound_refused.get("netgroup_limit"),
        Some(&2)
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_node_evicts_the_youngest_of_its_largest_netgroup_and_keeps_outbound_peers() {
    let net = MemoryNetwork::default();
    let mut target_spec = NodeSpec::new(90);
    target_spec.ip = at("99.1.0.1");
    let target = memory_node(&net, target_spec).await;
    let mut spec = NodeSpec::new(1);
    spec.ip = at("99.2.0.1");
    spec.config.max_num_inbound_peers = 3;
    let hub = memory_node(&net, spec).await;
    hub.sw.dial_peer_with_address(target.addr).await.unwrap();
    let mut clients = Vec::new();
    for (i, ip) in ["45.34.1.1", "45.34.2.2", "45.34.3.3"]
        .into_iter()
        .enumerate()
    {
        clients.push(dial_from(&net, 10 + i as u16, ip, &hub).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ids: Vec<NodeId> = clients.iter().map(Node::id).collect();
    assert_eq!(connected(&hub, &ids), [true; 3]);
    // A newcomer from another netgroup: the oldest of 45.34/16 is protected (distinct
    // netgroups), half of the rest by uptime, and the youngest gives up its slot.
    let newcomer = dial_from(&net, 20, "81.1.0.2", &hub).await;
    tokio::time::sleep(SETTLE).await;
    assert!(
        hub.sw.peer(&newcomer.id()).is_some(),
        "the newcomer was admitted"
    );
    assert_eq!(connected(&hub, &ids), [true, true, false]);
    assert!(
        clients[2].sw.peers().is_empty(),
        "the evicted peer's connection closed"
    );
    assert_eq!(hub.sw.stats().peer_stops.get("evicted"), Some(&1));
    assert_eq!(hub.sw.num_peers().inbound, 3);
    assert!(
        hub.sw.peer(&target.id()).is_some(),
        "the outbound peer is never evicted"
    );
    assert_eq!(hub.sw.num_peers().outbound, 1);
}

#[tokio::test(start_paused = true)]
async fn when_every_inbound_peer_is_protected_the_newcomer_is_refused() {
    let net = MemoryNetwork::default();
    let mut spec = NodeSpec::new(1);
    spec.config.max_num_inbound_peers = 1;
    let hub = memory_node(&net, spec).await;
    let first = dial_from(&net, 10, "45.34.1.1", &hub).await;
    let newcomer = dial_from(&net, 11, "81.1.0.2", &hub).await;
    tokio::time::sleep(SETTLE).await;
    assert!(hub.sw.peer(&first.id()).is_some());
    assert!(hub.sw.peer(&newcomer.id()).is_none());
    assert_eq!(hub.sw.stats().inbound_refused.get("limit"), Some(&1));
    assert_eq!(hub.sw.stats().peer_stops.get("evicted"), None);
}

/// Six inbound peers of one netgroup, then a newcomer: which of them is evicted, with and
/// without the youngest marked useful.
async fn evicted_among_six(mark_youngest: bool) -> (Vec<bool>, Vec<NodeId>) {
    let net = MemoryNetwork::default();
    let mut spec = NodeSpec::new(1);
    spec.config.max_num_inbound_peers = 6;
    let hub = memory_node(&net, spec).await;
    let mut clients = Vec::new();
    for i in 0..6u16 {
        let ip = format!("45.34.{}.1", i + 1);
        clients.push(dial_from(&net, 10 + i, &ip, &hub).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ids: Vec<NodeId> = clients.iter().map(Node::id).collect();
    if mark_youngest {
        hub.sw.mark_useful(&ids[5]);
    }
    let newcomer = dial_from(&net, 20, "81.1.0.2", &hub).await;
    tokio::time::sleep(SETTLE).await;
    assert!(hub.sw.peer(&newcomer.id()).is_some());
    (connected(&hub, &ids), ids)
}

#[tokio::test(start_paused = true)]
async fn a_peer_marked_useful_is_protected_from_eviction() {
    // Unmarked: the oldest (distinct netgroup) and two more (uptime) are protected, and the
    // youngest is evicted.
    let (kept, _) = evicted_among_six(false).await;
    assert_eq!(kept, [true, true, true, true, true, false]);
    // Marked useful (as PEX does for an answer), the youngest stays; the next youngest goes.
    let (kept, _) = evicted_among_six(true).await;
    assert_eq!(kept, [true, true, true, true, false, true]);
}
