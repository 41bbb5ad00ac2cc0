#![allow(dead_code, unreachable_pub, missing_docs)]
//! (Test and bench harness, kept out of the library so that `mukan-pex` depends on no
//! concrete address book.)
//!
//! A deterministic, single-threaded network simulation over [`PexCore`] and real
//! [`AddrBook`]s, on a virtual clock: the harness of the simulation tests and the benchmark.
//!
//! Connections are instantaneous records; messages arrive after a fixed latency and only on
//! the connection they were sent on; dials succeed when the target is online, has inbound
//! room and the dialed address is its real one. Stops are delivered after the same latency
//! (so a graceful stop arrives after what was sent before it).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use mukan_addrbook::{AddrBook, Config as BookConfig};
use mukan_reactor_api::{AddressBook, Direction, NetAddress, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use mukan_pex::core::{Action, CoreConfig, DialOutcome, PeerInfo, PexCore};
use mukan_pex::msg::PexMessage;

/// How a simulated node behaves beyond the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Runs the policy only.
    Honest,
    /// After 90 s, also sends a `PexRequest` to every peer every second (and ignores
    /// answers).
    Flooder,
    /// After 90 s, also sends unsolicited `PexAddrs` to every peer every 5 s.
    Unsolicited,
}

/// One simulated node.
pub struct SimNode {
    /// Its policy.
    pub core: PexCore,
    /// Its address book.
    pub book: AddrBook,
    /// Its address.
    pub addr: NetAddress,
    /// Whether it is running.
    pub online: bool,
    /// Its configuration (to restart it).
    pub config: CoreConfig,
    /// Extra behaviour.
    pub behaviour: Behaviour,
    /// Connected peers (node index → our direction).
    pub peers: BTreeMap<usize, Direction>,
    /// Peers that sent this node something that got them stopped, with the time.
    pub stopped_for_misbehaviour: Vec<usize>,
    /// Book saves requested.
    pub saves: usize,
    scheduled_tick: Option<Duration>,
    generation: u64,
    misbehaving: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Tick {
        node: usize,
        generation: u64,
    },
    Dialed {
        from: usize,
        addr: NetAddress,
    },
    Probed {
        from: usize,
        addr: NetAddress,
    },
    Deliver {
        from: usize,
        to: usize,
        conn: u64,
        bytes: Vec<u8>,
    },
    Close {
        a: usize,
        b: usize,
        conn: u64,
    },
    Misbehave {
        node: usize,
    },
}

/// Settings of a simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// RNG seed.
    pub seed: u64,
    /// One-way message latency.
    pub latency: Duration,
    /// Inbound limit of every non-seed node.
    pub max_inbound: usize,
    /// Inbound limit of seed nodes.
    pub seed_max_inbound: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            latency: Duration::from_millis(50),
            max_inbound: 40,
            seed_max_inbound: 1000,
        }
    }
}

/// The simulation.
pub struct Sim {
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    cfg: SimConfig,
    by_id: HashMap<NodeId, usize>,
    conns: HashMap<(usize, usize), u64>,
    next_conn: u64,
    queue: BinaryHeap<Reverse<(Duration, u64, Event)>>,
    seq: u64,
    now: Duration,
    t0: Instant,
    wall0: SystemTime,
    rng: ChaCha8Rng,
    /// Messages delivered so far.
    pub delivered: u64,
    /// Events handled so far.
    pub events: u64,
}

/// The address of node `i`: a distinct routable IPv4 address, spread over many /16 groups.
pub fn node_addr(i: usize) -> NetAddress {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    id[19] = 0x5a;
    let a = 11 + (i % 89) as u8;
    let b = ((i / 89) % 250) as u8;
    let c = ((i / (89 * 250)) % 250) as u8 + 1;
    NetAddress::new(NodeId(id), IpAddr::V4(Ipv4Addr::new(a, b, c, 7)), 26656)
}

impl Sim {
    /// An empty simulation.
    pub fn new(cfg: SimConfig) -> Self {
        Self {
            nodes: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            by_id: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            queue: BinaryHeap::new(),
            seq: 0,
            now: Duration::ZERO,
            t0: Instant::now(),
            wall0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            delivered: 0,
            events: 0,
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    /// The monotonic "now" of the simulation.
    pub fn instant(&self) -> Instant {
        self.t0 + self.now
    }

    /// The wall-clock "now" of the simulation.
    pub fn wall(&self) -> SystemTime {
        self.wall0 + self.now
    }

    /// Adds node number `nodes.len()` (address [`node_addr`]) with `config` (its
    /// `our_address` is set here), started at once.
    pub fn add_node(&mut self, mut config: CoreConfig, behaviour: Behaviour) -> usize {
        let i = self.nodes.len();
        let addr = node_addr(i);
        config.our_address = Some(addr);
        let book_seed = self.rng.r#gen::<u64>();
        let core_seed = self.rng.r#gen::<u64>();
        let book = AddrBook::new(
            BookConfig::with_strict(true),
            ChaCha8Rng::seed_from_u64(book_seed),
        );
        let core = PexCore::new(config.clone(), ChaCha8Rng::seed_from_u64(core_seed));
        self.by_id.insert(addr.id(), i);
        self.nodes.push(SimNode {
            core,
            book,
            addr,
            online: false,
            config,
            behaviour,
            peers: BTreeMap::new(),
            stopped_for_misbehaviour: Vec::new(),
            saves: 0,
            scheduled_tick: None,
            generation: 0,
            misbehaving: false,
        });
        self.set_online(i, true);
        if behaviour != Behaviour::Honest {
            // Behave for three ensure-peers periods (to get connected), then misbehave.
            self.push(Duration::from_secs(90), Event::Misbehave { node: i });
        }
        i
    }

    /// Starts (with a fresh policy and its old book, as after a restart) or stops node `i`.
    pub fn set_online(&mut self, i: usize, online: bool) {
        if self.nodes[i].online == online {
            return;
        }
        if online {
            let seed = self.rng.r#gen::<u64>();
            let (now, wall) = (self.instant(), self.wall());
            let n = &mut self.nodes[i];
            n.online = true;
            n.generation += 1;
            n.scheduled_tick = None;
            n.core = PexCore::new(n.config.clone(), ChaCha8Rng::seed_from_u64(seed));
            let acts = n.core.start(&mut n.book, now, wall);
            self.apply(i, acts);
        } else {
            let peers: Vec<usize> = self.nodes[i].peers.keys().copied().collect();
            for p in peers {
                self.disconnect(i, p);
            }
            let n = &mut self.nodes[i];
            let _ = n.core.stop();
            n.online = false;
            n.generation += 1;
            n.scheduled_tick = None;
        }
    }

    fn push(&mut self, after: Duration, ev: Event) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + after, self.seq, ev)));
    }

    fn info(&self, of: usize, seen_by_direction: Direction) -> PeerInfo {
        let addr = self.nodes[of].addr;
        let socket_addr = match seen_by_direction {
            Direction::Outbound => addr,
            Direction::Inbound => NetAddress::new(addr.id(), addr.ip(), 40_000),
        };
        PeerInfo {
            id: addr.id(),
            direction: seen_by_direction,
            socket_addr,
            self_addr: Some(addr),
            persistent: false,
        }
    }

    fn schedule_tick(&mut self, i: usize) {
        let n = &self.nodes[i];
        if !n.online {
            return;
        }
        let Some(deadline) = n.core.next_deadline() else {
            return;
        };
        let at = deadline.saturating_duration_since(self.t0).max(self.now);
        if n.scheduled_tick.is_some_and(|t| t <= at && t >= self.now) {
            return;
        }
        let generation = n.generation;
        self.nodes[i].scheduled_tick = Some(at);
        self.seq += 1;
        self.queue.push(Reverse((
            at,
            self.seq,
            Event::Tick {
                node: i,
                generation,
            },
        )));
    }

    fn apply(&mut self, i: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { peer, message } => {
                    let Some(&to) = self.by_id.get(&peer) else {
                        continue;
                    };
                    if let Some(&conn) = self.conns.get(&key(i, to)) {
                        let bytes = message.encode();
                        self.push(
                            self.cfg.latency,
                            Event::Deliver {
                                from: i,
                                to,
                                conn,
                                bytes,
                            },
                        );
                    } else {
                        self.nodes[i].core.send_failed(&peer, &message);
                    }
                }
                Action::StopPeer { peer, .. } | Action::Disconnect { peer } => {
                    if let Some(&to) = self.by_id.get(&peer) {
                        if let Some(&conn) = self.conns.get(&key(i, to)) {
                            self.push(self.cfg.latency, Event::Close { a: i, b: to, conn });
                        }
                    }
                }
                Action::Dial { addr } => {
                    self.push(self.cfg.latency * 2, Event::Dialed { from: i, addr });
                }
                Action::Probe { addr } => {
                    self.push(self.cfg.latency * 2, Event::Probed { from: i, addr });
                }
                Action::SaveBook => self.nodes[i].saves += 1,
                Action::MarkUseful { .. } => {}
            }
        }
        self.schedule_tick(i);
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        if self.conns.remove(&key(a, b)).is_none() {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            let n = &mut self.nodes[x];
            n.peers.remove(&y);
            let id = self.nodes[y].addr.id();
            self.nodes[x].core.peer_removed(&id);
        }
    }

    fn dialed(&mut self, from: usize, addr: NetAddress) {
        let (now, wall) = (self.instant(), self.wall());
        if !self.nodes[from].online {
            return;
        }
        let target = self.by_id.get(&addr.id()).copied();
        let ok = target.is_some_and(|t| {
            let n = &self.nodes[t];
            let inbound = n
                .peers
                .values()
                .filter(|d| **d == Direction::Inbound)
                .count();
            let limit = if n.config.seed_mode {
                self.cfg.seed_max_inbound
            } else {
                self.cfg.max_inbound
            };
            t != from
                && n.online
                && n.addr == addr
                && inbound < limit
                && !self.conns.contains_key(&key(from, t))
        });
        let Some(t) = target.filter(|_| ok) else {
            let already = target.is_some_and(|t| self.conns.contains_key(&key(from, t)));
            let outcome = if already {
                DialOutcome::AlreadyConnected
            } else {
                DialOutcome::Failed
            };
            let n = &mut self.nodes[from];
            let acts = n.core.dial_finished(&mut n.book, addr, outcome, now, wall);
            self.apply(from, acts);
            return;
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(key(from, t), conn);
        self.nodes[from].peers.insert(t, Direction::Outbound);
        self.nodes[t].peers.insert(from, Direction::Inbound);
        let out_info = self.info(t, Direction::Outbound);
        let in_info = self.info(from, Direction::Inbound);
        let n = &mut self.nodes[from];
        let mut acts = n.core.peer_added(&mut n.book, out_info, now, wall);
        acts.extend(
            n.core
                .dial_finished(&mut n.book, addr, DialOutcome::Connected, now, wall),
        );
        self.apply(from, acts);
        let n = &mut self.nodes[t];
        let acts = n.core.peer_added(&mut n.book, in_info, now, wall);
        self.apply(t, acts);
    }

    fn handle(&mut self, ev: Event) {
        let (now, wall) = (self.instant(), self.wall());
        match ev {
            Event::Tick { node, generation } => {
                let n = &mut self.nodes[node];
                if !n.online || n.generation != generation {
                    return;
                }
                if n.scheduled_tick.is_some_and(|t| t <= self.now) {
                    n.scheduled_tick = None;
                }
                let acts = n.core.tick(&mut n.book, now, wall);
                self.apply(node, acts);
            }
            Event::Dialed { from, addr } => self.dialed(from, addr),
            Event::Probed { from, addr } => {
                // A feeler: handshake only, no connection kept.
                let ok = (self.by_id.get(&addr.id()))
                    .is_some_and(|&t| self.nodes[t].online && self.nodes[t].addr == addr);
                let n = &mut self.nodes[from];
                if n.online {
                    n.core.probe_finished(&mut n.book, addr, ok, wall);
                    self.schedule_tick(from);
                }
            }
            Event::Deliver {
                from,
                to,
                conn,
                bytes,
            } => {
                if self.conns.get(&key(from, to)) != Some(&conn) {
                    return;
                }
                self.delivered += 1;
                let dir = self.nodes[to].peers.get(&from).copied();
                let Some(dir) = dir else {
                    return;
                };
                if self.nodes[to].misbehaving && bytes.first() == Some(&0x12) {
                    // Misbehaving nodes ignore answers (so they keep misbehaving).
                    return;
                }
                let info = self.info(from, dir);
                let n = &mut self.nodes[to];
                let acts = n.core.receive(&mut n.book, &info, &bytes, now, wall);
                if acts
                    .iter()
                    .any(|a| matches!(a, Action::StopPeer { banned: true, .. }))
                {
                    n.stopped_for_misbehaviour.push(from);
                }
                self.apply(to, acts);
            }
            Event::Close { a, b, conn } => {
                if self.conns.get(&key(a, b)) == Some(&conn) {
                    self.disconnect(a, b);
                }
            }
            Event::Misbehave { node } => {
                let n = &self.nodes[node];
                if !n.online {
                    return;
                }
                let (msg, every) = match n.behaviour {
                    Behaviour::Honest => return,
                    Behaviour::Flooder => (PexMessage::Request, Duration::from_secs(1)),
                    Behaviour::Unsolicited => (
                        PexMessage::Addrs(vec![node_addr(node)]),
                        Duration::from_secs(5),
                    ),
                };
                let peers: Vec<usize> = n.peers.keys().copied().collect();
                self.nodes[node].misbehaving = true;
                for p in peers {
                    if let Some(&conn) = self.conns.get(&key(node, p)) {
                        let bytes = msg.encode();
                        self.push(
                            self.cfg.latency,
                            Event::Deliver {
                                from: node,
                                to: p,
                                conn,
                                bytes,
                            },
                        );
                    }
                }
                self.push(every, Event::Misbehave { node });
            }
        }
    }

    /// Runs events until `for_` of virtual time has passed.
    pub fn run_for(&mut self, for_: Duration) {
        let end = self.now + for_;
        while let Some(Reverse((t, _, _))) = self.queue.peek() {
            if *t > end {
                break;
            }
            let Some(Reverse((t, _, ev))) = self.queue.pop() else {
                break;
            };
            self.now = t;
            self.events += 1;
            self.handle(ev);
        }
        self.now = end;
    }

    /// Outbound peers of node `i`.
    pub fn outbound(&self, i: usize) -> usize {
        self.nodes[i]
            .peers
            .values()
            .filter(|d| **d == Direction::Outbound)
            .count()
    }

    /// Whether the graph of connections among the nodes selected by `include` is connected.
    pub fn connected(&self, include: impl Fn(usize) -> bool) -> bool {
        let members: Vec<usize> = (0..self.nodes.len()).filter(|i| include(*i)).collect();
        let Some(&first) = members.first() else {
            return true;
        };
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![first];
        seen[first] = true;
        while let Some(x) = stack.pop() {
            for &y in self.nodes[x].peers.keys() {
                if include(y) && !seen[y] {
                    seen[y] = true;
                    stack.push(y);
                }
            }
        }
        members.iter().all(|m| seen[*m])
    }

    /// How many of the nodes selected by `include` node `i`'s book holds.
    pub fn known_by(&self, i: usize, include: impl Fn(usize) -> bool) -> usize {
        (0..self.nodes.len())
            .filter(|j| *j != i && include(*j))
            .filter(|j| self.nodes[i].book.has_address(&self.nodes[*j].addr))
            .count()
    }

    /// The node index with this ID.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// A random number from the simulation's RNG.
    pub fn rand_below(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n.max(1))
    }
}

fn key(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}
