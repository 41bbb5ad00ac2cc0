//! The tokio adapter against the fake switch and peers of `reactor-api`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use mukan_addrbook::{AddrBook, Config};
use mukan_pex::{
    PexConfig, PexMessage, PexReactor, ProbeCallback, SaveCallback, channel_descriptor,
};
use mukan_reactor_api::testing::{FakePeer, FakeSwitch, SwitchCall};
use mukan_reactor_api::{
    AddressBook, ChannelId, Dialer, Direction, Envelope, NetAddress, Network, NodeId, NodeInfo,
    Peer, Reactor, ReactorError, SharedAddressBook, StopReason,
};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_chacha::ChaCha20Rng;

fn addr(n: u8) -> NetAddress {
    NetAddress::new(
        NodeId([n; 20]),
        IpAddr::V4(Ipv4Addr::new(8, n, 1, 1)),
        26656,
    )
}

fn fake_peer(a: NetAddress, direction: Direction) -> Arc<FakePeer> {
    let info = NodeInfo {
        id: a.id().to_string(),
        listen_addr: format!("tcp://{}", a.socket_addr()),
        network: "test-chain".to_owned(),
        moniker: "fake".to_owned(),
        channels: vec![ChannelId::PEX],
        ..NodeInfo::default()
    };
    Arc::new(
        FakePeer::new(a.id(), vec![ChannelId::PEX])
            .with_node_info(info)
            .with_direction(direction)
            .with_socket_addr(a),
    )
}

struct Setup {
    switch: Arc<FakeSwitch>,
    reactor: PexReactor,
    book: Arc<Mutex<AddrBook>>,
    saves: Arc<AtomicUsize>,
}

fn setup(config: PexConfig) -> Setup {
    let switch = Arc::new(FakeSwitch::new(addr(200)));
    let book = Arc::new(Mutex::new(AddrBook::new(
        Config::with_strict(true),
        ChaCha8Rng::seed_from_u64(3),
    )));
    let shared: SharedAddressBook = book.clone();
    let saves = Arc::new(AtomicUsize::new(0));
    let counter = saves.clone();
    let save: SaveCallback = Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let reactor = PexReactor::new(config, shared, Some(save)).expect("config");
    let weak: Weak<dyn Network> = Arc::downgrade(&(switch.clone() as Arc<dyn Network>));
    reactor.set_switch(weak);
    let weak: Weak<dyn Dialer> = Arc::downgrade(&(switch.clone() as Arc<dyn Dialer>));
    reactor.set_dialer(weak);
    Setup {
        switch,
        reactor,
        book,
        saves,
    }
}

fn add(s: &Setup, p: &Arc<FakePeer>) {
    let dynp: Arc<dyn Peer> = p.clone();
    s.switch.add_peer(dynp.clone());
    s.reactor.init_peer(&dynp);
    s.reactor.add_peer(&dynp);
}

fn deliver(s: &Setup, p: &Arc<FakePeer>, msg: &PexMessage) {
    let env = Envelope::new(p.clone(), ChannelId::PEX, Bytes::from(msg.encode()));
    s.reactor
        .receive(env)
        .expect("receive never fails; stops go through the switch");
}

#[test]
fn channels_are_the_pex_descriptor() {
    let s = setup(PexConfig::default());
    assert_eq!(s.reactor.channels(), vec![channel_descriptor()]);
}

#[tokio::test(start_paused = true)]
async fn outbound_peer_is_asked_and_its_answer_stored() {
    let s = setup(PexConfig::default());
    let p = fake_peer(addr(1), Direction::Outbound);
    add(&s, &p);
    assert_eq!(
        p.sent(),
        vec![(ChannelId::PEX, Bytes::from_static(&[0x0a, 0x00]))]
    );
    deliver(&s, &p, &PexMessage::Addrs(vec![addr(2), addr(3)]));
    assert!(s.book.lock().has_address(&addr(2)));
    assert!(s.book.lock().has_address(&addr(3)));
    // The answer to our request is useful: the switch hears of it (eviction protects the
    // peers that do us good), and of nothing else.
    assert_eq!(
        s.switch.calls(),
        vec![SwitchCall::MarkUseful(p.id())],
        "{:?}",
        s.switch.calls()
    );
}

#[tokio::test(start_paused = true)]
async fn unsolicited_addresses_stop_the_peer_through_the_switch_and_ban_it() {
    let s = setup(PexConfig::default());
    let p = fake_peer(addr(1), Direction::Inbound);
    add(&s, &p);
    deliver(&s, &p, &PexMessage::Addrs(vec![addr(2)]));
    let calls = s.switch.calls();
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, SwitchCall::StopPeerForError(id, why)
            if *id == addr(1).id()
                && *why == ReactorError::Violation {
                    channel: ChannelId(0),
                    rule: "unsolicited PexAddrs",
                })),
        "{calls:?}"
    );
    assert!(s.book.lock().is_banned(&addr(1), SystemTime::now()));
    // The switch reports the removal; state goes and nothing panics.
    let dynp: Arc<dyn Peer> = p;
    s.reactor
        .remove_peer(&dynp, &StopReason::Reactor(ReactorError::PeerRefused("x")));
}

#[tokio::test(start_paused = true)]
async fn start_dials_a_seed_through_the_switch_and_stop_saves() {
    let mut cfg = PexConfig::default();
    cfg.seeds = vec![addr(9).to_string()];
    let s = setup(cfg);
    s.reactor.on_start();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let calls = s.switch.calls();
    assert!(calls.contains(&SwitchCall::Dial(addr(9))), "{calls:?}");
    // A save every 2 minutes.
    tokio::time::sleep(Duration::from_secs(121)).await;
    s.reactor.wait_saved().await;
    assert_eq!(s.saves.load(Ordering::SeqCst), 1);
    s.reactor.on_stop();
    s.reactor.wait_saved().await;
    assert_eq!(s.saves.load(Ordering::SeqCst), 2, "saved on stop");
    // Stopped: no more work.
    let before = s.switch.calls().len();
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(s.switch.calls().len(), before);
}

#[tokio::test(start_paused = true)]
async fn dials_respect_the_switch_outbound_limit() {
    let s = setup(PexConfig::default());
    s.switch.set_max_outbound(3);
    {
        let mut b = s.book.lock();
        for n in 10..60 {
            let _ = b.add_address(addr(n), addr(100), SystemTime::now());
        }
    }
    s.reactor.on_start();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let dials = s
        .switch
        .calls()
        .iter()
        .filter(|c| matches!(c, SwitchCall::Dial(_)))
        .count();
    assert!((1..=3).contains(&dials), "{dials} dials for 3 slots");
    s.reactor.on_stop();
}

#[tokio::test(start_paused = true)]
async fn seed_answers_an_inbound_peer_then_stops_it_gracefully() {
    let mut cfg = PexConfig::default();
    cfg.seed_mode = true;
    let s = setup(cfg);
    {
        let mut b = s.book.lock();
        for n in 10..20 {
            let _ = b.add_address(addr(n), addr(100), SystemTime::now());
        }
    }
    let p = fake_peer(addr(1), Direction::Inbound);
    add(&s, &p);
    deliver(&s, &p, &PexMessage::Request);
    let sent = p.sent();
    assert_eq!(sent.len(), 1);
    let Ok(PexMessage::Addrs(list)) = PexMessage::decode(&sent[0].1) else {
        panic!("not an answer: {sent:?}");
    };
    assert!(!list.is_empty());
    assert!(
        s.switch
            .calls()
            .contains(&SwitchCall::StopPeerGracefully(addr(1).id()))
    );
    // Again: ignored.
    deliver(&s, &p, &PexMessage::Request);
    assert_eq!(p.sent().len(), 1);
}

/// The observer is told every answer with the addresses it holds, and nothing else (our own
/// requests are not answers).
#[tokio::test(start_paused = true)]
async fn the_observer_is_told_of_every_answer_with_its_addresses() {
    #[derive(Default)]
    struct Served(Mutex<Vec<(NodeId, Vec<NetAddress>)>>);
    impl mukan_pex::PexObserver for Served {
        fn addrs_served(&self, peer: &NodeId, addrs: &[NetAddress]) {
            self.0.lock().push((*peer, addrs.to_vec()));
        }
    }
    let mut cfg = PexConfig::default();
    cfg.seed_mode = true;
    let s = setup(cfg);
    let served = Arc::new(Served::default());
    assert!(s.reactor.set_observer(served.clone()));
    assert!(!s.reactor.set_observer(Arc::new(Served::default())));
    {
        let mut b = s.book.lock();
        for n in 10..20 {
            let _ = b.add_address(addr(n), addr(100), SystemTime::now());
        }
    }
    // An outbound peer is asked (a request of ours): not an answer.
    let out = fake_peer(addr(2), Direction::Outbound);
    add(&s, &out);
    assert!(served.0.lock().is_empty());
    let p = fake_peer(addr(1), Direction::Inbound);
    add(&s, &p);
    deliver(&s, &p, &PexMessage::Request);
    let sent = p.sent();
    let Ok(PexMessage::Addrs(list)) = PexMessage::decode(&sent[0].1) else {
        panic!("not an answer: {sent:?}");
    };
    let told = served.0.lock().clone();
    assert_eq!(told, vec![(addr(1).id(), list)]);
}

#[test]
fn a_bad_seed_entry_is_a_config_error() {
    let mut cfg = PexConfig::default();
    cfg.seeds = vec!["nonsense".to_owned()];
    let shared: SharedAddressBook = Arc::new(Mutex::new(AddrBook::new(
        Config::with_strict(cfg.strict_addr_book),
        ChaCha20Rng::seed_from_u64(7),
    )));
    assert!(PexReactor::new(cfg, shared, None).is_err());
}

#[tokio::test(start_paused = true)]
async fn a_seed_host_name_is_resolved_again_at_every_dial() {
    let id = NodeId([0x42; 20]);
    let mut cfg = PexConfig::default();
    cfg.seeds = vec![format!("{id}@seed.example:26656")];
    let s = setup(cfg);
    let first = IpAddr::V4(Ipv4Addr::new(8, 8, 1, 1));
    let second = IpAddr::V4(Ipv4Addr::new(8, 8, 2, 2));
    // Not resolvable when the reactor starts: a failed seed dial, not a config error.
    s.reactor.on_start();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let dials = |s: &Setup| -> Vec<NetAddress> {
        s.switch
            .take_calls()
            .into_iter()
            .filter_map(|c| match c {
                SwitchCall::Dial(a) => Some(a),
                _ => None,
            })
            .collect()
    };
    assert_eq!(dials(&s), Vec::<NetAddress>::new());
    // The name appears: the next ensure-peers run dials it there.
    s.switch.set_host("seed.example", Some(first));
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(dials(&s), vec![NetAddress::new(id, first, 26656)]);
    // The name moves: the next seed dial follows it.
    s.switch.set_host("seed.example", Some(second));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(dials(&s), vec![NetAddress::new(id, second, 26656)]);
    s.reactor.on_stop();
}

/// A feeler through the reactor: every 2 minutes the probe the node set is run on a new-table
/// address, outside the switch (no dial call), and success moves the address to the old table.
#[tokio::test(start_paused = true)]
async fn a_feeler_runs_the_probe_and_promotes_the_address_it_reached() {
    let mut cfg = PexConfig::default();
    cfg.max_outbound = Some(0); // no dials: only the feeler reaches out
    let s = setup(cfg);
    s.book
        .lock()
        .add_address(addr(5), addr(6), SystemTime::now())
        .unwrap();
    let probed = Arc::new(Mutex::new(Vec::new()));
    let log = probed.clone();
    let probe: ProbeCallback = Arc::new(move |a| {
        log.lock().push(a);
        Box::pin(async { true })
    });
    s.reactor.set_probe(probe);
    s.reactor.on_start();
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert!(probed.lock().is_empty(), "no feeler before 2 minutes");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(*probed.lock(), vec![addr(5)]);
    let book = s.book.lock();
    assert_eq!((book.old_count(), book.new_count()), (1, 0));
    assert!(
        !s.switch
            .calls()
            .iter()
            .any(|c| matches!(c, SwitchCall::Dial(_))),
        "a feeler is not a switch dial"
    );
}
