//! Bad-input suite, switch side (cases of conformance-tests/BAD_INPUT.md: C14, D6, G3, G4, G5): misbehaving
//! peers and reactors against switches over the in-memory transport. Every case asserts its
//! outcome, that nothing panicked, that the evil connection is gone from the transport, and
//! that live tokio tasks are back to their baseline once the switches stop.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mukan_reactor_api::testing::{ReactorCall, check_grammar};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, DialError, Dialer as _, Direction, Envelope, InboxItem,
    Network as _, NodeId, ParsedAddress, Peer, PeerConfig, Reactor, ReactorError, StopReason,
    Transport as _,
};
use mukan_test_support::Baseline;
use mukan_transport::{MemoryNetwork, MemoryTransport};
use parking_lot::Mutex;

/// Cases run one at a time, so that a panic or a task is charged to the case that made it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn removals_of(calls: &[ReactorCall], id: NodeId) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            ReactorCall::RemovePeer(p, why) if *p == id => Some(why.clone()),
            _ => None,
        })
        .collect()
}

fn adds_of(calls: &[ReactorCall], id: NodeId) -> usize {
    calls
        .iter()
        .filter(|c| matches!(c, ReactorCall::AddPeer(p) if *p == id))
        .count()
}

// ---------------------------------------------------------------------------------------
// G3: stop_peer_for_error from 10 reactors at once
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g3_ten_reactors_reporting_one_peer_at_once_remove_it_once_without_deadlock() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take_in_memory();
    let net = MemoryNetwork::default();
    let channels: Vec<ChannelId> = (0x40..0x4a).map(ChannelId).collect();
    let mut spec = NodeSpec::new(1);
    spec.groups = channels.iter().map(|c| vec![*c]).collect();
    let hub = memory_node(&net, spec).await;
    let mut spec = NodeSpec::new(2);
    spec.groups = vec![channels.clone()];
    let client = memory_node(&net, spec).await;
    for round in 0..5 {
        // The client may still be finishing the previous round's removal: retry (bounded).
        let mut tries = 0;
        while let Err(e) = client.sw.dial_peer_with_address(hub.addr).await {
            tries += 1;
            assert!(tries < 100, "round {round}: {e}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wait_until("connected", Duration::from_secs(5), || {
            hub.sw.peer(&client.id()).is_some()
        })
        .await;
        // Ten reporters, released together, each on its own task (as ten reactors would).
        let gate = Arc::new(tokio::sync::Barrier::new(10));
        let reporters: Vec<_> = (0..10)
            .map(|i: u8| {
                let (sw, gate, id) = (hub.sw.clone(), gate.clone(), client.id());
                tokio::spawn(async move {
                    gate.wait().await;
                    let why = ReactorError::Violation {
                        channel: ChannelId(i),
                        rule: "a reactor objects",
                    };
                    sw.stop_peer_for_error(&id, why);
                })
            })
            .collect();
        let joined = tokio::time::timeout(Duration::from_secs(5), async {
            for r in reporters {
                r.await.unwrap();
            }
        })
        .await;
        assert!(joined.is_ok(), "round {round}: a reporter deadlocked");
        wait_until("removed", Duration::from_secs(5), || {
            hub.sw.peer(&client.id()).is_none() && client.sw.peer(&hub.id()).is_none()
        })
        .await;
        // `peer()` hides a peer as soon as its stop begins; the reactors' `remove_peer` calls
        // and the stop counter come after. Wait (bounded) for the removal to finish, then
        // check nothing was counted twice.
        wait_until("removal finished", Duration::from_secs(5), || {
            hub.sw.stats().peer_stops.get("reactor").copied() >= Some(round as u64 + 1)
                && hub
                    .reactors
                    .iter()
                    .all(|r| removals_of(&r.calls(), client.id()).len() > round)
        })
        .await;
        // Every reactor heard of the removal exactly once per round, with one of the reports.
        for (i, r) in hub.reactors.iter().enumerate() {
            let removals = removals_of(&r.calls(), client.id());
            assert_eq!(removals.len(), round + 1, "reactor {i}: {removals:?}");
            let last = removals.last().unwrap();
            assert!(last.contains("objects"), "reactor {i}: {last}");
            check_grammar(&r.calls()).unwrap();
        }
        assert_eq!(
            hub.sw.stats().peer_stops.get("reactor"),
            Some(&(round as u64 + 1))
        );
    }
    assert_eq!(hub.sw.transport().connection_count(), 0);
    hub.sw.stop().await;
    client.sw.stop().await;
    base.assert_restored().await;
}

// ---------------------------------------------------------------------------------------
// G4: a reconnect while the removal is still running
// ---------------------------------------------------------------------------------------

/// Logs init and the start and end of every removal, and is slow to remove.
#[derive(Default)]
struct SlowRemover {
    log: Mutex<Vec<&'static str>>,
}

impl Reactor for SlowRemover {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![descriptor(ChannelId(0x0d))]
    }
    fn init_peer(&self, _: &Arc<dyn Peer>) {
        self.log.lock().push("init");
    }
    fn remove_peer(&self, _: &Arc<dyn Peer>, _: &StopReason) {
        self.log.lock().push("remove start");
        // Reactor code may block briefly; the switch must not start the next connection's
        // init_peer before this returns.
        std::thread::sleep(Duration::from_millis(150));
        self.log.lock().push("remove end");
    }
    fn receive(&self, _: Envelope) -> Result<(), ReactorError> {
        Ok(())
    }
}

/// The client redials in a tight loop from its own task while the hub removes it slowly, so
/// new connections arrive while `remove_peer` is running; the next `init_peer` must wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g4_tight_redials_during_slow_removals_never_interleave() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take_in_memory();
    let net = MemoryNetwork::default();
    let slow = Arc::new(SlowRemover::default());
    let mut spec = NodeSpec::new(3);
    spec.extra = vec![("slow".into(), slow.clone())];
    let hub = memory_node(&net, spec).await;
    let client = memory_node(&net, NodeSpec::new(4)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dialer = {
        let (sw, addr, stop) = (client.sw.clone(), hub.addr, stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let _ = sw.dial_peer_with_address(addr).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for round in 0..4 {
        wait_until("connected", Duration::from_secs(10), || {
            slow.log.lock().iter().filter(|e| **e == "init").count() == round + 1
                && hub.sw.peer(&client.id()).is_some()
        })
        .await;
        hub.sw
            .stop_peer_for_error(&client.id(), ReactorError::PeerRefused("go away"));
    }
    stop.store(true, Ordering::SeqCst);
    dialer.await.unwrap();
    let log = slow.log.lock().clone();
    for pair in log.windows(2) {
        match pair {
            ["remove start", next] => assert_eq!(*next, "remove end", "{log:?}"),
            ["init", next] => assert_eq!(*next, "remove start", "{log:?}"),
            ["remove end", next] => assert_eq!(*next, "init", "{log:?}"),
            _ => unreachable!(),
        }
    }
    hub.sw.stop().await;
    client.sw.stop().await;
    base.assert_restored().await;
}

// ---------------------------------------------------------------------------------------
// G5: a reactor error on a persistent peer is transient: the switch redials
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn g5_a_reactor_refusing_a_message_from_a_persistent_peer_leads_to_a_redial() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take_in_memory();
    let net = MemoryNetwork::default();
    let target = memory_node(&net, NodeSpec::new(2)).await;
    let mut spec = NodeSpec::new(1);
    spec.config.persistent_peers = vec![ParsedAddress::Resolved(target.addr)];
    let hub = memory_node(&net, spec).await;
    hub.sw.dial_persistent_peers();
    wait_until("connected", Duration::from_secs(10), || {
        hub.sw.peer(&target.id()).is_some()
    })
    .await;
    for round in 1..=3usize {
        // The hub's reactor finds the next message malformed (an error from receive, as a
        // failed decode): the peer is stopped for it, and redialed because it is persistent.
        hub.rec().refuse_messages(true);
        target.sw.broadcast(CH_A, Bytes::from_static(b"malformed"));
        wait_until("stopped", Duration::from_secs(5), || {
            removals_of(&hub.rec().calls(), target.id()).len() == round
        })
        .await;
        hub.rec().refuse_messages(false);
        let why = removals_of(&hub.rec().calls(), target.id());
        assert!(why[round - 1].contains("reported by a reactor"), "{why:?}");
        wait_until("redialed", Duration::from_secs(60), || {
            adds_of(&hub.rec().calls(), target.id()) == round + 1
                && hub.sw.peer(&target.id()).is_some()
        })
        .await;
        assert_eq!(
            hub.sw.peer(&target.id()).unwrap().direction(),
            Direction::Outbound
        );
    }
    // The redialed peer works.
    target.sw.broadcast(CH_A, Bytes::from_static(b"fine"));
    wait_until("delivered", Duration::from_secs(5), || {
        hub.rec().received().iter().any(|(_, _, m)| m == "fine")
    })
    .await;
    check_grammar(&hub.rec().calls()).unwrap();
    assert_eq!(hub.sw.num_reconnecting(), 0);
    hub.sw.stop().await;
    target.sw.stop().await;
    assert_eq!(hub.sw.transport().connection_count(), 0);
    base.assert_restored().await;
}

// ---------------------------------------------------------------------------------------
// D6: a second connection from an already connected ID
// ---------------------------------------------------------------------------------------

fn raw_config(channels: &[ChannelId]) -> PeerConfig {
    PeerConfig::new(channels.iter().map(|c| descriptor(*c)).collect())
}

/// The transport refuses a duplicate by socket address only; the peer-ID duplicate is the
/// switch's check (as in Go, where `Switch.addPeer` refuses a known ID). A second connection
/// from a connected ID, in the direction the switch does not keep, is refused; the first
/// connection keeps working.
#[tokio::test(start_paused = true)]
async fn d6_a_second_connection_from_a_connected_id_is_refused_as_a_duplicate() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take_in_memory();
    let net = MemoryNetwork::default();
    // Pick seeds so the hub's ID is the smaller: the connection the hub dialed is the one
    // both sides keep, and an inbound one from the same ID is the duplicate.
    let (mut hs, mut cs) = (10u16, 11u16);
    if key(hs).node_id() > key(cs).node_id() {
        std::mem::swap(&mut hs, &mut cs);
    }
    let hub = memory_node(&net, NodeSpec::new(hs)).await;
    let client = memory_node(&net, NodeSpec::new(cs)).await;
    hub.sw.dial_peer_with_address(client.addr).await.unwrap();
    wait_until("connected", Duration::from_secs(5), || {
        client.sw.peer(&hub.id()).is_some()
    })
    .await;
    // Through the switch, a dial to a connected ID never reaches the transport.
    assert!(matches!(
        hub.sw.dial_peer_with_address(client.addr).await,
        Err(DialError::AlreadyDialingOrConnected(_))
    ));
    // An evil twin: the client's key on its own transport (another IP), dialing the hub.
    for n in 0..3u16 {
        let twin_key = key(cs);
        let twin_info = node_info(&twin_key, vec![CH_A, CH_B], "tcp://0.0.0.0:0");
        let twin = MemoryTransport::new(&net, ip(500 + n), twin_key, twin_info, transport_config());
        let peer = twin
            .dial(hub.addr, raw_config(&[CH_A, CH_B]))
            .await
            .unwrap();
        let mut inbox = peer.start().unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match inbox.recv().await {
                    Some(InboxItem::Stopped(reason)) => break Some(reason),
                    None => break None,
                    Some(_) => {}
                }
            }
        })
        .await
        .expect("the hub kept the duplicate open");
        assert!(ended.is_none_or(|r| !matches!(r, StopReason::Timeout(_))));
        drop(peer);
        twin.close();
    }
    assert_eq!(hub.sw.stats().inbound_refused.get("duplicate"), Some(&3));
    // The original connection is untouched and still carries messages.
    assert_eq!(hub.sw.peers().len(), 1);
    assert_eq!(
        hub.sw.peer(&client.id()).unwrap().direction(),
        Direction::Outbound
    );
    hub.sw.broadcast(CH_A, Bytes::from_static(b"still here"));
    wait_until("delivered", Duration::from_secs(5), || {
        client
            .rec()
            .received()
            .iter()
            .any(|(_, _, m)| m == "still here")
    })
    .await;
    assert!(removals_of(&hub.rec().calls(), client.id()).is_empty());
    hub.sw.stop().await;
    client.sw.stop().await;
    assert_eq!(hub.sw.transport().connection_count(), 0);
    base.assert_restored().await;
}

// ---------------------------------------------------------------------------------------
// C14: a reactor's pre-decode filter refuses a message
// ---------------------------------------------------------------------------------------

/// Refuses, in `filter`, any message starting with 0xff; counts what reaches `receive`.
#[derive(Default)]
struct Filtering {
    received: Mutex<Vec<Bytes>>,
    filtered: AtomicUsize,
    removed: Mutex<Vec<String>>,
}

const CH_F: ChannelId = ChannelId(0x0f);

impl Reactor for Filtering {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![descriptor(CH_F)]
    }
    fn filter(&self, channel: ChannelId, message: &[u8]) -> Result<(), ReactorError> {
        assert_eq!(channel, CH_F);
        self.filtered.fetch_add(1, Ordering::SeqCst);
        if message.first() == Some(&0xff) {
            return Err(ReactorError::Violation {
                channel,
                rule: "refused by the byte filter",
            });
        }
        Ok(())
    }
    fn remove_peer(&self, _: &Arc<dyn Peer>, reason: &StopReason) {
        self.removed.lock().push(reason.to_string());
    }
    fn receive(&self, envelope: Envelope) -> Result<(), ReactorError> {
        // The filter ran on this exact message first.
        assert_ne!(
            envelope.message.first(),
            Some(&0xff),
            "a filtered message was decoded"
        );
        self.received.lock().push(envelope.message);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn c14_a_message_refused_by_the_reactor_filter_is_dropped_and_the_peer_stopped() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take_in_memory();
    let net = MemoryNetwork::default();
    let filtering = Arc::new(Filtering::default());
    let mut spec = NodeSpec::new(1);
    spec.extra = vec![("filtering".into(), filtering.clone())];
    let hub = memory_node(&net, spec).await;
    let mut spec = NodeSpec::new(2);
    spec.groups = vec![vec![CH_A, CH_B, CH_F]];
    let client = memory_node(&net, spec).await;
    client.sw.dial_peer_with_address(hub.addr).await.unwrap();
    wait_until("connected", Duration::from_secs(5), || {
        hub.sw.peer(&client.id()).is_some() && client.sw.peer(&hub.id()).is_some()
    })
    .await;
    let to_hub = client.sw.peer(&hub.id()).unwrap();
    to_hub
        .send(CH_F, Bytes::from_static(b"ok 1"))
        .await
        .unwrap();
    to_hub
        .send(CH_F, Bytes::from_static(b"\xffevil"))
        .await
        .unwrap();
    // Sent after the evil one: never delivered, the peer is gone by then.
    let _ = to_hub.send(CH_F, Bytes::from_static(b"ok 2")).await;
    wait_until("stopped", Duration::from_secs(5), || {
        !filtering.removed.lock().is_empty()
    })
    .await;
    assert_eq!(
        *filtering.received.lock(),
        vec![Bytes::from_static(b"ok 1")]
    );
    assert_eq!(filtering.filtered.load(Ordering::SeqCst), 2);
    let why = filtering.removed.lock().clone();
    assert_eq!(why.len(), 1);
    assert!(why[0].contains("refused by the byte filter"), "{why:?}");
    wait_until("closed on both sides", Duration::from_secs(5), || {
        hub.sw.peer(&client.id()).is_none() && client.sw.peer(&hub.id()).is_none()
    })
    .await;
    // The stop counter moves after every reactor's `remove_peer`: wait for it, then check
    // it counted one stop.
    wait_until("stop counted", Duration::from_secs(5), || {
        hub.sw.stats().peer_stops.contains_key("reactor")
    })
    .await;
    assert_eq!(hub.sw.stats().peer_stops.get("reactor"), Some(&1));
    // The default filter lets everything through: the other reactor got nothing refused.
    check_grammar(&hub.rec().calls()).unwrap();
    hub.sw.stop().await;
    client.sw.stop().await;
    assert_eq!(hub.sw.transport().connection_count(), 0);
    base.assert_restored().await;
}

/// With no filter override, every message reaches `receive` (the default is `Ok`).
#[tokio::test(start_paused = true)]
async fn c14_the_default_filter_passes_every_message() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take_in_memory();
    let net = MemoryNetwork::default();
    let hub = memory_node(&net, NodeSpec::new(1)).await;
    let client = memory_node(&net, NodeSpec::new(2)).await;
    client.sw.dial_peer_with_address(hub.addr).await.unwrap();
    wait_until("connected", Duration::from_secs(5), || {
        hub.sw.peer(&client.id()).is_some() && client.sw.peer(&hub.id()).is_some()
    })
    .await;
    let to_hub = client.sw.peer(&hub.id()).unwrap();
    for m in [&b"\xff"[..], b"", b"\x00x"] {
        to_hub.send(CH_A, Bytes::copy_from_slice(m)).await.unwrap();
    }
    wait_until("delivered", Duration::from_secs(5), || {
        hub.rec().received().len() == 3
    })
    .await;
    assert!(hub.sw.peer(&client.id()).is_some());
    hub.sw.stop().await;
    client.sw.stop().await;
    base.assert_restored().await;
}
