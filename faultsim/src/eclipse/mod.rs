//! The eclipse simulation: one victim under attack for 24 simulated hours, run with our
//! policy and with Go v0.38.25's rules, on the same network.
//!
//! Only the victim runs policy code. With [`Policy::Ours`] that is the real thing: the
//! sans-IO [`mukan_pex::PexCore`] and a real [`mukan_addrbook::AddrBook`] (saved and loaded
//! through `addrbook.json`'s bytes at a restart), behind the switch's dial and admission
//! rules (`World::admit_inbound`, `World::dial_rule`). With [`Policy::Go`] it is
//! [`go_rules::GoVictim`], Go's address book and PEX reactor rewritten rule by rule, each
//! with its line in the Go source. Everything else is a model, so a seed of 24 simulated
//! hours takes seconds:
//!
//! - **1,000 honest nodes** across 300 /16s, each online for exponential sessions (mean
//!   6 h) and offline for exponential gaps (mean 2 h), 75% online at any time. They accept
//!   every connection while online, answer a PEX request with 230 random honest addresses
//!   (what Go's `GetSelection` returns from a 1,000-address book; offline nodes included,
//!   as books are), and now and then connect to the victim (one attempt a minute on
//!   average, staying an hour on average).
//! - **Two honest seeds**, always online: they answer with 250 honest addresses and
//!   disconnect.
//! - **The attacker** ([`Scenario`]): keeps 50 inbound sybils on the victim (each with a
//!   fresh key and its own IP, reconnecting at once when dropped and every 30 minutes on
//!   average to advertise again), accepts every connection to any of its addresses,
//!   answers every PEX request with 250 fresh addresses of its own (the most a message may
//!   carry), and never sends what was not asked for (that is a ban under both policies).
//!
//! Connections: a dial to a live address completes after 150 ms, to a dead one fails
//! after the 3 s dial timeout; an answer arrives 100 ms after the request. Outbound slots
//! are 10, inbound 40.

pub mod go_rules;
mod ours;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mukan_reactor_api::{Direction, NetAddress, NodeId};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The port every modelled node listens on.
const PORT: u16 = 26_656;
/// Honest nodes.
pub const HONEST: usize = 1_000;
/// /16 groups of the honest nodes.
pub const HONEST_GROUPS: usize = 300;
/// The victim's outbound slots.
pub const OUTBOUND: usize = 10;
/// The victim's inbound slots.
pub const INBOUND: usize = 40;
/// Sybils the attacker keeps connected inbound.
pub const SYBILS: usize = 50;
/// Simulated length of a run.
pub const RUN: Duration = Duration::from_secs(24 * 3600);
/// When scenario (c) restarts the victim.
pub const RESTART_AT: Duration = Duration::from_secs(12 * 3600);
/// After each (re)start, the victim has this long to make its first connections before
/// "0 honest outbound peers" counts.
pub const GRACE: Duration = Duration::from_secs(60);
/// How often the outbound peers are sampled.
const SAMPLE: Duration = Duration::from_secs(10);
const DIAL_OK: Duration = Duration::from_millis(150);
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
const ANSWER: Duration = Duration::from_millis(100);
/// Addresses in an honest answer (Go `GetSelection` of a 1,000-address book: 23%).
const HONEST_ANSWER: usize = 230;
/// Addresses in an attacker's answer (the most a message carries: Go `maxGetSelection`).
const ATTACKER_ANSWER: usize = 250;

/// Which policy the victim runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// `mukan-pex` + `mukan-addrbook`, as shipped.
    Ours,
    /// Go v0.38.25's rules ([`go_rules`]).
    Go,
}

/// The attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// (a) The attacker holds one /16 (every address in it answers), keeps 50 inbound
    /// sybils from it, and claims in each sybil's `NodeInfo` a listen address in some other
    /// /16 (where nothing answers), which is what spreads Go's buckets.
    OneGroup,
    /// (b) A botnet of 5,000 live IPs over 1,000 /16s (5 per /16); sybils advertise their
    /// real address.
    Botnet,
    /// (c) As (b), and the victim restarts after 12 hours (book saved and loaded; anchors
    /// with our policy).
    BotnetRestart,
}

impl Scenario {
    /// All three, in the table's order.
    pub const ALL: [Self; 3] = [Self::OneGroup, Self::Botnet, Self::BotnetRestart];

    /// The table's label.
    pub fn label(self) -> &'static str {
        match self {
            Self::OneGroup => "(a) one /16, 50 sybils",
            Self::Botnet => "(b) botnet 5,000 IPs / 1,000 /16s",
            Self::BotnetRestart => "(c) botnet + restart at 12 h",
        }
    }
}

/// What one seed gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Outbound peers of the attacker at the end (of [`OUTBOUND`] slots).
    pub attacker_outbound: usize,
    /// Honest outbound peers at the end.
    pub honest_outbound: usize,
    /// Whether the victim had 0 honest outbound peers at some sample (outside [`GRACE`]
    /// after a start).
    pub ever_zero_honest: bool,
    /// Total time with 0 honest outbound peers (samples × 10 s).
    pub zero_honest_for: Duration,
    /// The victim's book at the end: (new entries, of which the attacker's; old entries, of
    /// which the attacker's).
    pub book: (usize, usize, usize, usize),
    /// Trace hash (replay check).
    pub hash: u64,
}

/// A connected peer as the victim sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerMeta {
    pub(crate) id: NodeId,
    pub(crate) direction: Direction,
    /// The dialed address (outbound) or the remote IP and an ephemeral port (inbound).
    pub(crate) socket: NetAddress,
    /// The listen address of its `NodeInfo`.
    pub(crate) self_addr: NetAddress,
}

/// What the victim asks of the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// Dial and add as an outbound peer.
    Dial(NetAddress),
    /// A feeler: handshake only.
    Probe(NetAddress),
    /// Send a PEX request to the peer.
    Request(NodeId),
    /// Disconnect the peer.
    Disconnect(NodeId),
}

/// The victim's policy, driven by [`World`] (times are since the start of the run).
pub(crate) trait Victim {
    fn start(&mut self, at: Duration) -> Vec<Cmd>;
    fn next_deadline(&self) -> Option<Duration>;
    fn tick(&mut self, at: Duration) -> Vec<Cmd>;
    /// A peer is connected (outbound: the dial of `peer.socket` succeeded).
    fn connected(&mut self, peer: PeerMeta, at: Duration) -> Vec<Cmd>;
    /// A dial failed; `already` when the switch refused it as a duplicate.
    fn dial_failed(&mut self, addr: NetAddress, already: bool, at: Duration) -> Vec<Cmd>;
    fn disconnected(&mut self, id: NodeId, at: Duration);
    /// The answer to our request.
    fn addrs(&mut self, from: &PeerMeta, addrs: Vec<NetAddress>, at: Duration) -> Vec<Cmd>;
    fn probed(&mut self, addr: NetAddress, reached: bool, at: Duration) -> Vec<Cmd>;
    /// A clean stop and a start from what was saved (the connections are gone).
    fn restart(&mut self, at: Duration);
    /// Every stored ID, with whether it is in an old bucket.
    fn entries(&self) -> Vec<(NodeId, bool)>;
}

/// Who an address belongs to, from the first byte of its ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Honest(usize),
    Seed,
    Attacker,
    Unknown,
}

const HONEST_MARK: u8 = 0x11;
const SEED_MARK: u8 = 0x5e;
const ATTACKER_MARK: u8 = 0xa7;

fn make_id(mark: u8, n: u64) -> NodeId {
    let mut b = [0u8; 20];
    b[0] = mark;
    b[1..9].copy_from_slice(&n.to_be_bytes());
    b[19] = 0x01;
    NodeId(b)
}

fn owner(id: &NodeId) -> Owner {
    let mut n = [0u8; 8];
    n.copy_from_slice(&id.0[1..9]);
    let n = u64::from_be_bytes(n);
    match id.0[0] {
        HONEST_MARK => Owner::Honest(n as usize),
        SEED_MARK => Owner::Seed,
        ATTACKER_MARK => Owner::Attacker,
        _ => Owner::Unknown,
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// Honest node `i`: /16 number `i % 300` (`20.x` and `21.x`), host by `i / 300`.
fn honest_addr(i: usize) -> NetAddress {
    let g = i % HONEST_GROUPS;
    let ip = v4(
        20 + (g / 250) as u8,
        (g % 250) as u8,
        (i / HONEST_GROUPS) as u8 + 1,
        7,
    );
    NetAddress::new(make_id(HONEST_MARK, i as u64), ip, PORT)
}

fn seed_addr(i: usize) -> NetAddress {
    NetAddress::new(
        make_id(SEED_MARK, i as u64),
        v4(30, i as u8 + 1, 0, 1),
        PORT,
    )
}

/// Botnet IP `k` of 5,000: /16 number `k / 5` (`60.x`–`63.x`), host `k % 5`.
fn botnet_ip(k: usize) -> IpAddr {
    let g = k / 5;
    v4(60 + (g / 250) as u8, (g % 250) as u8, (k % 5) as u8 + 1, 9)
}

/// The attacker's /16 in scenario (a).
const ATTACKER_NET: [u8; 2] = [45, 77];

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Tick {
        generation: u64,
    },
    DialDone {
        generation: u64,
        addr: NetAddress,
        probe: bool,
        ok: bool,
    },
    Answer {
        generation: u64,
        from: NodeId,
    },
    HonestToggle {
        i: usize,
    },
    Sybil {
        slot: usize,
    },
    SybilCycle {
        slot: usize,
        id: NodeId,
    },
    HonestArrival,
    InboundLeave {
        id: NodeId,
    },
    Sample,
    Restart,
}

#[derive(Clone, Copy, Debug)]
struct Conn {
    meta: PeerMeta,
    owner: Owner,
}

/// The network, the attacker and the victim.
pub(crate) struct World {
    scenario: Scenario,
    rng: ChaCha8Rng,
    victim: Box<dyn Victim>,
    generation: u64,
    started_at: Duration,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<(Duration, u64, Ev)>>,
    scheduled_tick: Option<Duration>,
    online: Vec<bool>,
    botnet: Vec<IpAddr>,
    botnet_set: HashSet<IpAddr>,
    next_attacker_id: u64,
    conns: BTreeMap<NodeId, Conn>,
    dialing: BTreeSet<NodeId>,
    requested: BTreeSet<NodeId>,
    sybil_slots: Vec<Option<NodeId>>,
    zero_samples: u64,
    trace: u64,
}

impl World {
    fn new(scenario: Scenario, policy: Policy, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let seeds = vec![seed_addr(0), seed_addr(1)];
        let victim_addr = NetAddress::new(make_id(0x77, 0), v4(99, 99, 0, 1), PORT);
        let vseed = rng.r#gen::<u64>();
        let victim: Box<dyn Victim> = match policy {
            Policy::Ours => Box::new(ours::OurVictim::new(victim_addr, seeds, vseed)),
            Policy::Go => Box::new(go_rules::GoVictim::new(victim_addr, seeds, vseed)),
        };
        let online = (0..HONEST).map(|_| rng.gen_bool(0.75)).collect();
        let botnet: Vec<IpAddr> = match scenario {
            Scenario::OneGroup => Vec::new(),
            Scenario::Botnet | Scenario::BotnetRestart => (0..5_000).map(botnet_ip).collect(),
        };
        Self {
            scenario,
            rng,
            victim,
            generation: 1,
            started_at: Duration::ZERO,
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            scheduled_tick: None,
            online,
            botnet_set: botnet.iter().copied().collect(),
            botnet,
            next_attacker_id: 0,
            conns: BTreeMap::new(),
            dialing: BTreeSet::new(),
            requested: BTreeSet::new(),
            sybil_slots: vec![None; SYBILS],
            zero_samples: 0,
            trace: 0xcbf2_9ce4_8422_2325,
        }
    }

    fn push(&mut self, after: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + after, self.seq, ev)));
    }

    fn exp(&mut self, mean: Duration) -> Duration {
        let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        mean.mul_f64(-u.ln())
    }

    fn note(&mut self, what: u64) {
        for b in self
            .now
            .as_millis()
            .to_le_bytes()
            .iter()
            .chain(&what.to_le_bytes())
        {
            self.trace ^= u64::from(*b);
            self.trace = self.trace.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn fresh_attacker_id(&mut self) -> NodeId {
        self.next_attacker_id += 1;
        make_id(ATTACKER_MARK, self.next_attacker_id)
    }

    /// An IP the attacker answers on.
    fn attacker_ip(&mut self) -> IpAddr {
        match self.scenario {
            Scenario::OneGroup => v4(
                ATTACKER_NET[0],
                ATTACKER_NET[1],
                self.rng.r#gen(),
                self.rng.gen_range(1..255),
            ),
            Scenario::Botnet | Scenario::BotnetRestart => {
                self.botnet[self.rng.gen_range(0..self.botnet.len())]
            }
        }
    }

    fn attacker_live(&self, ip: IpAddr) -> bool {
        match (self.scenario, ip) {
            (Scenario::OneGroup, IpAddr::V4(v4)) => v4.octets()[..2] == ATTACKER_NET,
            (Scenario::OneGroup, IpAddr::V6(_)) => false,
            _ => self.botnet_set.contains(&ip),
        }
    }

    /// Whether a connection to `addr` completes (someone answers with that ID there).
    fn live(&self, addr: &NetAddress) -> bool {
        match owner(&addr.id()) {
            Owner::Honest(i) => i < HONEST && self.online[i] && honest_addr(i) == *addr,
            Owner::Seed => seed_addr(0) == *addr || seed_addr(1) == *addr,
            Owner::Attacker => self.attacker_live(addr.ip()),
            Owner::Unknown => false,
        }
    }

    /// The switch's inbound admission: a free inbound slot, not already connected (by ID,
    /// or by IP: `allow_duplicate_ip = false`).
    fn admit_inbound(&self, id: &NodeId, ip: IpAddr) -> bool {
        let inbound = (self.conns.values())
            .filter(|c| c.meta.direction == Direction::Inbound)
            .count();
        inbound < INBOUND && !self.conns.contains_key(id) && !self.ip_connected(ip)
    }

    fn ip_connected(&self, ip: IpAddr) -> bool {
        self.conns.values().any(|c| c.meta.socket.ip() == ip)
    }

    /// The switch's dial rule (`is_dialing_or_existing_address`): refused as a duplicate when
    /// the ID is connected or being dialed, or the IP is connected.
    fn dial_rule(&self, addr: &NetAddress) -> bool {
        !(self.conns.contains_key(&addr.id())
            || self.dialing.contains(&addr.id())
            || self.ip_connected(addr.ip()))
    }

    fn apply(&mut self, cmds: Vec<Cmd>) {
        for c in cmds {
            match c {
                Cmd::Dial(addr) => {
                    if !self.dial_rule(&addr) {
                        let at = self.now;
                        let more = self.victim.dial_failed(addr, true, at);
                        self.apply(more);
                        continue;
                    }
                    self.dialing.insert(addr.id());
                    let ok = self.live(&addr);
                    let after = if ok { DIAL_OK } else { DIAL_TIMEOUT };
                    let generation = self.generation;
                    self.push(
                        after,
                        Ev::DialDone {
                            generation,
                            addr,
                            probe: false,
                            ok,
                        },
                    );
                }
                Cmd::Probe(addr) => {
                    let ok = self.live(&addr);
                    let after = if ok { DIAL_OK } else { DIAL_TIMEOUT };
                    let generation = self.generation;
                    self.push(
                        after,
                        Ev::DialDone {
                            generation,
                            addr,
                            probe: true,
                            ok,
                        },
                    );
                }
                Cmd::Request(id) => {
                    if self.conns.contains_key(&id) && self.requested.insert(id) {
                        let generation = self.generation;
                        self.push(
                            ANSWER,
                            Ev::Answer {
                                generation,
                                from: id,
                            },
                        );
                    }
                }
                Cmd::Disconnect(id) => self.drop_conn(id),
            }
        }
        self.schedule_tick();
    }

    fn schedule_tick(&mut self) {
        let Some(at) = self.victim.next_deadline() else {
            return;
        };
        let at = at.max(self.now);
        if self
            .scheduled_tick
            .is_some_and(|t| t <= at && t >= self.now)
        {
            return;
        }
        self.scheduled_tick = Some(at);
        self.seq += 1;
        let generation = self.generation;
        self.queue
            .push(Reverse((at, self.seq, Ev::Tick { generation })));
    }

    /// Removes a connection and tells the victim (the switch calls `remove_peer` whoever
    /// closed it); a sybil comes back with a fresh key.
    fn drop_conn(&mut self, id: NodeId) {
        if self.conns.remove(&id).is_none() {
            return;
        }
        self.requested.remove(&id);
        let at = self.now;
        self.victim.disconnected(id, at);
        if let Some(slot) = self.sybil_slots.iter().position(|s| *s == Some(id)) {
            self.sybil_slots[slot] = None;
            // Back at once with a fresh key.
            self.push(Duration::from_secs(1), Ev::Sybil { slot });
        }
    }

    fn connect(&mut self, meta: PeerMeta) {
        let owner = owner(&meta.id);
        self.conns.insert(meta.id, Conn { meta, owner });
        let at = self.now;
        let cmds = self.victim.connected(meta, at);
        self.apply(cmds);
    }

    fn honest_answer(&mut self) -> Vec<NetAddress> {
        let mut all: Vec<usize> = (0..HONEST).collect();
        let (chosen, _) = all.partial_shuffle(&mut self.rng, HONEST_ANSWER);
        chosen.iter().map(|&i| honest_addr(i)).collect()
    }

    fn attacker_answer(&mut self) -> Vec<NetAddress> {
        (0..ATTACKER_ANSWER)
            .map(|_| {
                let id = self.fresh_attacker_id();
                let ip = self.attacker_ip();
                NetAddress::new(id, ip, PORT)
            })
            .collect()
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick { generation } => {
                if generation != self.generation {
                    return;
                }
                if self.scheduled_tick.is_some_and(|t| t <= self.now) {
                    self.scheduled_tick = None;
                }
                let at = self.now;
                let cmds = self.victim.tick(at);
                self.apply(cmds);
            }
            Ev::DialDone {
                generation,
                addr,
                probe,
                ok,
            } => {
                if generation != self.generation {
                    return;
                }
                let at = self.now;
                if probe {
                    let cmds = self.victim.probed(addr, ok && self.live(&addr), at);
                    self.apply(cmds);
                    return;
                }
                self.dialing.remove(&addr.id());
                // Still live, and nothing took the ID or IP meanwhile.
                let ok = ok
                    && self.live(&addr)
                    && !self.conns.contains_key(&addr.id())
                    && !self.ip_connected(addr.ip());
                if ok {
                    self.note(1);
                    let meta = PeerMeta {
                        id: addr.id(),
                        direction: Direction::Outbound,
                        socket: addr,
                        // A node we dialed reports the address we dialed.
                        self_addr: addr,
                    };
                    self.connect(meta);
                } else {
                    self.note(2);
                    let cmds = self.victim.dial_failed(addr, false, at);
                    self.apply(cmds);
                }
            }
            Ev::Answer { generation, from } => {
                if generation != self.generation || !self.requested.remove(&from) {
                    return;
                }
                let Some(c) = self.conns.get(&from).copied() else {
                    return;
                };
                let addrs = match c.owner {
                    Owner::Honest(_) => self.honest_answer(),
                    Owner::Seed => {
                        let mut a = self.honest_answer();
                        a.extend(self.honest_answer().into_iter().take(20));
                        a.truncate(250);
                        a
                    }
                    Owner::Attacker => self.attacker_answer(),
                    Owner::Unknown => Vec::new(),
                };
                let at = self.now;
                let cmds = self.victim.addrs(&c.meta, addrs, at);
                self.apply(cmds);
                if c.owner == Owner::Seed {
                    // A seed answers once, then hangs up.
                    self.drop_conn(from);
                    self.schedule_tick();
                }
            }
            Ev::HonestToggle { i } => {
                self.online[i] = !self.online[i];
                let mean = if self.online[i] { 6 * 3600 } else { 2 * 3600 };
                let next = self.exp(Duration::from_secs(mean));
                self.push(next, Ev::HonestToggle { i });
                if !self.online[i] {
                    let id = honest_addr(i).id();
                    if self.conns.contains_key(&id) {
                        self.note(3);
                        self.drop_conn(id);
                        self.schedule_tick();
                    }
                }
            }
            Ev::Sybil { slot } => {
                if self.sybil_slots[slot].is_some() {
                    return;
                }
                let id = self.fresh_attacker_id();
                let ip = self.attacker_ip();
                if !self.admit_inbound(&id, ip) {
                    self.push(Duration::from_secs(10), Ev::Sybil { slot });
                    return;
                }
                let self_addr = match self.scenario {
                    // A listen address in some other /16, where nothing answers.
                    Scenario::OneGroup => NetAddress::new(
                        id,
                        v4(
                            self.rng.gen_range(100..200),
                            self.rng.r#gen(),
                            self.rng.r#gen(),
                            5,
                        ),
                        PORT,
                    ),
                    Scenario::Botnet | Scenario::BotnetRestart => NetAddress::new(id, ip, PORT),
                };
                self.sybil_slots[slot] = Some(id);
                let meta = PeerMeta {
                    id,
                    direction: Direction::Inbound,
                    socket: NetAddress::new(id, ip, 40_000 + slot as u16),
                    self_addr,
                };
                let life = self.exp(Duration::from_secs(1800));
                self.push(life, Ev::SybilCycle { slot, id });
                self.connect(meta);
            }
            Ev::SybilCycle { slot, id } => {
                if self.sybil_slots[slot] == Some(id) {
                    self.drop_conn(id);
                    self.schedule_tick();
                }
            }
            Ev::HonestArrival => {
                let next = self.exp(Duration::from_secs(60));
                self.push(next, Ev::HonestArrival);
                let i = self.rng.gen_range(0..HONEST);
                let a = honest_addr(i);
                if !self.online[i] || !self.admit_inbound(&a.id(), a.ip()) {
                    return;
                }
                let meta = PeerMeta {
                    id: a.id(),
                    direction: Direction::Inbound,
                    socket: NetAddress::new(a.id(), a.ip(), 50_000),
                    self_addr: a,
                };
                let life = self.exp(Duration::from_secs(3600));
                self.push(life, Ev::InboundLeave { id: a.id() });
                self.connect(meta);
            }
            Ev::InboundLeave { id } => {
                if self
                    .conns
                    .get(&id)
                    .is_some_and(|c| c.meta.direction == Direction::Inbound)
                {
                    self.drop_conn(id);
                    self.schedule_tick();
                }
            }
            Ev::Sample => {
                self.push(SAMPLE, Ev::Sample);
                if self.now.saturating_sub(self.started_at) < GRACE {
                    return;
                }
                if self.honest_outbound() == 0 {
                    self.zero_samples += 1;
                }
            }
            Ev::Restart => {
                self.generation += 1;
                let ids: Vec<NodeId> = self.conns.keys().copied().collect();
                let at = self.now;
                self.victim.restart(at);
                // Every connection of the old process is gone; the victim is not told.
                for id in ids {
                    self.conns.remove(&id);
                    if let Some(slot) = self.sybil_slots.iter().position(|s| *s == Some(id)) {
                        self.sybil_slots[slot] = None;
                        self.push(Duration::from_secs(1), Ev::Sybil { slot });
                    }
                }
                self.dialing.clear();
                self.requested.clear();
                self.scheduled_tick = None;
                self.started_at = self.now;
                let cmds = self.victim.start(at);
                self.apply(cmds);
            }
        }
    }

    fn outbound_by(&self, pred: impl Fn(Owner) -> bool) -> usize {
        (self.conns.values())
            .filter(|c| c.meta.direction == Direction::Outbound && pred(c.owner))
            .count()
    }

    fn honest_outbound(&self) -> usize {
        self.outbound_by(|o| matches!(o, Owner::Honest(_) | Owner::Seed))
    }

    fn run(mut self) -> Outcome {
        for i in 0..HONEST {
            let mean = if self.online[i] { 6 * 3600 } else { 2 * 3600 };
            let next = self.exp(Duration::from_secs(mean));
            self.push(next, Ev::HonestToggle { i });
        }
        for slot in 0..SYBILS {
            let at = Duration::from_millis(self.rng.gen_range(0..5_000));
            self.push(at, Ev::Sybil { slot });
        }
        self.push(Duration::from_secs(30), Ev::HonestArrival);
        self.push(SAMPLE, Ev::Sample);
        if self.scenario == Scenario::BotnetRestart {
            self.push(RESTART_AT, Ev::Restart);
        }
        let cmds = self.victim.start(Duration::ZERO);
        self.apply(cmds);
        while let Some(Reverse((at, _, ev))) = self.queue.pop() {
            if at > RUN {
                break;
            }
            self.now = at;
            self.handle(ev);
        }
        let entries = self.victim.entries();
        let count = |old: bool, att: bool| {
            entries
                .iter()
                .filter(|(id, o)| *o == old && (!att || owner(id) == Owner::Attacker))
                .count()
        };
        let book = (
            count(false, false),
            count(false, true),
            count(true, false),
            count(true, true),
        );
        Outcome {
            attacker_outbound: self.outbound_by(|o| o == Owner::Attacker),
            honest_outbound: self.honest_outbound(),
            ever_zero_honest: self.zero_samples > 0,
            zero_honest_for: SAMPLE * u32::try_from(self.zero_samples).unwrap_or(u32::MAX),
            book,
            hash: self.trace,
        }
    }
}

/// Runs one seed of `scenario` with `policy`.
pub fn run(scenario: Scenario, policy: Policy, seed: u64) -> Outcome {
    World::new(scenario, policy, seed).run()
}

/// The summary of many seeds of one scenario and policy (one row of the table).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Seeds run.
    pub seeds: usize,
    /// Median of the attacker's outbound peers at the end (of 10).
    pub median_attacker: f64,
    /// The worst seed's attacker outbound peers at the end.
    pub worst_attacker: usize,
    /// Seeds in which the victim had 0 honest outbound peers at some sample.
    pub seeds_zero_honest: usize,
    /// Mean at the end: attacker's share of the new entries, old entries, attacker's share
    /// of the old entries.
    pub mean_book: (f64, f64, f64),
}

impl Row {
    /// Summarizes outcomes.
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut a: Vec<usize> = outcomes.iter().map(|o| o.attacker_outbound).collect();
        a.sort_unstable();
        let n = a.len();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => a[n / 2] as f64,
            _ => (a[n / 2 - 1] + a[n / 2]) as f64 / 2.0,
        };
        let nf = n.max(1) as f64;
        Self {
            seeds: n,
            median_attacker: median,
            worst_attacker: a.last().copied().unwrap_or(0),
            seeds_zero_honest: outcomes.iter().filter(|o| o.ever_zero_honest).count(),
            mean_book: (
                outcomes
                    .iter()
                    .map(|o| o.book.1 as f64 / o.book.0.max(1) as f64)
                    .sum::<f64>()
                    / nf,
                outcomes.iter().map(|o| o.book.2 as f64).sum::<f64>() / nf,
                outcomes
                    .iter()
                    .map(|o| o.book.3 as f64 / o.book.2.max(1) as f64)
                    .sum::<f64>()
                    / nf,
            ),
        }
    }
}
