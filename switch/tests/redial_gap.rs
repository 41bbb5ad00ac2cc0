//! A persistent peer that completes the handshake and drops every connection at once must
//! not be redialed in a tight loop: a redialed connection that did not last counts as a
//! failed attempt, so the redials follow the schedule (at once, then 5 s + jitter apart, then
//! the backoff), and a connection that did last starts the schedule over with an immediate
//! redial.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mukan_reactor_api::{NodeId, Transport as _};
use mukan_switch::{STABLE_CONNECTION, redial_bounds};
use mukan_transport::{MemoryNetwork, MemoryTransport};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

const PORT: u16 = 26_656;
/// The evil peer stops accepting after this many connections, so that a tight loop ends
/// (and the test fails on the count) instead of starving the paused clock forever.
const ACCEPT_CAP: usize = 200;

/// A bare transport (no switch) that accepts every connection, completes the upgrade, and
/// closes it at once, noting when.
struct Dropper {
    transport: MemoryTransport,
    accepted: Arc<Mutex<Vec<tokio::time::Instant>>>,
    hold: Arc<Mutex<Duration>>,
    task: JoinHandle<()>,
}

impl Dropper {
    async fn start(net: &MemoryNetwork, seed: u16) -> Self {
        let key = key(seed);
        let info = node_info(&key, vec![CH_A, CH_B], "tcp://127.1.0.99:1");
        let transport = MemoryTransport::new(net, ip(seed), key, info, transport_config());
        transport
            .listen(SocketAddr::new(ip(seed), PORT))
            .await
            .unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(Mutex::new(Duration::ZERO));
        let task = {
            let transport = transport.clone();
            let accepted = accepted.clone();
            let hold = hold.clone();
            let config =
                mukan_reactor_api::PeerConfig::new(vec![descriptor(CH_A), descriptor(CH_B)]);
            tokio::spawn(async move {
                loop {
                    let Ok(peer) = transport.accept(config.clone()).await else {
                        return;
                    };
                    let n = {
                        let mut a = accepted.lock();
                        a.push(tokio::time::Instant::now());
                        a.len()
                    };
                    let hold = *hold.lock();
                    if hold.is_zero() {
                        peer.stop();
                    } else {
                        tokio::spawn(async move {
                            let _inbox = peer.start();
                            tokio::time::sleep(hold).await;
                            peer.stop();
                        });
                    }
                    if n >= ACCEPT_CAP {
                        transport.close();
                        return;
                    }
                }
            })
        };
        Self {
            transport,
            accepted,
            hold,
            task,
        }
    }

    fn count(&self) -> usize {
        self.accepted.lock().len()
    }
}

fn persistent_spec(seed: u16, peer: NodeId, peer_ip: std::net::IpAddr) -> NodeSpec {
    let mut spec = NodeSpec::new(seed);
    spec.config.persistent_peers = vec![format!("{peer}@{peer_ip}:{PORT}").parse().unwrap()];
    spec.config.rng_seed = Some(u64::from(seed));
    spec
}

#[tokio::test(start_paused = true)]
async fn peer_that_drops_every_connection_is_redialed_on_schedule() {
    let net = MemoryNetwork::default();
    let evil = Dropper::start(&net, 9).await;
    let a = memory_node(&net, persistent_spec(1, key(9).node_id(), ip(9))).await;
    a.sw.dial_persistent_peers();

    let window = Duration::from_secs(60);
    tokio::time::sleep(window).await;
    let times = evil.accepted.lock().clone();
    // The first dial and the first redial at once (as Go), then at least 5 s between
    // redials: 2 + 60 / 5 at most.
    let most = 2 + usize::try_from(window.as_secs() / 5).unwrap();
    assert!(
        times.len() <= most,
        "{} connections in {window:?} (at most {most} on the schedule)",
        times.len()
    );
    assert!(times.len() >= 3, "still redialed: {}", times.len());
    // Each redial waited as after a failed attempt: the first at once, then on the fixed
    // interval (100 ms of slack: the times are taken on the accepting side, after the
    // upgrade).
    for (i, w) in times.windows(2).enumerate() {
        let gap = w[1] - w[0];
        let attempt = u32::try_from(i).unwrap();
        let (lo, hi) = redial_bounds(attempt).unwrap();
        assert!(
            gap >= lo && gap <= hi + Duration::from_millis(100),
            "redial {attempt}: waited {gap:?}, expected [{lo:?}, {hi:?}]"
        );
    }
    assert_eq!(a.sw.num_reconnecting(), 1);
    a.sw.stop().await;
    evil.transport.close();
    evil.task.abort();
}

#[tokio::test(start_paused = true)]
async fn connection_that_lasted_is_redialed_at_once() {
    let net = MemoryNetwork::default();
    let evil = Dropper::start(&net, 9).await;
    // Held long enough to count as stable: every drop starts the schedule over.
    *evil.hold.lock() = STABLE_CONNECTION + Duration::from_secs(1);
    let a = memory_node(&net, persistent_spec(1, key(9).node_id(), ip(9))).await;
    a.sw.dial_persistent_peers();
    wait_until("three connections", Duration::from_secs(120), || {
        evil.count() >= 3
    })
    .await;
    let times = evil.accepted.lock().clone();
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        // Held for the stable time, then redialed without waiting for the interval.
        assert!(gap >= STABLE_CONNECTION, "{gap:?}");
        assert!(
            gap < STABLE_CONNECTION + Duration::from_secs(2),
            "the redial of a connection that lasted waited: {gap:?}"
        );
    }
    a.sw.stop().await;
    evil.transport.close();
    evil.task.abort();
}
