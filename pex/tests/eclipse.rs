//! The eclipse defences of the policy core, on virtual time with a real address book: the
//! tried table without consensus (outbound handshakes, feelers, test-before-evict), groups
//! from the socket, address limits (250 per message, a token bucket per peer, at most 64
//! inbound self-adverts in the book), outbound-only requests, anchors.
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use mukan_addrbook::{AddrBook, BucketKind, Config};
use mukan_pex::core::{
    ADDR_TOKEN_BURST, DEFAULT_FEELER_INTERVAL, MAX_ADDRS_PER_MESSAGE, MAX_INBOUND_ADVERTS,
};
use mukan_pex::{Action, CoreConfig, PeerInfo, PexCore, PexMessage};
use mukan_reactor_api::{AddressBook, Direction, NetAddress, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn id(n: u32) -> NodeId {
    let mut b = [0u8; 20];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[19] = 7;
    NodeId(b)
}

fn v4(n: u32, ip: [u8; 4]) -> NetAddress {
    NetAddress::new(id(n), IpAddr::V4(Ipv4Addr::from(ip)), 26656)
}

/// A routable address in its own /16 for every `n < 50_000`.
fn spread(n: u32) -> NetAddress {
    v4(n, [20 + (n / 256 % 180) as u8, (n % 256) as u8, 1, 1])
}

const FEELER: Duration = DEFAULT_FEELER_INTERVAL;

struct Node {
    core: PexCore,
    book: AddrBook,
    t0: Instant,
    w0: SystemTime,
    now: Duration,
}

impl Node {
    fn new(cfg: CoreConfig) -> Self {
        let mut cfg = cfg;
        cfg.our_address = Some(v4(999_999, [9, 9, 9, 9]));
        let mut n = Self {
            core: PexCore::new(cfg, ChaCha8Rng::seed_from_u64(11)),
            book: AddrBook::new(Config::with_strict(true), ChaCha8Rng::seed_from_u64(12)),
            t0: Instant::now(),
            w0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            now: Duration::ZERO,
        };
        n.start();
        n
    }

    fn start(&mut self) -> Vec<Action> {
        let (t, w) = self.times();
        self.core.start(&mut self.book, t, w)
    }

    fn times(&self) -> (Instant, SystemTime) {
        (self.t0 + self.now, self.w0 + self.now)
    }

    fn wall(&self) -> SystemTime {
        self.times().1
    }

    fn advance(&mut self, d: Duration) -> Vec<Action> {
        // Tick at every deadline on the way, as the driver does.
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(next) = self.core.next_deadline() {
            let at = next.saturating_duration_since(self.t0);
            if at > end {
                break;
            }
            self.now = at.max(self.now);
            let (t, w) = self.times();
            out.extend(self.core.tick(&mut self.book, t, w));
        }
        self.now = end;
        out
    }

    fn add(&mut self, p: PeerInfo) -> Vec<Action> {
        let (t, w) = self.times();
        self.core.peer_added(&mut self.book, p, t, w)
    }

    fn recv(&mut self, p: &PeerInfo, msg: &PexMessage) -> Vec<Action> {
        let (t, w) = self.times();
        self.core.receive(&mut self.book, p, &msg.encode(), t, w)
    }

    fn probed(&mut self, a: NetAddress, ok: bool) {
        let w = self.wall();
        self.core.probe_finished(&mut self.book, a, ok, w);
    }
}

fn outbound(a: NetAddress) -> PeerInfo {
    PeerInfo {
        id: a.id(),
        direction: Direction::Outbound,
        socket_addr: a,
        self_addr: Some(a),
        persistent: false,
    }
}

fn inbound(socket: NetAddress, self_addr: NetAddress) -> PeerInfo {
    PeerInfo {
        id: socket.id(),
        direction: Direction::Inbound,
        socket_addr: NetAddress::new(socket.id(), socket.ip(), 51_000),
        self_addr: Some(self_addr),
        persistent: false,
    }
}

fn probes(actions: &[Action]) -> Vec<NetAddress> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Probe { addr } => Some(*addr),
            _ => None,
        })
        .collect()
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

fn stopped(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::StopPeer { .. }))
}

#[test]
fn an_outbound_handshake_marks_the_address_good() {
    let mut n = Node::new(CoreConfig::default());
    let a = spread(1);
    let w = n.wall();
    n.book.add_address(a, spread(2), w).unwrap();
    assert!(!n.book.is_good(&a));
    n.add(outbound(a));
    assert!(
        n.book.is_good(&a),
        "a completed outbound handshake fills the old table"
    );
    // An inbound peer proves nothing about its listen address.
    let b = spread(3);
    n.book.add_address(b, spread(2), w).unwrap();
    n.add(inbound(b, b));
    assert!(!n.book.is_good(&b));
}

#[test]
fn a_feeler_every_two_minutes_probes_a_new_address_and_promotes_it() {
    let mut cfg = CoreConfig::default();
    cfg.max_outbound = 0; // no ensure-peers dials: the feeler alone
    let mut n = Node::new(cfg);
    let w = n.wall();
    for i in 1..=50 {
        n.book.add_address(spread(i), spread(1000), w).unwrap();
    }
    let acts = n.advance(FEELER - Duration::from_secs(1));
    assert!(probes(&acts).is_empty(), "not before 2 minutes");
    let acts = n.advance(Duration::from_secs(1));
    let p = probes(&acts);
    assert_eq!(p.len(), 1, "{acts:?}");
    let target = p[0];
    assert!(n.book.has_address(&target) && !n.book.is_good(&target));
    assert_eq!(n.core.probing(), Some(target));
    // A feeler is not a peer and not a dial: no outbound slot is used.
    assert_eq!((n.core.num_peers(), n.core.num_dialing()), ((0, 0), 0));
    // One at a time: while it runs, the next period starts none.
    assert!(probes(&n.advance(FEELER)).is_empty());
    n.probed(target, true);
    assert!(n.book.is_good(&target), "promoted on success");
    assert_eq!(n.core.probing(), None);
    // A failed feeler counts as a failed attempt, nothing else.
    let next = probes(&n.advance(FEELER));
    assert_eq!(next.len(), 1);
    n.probed(next[0], false);
    assert!(n.book.has_address(&next[0]) && !n.book.is_good(&next[0]));
}

#[test]
fn seeds_run_no_feelers_and_zero_turns_them_off() {
    let mut cfg = CoreConfig::default();
    cfg.seed_mode = true;
    let mut n = Node::new(cfg);
    let w = n.wall();
    n.book.add_address(spread(1), spread(2), w).unwrap();
    assert!(probes(&n.advance(FEELER * 5)).is_empty());
    let mut cfg = CoreConfig::default();
    cfg.feeler_interval = Duration::ZERO;
    let mut n = Node::new(cfg);
    n.book.add_address(spread(1), spread(2), w).unwrap();
    assert!(probes(&n.advance(FEELER * 5)).is_empty());
}

/// A node whose four old buckets of group 77.x are full of entries made good at the start,
/// 5 hours ago, and a new address of that group that a feeler reached: a collision.
fn collision() -> (Node, NetAddress) {
    let mut cfg = CoreConfig::default();
    cfg.max_outbound = 0; // keep ensure-peers out of the way
    let mut n = Node::new(cfg);
    let w = n.wall();
    let mut i = 0u32;
    while n.book.old_count() < 256 {
        let a = v4(10_000 + i, [77, 1, (i >> 8) as u8, i as u8]);
        n.book.add_address(a, spread(i % 500), w).unwrap();
        n.book.mark_good(a.id(), w);
        i += 1;
        assert!(i < 5000);
    }
    n.book.resolve_collisions(w);
    // Only the old entries stay (promotions that collided while filling stayed new).
    let new: Vec<NetAddress> = n.book.addresses().filter(|a| !n.book.is_good(a)).collect();
    for a in new {
        n.book.remove_address(&a);
    }
    n.now += Duration::from_secs(5 * 3600);
    let cand = v4(50_000, [77, 1, 250, 250]);
    let w = n.wall();
    n.book.add_address(cand, spread(4000), w).unwrap();
    // Feelers until one picks the candidate (the only new entry).
    let first = probes(&n.advance(FEELER));
    assert_eq!(first, vec![cand]);
    n.probed(cand, true);
    assert!(!n.book.is_good(&cand), "no eviction without a test");
    assert_eq!(n.book.pending_collisions(), 1);
    (n, cand)
}

#[test]
fn test_before_evict_a_dead_resident_is_replaced() {
    let (mut n, cand) = collision();
    // The next feeler tests the resident the newcomer would evict.
    let p = probes(&n.advance(FEELER));
    assert_eq!(p.len(), 1);
    let resident = p[0];
    assert!(n.book.is_good(&resident) && resident != cand);
    n.probed(resident, false);
    // Settled at the next feeler, once the test had its minute.
    n.advance(FEELER);
    assert_eq!(n.book.pending_collisions(), 0);
    assert!(n.book.is_good(&cand), "the newcomer took the slot");
    assert!(!n.book.is_good(&resident), "the dead resident is demoted");
    assert_eq!(n.book.old_count(), 256);
}

#[test]
fn test_before_evict_a_live_resident_is_kept() {
    let (mut n, cand) = collision();
    let resident = probes(&n.advance(FEELER))[0];
    n.probed(resident, true);
    n.advance(FEELER);
    assert_eq!(n.book.pending_collisions(), 0);
    assert!(n.book.is_good(&resident), "a live resident stays");
    assert!(!n.book.is_good(&cand) && n.book.has_address(&cand));
}

#[test]
fn gossip_is_bucketed_by_the_group_of_the_connection() {
    // Three outbound peers, all connected from one /16 but each claiming another /16 in its
    // NodeInfo, gossip 250 addresses each from many groups: with the connection's group as
    // the source they reach at most 32 new buckets (Go's source, the claimed address, would
    // spread them over up to 3 × 32).
    let mut n = Node::new(CoreConfig::default());
    let mut next = 100u32;
    for k in 0..3u32 {
        let sock = v4(40_000 + k, [45, 77, 1, k as u8 + 1]);
        let mut p = outbound(sock);
        p.self_addr = Some(NetAddress::new(
            sock.id(),
            spread(30_000 + k * 300).ip(),
            26656,
        ));
        n.add(p);
        let list: Vec<NetAddress> = (0..250)
            .map(|_| {
                next += 1;
                spread(next)
            })
            .collect();
        let acts = n.recv(&p, &PexMessage::Addrs(list));
        assert!(!stopped(&acts), "{acts:?}");
    }
    let used: HashSet<u16> = n
        .book
        .addresses()
        .filter_map(|a| n.book.buckets_of(&a.id()))
        .filter(|(k, _)| *k == BucketKind::New)
        .flat_map(|(_, b)| b)
        .collect();
    assert!(n.book.size() > 500, "{}", n.book.size());
    assert!(
        used.len() <= 32,
        "one source /16 reached {} new buckets",
        used.len()
    );
}

#[test]
fn a_self_advert_from_another_ip_is_unverified_and_one_from_the_socket_ip_is_not() {
    let mut n = Node::new(CoreConfig::default());
    let sock = spread(1);
    let claimed = spread(2);
    let p = inbound(sock, NetAddress::new(sock.id(), claimed.ip(), 26656));
    n.add(p);
    let stored = NetAddress::new(sock.id(), claimed.ip(), 26656);
    assert!(n.book.has_address(&stored));
    assert!(
        n.book.is_unverified(&sock.id()),
        "a claimed IP is not served"
    );
    let sock2 = spread(3);
    n.add(inbound(sock2, sock2));
    assert!(n.book.has_address(&sock2) && !n.book.is_unverified(&sock2.id()));
    // Reaching the claimed address ourselves verifies it.
    n.core.peer_removed(&sock.id());
    n.add(outbound(stored));
    assert!(!n.book.is_unverified(&sock.id()) && n.book.is_good(&stored));
}

#[test]
fn at_most_64_self_adverts_of_inbound_peers_are_in_the_book_at_once() {
    let mut n = Node::new(CoreConfig::default());
    for k in 0..200 {
        let a = spread(k + 1);
        n.add(inbound(a, a));
    }
    assert_eq!(n.book.size(), MAX_INBOUND_ADVERTS);
    // Once one of them leaves the book, the next one gets in.
    let gone = spread(1);
    n.book.remove_address(&gone);
    let a = spread(5000);
    n.add(inbound(a, a));
    assert!(n.book.has_address(&a));
    let b = spread(5001);
    n.add(inbound(b, b));
    assert!(!n.book.has_address(&b));
    // A seed learns from everyone who dials it.
    let mut cfg = CoreConfig::default();
    cfg.seed_mode = true;
    let mut s = Node::new(cfg);
    for k in 0..200 {
        let a = spread(k + 1);
        s.add(inbound(a, a));
    }
    assert_eq!(s.book.size(), 200);
}

#[test]
fn at_most_250_addresses_of_a_message_are_taken_without_a_ban() {
    let mut n = Node::new(CoreConfig::default());
    let p = outbound(spread(1));
    n.add(p);
    let list: Vec<NetAddress> = (0..1000).map(|i| spread(i + 10)).collect();
    let acts = n.recv(&p, &PexMessage::Addrs(list));
    assert!(!stopped(&acts), "{acts:?}");
    assert_eq!(n.book.size(), MAX_ADDRS_PER_MESSAGE);
    assert!(!n.book.is_banned(&p.socket_addr, n.wall()));
}

/// Advances until the core asks `p` for addresses (at most `limit`).
fn until_asked(n: &mut Node, p: &PeerInfo, limit: Duration) -> bool {
    let step = Duration::from_secs(5);
    let mut waited = Duration::ZERO;
    while waited < limit {
        let acts = n.advance(step);
        waited += step;
        let asked = acts.iter().any(
            |a| matches!(a, Action::Send { peer, message: PexMessage::Request } if *peer == p.id),
        );
        if asked {
            return true;
        }
    }
    false
}

#[test]
fn a_peer_brings_at_most_its_tokens_the_excess_is_dropped() {
    let mut cfg = CoreConfig::default();
    cfg.max_outbound = 1;
    cfg.max_refresh_interval = 1; // ask every run
    let mut n = Node::new(cfg);
    let p = outbound(spread(1));
    n.add(p);
    let known: Vec<NetAddress> = (0..250).map(|i| spread(i + 10)).collect();
    n.recv(&p, &PexMessage::Addrs(known.clone()));
    assert_eq!(n.book.size(), 250);
    // Three more answers of the same 250: nothing new, but every address takes a token.
    let burst_answers = ADDR_TOKEN_BURST as usize / MAX_ADDRS_PER_MESSAGE;
    for _ in 1..burst_answers {
        assert!(until_asked(&mut n, &p, Duration::from_secs(120)));
        let acts = n.recv(&p, &PexMessage::Addrs(known.clone()));
        assert!(!stopped(&acts));
    }
    // Out of tokens: of 250 fresh addresses only what refilled since (0.1/s) gets in.
    assert!(until_asked(&mut n, &p, Duration::from_secs(120)));
    let fresh: Vec<NetAddress> = (0..250).map(|i| spread(i + 1000)).collect();
    let acts = n.recv(&p, &PexMessage::Addrs(fresh));
    assert!(!stopped(&acts), "excess is dropped, not a ban");
    let added = n.book.size() - 250;
    assert!((1..=30).contains(&added), "added {added}");
}

#[test]
fn anchors_are_the_longest_connected_outbound_peers_and_are_dialed_first() {
    let mut n = Node::new(CoreConfig::default());
    let peers: Vec<NetAddress> = (1..=5).map(spread).collect();
    for a in &peers {
        n.add(outbound(*a));
        n.now += Duration::from_secs(60);
    }
    let anchors = n.core.anchors();
    assert_eq!(
        anchors,
        vec![peers[0], peers[1]],
        "the two connected longest"
    );
    // Next start: anchors are dialed at once, before any pick from the (full) book.
    let mut cfg = CoreConfig::default();
    cfg.anchors = anchors.clone();
    let mut m = Node::new_unstarted(cfg);
    let w = m.wall();
    for i in 100..400 {
        m.book.add_address(spread(i), spread(5000), w).unwrap();
    }
    let acts = m.start();
    assert_eq!(dials(&acts), anchors);
    // They count as dials in flight: the first ensure-peers fills only the rest.
    let more = dials(&m.advance(Duration::from_secs(30)));
    assert_eq!(more.len(), 8, "{more:?}");
    assert!(more.iter().all(|a| !anchors.contains(a)));
}

impl Node {
    fn new_unstarted(cfg: CoreConfig) -> Self {
        let mut cfg = cfg;
        cfg.our_address = Some(v4(999_999, [9, 9, 9, 9]));
        Self {
            core: PexCore::new(cfg, ChaCha8Rng::seed_from_u64(13)),
            book: AddrBook::new(Config::with_strict(true), ChaCha8Rng::seed_from_u64(14)),
            t0: Instant::now(),
            w0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            now: Duration::ZERO,
        }
    }
}

#[test]
fn only_outbound_peers_are_asked_for_addresses_once_there_are_any() {
    let mut n = Node::new(CoreConfig::default());
    // Thirty inbound peers and one outbound peer: every request goes to the outbound one.
    for k in 0..30 {
        let a = spread(k + 100);
        n.add(inbound(a, a));
    }
    let out = spread(1);
    let first = n.add(outbound(out));
    let mut asked = HashSet::new();
    for a in first {
        if let Action::Send {
            peer,
            message: PexMessage::Request,
        } = a
        {
            asked.insert(peer);
            n.recv(&outbound(out), &PexMessage::Addrs(Vec::new()));
        }
    }
    for _ in 0..40 {
        for a in n.advance(Duration::from_secs(30)) {
            if let Action::Send {
                peer,
                message: PexMessage::Request,
            } = a
            {
                asked.insert(peer);
                if peer == out.id() {
                    // Answer with nothing new, so the core keeps asking.
                    n.recv(&outbound(out), &PexMessage::Addrs(Vec::new()));
                }
            }
        }
    }
    assert_eq!(asked, HashSet::from([out.id()]), "{asked:?}");
}
