//! A slow reactor on channel A does not hold up channel B of the same peer, nor the
//! connection's pings and pongs, while A's receive budget has room; a reactor that never
//! drains A gets the peer stopped as a slow receiver within `recv_stall_timeout`, holding no
//! more than A's budget. (Virtual time, real MConnection over the in-memory transport.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mukan_reactor_api::testing::ReactorCall;
use mukan_reactor_api::{ChannelDescriptor, Dialer as _, Envelope, Network as _, Reactor};
use mukan_transport::MemoryNetwork;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Channel A's budget at the receiver, in bytes.
const BUDGET: usize = 16 * 1024;
const HOLD: Duration = Duration::from_secs(5);

/// Hands every envelope of channel A to its own task, which keeps each one for `hold` (in
/// turn), or forever when `hold` is `None`.
struct Holder {
    tx: mpsc::Sender<Envelope>,
    /// Bytes of the leases held now, and the most ever held.
    held: Arc<Mutex<(usize, usize)>>,
    last_receive: Mutex<Option<Instant>>,
}

impl Holder {
    fn new(hold: Option<Duration>) -> Arc<Self> {
        let (tx, mut rx) = mpsc::channel::<Envelope>(4_096);
        let held = Arc::new(Mutex::new((0, 0)));
        let h = held.clone();
        tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Some(env) = rx.recv().await {
                match hold {
                    Some(d) => {
                        tokio::time::sleep(d).await;
                        h.lock().0 -= env.lease.bytes();
                        drop(env);
                    }
                    None => kept.push(env),
                }
            }
        });
        Arc::new(Self {
            tx,
            held,
            last_receive: Mutex::new(None),
        })
    }
}

impl Reactor for Holder {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![descriptor(CH_A).with_recv_message_capacity(NonZeroUsize::new(BUDGET).unwrap())]
    }
    fn receive(&self, env: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
        {
            let mut held = self.held.lock();
            held.0 += env.lease.bytes();
            held.1 = held.1.max(held.0);
        }
        *self.last_receive.lock() = Some(Instant::now());
        self.tx
            .try_send(env)
            .map_err(|_| mukan_reactor_api::ReactorError::PeerRefused("holder queue full"))
    }
}

/// Notes when each channel-B message arrives.
#[derive(Default)]
struct Stamps {
    arrivals: Mutex<Vec<(u32, Instant)>>,
}

impl Reactor for Stamps {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![descriptor(CH_B)]
    }
    fn receive(&self, env: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
        let Some(Ok(head)) = env.message.get(..4).map(<[u8; 4]>::try_from) else {
            return Err(mukan_reactor_api::ReactorError::Violation {
                channel: env.channel,
                rule: "message shorter than 4 bytes",
            });
        };
        let n = u32::from_be_bytes(head);
        self.arrivals.lock().push((n, Instant::now()));
        Ok(())
    }
}

async fn pair(net: &MemoryNetwork, holder: Arc<Holder>, stamps: Arc<Stamps>) -> (Node, Node) {
    let mut spec = NodeSpec::new(1);
    spec.extra = vec![("holder".into(), holder), ("stamps".into(), stamps)];
    // A recording reactor on an unused channel watches the peer's lifecycle.
    spec.groups = vec![vec![mukan_reactor_api::ChannelId(0x0c)]];
    let receiver = memory_node(net, spec).await;
    let mut spec = NodeSpec::new(2);
    spec.groups = vec![vec![CH_A, CH_B, mukan_reactor_api::ChannelId(0x0c)]];
    let sender = memory_node(net, spec).await;
    sender
        .sw
        .dial_peer_with_address(receiver.addr)
        .await
        .unwrap();
    wait_until("connected", Duration::from_secs(5), || {
        receiver.sw.peer(&sender.id()).is_some() && sender.sw.peer(&receiver.id()).is_some()
    })
    .await;
    (receiver, sender)
}

fn removed(node: &Node) -> Vec<String> {
    node.rec()
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            ReactorCall::RemovePeer(_, why) => Some(why),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn slow_channel_does_not_hold_up_other_channels_or_pings() {
    let net = MemoryNetwork::default();
    let holder = Holder::new(Some(HOLD));
    let stamps = Arc::new(Stamps::default());
    let (receiver, sender) = pair(&net, holder.clone(), stamps.clone()).await;
    let to_receiver = sender.sw.peer(&receiver.id()).unwrap();
    // Twice (ping interval + pong timeout): pings are due and pongs must come back in time.
    let until = Instant::now() + Duration::from_secs(2 * (60 + 45));
    let mut sent_b = Vec::new();
    let mut n = 0u32;
    while Instant::now() < until {
        // A burst of ten 1 KiB messages on A every minute: 50 s of work for the holder,
        // within the budget.
        if n % 60 == 0 {
            for _ in 0..10 {
                to_receiver
                    .send(CH_A, Bytes::from(vec![0xa; 1_024]))
                    .await
                    .unwrap();
            }
        }
        to_receiver
            .send(CH_B, Bytes::copy_from_slice(&n.to_be_bytes()))
            .await
            .unwrap();
        sent_b.push((n, Instant::now()));
        n += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Every B message arrived, each well before the holder got through its backlog.
    let arrivals = stamps.arrivals.lock().clone();
    assert_eq!(arrivals.len(), sent_b.len());
    for ((i, sent), (j, got)) in sent_b.iter().zip(arrivals.iter()) {
        assert_eq!(i, j);
        assert!(
            *got - *sent < Duration::from_millis(500),
            "B message {i} took {:?}",
            *got - *sent
        );
    }
    // The connection stayed up throughout, on both sides.
    assert!(removed(&receiver).is_empty(), "{:?}", removed(&receiver));
    assert!(removed(&sender).is_empty(), "{:?}", removed(&sender));
    assert!(receiver.sw.peer(&sender.id()).is_some());
    assert!(holder.held.lock().1 <= BUDGET);
    receiver.sw.stop().await;
    sender.sw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn never_draining_reactor_gets_peer_stopped_as_slow_receiver() {
    let net = MemoryNetwork::default();
    let holder = Holder::new(None);
    let stamps = Arc::new(Stamps::default());
    let (receiver, sender) = pair(&net, holder.clone(), stamps).await;
    let stall = mukan_transport::Config::default().mconn.recv_stall_timeout;
    let to_receiver = sender.sw.peer(&receiver.id()).unwrap();
    let flood = tokio::spawn(async move {
        for _ in 0..10_000 {
            if to_receiver
                .send(CH_A, Bytes::from(vec![0xa; 512]))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    wait_until("slow receiver stop", Duration::from_secs(120), || {
        !removed(&receiver).is_empty()
    })
    .await;
    let stopped_at = Instant::now();
    let why = removed(&receiver);
    assert_eq!(why.len(), 1);
    assert!(
        why[0].contains("slow receiver") && why[0].contains("0A"),
        "{why:?}"
    );
    // Stopped within the stall timeout of the budget filling up (the last delivery).
    let last = holder.last_receive.lock().unwrap();
    assert!(
        stopped_at - last <= stall + Duration::from_secs(1),
        "stopped {:?} after the budget filled",
        stopped_at - last
    );
    // What the reactor holds never exceeded the channel's budget.
    let (now_held, max_held) = *holder.held.lock();
    assert!(max_held <= BUDGET, "held {max_held} > {BUDGET}");
    assert!(
        now_held > BUDGET / 2,
        "the budget was actually used: {now_held}"
    );
    assert_eq!(
        receiver.sw.stats().peer_stops.get("slow_receiver"),
        Some(&1)
    );
    // Not a ban: the peer may come back.
    assert!(!receiver.sw.stats().peer_stops.contains_key("denied"));
    let _ = flood.await;
    receiver.sw.stop().await;
    sender.sw.stop().await;
}
