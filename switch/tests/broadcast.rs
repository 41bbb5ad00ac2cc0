//! Broadcast of 1 KiB to 100 peers of which 10 never read: the other 90 receive every
//! message, what is queued for the 10 stays within their send queues, and broadcasting starts
//! no task.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mukan_reactor_api::{
    BroadcastOutcome, ChannelDescriptor, Dialer as _, ManagedPeer, Network as _, NodeId,
    PeerConfig, Transport,
};
use mukan_test_support::live_tasks;
use mukan_transport::{MemoryNetwork, MemoryTransport};

const READERS: u16 = 90;
const SILENT: u16 = 10;
const ROUNDS: usize = 200;

/// A peer that completes the handshake and then never reads: its connection is never
/// started.
async fn silent_peer(
    net: &MemoryNetwork,
    seed: u16,
    hub: &Node,
) -> (std::sync::Arc<dyn ManagedPeer>, NodeId) {
    let key = key(seed);
    let id = key.node_id();
    let info = node_info(&key, vec![CH_A, CH_B], &format!("tcp://{}:1", ip(seed)));
    let t = MemoryTransport::new(net, ip(seed), key, info, transport_config());
    t.listen(SocketAddr::new(ip(seed), 0)).await.unwrap();
    let config = PeerConfig::new(vec![descriptor(CH_A), descriptor(CH_B)]);
    let channels: Vec<ChannelDescriptor> = config.channels.clone();
    assert_eq!(channels.len(), 2);
    (t.dial(hub.addr, config).await.unwrap(), id)
}

#[tokio::test(start_paused = true)]
async fn broadcast_reaches_readers_and_bounds_what_silent_peers_hold() {
    let net = MemoryNetwork::default();
    let mut spec = NodeSpec::new(1);
    spec.config.max_num_inbound_peers = 200;
    let hub = memory_node(&net, spec).await;
    let mut readers = Vec::new();
    for seed in 0..READERS {
        let r = memory_node(&net, NodeSpec::new(100 + seed)).await;
        r.sw.dial_peer_with_address(hub.addr).await.unwrap();
        readers.push(r);
    }
    let mut silent = Vec::new();
    for seed in 0..SILENT {
        silent.push(silent_peer(&net, 300 + seed, &hub).await);
    }
    let silent_ids: HashSet<NodeId> = silent.iter().map(|(_, id)| *id).collect();
    wait_until("100 peers", Duration::from_secs(10), || {
        hub.sw.peers().len() == usize::from(READERS + SILENT)
    })
    .await;

    let tasks_before = live_tasks();
    let message = Bytes::from(vec![0x42; 1_024]);
    let mut silent_queued = vec![0usize; ROUNDS];
    for (round, queued) in silent_queued.iter_mut().enumerate() {
        let before = live_tasks();
        let report = hub.sw.broadcast(CH_A, message.clone());
        assert_eq!(live_tasks(), before, "broadcast started a task");
        assert_eq!(report.outcomes.len(), 100);
        for (id, outcome) in &report.outcomes {
            if silent_ids.contains(id) {
                if *outcome == BroadcastOutcome::Queued {
                    *queued += 1;
                }
            } else {
                assert_eq!(*outcome, BroadcastOutcome::Queued, "round {round}");
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Broadcasting started no task.
    assert!(
        live_tasks() <= tasks_before,
        "{} > {tasks_before}",
        live_tasks()
    );

    // Every reader got every message.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for r in &readers {
        let got = r
            .rec()
            .received()
            .iter()
            .filter(|(from, ch, m)| *from == hub.id() && *ch == CH_A && *m == message)
            .count();
        assert_eq!(got, ROUNDS, "reader {}", r.id());
    }
    // The silent peers took messages only until their connection and queue filled up: from
    // then on every broadcast found their queue full, and the queue stays within capacity.
    let total: usize = silent_queued.iter().sum();
    assert!(total > 0);
    assert!(
        silent_queued[ROUNDS / 2..].iter().all(|q| *q == 0),
        "still queuing for silent peers late: {silent_queued:?}"
    );
    for id in &silent_ids {
        let status = hub.sw.peer(id).unwrap().status();
        for ch in &status.channels {
            assert!(ch.send_queue_size <= ch.send_queue_capacity);
        }
    }
    let stats = hub.sw.stats();
    let a = stats.channels.iter().find(|c| c.channel == CH_A).unwrap();
    assert_eq!(
        a.sent_messages,
        (usize::from(READERS) * ROUNDS + total) as u64
    );
    drop(silent);
    hub.sw.stop().await;
    for r in &readers {
        r.sw.stop().await;
    }
}
