//! Bad-input suite, G2 over real loopback TCP: two switches dial each other at the same
//! moment, round after round. Each round ends with exactly one connection on both sides (the
//! same one, in opposite directions); the reactor grammar holds; and at the end no TCP socket
//! and no tokio task is left over and nothing panicked. (The in-memory version, with more
//! rounds, is `grammar.rs::simultaneous_dials_end_with_one_connection`.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{CH_A, CH_B, descriptor, key, node_info, wait_until};
use mukan_reactor_api::testing::{RecordingReactor, check_grammar};
use mukan_reactor_api::{Dialer as _, Direction, Network as _};
use mukan_switch::{Builder, Config, Switch};
use mukan_test_support::Baseline;
use mukan_transport::TcpTransport;

async fn tcp_node(seed: u16) -> (Arc<Switch<TcpTransport>>, Arc<RecordingReactor>) {
    let key = key(seed);
    let mut builder = Builder::new(Config::default());
    let rec = Arc::new(RecordingReactor::new(vec![
        descriptor(CH_A),
        descriptor(CH_B),
    ]));
    builder.add_reactor("rec", rec.clone()).unwrap();
    let info = node_info(&key, builder.channel_ids(), "tcp://127.0.0.1:0");
    // Both nodes are on 127.0.0.1: the duplicate-IP filter must let the two crossing
    // connections reach the switch, which picks one.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_crossing_dials_over_tcp_end_with_one_connection_on_both_sides() {
    let base = Baseline::take();
    for round in 0..10u16 {
        let (a, a_rec) = tcp_node(300 + 2 * round).await;
        let (b, b_rec) = tcp_node(301 + 2 * round).await;
        let (a_id, b_id) = (a.net_address().id(), b.net_address().id());
        let (ra, rb) = tokio::join!(
            a.dial_peer_with_address(b.net_address()),
            b.dial_peer_with_address(a.net_address())
        );
        assert!(ra.is_ok() || rb.is_ok(), "round {round}: {ra:?} {rb:?}");
        // Settled: one peer each, one transport connection each, dials finished.
        wait_until("one connection each", Duration::from_secs(5), || {
            a.peers().len() == 1
                && b.peers().len() == 1
                && a.transport().connection_count() == 1
                && b.transport().connection_count() == 1
                && a.num_peers().dialing == 0
                && b.num_peers().dialing == 0
        })
        .await;
        // Both crossing connections are upgraded once both dials returned, but the accepting
        // side may still be handing the inbound one to its switch: let it land (bounded).
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            (a.peers().len(), a.transport().connection_count()),
            (1, 1),
            "round {round}"
        );
        assert_eq!(
            (b.peers().len(), b.transport().connection_count()),
            (1, 1),
            "round {round}"
        );
        let (pa, pb) = (a.peer(&b_id).unwrap(), b.peer(&a_id).unwrap());
        assert_ne!(pa.direction(), pb.direction(), "round {round}");
        // When both dials made a connection, the kept one is the one the smaller ID dialed,
        // on both sides. (On a real runtime one dial may finish before the other starts;
        // the second then finds the peer connected and makes no connection at all.)
        if ra.is_ok() && rb.is_ok() {
            assert_eq!(
                pa.direction() == Direction::Outbound,
                a_id < b_id,
                "round {round}"
            );
        } else {
            let err = ra.err().or(rb.err()).unwrap();
            assert!(
                matches!(
                    err,
                    mukan_reactor_api::DialError::AlreadyDialingOrConnected(_)
                ),
                "round {round}: {err}"
            );
        }
        check_grammar(&a_rec.calls()).unwrap();
        check_grammar(&b_rec.calls()).unwrap();
        a.stop().await;
        b.stop().await;
        check_grammar(&a_rec.calls()).unwrap();
        check_grammar(&b_rec.calls()).unwrap();
    }
    base.assert_restored().await;
}
