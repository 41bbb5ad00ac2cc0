//! Persistent peers on virtual time: a killed peer that comes back is redialed on Go's
//! schedule at its configured address, resolved again at every attempt; the cap holds; the
//! schedule gives up after 30 attempts unless told to go on forever; a host name that does
//! not resolve is a failed dial, not a startup error.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use mukan_reactor_api::testing::check_grammar;
use mukan_reactor_api::{Dialer as _, Direction, Network as _, NodeId, ParsedAddress};
use mukan_switch::redial_bounds;
use mukan_transport::MemoryNetwork;

const PORT: u16 = 26_656;

fn persistent_spec(seed: u16, peer: NodeId, resolver: &Arc<ScriptedResolver>) -> NodeSpec {
    let mut spec = NodeSpec::new(seed);
    spec.config.persistent_peers = vec![format!("{peer}@localhost:{PORT}").parse().unwrap()];
    spec.config.rng_seed = Some(u64::from(seed));
    spec.resolver = Some(resolver.clone());
    spec
}

/// A node that announces an address nobody can dial, so only the configured one works.
fn remote_spec(seed: u16, ip: std::net::IpAddr) -> NodeSpec {
    let mut spec = NodeSpec::new(seed);
    spec.ip = ip;
    spec.port = PORT;
    spec.listen_addr = Some("tcp://127.1.0.99:1".into());
    spec
}

fn gaps(times: &[tokio::time::Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn killed_peer_is_redialed_on_schedule_at_its_configured_address() {
    let net = MemoryNetwork::default();
    let resolver = Arc::new(ScriptedResolver::default());
    resolver.set("localhost", vec![ip(9)]);
    let b_id = key(9).node_id();
    let a = memory_node(&net, persistent_spec(1, b_id, &resolver)).await;
    // B connects to A: A knows B as persistent by ID, inbound.
    let b = memory_node(&net, remote_spec(9, ip(9))).await;
    b.sw.dial_peer_with_address(a.addr).await.unwrap();
    wait_until("B connected", Duration::from_secs(5), || {
        a.sw.peer(&b_id).is_some()
    })
    .await;
    assert_eq!(a.sw.peer(&b_id).unwrap().direction(), Direction::Inbound);
    assert!(a.sw.peer(&b_id).unwrap().is_persistent());

    // B goes away; it will come back at another IP under the same name.
    b.sw.stop().await;
    wait_until("B gone", Duration::from_secs(60), || {
        a.sw.peers().is_empty()
    })
    .await;
    const BACK_AFTER: usize = 23;
    wait_until("23 failed redials", Duration::from_secs(3_600), || {
        resolver.count() >= BACK_AFTER
    })
    .await;
    resolver.set("localhost", vec![ip(10)]);
    let b2 = memory_node(&net, remote_spec(9, ip(10))).await;
    wait_until("B redialed", Duration::from_secs(3_600), || {
        a.sw.peer(&b_id).is_some()
    })
    .await;
    let peer = a.sw.peer(&b_id).unwrap();
    assert_eq!(peer.direction(), Direction::Outbound);
    assert_eq!(peer.socket_addr().ip(), ip(10));
    assert_eq!(peer.socket_addr().port(), PORT);

    // Attempt 0 came at once, then each within its jitter bounds; the host name was looked up
    // at every attempt.
    let calls = resolver.calls.lock().clone();
    assert_eq!(calls.len(), BACK_AFTER + 1);
    assert!(calls.iter().all(|(host, _)| host == "localhost"));
    for (i, gap) in gaps(&resolver.times()).into_iter().enumerate() {
        let attempt = u32::try_from(i + 1).unwrap();
        let (lo, hi) = redial_bounds(attempt).unwrap();
        assert!(
            gap >= lo && gap <= hi,
            "attempt {attempt}: waited {gap:?}, expected [{lo:?}, {hi:?}]"
        );
    }
    let stats = a.sw.stats();
    assert_eq!(stats.dials.get("connected"), Some(&1));
    assert_eq!(stats.dials.get("failed"), Some(&(BACK_AFTER as u64)));

    // Connected again: the routine ended.
    tokio::time::sleep(Duration::from_secs(86_400)).await;
    assert_eq!(resolver.count(), BACK_AFTER + 1);
    assert_eq!(a.sw.num_reconnecting(), 0);
    check_grammar(&a.rec().calls()).unwrap();
    a.sw.stop().await;
    b2.sw.stop().await;
    check_grammar(&a.rec().calls()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn schedule_is_capped_and_gives_up_after_thirty_attempts() {
    let net = MemoryNetwork::default();
    let resolver = Arc::new(ScriptedResolver::default());
    resolver.set("localhost", vec![ip(9)]);
    let mut spec = persistent_spec(1, key(9).node_id(), &resolver);
    spec.config.persistent_peers_max_dial_period = Duration::from_secs(7);
    let a = memory_node(&net, spec).await;
    a.sw.dial_persistent_peers();
    tokio::time::sleep(Duration::from_secs(2 * 86_400)).await;
    // The first dial, then 30 redials (the first at once).
    assert_eq!(resolver.count(), 31);
    let g = gaps(&resolver.times());
    assert_eq!(g[0], Duration::ZERO);
    assert!(g.iter().all(|d| *d <= Duration::from_secs(7)), "{g:?}");
    assert!(g[1..].iter().all(|d| *d >= Duration::from_secs(5)), "{g:?}");
    assert_eq!(a.sw.num_reconnecting(), 0);
    a.sw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn forever_keeps_redialing_past_thirty_attempts() {
    let net = MemoryNetwork::default();
    let resolver = Arc::new(ScriptedResolver::default());
    resolver.set("localhost", vec![ip(9)]);
    let mut spec = persistent_spec(1, key(9).node_id(), &resolver);
    spec.config.persistent_peers_max_dial_period = Duration::from_secs(60);
    spec.config.redial_persistent_forever = true;
    let a = memory_node(&net, spec).await;
    a.sw.dial_persistent_peers();
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    assert!(resolver.count() > 40, "{} attempts", resolver.count());
    assert!(
        gaps(&resolver.times())
            .iter()
            .all(|d| *d <= Duration::from_secs(60))
    );
    assert_eq!(a.sw.num_reconnecting(), 1);
    // Stopping the switch ends the routine.
    a.sw.stop().await;
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    assert_eq!(a.sw.num_reconnecting(), 0);
}

#[tokio::test(start_paused = true)]
async fn unresolvable_host_is_a_failed_dial_not_a_startup_error() {
    let net = MemoryNetwork::default();
    let resolver = Arc::new(ScriptedResolver::default());
    let a = memory_node(&net, persistent_spec(1, key(9).node_id(), &resolver)).await;
    a.sw.dial_persistent_peers();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let stats = a.sw.stats();
    assert!(stats.dials.get("unresolved").copied().unwrap_or(0) >= 2);
    assert_eq!(a.sw.num_reconnecting(), 1);
    // Once the name resolves, the peer is reached.
    let b = memory_node(&net, remote_spec(9, ip(9))).await;
    resolver.set("localhost", vec![ip(9)]);
    wait_until("B reached", Duration::from_secs(600), || {
        a.sw.peer(&b.id()).is_some()
    })
    .await;
    a.sw.stop().await;
    b.sw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dial_peers_async_shuffles_and_delays_each_dial_below_three_seconds() {
    let net = MemoryNetwork::default();
    let resolver = Arc::new(ScriptedResolver::default());
    let mut spec = NodeSpec::new(1);
    spec.resolver = Some(resolver.clone());
    spec.config.rng_seed = Some(42);
    let a = memory_node(&net, spec).await;
    let addrs: Vec<ParsedAddress> = (0..20u16)
        .map(|i| {
            format!("{}@host{i}:26656", key(500 + i).node_id())
                .parse()
                .unwrap()
        })
        .collect();
    let start = tokio::time::Instant::now();
    a.sw.dial_peers_async(&addrs);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let calls = resolver.calls.lock().clone();
    assert_eq!(calls.len(), 20);
    assert!(
        calls
            .iter()
            .all(|(_, t)| *t - start < Duration::from_secs(3))
    );
    let distinct: std::collections::HashSet<_> = calls.iter().map(|(_, t)| *t).collect();
    assert!(distinct.len() > 10, "delays are spread");
    let order: Vec<&str> = calls.iter().map(|(h, _)| h.as_str()).collect();
    let given: Vec<String> = (0..20).map(|i| format!("host{i}")).collect();
    assert_ne!(order, given.iter().map(String::as_str).collect::<Vec<_>>());
    a.sw.stop().await;
}
