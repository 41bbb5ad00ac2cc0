//! After 1,000 connect/disconnect cycles over TCP on loopback, the process's open file
//! descriptors and live tokio tasks are back to their baseline. (Alone in its binary, so no
//! other test opens sockets meanwhile.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{CH_A, CH_B, descriptor, key, node_info};
use mukan_reactor_api::testing::{RecordingReactor, check_grammar};
use mukan_reactor_api::{Dialer as _, Network as _};
use mukan_switch::{Builder, Config, Switch};
use mukan_test_support::{live_tasks, open_fds};
use mukan_transport::TcpTransport;

async fn tcp_node(seed: u16) -> (Arc<Switch<TcpTransport>>, Arc<RecordingReactor>) {
    let key = key(seed);
    let mut config = Config::default();
    config.allow_duplicate_ip = true;
    config.max_num_inbound_peers = 4;
    let mut builder = Builder::new(config);
    let rec = Arc::new(RecordingReactor::new(vec![
        descriptor(CH_A),
        descriptor(CH_B),
    ]));
    builder.add_reactor("rec", rec.clone()).unwrap();
    let info = node_info(&key, builder.channel_ids(), "tcp://127.0.0.1:0");
    let mut tconfig = mukan_transport::Config::default();
    tconfig.allow_duplicate_ip = true;
    let transport = TcpTransport::new(key, info, tconfig);
    transport
        .listen("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let sw = builder.build(transport).unwrap();
    sw.start().unwrap();
    (sw, rec)
}

async fn settle(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_cycles_leave_no_fds_or_tasks_behind() {
    let (hub, hub_rec) = tcp_node(1).await;
    let (client, client_rec) = tcp_node(2).await;
    let hub_addr = hub.net_address();
    let client_id = client.net_address().id();
    let hub_id = hub_addr.id();
    // Warm up once so lazily created runtime resources are part of the baseline.
    client.dial_peer_with_address(hub_addr).await.unwrap();
    settle("warm-up connection", || hub.peer(&client_id).is_some()).await;
    client.stop_peer_gracefully(&hub_id);
    settle("warm-up disconnect", || {
        hub.peers().is_empty()
            && client.peers().is_empty()
            && hub.transport().connection_count() == 0
            && client.transport().connection_count() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fds = open_fds();
    let tasks = live_tasks();

    for cycle in 0..1_000 {
        client.dial_peer_with_address(hub_addr).await.unwrap();
        settle("connection", || {
            hub.peer(&client_id).is_some() && client.peer(&hub_id).is_some()
        })
        .await;
        match cycle % 4 {
            0 => client.stop_peer_gracefully(&hub_id),
            1 => hub.stop_peer_gracefully(&client_id),
            2 => hub.stop_peer_for_error(
                &client_id,
                mukan_reactor_api::ReactorError::PeerRefused("cycle"),
            ),
            _ => client.stop_peer_for_error(
                &hub_id,
                mukan_reactor_api::ReactorError::PeerRefused("cycle"),
            ),
        }
        settle("disconnect", || {
            hub.peers().is_empty()
                && client.peers().is_empty()
                && hub.num_peers().inbound == 0
                && client.num_peers().outbound == 0
                && hub.transport().connection_count() == 0
                && client.transport().connection_count() == 0
        })
        .await;
    }
    // Tasks finish shortly after their connection's last state change.
    settle("fds and tasks back to baseline", || {
        open_fds() <= fds && live_tasks() <= tasks
    })
    .await;
    assert_eq!(open_fds(), fds, "open file descriptors");
    assert_eq!(live_tasks(), tasks, "live tasks");
    check_grammar(&hub_rec.calls()).unwrap();
    check_grammar(&client_rec.calls()).unwrap();
    let stats = hub.stats();
    assert_eq!(stats.peer_stops.values().sum::<u64>(), 1_001);
    hub.stop().await;
    client.stop().await;
}
