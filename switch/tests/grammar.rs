//! The reactor call grammar holds for every reactor while 1,000 peer lifecycles run over the
//! in-memory transport (connect, fail during start, disconnect, reconnect, errors reported by
//! several reactors at once, both sides dialing at once), and two nodes that dial each other
//! at once end with exactly one connection.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mukan_reactor_api::testing::{ReactorCall, check_grammar};
use mukan_reactor_api::{Dialer as _, Direction, Network as _, ReactorError};
use mukan_switch::Config;
use mukan_transport::{MemoryNetwork, MemoryTransport};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Flaky = FlakyTransport<MemoryTransport>;

fn roomy() -> Config {
    let mut c = Config::default();
    c.max_num_inbound_peers = 1_000;
    c.max_num_outbound_peers = 1_000;
    c
}

fn spec(seed: u16) -> NodeSpec {
    let mut s = NodeSpec::new(seed);
    s.config = roomy();
    // Two reactors, so that two of them can report one peer at once.
    s.groups = vec![vec![CH_A], vec![CH_B]];
    s
}

fn inits(node: &Node<Flaky>) -> usize {
    node.rec()
        .calls()
        .iter()
        .filter(|c| matches!(c, ReactorCall::InitPeer(_)))
        .count()
}

fn check_all(nodes: &[&Node<Flaky>]) {
    for n in nodes {
        for (i, r) in n.reactors.iter().enumerate() {
            if let Err(v) = check_grammar(&r.calls()) {
                panic!("node {} reactor {i}: {v}", n.id());
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn grammar_holds_over_1000_lifecycles() {
    lifecycles(0x5eed_0008, 1_000).await;
}

/// The same on a multi-threaded runtime in real time, where a connection's task and its
/// replacement's run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_holds_across_threads() {
    lifecycles(0x5eed_0009, 300).await;
}

async fn lifecycles(seed: u64, target: usize) {
    let net = MemoryNetwork::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let hub = memory_node_with(&net, spec(1), FlakyTransport::new).await;
    let mut clients = Vec::new();
    for seed in 2..18 {
        clients.push(memory_node_with(&net, spec(seed), FlakyTransport::new).await);
    }
    let mut rounds = 0;
    let mut start_failures = 0;
    while inits(&hub) < target {
        rounds += 1;
        assert!(rounds < 20_000, "too few lifecycles: {}", inits(&hub));
        let c = &clients[rng.gen_range(0..clients.len())];
        match rng.gen_range(0..10) {
            0 | 1 => {
                let _ = c.sw.dial_peer_with_address(hub.addr).await;
            }
            2 => {
                let _ = hub.sw.dial_peer_with_address(c.addr).await;
            }
            3 => {
                // Both sides dial each other at once.
                let _ = tokio::join!(
                    c.sw.dial_peer_with_address(hub.addr),
                    hub.sw.dial_peer_with_address(c.addr)
                );
            }
            4 => {
                // The next peer started on one side fails to start.
                let side = if rng.gen_bool(0.5) { &hub } else { c };
                side.sw.transport().fail_starts.store(1, Ordering::SeqCst);
                start_failures += 1;
                let _ = c.sw.dial_peer_with_address(hub.addr).await;
            }
            5 => {
                if rng.gen_bool(0.5) {
                    hub.sw.stop_peer_gracefully(&c.id());
                } else {
                    c.sw.stop_peer_gracefully(&hub.id());
                }
            }
            6 => {
                // Several reactors report the peer at once, from different tasks.
                let (h1, h2) = (hub.sw.clone(), hub.sw.clone());
                let id = c.id();
                let a = tokio::spawn(async move {
                    h1.stop_peer_for_error(&id, ReactorError::PeerRefused("bad A"))
                });
                let b = tokio::spawn(async move {
                    h2.stop_peer_for_error(&id, ReactorError::PeerRefused("bad B"))
                });
                let _ = tokio::join!(a, b);
            }
            7 => {
                // Both of the hub's reactors refuse what arrives on their channels.
                for r in &hub.reactors {
                    r.refuse_messages(true);
                }
                c.sw.broadcast(CH_A, Bytes::from_static(b"a"));
                c.sw.broadcast(CH_B, Bytes::from_static(b"b"));
                tokio::time::sleep(Duration::from_millis(5)).await;
                for r in &hub.reactors {
                    r.refuse_messages(false);
                }
            }
            _ => {
                c.sw.broadcast(CH_A, Bytes::from_static(b"hello"));
                hub.sw.broadcast(CH_B, Bytes::from_static(b"hi"));
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..20))).await;
        if rounds % 100 == 0 {
            let mut all: Vec<&Node<Flaky>> = clients.iter().collect();
            all.push(&hub);
            check_all(&all);
        }
    }
    assert!(
        start_failures > 5,
        "start failures exercised: {start_failures}"
    );
    // Let every stop and dial finish.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut all: Vec<&Node<Flaky>> = clients.iter().collect();
    all.push(&hub);
    check_all(&all);
    // Each connection is seen by both of its ends.
    for c in &clients {
        assert_eq!(
            c.sw.peer(&hub.id()).is_some(),
            hub.sw.peer(&c.id()).is_some(),
            "client {} and hub disagree",
            c.id()
        );
        if let (Some(a), Some(b)) = (c.sw.peer(&hub.id()), hub.sw.peer(&c.id())) {
            assert_ne!(a.direction(), b.direction());
        }
    }
    // Stopping removes every peer before on_stop.
    for n in &all {
        n.sw.stop().await;
    }
    check_all(&all);
    for n in &all {
        for r in &n.reactors {
            assert_eq!(r.calls().last(), Some(&ReactorCall::OnStop));
        }
    }
    // Every kind of ending was seen.
    let removals: Vec<String> = hub
        .rec()
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            ReactorCall::RemovePeer(_, why) => Some(why),
            _ => None,
        })
        .collect();
    for expected in [
        "reported by a reactor",
        "stopped gracefully",
        "closed by peer",
        "injected start failure",
    ] {
        assert!(
            removals.iter().any(|r| r.contains(expected)),
            "no removal for {expected:?} in {} removals",
            removals.len()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn simultaneous_dials_end_with_one_connection() {
    let net = MemoryNetwork::default();
    for round in 0..20u16 {
        let a = memory_node_with(&net, spec(100 + 2 * round), FlakyTransport::new).await;
        let b = memory_node_with(&net, spec(101 + 2 * round), FlakyTransport::new).await;
        let (ra, rb) = tokio::join!(
            a.sw.dial_peer_with_address(b.addr),
            b.sw.dial_peer_with_address(a.addr)
        );
        // At least one of the dials made the connection that was kept.
        assert!(ra.is_ok() || rb.is_ok(), "round {round}: {ra:?} {rb:?}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(a.sw.peers().len(), 1, "round {round}");
        assert_eq!(b.sw.peers().len(), 1, "round {round}");
        let pa = a.sw.peer(&b.id()).unwrap();
        let pb = b.sw.peer(&a.id()).unwrap();
        assert_ne!(pa.direction(), pb.direction(), "round {round}");
        // The kept connection is the one dialed by the smaller ID, on both sides.
        let a_dialed = pa.direction() == Direction::Outbound;
        assert_eq!(a_dialed, a.id() < b.id(), "round {round}");
        assert_eq!(
            a.sw.transport().inner.connection_count(),
            1,
            "round {round}"
        );
        assert_eq!(
            b.sw.transport().inner.connection_count(),
            1,
            "round {round}"
        );
        check_all(&[&a, &b]);
        a.sw.stop().await;
        b.sw.stop().await;
        check_all(&[&a, &b]);
    }
}

/// With the transport's duplicate-IP filter on (the default), two nodes dialing each other at
/// once can lose both connections, as in Go; as persistent peers they redial with jitter and
/// end with exactly one.
#[tokio::test(start_paused = true)]
async fn simultaneous_persistent_dials_converge_with_the_duplicate_ip_filter() {
    let net = MemoryNetwork::default();
    for round in 0..5u16 {
        let (sa, sb) = (200 + 2 * round, 201 + 2 * round);
        let addr = |seed: u16| format!("{}@{}:{}", key(seed).node_id(), ip(seed), 26_656);
        let node = |seed: u16, other: u16| {
            let mut s = spec(seed);
            s.port = 26_656;
            s.transport.allow_duplicate_ip = false;
            s.config.persistent_peers = vec![addr(other).parse().unwrap()];
            s.config.dial_randomizer = Duration::ZERO;
            s.config.rng_seed = Some(u64::from(seed));
            s
        };
        let a = memory_node_with(&net, node(sa, sb), FlakyTransport::new).await;
        let b = memory_node_with(&net, node(sb, sa), FlakyTransport::new).await;
        a.sw.dial_persistent_peers();
        b.sw.dial_persistent_peers();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(a.sw.peers().len(), 1, "round {round}");
        assert_eq!(b.sw.peers().len(), 1, "round {round}");
        assert_ne!(
            a.sw.peer(&b.id()).unwrap().direction(),
            b.sw.peer(&a.id()).unwrap().direction()
        );
        assert_eq!(a.sw.transport().inner.connection_count(), 1);
        assert_eq!(b.sw.transport().inner.connection_count(), 1);
        assert_eq!(a.sw.num_reconnecting() + b.sw.num_reconnecting(), 0);
        a.sw.stop().await;
        b.sw.stop().await;
        check_all(&[&a, &b]);
    }
}
