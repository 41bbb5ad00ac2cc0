//! The policy core alone: misbehaviour, address filtering, dial limits, pacing, seed mode.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use mukan_addrbook::{AddrBook, Config};
use mukan_pex::core::DEFAULT_BAN_TIME;
use mukan_pex::msg::{MAX_MSG_SIZE, Message, PexAddrs, Sum};
use mukan_pex::{
    Action, CoreConfig, DecodeError, DialOutcome, PeerInfo, PexCore, PexError, PexMessage,
};
use mukan_reactor_api::{AddressBook, Direction, NetAddress, NetAddressProto, NodeId};
use prost::Message as _;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn id(n: u32) -> NodeId {
    let mut b = [0u8; 20];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[19] = 1;
    NodeId(b)
}

fn addr(n: u32, ip: [u8; 4]) -> NetAddress {
    NetAddress::new(id(n), IpAddr::V4(Ipv4Addr::from(ip)), 26656)
}

/// A routable address in its own /16 for every `n < 65536`.
fn spread(n: u32) -> NetAddress {
    let [_, _, a, b] = n.to_be_bytes();
    addr(n, [1 + a % 200, b, 0, 1])
}

const OURS: u32 = 999_999;

struct Node {
    core: PexCore,
    book: AddrBook,
    t0: Instant,
    w0: SystemTime,
    now: Duration,
}

impl Node {
    fn new(cfg: CoreConfig) -> Self {
        Self::with_book(cfg, Config::with_strict(true))
    }

    fn with_book(mut cfg: CoreConfig, book: Config) -> Self {
        cfg.our_address = Some(addr(OURS, [9, 9, 9, 9]));
        let mut n = Self {
            core: PexCore::new(cfg, ChaCha8Rng::seed_from_u64(1)),
            book: AddrBook::new(book, ChaCha8Rng::seed_from_u64(2)),
            t0: Instant::now(),
            w0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            now: Duration::ZERO,
        };
        let (t, w) = n.times();
        n.core.start(&mut n.book, t, w);
        n
    }

    fn times(&self) -> (Instant, SystemTime) {
        (self.t0 + self.now, self.w0 + self.now)
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn add(&mut self, p: PeerInfo) -> Vec<Action> {
        let (t, w) = self.times();
        self.core.peer_added(&mut self.book, p, t, w)
    }

    fn recv(&mut self, p: &PeerInfo, msg: &PexMessage) -> Vec<Action> {
        self.recv_bytes(p, &msg.encode())
    }

    fn recv_bytes(&mut self, p: &PeerInfo, bytes: &[u8]) -> Vec<Action> {
        let (t, w) = self.times();
        self.core.receive(&mut self.book, p, bytes, t, w)
    }

    fn tick(&mut self) -> Vec<Action> {
        let (t, w) = self.times();
        self.core.tick(&mut self.book, t, w)
    }

    fn dial_done(&mut self, a: NetAddress, o: DialOutcome) -> Vec<Action> {
        let (t, w) = self.times();
        self.core.dial_finished(&mut self.book, a, o, t, w)
    }

    fn banned(&self, a: &NetAddress) -> bool {
        let (t, w) = self.times();
        self.core.is_banned(&a.id(), t) && self.book.is_banned(a, w)
    }
}

fn peer(a: NetAddress, direction: Direction) -> PeerInfo {
    PeerInfo {
        id: a.id(),
        direction,
        socket_addr: a,
        self_addr: Some(a),
        persistent: false,
    }
}

fn stop_of(actions: &[Action]) -> Option<(&PexError, bool)> {
    actions.iter().find_map(|a| match a {
        Action::StopPeer { reason, banned, .. } => Some((reason, *banned)),
        _ => None,
    })
}

fn dials(actions: &[Action]) -> Vec<NetAddress> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dial { addr } => Some(*addr),
            _ => None,
        })
        .collect()
}

fn answers(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    message: PexMessage::Addrs(_),
                    ..
                }
            )
        })
        .count()
}

fn sent_request(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::Send {
                message: PexMessage::Request,
                ..
            }
        )
    })
}

#[test]
fn third_request_within_the_interval_stops_and_bans() {
    let mut n = Node::new(CoreConfig::default());
    let p = peer(spread(1), Direction::Inbound);
    n.add(p);
    assert_eq!(
        answers(&n.recv(&p, &PexMessage::Request)),
        1,
        "first is free"
    );
    n.advance(Duration::from_secs(1));
    assert_eq!(
        answers(&n.recv(&p, &PexMessage::Request)),
        1,
        "second is tolerated (Go)"
    );
    n.advance(Duration::from_secs(9));
    let acts = n.recv(&p, &PexMessage::Request);
    assert!(
        matches!(
            stop_of(&acts),
            Some((PexError::RequestTooSoon { .. }, true))
        ),
        "{acts:?}"
    );
    assert_eq!(answers(&acts), 0);
    assert!(n.banned(&p.socket_addr));
}

#[test]
fn requests_at_the_minimum_interval_are_answered() {
    let mut n = Node::new(CoreConfig::default());
    let p = peer(spread(1), Direction::Inbound);
    n.add(p);
    for _ in 0..10 {
        let acts = n.recv(&p, &PexMessage::Request);
        assert!(stop_of(&acts).is_none(), "{acts:?}");
        assert_eq!(answers(&acts), 1);
        n.advance(Duration::from_secs(10));
    }
}

#[test]
fn request_state_is_cleared_when_the_peer_is_removed() {
    // tendermint #3338: after a reconnect, the old request times must not count.
    let mut n = Node::new(CoreConfig::default());
    let p = peer(spread(1), Direction::Inbound);
    n.add(p);
    n.recv(&p, &PexMessage::Request);
    n.recv(&p, &PexMessage::Request);
    n.core.peer_removed(&p.id);
    n.advance(Duration::from_secs(1));
    n.add(p);
    let acts = n.recv(&p, &PexMessage::Request);
    assert!(stop_of(&acts).is_none(), "{acts:?}");
    assert_eq!(answers(&acts), 1);
}

#[test]
fn unsolicited_addresses_stop_and_ban() {
    let mut n = Node::new(CoreConfig::default());
    let p = peer(spread(1), Direction::Inbound);
    n.add(p);
    let acts = n.recv(&p, &PexMessage::Addrs(vec![spread(2)]));
    assert!(
        matches!(stop_of(&acts), Some((PexError::Unsolicited, true))),
        "{acts:?}"
    );
    assert!(
        !n.book.has_address(&spread(2)),
        "unsolicited addresses are not stored"
    );
    assert!(n.banned(&p.socket_addr));
}

#[test]
fn a_second_answer_to_one_request_is_unsolicited() {
    let mut n = Node::new(CoreConfig::default());
    let p = peer(spread(1), Direction::Outbound);
    assert!(sent_request(&n.add(p)));
    let acts = n.recv(&p, &PexMessage::Addrs(vec![spread(2)]));
    assert!(stop_of(&acts).is_none());
    assert!(n.book.has_address(&spread(2)));
    // The answer we asked for is useful (it protects the peer from inbound eviction)...
    assert!(
        acts.contains(&Action::MarkUseful { peer: p.id }),
        "{acts:?}"
    );
    let acts = n.recv(&p, &PexMessage::Addrs(vec![spread(3)]));
    assert!(matches!(
        stop_of(&acts),
        Some((PexError::Unsolicited, true))
    ));
    // ...an unsolicited one is not.
    assert!(
        !acts.iter().any(|a| matches!(a, Action::MarkUseful { .. })),
        "{acts:?}"
    );
}

fn raw_addrs(list: Vec<NetAddressProto>) -> Vec<u8> {
    Message {
        sum: Some(Sum::PexAddrs(PexAddrs { addrs: list })),
    }
    .encode_to_vec()
}

fn invalid_address_stops(bad: NetAddressProto) {
    let mut n = Node::new(CoreConfig::default());
    let p = peer(spread(1), Direction::Outbound);
    assert!(sent_request(&n.add(p)));
    let good = spread(2).to_proto();
    let acts = n.recv_bytes(&p, &raw_addrs(vec![good, bad]));
    match stop_of(&acts) {
        Some((PexError::Decode(DecodeError::InvalidAddress { index: 1, .. }), true)) => {}
        other => panic!("expected a stop for address #1, got {other:?}"),
    }
    assert!(
        !n.book.has_address(&spread(2)),
        "nothing of a bad list is stored"
    );
    assert!(n.banned(&p.socket_addr));
}

#[test]
fn an_address_with_a_bad_id_stops_the_peer() {
    let mut a = spread(3).to_proto();
    a.id = "not-a-node-id".to_owned();
    invalid_address_stops(a);
}

#[test]
fn an_address_with_a_bad_ip_stops_the_peer() {
    let mut a = spread(3).to_proto();
    a.ip = "1.2.3".to_owned();
    invalid_address_stops(a);
}

#[test]
fn an_address_with_port_zero_stops_the_peer() {
    let mut a = spread(3).to_proto();
    a.port = 0;
    invalid_address_stops(a);
}

#[test]
fn an_address_with_a_port_above_65535_stops_the_peer() {
    let mut a = spread(3).to_proto();
    a.port = 70_000;
    invalid_address_stops(a);
}

#[test]
fn own_private_and_non_routable_addresses_in_a_response_are_ignored() {
    let mut n = Node::new(CoreConfig::default());
    n.book.add_private_ids(&[id(50)]);
    let p = peer(spread(1), Direction::Outbound);
    assert!(sent_request(&n.add(p)));
    let ours = addr(OURS, [9, 9, 9, 9]);
    let private = addr(50, [50, 50, 50, 50]);
    let lan = addr(51, [192, 168, 1, 5]);
    let loopback = addr(52, [127, 0, 0, 1]);
    let good = spread(53);
    let acts = n.recv(
        &p,
        &PexMessage::Addrs(vec![ours, private, lan, loopback, good]),
    );
    assert!(stop_of(&acts).is_none(), "{acts:?}");
    assert!(!n.book.has_address(&ours));
    assert!(!n.book.has_address(&private));
    assert!(!n.book.has_address(&lan));
    assert!(!n.book.has_address(&loopback));
    assert!(n.book.has_address(&good), "the control address is stored");
    assert_eq!(n.book.size(), 1, "only the control address");
}

#[test]
fn a_known_id_re_announced_with_a_new_ip_does_not_move() {
    let mut n = Node::new(CoreConfig::default());
    let p = peer(spread(1), Direction::Outbound);
    assert!(sent_request(&n.add(p)));
    let first = addr(60, [60, 1, 1, 1]);
    n.recv(&p, &PexMessage::Addrs(vec![first]));
    let q = peer(spread(2), Direction::Outbound);
    assert!(sent_request(&n.add(q)));
    let moved = addr(60, [61, 2, 2, 2]);
    let acts = n.recv(&q, &PexMessage::Addrs(vec![moved]));
    assert!(stop_of(&acts).is_none());
    assert_eq!(n.book.address(&id(60)), Some(first));
}

#[test]
fn a_thousand_new_addresses_from_a_seed_start_at_most_the_free_outbound_slots() {
    let seed = spread(1);
    let mut cfg = CoreConfig::default();
    cfg.seeds = vec![seed];
    cfg.max_outbound = 10;
    let mut n = Node::new(cfg);
    // Three outbound peers already, one of them the seed.
    for k in 2..4 {
        n.add(peer(spread(k), Direction::Outbound));
    }
    let s = peer(seed, Direction::Outbound);
    assert!(sent_request(&n.add(s)));
    let list: Vec<NetAddress> = (1000..2000).map(spread).collect();
    let bytes = PexMessage::Addrs(list).encode();
    assert!(bytes.len() <= MAX_MSG_SIZE, "{} bytes", bytes.len());
    let acts = n.recv_bytes(&s, &bytes);
    assert!(stop_of(&acts).is_none());
    let d = dials(&acts);
    assert!(!d.is_empty(), "a seed's answer is dialed at once");
    assert!(d.len() <= 10 - 3, "{} dials for 7 free slots", d.len());
    // Nor does the next run exceed the limit while those dials are in flight.
    n.advance(Duration::from_secs(31));
    let more = dials(&n.tick());
    assert!(d.len() + more.len() <= 7, "{} + {}", d.len(), more.len());
}

#[test]
fn dial_back_off_then_ban_after_sixteen_failures() {
    let mut cfg = CoreConfig::default();
    cfg.max_outbound = 1;
    let mut n = Node::new(cfg);
    let target = spread(70);
    let src = spread(71);
    let (_, w) = n.times();
    n.book.add_address(target, src, w).expect("routable");
    let mut failures = 0u32;
    let mut last_fail = Duration::ZERO;
    for _ in 0..200_000 {
        n.advance(Duration::from_secs(30));
        let d = dials(&n.tick());
        if d.is_empty() {
            if n.book.is_banned(&target, n.times().1) {
                break;
            }
            continue;
        }
        assert_eq!(d, vec![target]);
        if failures > 0 {
            let gap = n.now - last_fail;
            assert!(
                gap >= Duration::from_secs(1 << failures),
                "redialed after {gap:?} at {failures} failures"
            );
        }
        n.dial_done(target, DialOutcome::Failed);
        failures += 1;
        last_fail = n.now;
    }
    assert_eq!(failures, 17, "Go dials until attempts > 16");
    assert!(n.book.is_banned(&target, n.times().1));
    // The ban ends and the address comes back (reinstated by the next run).
    n.advance(DEFAULT_BAN_TIME + Duration::from_secs(60));
    let d = dials(&n.tick());
    assert!(n.book.has_address(&target), "reinstated");
    assert!(d.is_empty() || d == vec![target]);
}

#[test]
fn outbound_diversity_at_most_one_per_group_unless_nothing_else() {
    let mut cfg = CoreConfig::default();
    cfg.max_outbound = 10;
    let mut n = Node::new(cfg);
    let (_, w) = n.times();
    // 40 addresses in 5.5.0.0/16 (learned from different sources, so spread over buckets)
    // and 10 in distinct groups.
    for k in 0..40u32 {
        let _ = n
            .book
            .add_address(addr(100 + k, [5, 5, 1, 1 + k as u8]), spread(500 + k), w);
    }
    for k in 0..10u32 {
        let _ = n.book.add_address(spread(200 + k), spread(99), w);
    }
    n.advance(Duration::from_secs(30));
    let d = dials(&n.tick());
    assert!(!d.is_empty());
    let crowded = d
        .iter()
        .filter(|a| a.ip().to_string().starts_with("5.5."))
        .count();
    assert!(crowded <= 1, "{crowded} dials into one /16: {d:?}");

    // A book with one group only still gets dialed beyond one.
    let mut m = Node::new(CoreConfig::default());
    for k in 0..30u32 {
        let _ = m
            .book
            .add_address(addr(100 + k, [5, 5, 1, 1 + k as u8]), spread(99), w);
    }
    m.advance(Duration::from_secs(30));
    let d = dials(&m.tick());
    assert!(
        d.len() > 2,
        "diversity must yield when the book offers nothing else: {d:?}"
    );
}

#[test]
fn our_requests_never_trip_a_go_receiver() {
    // A and B: A needs addresses and ticks often; B applies Go's receive rule.
    let mut a = Node::new(CoreConfig::default());
    let mut b = Node::new(CoreConfig::default());
    let pb = peer(spread(2), Direction::Outbound);
    let pa = peer(spread(1), Direction::Inbound);
    b.add(pa);
    let mut pending = a.add(pb);
    for _ in 0..(3600 / 5) {
        for act in std::mem::take(&mut pending) {
            if let Action::Send {
                message: PexMessage::Request,
                ..
            } = act
            {
                b.now = a.now;
                let reply = b.recv(&pa, &PexMessage::Request);
                assert!(stop_of(&reply).is_none(), "B stopped A: {reply:?}");
                for r in reply {
                    if let Action::Send { message, .. } = r {
                        pending.extend(a.recv(&pb, &message));
                    }
                }
            }
        }
        a.advance(Duration::from_secs(5));
        pending.extend(a.tick());
    }
}

#[test]
fn seed_answers_an_inbound_request_once_then_disconnects() {
    let mut cfg = CoreConfig::default();
    cfg.seed_mode = true;
    let mut n = Node::new(cfg);
    let (_, w) = n.times();
    for k in 0..50 {
        let _ = n.book.add_address(spread(300 + k), spread(99), w);
    }
    let p = peer(spread(1), Direction::Inbound);
    n.add(p);
    let acts = n.recv(&p, &PexMessage::Request);
    assert_eq!(answers(&acts), 1);
    let pos_send = acts.iter().position(|a| matches!(a, Action::Send { .. }));
    let pos_disc = acts
        .iter()
        .position(|a| matches!(a, Action::Disconnect { .. }));
    assert!(
        pos_send < pos_disc && pos_disc.is_some(),
        "answer, then flush-and-disconnect: {acts:?}"
    );
    let again = n.recv(&p, &PexMessage::Request);
    assert!(again.is_empty(), "a second request is ignored: {again:?}");
}

#[test]
fn seed_serves_addresses_it_verified_first_and_marks_them_good() {
    let mut cfg = CoreConfig::default();
    cfg.seed_mode = true;
    let mut n = Node::new(cfg);
    let (_, w) = n.times();
    for k in 0..200 {
        let _ = n.book.add_address(spread(300 + k), spread(99), w);
    }
    // Verify five by dialing them (a completed handshake).
    let verified: Vec<NetAddress> = (300..305).map(spread).collect();
    for v in &verified {
        n.add(peer(*v, Direction::Outbound));
        assert!(n.book.is_good(v), "handshake marks the address good");
    }
    let p = peer(spread(1), Direction::Inbound);
    n.add(p);
    let acts = n.recv(&p, &PexMessage::Request);
    let list = acts
        .iter()
        .find_map(|a| match a {
            Action::Send {
                message: PexMessage::Addrs(l),
                ..
            } => Some(l.clone()),
            _ => None,
        })
        .expect("an answer");
    assert_eq!(list.len(), 46, "Go's selection size for 201 addresses");
    let mut head: Vec<NetAddress> = list[..5].to_vec();
    head.sort();
    let mut want = verified.clone();
    want.sort();
    assert_eq!(head, want, "verified addresses come first");

    // Past the freshness window they are served like the rest.
    n.advance(Duration::from_secs(25 * 3600));
    assert!(n.core.verified(n.times().1).is_empty());
    let q = peer(spread(2), Direction::Inbound);
    n.add(q);
    let acts = n.recv(&q, &PexMessage::Request);
    let list = acts
        .iter()
        .find_map(|a| match a {
            Action::Send {
                message: PexMessage::Addrs(l),
                ..
            } => Some(l.clone()),
            _ => None,
        })
        .expect("an answer");
    let mut head: Vec<NetAddress> = list[..5].to_vec();
    head.sort();
    assert_ne!(head, want, "stale verifications still served first");
}

#[test]
fn seed_reinstates_bans_and_has_no_busy_loop_without_seeds() {
    let mut cfg = CoreConfig::default();
    cfg.seed_mode = true;
    let mut n = Node::new(cfg);
    let start = n.times().0;
    // Empty book, no seeds: ticks do nothing and the next deadline is a period away.
    let acts = n.tick();
    assert!(dials(&acts).is_empty());
    let next = n.core.next_deadline().expect("scheduled");
    assert!(
        next >= start + Duration::from_secs(30),
        "busy loop: next run at {:?}",
        next - start
    );

    let (_, w) = n.times();
    let bad = spread(400);
    n.book.add_address(bad, spread(99), w).expect("routable");
    n.book.mark_bad(&bad, DEFAULT_BAN_TIME, w);
    assert!(!n.book.has_address(&bad));
    n.advance(DEFAULT_BAN_TIME + Duration::from_secs(31));
    n.tick();
    assert!(
        n.book.has_address(&bad),
        "the seed reinstated the expired ban"
    );
}

#[test]
fn seed_disconnects_peers_older_than_the_wait() {
    let mut cfg = CoreConfig::default();
    cfg.seed_mode = true;
    cfg.seed_disconnect_wait = Duration::from_secs(3600);
    let mut n = Node::new(cfg);
    let p = peer(spread(1), Direction::Inbound);
    n.add(p);
    n.advance(Duration::from_secs(1800));
    let acts = n.tick();
    assert!(!acts.iter().any(|a| matches!(a, Action::Disconnect { .. })));
    n.advance(Duration::from_secs(1830));
    let acts = n.tick();
    assert!(
        acts.contains(&Action::Disconnect { peer: p.id }),
        "{acts:?}"
    );
}

#[test]
fn book_is_saved_periodically_and_on_stop() {
    let mut n = Node::new(CoreConfig::default());
    let mut saves = 0;
    for _ in 0..10 {
        n.advance(Duration::from_secs(30));
        saves += n.tick().iter().filter(|a| **a == Action::SaveBook).count();
    }
    assert_eq!(saves, 2, "every 2 minutes over 5 minutes");
    assert_eq!(n.core.stop(), vec![Action::SaveBook]);
}

#[test]
fn empty_book_falls_back_to_seeds_one_at_a_time() {
    let mut cfg = CoreConfig::default();
    cfg.seeds = vec![spread(1), spread(2)];
    let mut n = Node::new(cfg);
    let d = dials(&n.tick());
    assert_eq!(d.len(), 1, "{d:?}");
    let next = dials(&n.dial_done(d[0], DialOutcome::Failed));
    assert_eq!(next.len(), 1);
    assert_ne!(next, d, "the other seed is tried next");
}

#[test]
fn a_banned_peer_is_stopped_on_reconnect_and_never_dialed_even_if_the_book_cannot_hold_it() {
    let mut n = Node::new(CoreConfig::default());
    // Loopback socket and a 0.0.0.0 listen address: the strict book can store neither.
    let sock = addr(80, [127, 0, 0, 1]);
    let p = PeerInfo {
        id: sock.id(),
        direction: Direction::Inbound,
        socket_addr: sock,
        self_addr: Some(addr(80, [0, 0, 0, 0])),
        persistent: false,
    };
    n.add(p);
    let acts = n.recv(&p, &PexMessage::Addrs(vec![spread(2)]));
    assert!(matches!(
        stop_of(&acts),
        Some((PexError::Unsolicited, true))
    ));
    n.core.peer_removed(&p.id);
    n.advance(Duration::from_secs(1));
    let acts = n.add(p);
    assert!(
        matches!(stop_of(&acts), Some((PexError::Banned, false))),
        "{acts:?}"
    );
    // Learned later under a routable address: still not dialed while banned.
    let (_, w) = n.times();
    let _ = n.book.add_address(addr(80, [80, 1, 1, 1]), spread(99), w);
    n.core.peer_removed(&p.id);
    for _ in 0..20 {
        n.advance(Duration::from_secs(30));
        let d = dials(&n.tick());
        assert!(
            d.iter().all(|a| a.id() != p.id),
            "dialed a banned peer: {d:?}"
        );
    }
}
