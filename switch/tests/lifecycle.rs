//! Registration, start and ordered stop, the address book hooks, counters and `/net_info`
//! listing, and which stops redial a persistent peer.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::*;
use mukan_reactor_api::testing::{ReactorCall, RecordingReactor};
use mukan_reactor_api::{
    AddAddressError, AddressBook, DialError, Dialer, Direction, NetAddress, Network, NodeId,
    PeerConfig, ReactorError, Transport,
};
use mukan_switch::{Builder, Config, Error};
use mukan_transport::{MemoryNetwork, MemoryTransport};
use parking_lot::Mutex;

#[derive(Default)]
struct Book {
    ours: Vec<NetAddress>,
    private: Vec<NodeId>,
    added: Vec<(NetAddress, NetAddress)>,
    removed: Vec<NetAddress>,
    good: Vec<NodeId>,
}

impl AddressBook for Book {
    fn add_our_address(&mut self, addr: NetAddress) {
        self.ours.push(addr);
    }
    fn our_address(&self, addr: &NetAddress) -> bool {
        self.ours.contains(addr)
    }
    fn add_private_ids(&mut self, ids: &[NodeId]) {
        self.private.extend_from_slice(ids);
    }
    fn add_address(
        &mut self,
        addr: NetAddress,
        src: NetAddress,
        _: SystemTime,
    ) -> Result<(), AddAddressError> {
        self.added.push((addr, src));
        Ok(())
    }
    fn remove_address(&mut self, addr: &NetAddress) {
        self.removed.push(*addr);
    }
    fn has_address(&self, _: &NetAddress) -> bool {
        false
    }
    fn size(&self) -> usize {
        self.added.len()
    }
    fn pick_address(&mut self, _: u8) -> Option<NetAddress> {
        None
    }
    fn mark_good(&mut self, id: NodeId, _: SystemTime) {
        self.good.push(id);
    }
    fn mark_attempt(&mut self, _: &NetAddress, _: SystemTime) {}
    fn mark_bad(&mut self, _: &NetAddress, _: Duration, _: SystemTime) {}
    fn reinstate_bad_peers(&mut self, _: SystemTime) {}
    fn is_good(&self, _: &NetAddress) -> bool {
        false
    }
    fn is_banned(&self, _: &NetAddress, _: SystemTime) -> bool {
        false
    }
    fn selection(&mut self) -> Vec<NetAddress> {
        Vec::new()
    }
    fn selection_with_bias(&mut self, _: u8) -> Vec<NetAddress> {
        Vec::new()
    }
}

#[tokio::test(start_paused = true)]
async fn address_book_hears_of_us_private_ids_good_peers_dials_and_self() {
    let net = MemoryNetwork::default();
    let book = Arc::new(Mutex::new(Book::default()));
    let private = key(77).node_id();
    let mut spec = NodeSpec::new(1);
    spec.addr_book = Some(book.clone());
    spec.config.private_peer_ids = vec![private];
    let hub = memory_node(&net, spec).await;
    assert_eq!(book.lock().ours, vec![hub.addr]);
    assert_eq!(book.lock().private, vec![private]);

    let other = memory_node(&net, NodeSpec::new(2)).await;
    hub.sw
        .dial_peers_async(&[mukan_reactor_api::ParsedAddress::Resolved(other.addr)]);
    assert_eq!(book.lock().added, vec![(other.addr, hub.addr)]);
    wait_until("dialed", Duration::from_secs(5), || {
        hub.sw.peer(&other.id()).is_some()
    })
    .await;
    hub.sw.mark_peer_as_good(&other.id());
    assert_eq!(book.lock().good, vec![other.id()]);

    // Someone with our key connects: that address is ours.
    let twin_key = key(1);
    let twin_ip = ip(99);
    let info = node_info(&twin_key, vec![CH_A], "tcp://127.1.0.99:1");
    let twin = MemoryTransport::new(&net, twin_ip, twin_key, info, transport_config());
    twin.listen(SocketAddr::new(twin_ip, 0)).await.unwrap();
    let config = PeerConfig::new(vec![descriptor(CH_A)]);
    assert!(twin.dial(hub.addr, config).await.is_err());
    wait_until("self seen", Duration::from_secs(5), || {
        !book.lock().removed.is_empty()
    })
    .await;
    let seen = book.lock().removed[0];
    assert_eq!(seen.id(), hub.id());
    assert_eq!(seen.ip(), twin_ip);
    assert!(book.lock().ours.contains(&seen));
    // Dialing our own ID is refused before any connection.
    assert!(matches!(
        hub.sw.dial_peer_with_address(hub.addr).await,
        Err(DialError::SelfAddress(_))
    ));
    hub.sw.stop().await;
    other.sw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_flushes_peers_then_stops_reactors() {
    let net = MemoryNetwork::default();
    let hub = memory_node(&net, NodeSpec::new(1)).await;
    let client = memory_node(&net, NodeSpec::new(2)).await;
    client.sw.dial_peer_with_address(hub.addr).await.unwrap();
    wait_until("connected", Duration::from_secs(5), || {
        hub.sw.peer(&client.id()).is_some() && client.sw.peer(&hub.id()).is_some()
    })
    .await;
    let last = Bytes::from_static(b"last words");
    assert_eq!(hub.sw.broadcast(CH_A, last.clone()).queued(), 1);
    hub.sw.stop().await;
    // The queued message was flushed before the connection closed.
    wait_until("delivered", Duration::from_secs(5), || {
        client
            .rec()
            .received()
            .iter()
            .any(|(_, ch, m)| *ch == CH_A && *m == last)
    })
    .await;
    let calls = hub.rec().calls();
    let n = calls.len();
    assert!(
        matches!(&calls[n - 2], ReactorCall::RemovePeer(id, why) if *id == client.id() && why.contains("shut down"))
    );
    assert_eq!(calls[n - 1], ReactorCall::OnStop);
    // Stopped: no dials, nothing accepted.
    assert!(matches!(
        hub.sw.dial_peer_with_address(client.addr).await,
        Err(DialError::NotRunning)
    ));
    let _ = client.sw.dial_peer_with_address(hub.addr).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(hub.sw.peers().is_empty());
    assert_eq!(hub.rec().calls().len(), n);
    // A second stop is a no-op; a restart is refused.
    hub.sw.stop().await;
    assert!(matches!(hub.sw.start(), Err(Error::AlreadyStarted)));
    client.sw.stop().await;
}

#[tokio::test]
async fn registration_refuses_duplicates_and_reactors_are_reachable_by_type() {
    let mut b = Builder::new(Config::default());
    b.add_reactor("a", Arc::new(RecordingReactor::new(vec![descriptor(CH_A)])))
        .unwrap();
    assert!(matches!(
        b.add_reactor("a", Arc::new(RecordingReactor::new(vec![descriptor(CH_B)]))),
        Err(Error::DuplicateReactorName(_))
    ));
    assert!(matches!(
        b.add_reactor("b", Arc::new(RecordingReactor::new(vec![descriptor(CH_A)]))),
        Err(Error::DuplicateChannel { .. })
    ));
    b.add_reactor("b", Arc::new(RecordingReactor::new(vec![descriptor(CH_B)])))
        .unwrap();
    assert_eq!(b.channel_ids(), vec![CH_A, CH_B]);
    let k = key(1);
    let net = MemoryNetwork::default();
    let t = MemoryTransport::new(
        &net,
        ip(1),
        k.clone(),
        node_info(&k, vec![CH_A], "tcp://127.1.0.1:1"),
        transport_config(),
    );
    let sw = b.build(t).unwrap();
    let as_dyn: Arc<dyn Network> = sw.clone();
    assert!(as_dyn.reactor_as::<RecordingReactor>("a").is_some());
    assert!(as_dyn.reactor("c").is_none());
    // Each reactor was asked for its channels once and given the switch.
    let a = as_dyn.reactor_as::<RecordingReactor>("a").unwrap();
    assert_eq!(
        a.calls(),
        vec![
            ReactorCall::Channels,
            ReactorCall::SetSwitch,
            ReactorCall::SetDialer
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn counters_and_peer_listing() {
    let net = MemoryNetwork::default();
    let hub = memory_node(&net, NodeSpec::new(1)).await;
    let client = memory_node(&net, NodeSpec::new(2)).await;
    client.sw.dial_peer_with_address(hub.addr).await.unwrap();
    wait_until("connected", Duration::from_secs(5), || {
        hub.sw.peer(&client.id()).is_some() && client.sw.peer(&hub.id()).is_some()
    })
    .await;
    for _ in 0..3 {
        client.sw.broadcast(CH_A, Bytes::from_static(b"12345"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = client.sw.peer(&hub.id()).unwrap();
    p.send(CH_B, Bytes::from_static(b"xy")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hs = hub.sw.stats();
    assert_eq!(hs.peers_inbound, 1);
    assert_eq!(hs.peers_outbound, 0);
    let a = hs.channels.iter().find(|c| c.channel == CH_A).unwrap();
    assert_eq!((a.received_messages, a.received_bytes), (3, 15));
    let b = hs.channels.iter().find(|c| c.channel == CH_B).unwrap();
    assert_eq!((b.received_messages, b.received_bytes), (1, 2));
    let cs = client.sw.stats();
    assert_eq!(cs.peers_outbound, 1);
    assert_eq!(cs.dials.get("connected"), Some(&1));
    let a = cs.channels.iter().find(|c| c.channel == CH_A).unwrap();
    assert_eq!((a.sent_messages, a.sent_bytes), (3, 15));
    let b = cs.channels.iter().find(|c| c.channel == CH_B).unwrap();
    assert_eq!((b.sent_messages, b.sent_bytes), (1, 2));
    let infos = hub.sw.peer_infos();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].node_info.id, client.id().to_string());
    assert_eq!(infos[0].direction, Direction::Inbound);
    assert_eq!(infos[0].socket_addr.ip(), client.addr.ip());
    assert!(infos[0].status.recv.bytes > 0);
    hub.sw
        .stop_peer_for_error(&client.id(), ReactorError::PeerRefused("bad"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hub.sw.stats().peer_stops.get("reactor"), Some(&1));
    hub.sw.stop().await;
    client.sw.stop().await;
}

#[tokio::test(start_paused = true)]
async fn errors_redial_persistent_peers_graceful_stops_do_not() {
    let net = MemoryNetwork::default();
    let target = memory_node(&net, NodeSpec::new(2)).await;
    let mut spec = NodeSpec::new(1);
    spec.config.persistent_peers = vec![mukan_reactor_api::ParsedAddress::Resolved(target.addr)];
    let hub = memory_node(&net, spec).await;
    hub.sw.dial_persistent_peers();
    wait_until("connected", Duration::from_secs(10), || {
        hub.sw.peer(&target.id()).is_some()
    })
    .await;
    hub.sw
        .stop_peer_for_error(&target.id(), ReactorError::PeerRefused("misbehaved"));
    wait_until("redialed", Duration::from_secs(30), || {
        hub.rec()
            .calls()
            .iter()
            .filter(|c| matches!(c, ReactorCall::AddPeer(_)))
            .count()
            == 2
    })
    .await;
    hub.sw.stop_peer_gracefully(&target.id());
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(hub.sw.peer(&target.id()).is_none());
    assert_eq!(hub.sw.num_reconnecting(), 0);
    hub.sw.stop().await;
    target.sw.stop().await;
}

/// Calls back into the switch from every reactor method: a lock held around reactor code
/// would deadlock here.
#[derive(Default)]
struct Reentrant {
    switch: Mutex<Option<std::sync::Weak<dyn Network>>>,
    dialer: Mutex<Option<std::sync::Weak<dyn Dialer>>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl Reentrant {
    fn poke(&self, peer: &Arc<dyn mukan_reactor_api::Peer>) {
        let sw = self.switch.lock().clone().and_then(|w| w.upgrade());
        let dialer = self.dialer.lock().clone().and_then(|w| w.upgrade());
        if let (Some(sw), Some(dialer)) = (sw, dialer) {
            let _ = sw.peers();
            let _ = sw.num_peers();
            let _ = sw.peer(&peer.id());
            let _ = dialer.is_dialing_or_existing_address(&peer.socket_addr());
            let _ = sw.broadcast(CH_B, Bytes::from_static(b"poke"));
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl mukan_reactor_api::Reactor for Reentrant {
    fn channels(&self) -> Vec<mukan_reactor_api::ChannelDescriptor> {
        vec![descriptor(mukan_reactor_api::ChannelId(0x0d))]
    }
    fn set_switch(&self, switch: std::sync::Weak<dyn Network>) {
        *self.switch.lock() = Some(switch);
    }
    fn set_dialer(&self, dialer: std::sync::Weak<dyn Dialer>) {
        *self.dialer.lock() = Some(dialer);
    }
    fn init_peer(&self, peer: &Arc<dyn mukan_reactor_api::Peer>) {
        self.poke(peer);
    }
    fn add_peer(&self, peer: &Arc<dyn mukan_reactor_api::Peer>) {
        self.poke(peer);
    }
    fn remove_peer(
        &self,
        peer: &Arc<dyn mukan_reactor_api::Peer>,
        _: &mukan_reactor_api::StopReason,
    ) {
        self.poke(peer);
    }
    fn receive(&self, env: mukan_reactor_api::Envelope) -> Result<(), ReactorError> {
        self.poke(&env.src);
        let sw = self.switch.lock().clone().and_then(|w| w.upgrade());
        if let Some(sw) = sw {
            let why = ReactorError::PeerRefused("reported from receive");
            sw.stop_peer_for_error(&env.src.id(), why);
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn reactors_may_call_the_switch_from_every_method() {
    let net = MemoryNetwork::default();
    let reentrant = Arc::new(Reentrant::default());
    let mut spec = NodeSpec::new(1);
    spec.extra = vec![("reentrant".into(), reentrant.clone())];
    let hub = memory_node(&net, spec).await;
    let mut spec = NodeSpec::new(2);
    spec.groups = vec![vec![CH_A, CH_B, mukan_reactor_api::ChannelId(0x0d)]];
    let client = memory_node(&net, spec).await;
    client.sw.dial_peer_with_address(hub.addr).await.unwrap();
    wait_until("connected", Duration::from_secs(5), || {
        client.sw.peer(&hub.id()).is_some() && hub.sw.peer(&client.id()).is_some()
    })
    .await;
    client
        .sw
        .broadcast(mukan_reactor_api::ChannelId(0x0d), Bytes::from_static(b"x"));
    wait_until("stopped from receive", Duration::from_secs(5), || {
        hub.sw.peers().is_empty()
    })
    .await;
    // init, add, receive, remove.
    assert_eq!(reentrant.calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    assert!(hub.rec().calls().iter().any(|c| matches!(
        c,
        ReactorCall::RemovePeer(_, why) if why.contains("reported from receive")
    )));
    hub.sw.stop().await;
    client.sw.stop().await;
}

/// Panics on every message and when told of a new peer.
struct Panicky;

impl mukan_reactor_api::Reactor for Panicky {
    fn channels(&self) -> Vec<mukan_reactor_api::ChannelDescriptor> {
        vec![descriptor(mukan_reactor_api::ChannelId(0x0e))]
    }
    fn add_peer(&self, _: &Arc<dyn mukan_reactor_api::Peer>) {
        panic!("add_peer panics (test)");
    }
    fn receive(&self, _: mukan_reactor_api::Envelope) -> Result<(), ReactorError> {
        panic!("receive panics (test)");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_reactor_stops_the_peer_not_the_switch() {
    let net = MemoryNetwork::default();
    let mut spec = NodeSpec::new(1);
    spec.extra = vec![("panicky".into(), Arc::new(Panicky))];
    let hub = memory_node(&net, spec).await;
    let mut spec = NodeSpec::new(2);
    spec.groups = vec![vec![CH_A, CH_B, mukan_reactor_api::ChannelId(0x0e)]];
    let client = memory_node(&net, spec).await;
    client.sw.dial_peer_with_address(hub.addr).await.unwrap();
    wait_until("connected", Duration::from_secs(5), || {
        client.sw.peer(&hub.id()).is_some() && hub.sw.peer(&client.id()).is_some()
    })
    .await;
    // The other reactors were told despite the panic in add_peer.
    assert!(
        hub.rec()
            .calls()
            .contains(&ReactorCall::AddPeer(client.id()))
    );
    client.sw.broadcast(
        mukan_reactor_api::ChannelId(0x0e),
        Bytes::from_static(b"boom"),
    );
    wait_until("stopped", Duration::from_secs(5), || {
        hub.sw.peers().is_empty()
    })
    .await;
    assert!(hub.rec().calls().iter().any(|c| matches!(
        c,
        ReactorCall::RemovePeer(_, why) if why.contains("panicked")
    )));
    mukan_reactor_api::testing::check_grammar(&hub.rec().calls()).unwrap();
    hub.sw.stop().await;
    client.sw.stop().await;
}

/// `stop` before `start` closes the transport (nobody can connect to a switch that will never
/// run) and a later `start` is refused; the reactors are never started.
#[tokio::test(start_paused = true)]
async fn stop_before_start_closes_the_transport_and_start_is_refused() {
    let net = MemoryNetwork::default();
    let k = key(40);
    let t = MemoryTransport::new(
        &net,
        ip(40),
        k.clone(),
        node_info(&k, vec![CH_A], "tcp://0.0.0.0:0"),
        transport_config(),
    );
    let bound = t.listen(SocketAddr::new(ip(40), 0)).await.unwrap();
    let rec = Arc::new(RecordingReactor::new(vec![descriptor(CH_A)]));
    let mut b = Builder::new(Config::default());
    b.add_reactor("r", rec.clone()).unwrap();
    let sw = b.build(t).unwrap();
    sw.stop().await;
    assert!(matches!(sw.start(), Err(Error::AlreadyStarted)));
    let other = memory_node(&net, NodeSpec::new(41)).await;
    let target = NetAddress::new(k.node_id(), bound.ip(), bound.port());
    let dialed = other.sw.dial_peer_with_address(target).await;
    assert!(dialed.is_err(), "{dialed:?}");
    assert!(!rec.calls().contains(&ReactorCall::OnStart));
    other.sw.stop().await;
}

/// Dropping the last handle to a started switch stops it: its connections close (the peer
/// sees the disconnection), its reactors get `remove_peer` then `on_stop`, and every task it
/// started ends.
#[tokio::test(start_paused = true)]
async fn dropping_a_started_switch_ends_its_connections_and_tasks() {
    let net = MemoryNetwork::default();
    let other = memory_node(&net, NodeSpec::new(51)).await;
    let tasks = mukan_test_support::live_tasks;
    let baseline = tasks();
    let hub = memory_node(&net, NodeSpec::new(50)).await;
    hub.sw.dial_peer_with_address(other.addr).await.unwrap();
    let hub_id = hub.id();
    wait_until("connected", Duration::from_secs(5), || {
        other.sw.peer(&hub_id).is_some() && hub.sw.peer(&other.id()).is_some()
    })
    .await;
    assert!(tasks() > baseline);
    let rec = hub.reactors[0].clone();
    drop(hub);
    wait_until(
        "the peer saw the disconnection",
        Duration::from_secs(30),
        || other.sw.peer(&hub_id).is_none(),
    )
    .await;
    wait_until("on_stop", Duration::from_secs(30), || {
        rec.calls().contains(&ReactorCall::OnStop)
    })
    .await;
    let calls = rec.calls();
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, ReactorCall::RemovePeer(id, _) if *id == other.id()))
    );
    mukan_reactor_api::testing::check_grammar(&calls).unwrap();
    wait_until(
        "every task of the dropped switch ended",
        Duration::from_secs(30),
        || tasks() <= baseline,
    )
    .await;
    other.sw.stop().await;
}

/// A reactor that dials a peer from `on_start`, on a spawned task (as PEX's first crawl or
/// ensure-peers run does), and keeps the dial's result.
struct DialOnStart {
    target: NetAddress,
    dialer: Mutex<Option<std::sync::Weak<dyn Dialer>>>,
    result: Arc<Mutex<Option<Result<(), DialError>>>>,
}

impl mukan_reactor_api::Reactor for DialOnStart {
    fn channels(&self) -> Vec<mukan_reactor_api::ChannelDescriptor> {
        Vec::new()
    }
    fn set_dialer(&self, dialer: std::sync::Weak<dyn Dialer>) {
        *self.dialer.lock() = Some(dialer);
    }
    fn on_start(&self) {
        let dialer = self.dialer.lock().clone().unwrap();
        let (target, result) = (self.target, self.result.clone());
        tokio::spawn(async move {
            let d = dialer.upgrade().unwrap();
            let r = d.dial_peer_with_address(target).await;
            *result.lock() = Some(r);
        });
    }
    fn receive(&self, _: mukan_reactor_api::Envelope) -> Result<(), ReactorError> {
        Ok(())
    }
}

/// A reactor whose `on_start` takes a while (it holds the switch in its starting state).
struct SlowStart;

impl mukan_reactor_api::Reactor for SlowStart {
    fn channels(&self) -> Vec<mukan_reactor_api::ChannelDescriptor> {
        Vec::new()
    }
    fn on_start(&self) {
        std::thread::sleep(Duration::from_millis(200));
    }
    fn receive(&self, _: mukan_reactor_api::Envelope) -> Result<(), ReactorError> {
        Ok(())
    }
}

/// A dial made from a reactor's `on_start` (a seed's first crawl, a node's first ensure-peers
/// run, its anchors) is not refused with `NotRunning` because later reactors are still
/// starting: it waits until `start` has started them all, then connects. Every reactor,
/// including the ones registered after the dialer, gets `on_start` before that peer's
/// `add_peer`. (Before, the dial failed at once and a seed's crawl skipped the address for
/// two minutes: CI, stop 29, `pex-rust-seed-crawls-mixed-network`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_from_on_start_waits_until_every_reactor_started() {
    let net = MemoryNetwork::default();
    let other = memory_node(&net, NodeSpec::new(61)).await;
    let result = Arc::new(Mutex::new(None));
    let last = Arc::new(RecordingReactor::new(vec![descriptor(CH_A)]));
    let mut spec = NodeSpec::new(60);
    spec.groups = Vec::new();
    spec.extra = vec![
        (
            "dialer".to_owned(),
            Arc::new(DialOnStart {
                target: other.addr,
                dialer: Mutex::new(None),
                result: result.clone(),
            }),
        ),
        ("slow".to_owned(), Arc::new(SlowStart)),
        ("last".to_owned(), last.clone()),
    ];
    let node = memory_node(&net, spec).await;
    wait_until(
        "the dial from on_start ended",
        Duration::from_secs(30),
        || result.lock().is_some(),
    )
    .await;
    let r = result.lock().take().unwrap();
    assert!(r.is_ok(), "the dial from on_start failed: {r:?}");
    wait_until(
        "the peer reached every reactor",
        Duration::from_secs(30),
        || last.calls().contains(&ReactorCall::AddPeer(other.id())),
    )
    .await;
    let calls = last.calls();
    let started = calls.iter().position(|c| *c == ReactorCall::OnStart);
    let added = calls
        .iter()
        .position(|c| *c == ReactorCall::AddPeer(other.id()));
    assert!(started < added, "{calls:?}");
    mukan_reactor_api::testing::check_grammar(&calls).unwrap();
    node.sw.stop().await;
    other.sw.stop().await;
}
