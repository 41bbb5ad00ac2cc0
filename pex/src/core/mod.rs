//! The sans-IO PEX policy: request/response rules, the peer manager (ensure-peers) and seed
//! mode, on a virtual clock and an injected RNG.
//!
//! The core never performs I/O. Each input (`start`, `peer_added`, `peer_removed`,
//! `receive`, `dial_finished`, `tick`, `stop`) takes the current monotonic time (`Instant`,
//! for intervals) and wall time (`SystemTime`, for the address book, whose times are
//! persisted), mutates the address book it is handed, and returns [`Action`]s for the caller
//! to execute. [`PexCore::next_deadline`] says when `tick` is due next.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use mukan_reactor_api::{AddressBook, Direction, NetAddress, NetGroup, NodeId};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};

use crate::msg::{DecodeError, PexMessage};

mod dialing;
mod feelers;
mod messages;

/// Go `defaultEnsurePeersPeriod`.
pub const DEFAULT_ENSURE_PEERS_PERIOD: Duration = Duration::from_secs(30);
/// Go `crawlPeerPeriod`.
pub const CRAWL_PEER_PERIOD: Duration = Duration::from_secs(30);
/// Go `minTimeBetweenCrawls`.
pub const MIN_TIME_BETWEEN_CRAWLS: Duration = Duration::from_secs(120);
/// Go `maxAttemptsToDial`.
pub const MAX_ATTEMPTS_TO_DIAL: u32 = 16;
/// Go `biasToSelectNewPeers` (seed answers).
pub const BIAS_TO_SELECT_NEW_PEERS: u8 = 30;
/// Go `defaultBanTime`.
pub const DEFAULT_BAN_TIME: Duration = Duration::from_secs(24 * 3600);
/// Go `SeedDisconnectWaitPeriod` (hard-coded in `node/setup.go`).
pub const DEFAULT_SEED_DISCONNECT_WAIT: Duration = Duration::from_secs(28 * 3600);
/// How long a seed keeps serving an address it verified itself first.
pub const DEFAULT_VERIFIED_FRESHNESS: Duration = Duration::from_secs(24 * 3600);
/// Go `dumpAddressInterval`.
pub const DEFAULT_SAVE_INTERVAL: Duration = Duration::from_secs(120);
/// Crawl records older than this are forgotten (Go `cleanupCrawlPeerInfos`).
const CRAWL_RECORD_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often expired records are dropped.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(600);
/// Upper bound on the per-address dial records.
const MAX_RECORDS: usize = 65_536;
/// Upper bound on the core's own list of banned IDs (the book keeps its own bounded list,
/// which is the one saved); past it the oldest ban is forgotten here.
const MAX_LOCAL_BANS: usize = 10_000;
/// At most this many addresses of one `PexAddrs` are considered (Go never sends more:
/// `maxGetSelection`); the rest of the message is dropped, without a ban.
pub const MAX_ADDRS_PER_MESSAGE: usize = 250;
/// Addresses one peer connection may bring into the book: a token bucket that starts full
/// with this many tokens (Bitcoin Core's burst)…
pub const ADDR_TOKEN_BURST: f64 = 1_000.0;
/// …and refills at this many tokens per second (Bitcoin Core: one address every 10 s).
/// Each address of an answer takes one token; addresses beyond the tokens are dropped.
pub const ADDR_TOKENS_PER_SECOND: f64 = 0.1;
/// At most this many addresses that inbound peers reported for themselves are in the book
/// at once (outside seed mode): inbound connections are what an attacker makes at will,
/// with fresh keys; past the cap, self-adverts are dropped until one of those addresses
/// leaves the book.
pub const MAX_INBOUND_ADVERTS: usize = 64;
/// Go-free feeler period (Bitcoin Core `FEELER_INTERVAL`): one short probe of a new-table
/// address (or of an old entry a promotion would evict) every 2 minutes.
pub const DEFAULT_FEELER_INTERVAL: Duration = Duration::from_secs(120);
/// How many of the longest-connected outbound peers are saved as anchors on a clean stop.
pub const DEFAULT_MAX_ANCHORS: usize = 2;

/// Settings of the policy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CoreConfig {
    /// Run as a seed (crawl instead of ensure-peers).
    pub seed_mode: bool,
    /// Seed addresses (resolved).
    pub seeds: Vec<NetAddress>,
    /// Period of ensure-peers (Go 30 s); the minimum interval between requests we accept is
    /// a third of it.
    pub ensure_peers_period: Duration,
    /// Period of the seed crawl (Go 30 s).
    pub crawl_period: Duration,
    /// The outbound target (`max_num_outbound_peers`).
    pub max_outbound: usize,
    /// Outbound netgroup diversity (beyond Go parity, as Bitcoin Core): at most this many
    /// outbound peers, connected or being dialed, per address group (IPv4 /16, IPv6 /32, for
    /// every address, loopback and private ones included), unless the book offers nothing
    /// else. Default 1; 0 turns the rule off.
    pub max_outbound_per_group: usize,
    /// Seed mode: peers connected longer than this are disconnected (Go 28 h).
    pub seed_disconnect_wait: Duration,
    /// Seed mode: a crawled peer that did not answer our request within this is disconnected.
    pub crawl_answer_timeout: Duration,
    /// Seed mode: addresses verified within this are served first.
    pub verified_freshness: Duration,
    /// How often a [`Action::SaveBook`] is emitted.
    pub save_interval: Duration,
    /// The least time between two requests we send to one peer. Must exceed the receiver's
    /// minimum interval (Go: its ensure period / 3 = 10 s).
    pub request_spacing: Duration,
    /// IDs the switch dials itself (persistent peers): never dialed by PEX.
    pub persistent_ids: HashSet<NodeId>,
    /// Our own address, recorded in the book so that it is never stored or dialed.
    pub our_address: Option<NetAddress>,
    /// With the outbound target met (when Go asks nobody), still ask a random peer for
    /// addresses while the book needs more: every run at first, and each answer that brings
    /// nothing new doubles the interval up to this many ensure-peers runs (0: never ask).
    pub max_refresh_interval: u32,
    /// Feeler period (not in seed mode): every period, one short probe ([`Action::Probe`])
    /// of an old entry that a pending promotion would evict, else of a random new-table
    /// address; a probe that completes the handshake marks the address good (zero: no
    /// feelers). Default 2 minutes.
    pub feeler_interval: Duration,
    /// Anchors: addresses dialed first at start, before any pick from the book (the node
    /// reads them from `anchors.json`, see [`PexCore::anchors`]).
    pub anchors: Vec<NetAddress>,
    /// How many anchors [`PexCore::anchors`] returns at most (default 2).
    pub max_anchors: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            seed_mode: false,
            seeds: Vec::new(),
            ensure_peers_period: DEFAULT_ENSURE_PEERS_PERIOD,
            crawl_period: CRAWL_PEER_PERIOD,
            max_outbound: 10,
            max_outbound_per_group: 1,
            seed_disconnect_wait: DEFAULT_SEED_DISCONNECT_WAIT,
            crawl_answer_timeout: 2 * CRAWL_PEER_PERIOD,
            verified_freshness: DEFAULT_VERIFIED_FRESHNESS,
            save_interval: DEFAULT_SAVE_INTERVAL,
            request_spacing: DEFAULT_ENSURE_PEERS_PERIOD / 2,
            persistent_ids: HashSet::new(),
            our_address: None,
            max_refresh_interval: 64,
            feeler_interval: DEFAULT_FEELER_INTERVAL,
            anchors: Vec::new(),
            max_anchors: DEFAULT_MAX_ANCHORS,
        }
    }
}

impl CoreConfig {
    /// The minimum interval between requests a peer may send us (Go
    /// `minReceiveRequestInterval` = ensure period / 3).
    pub fn min_receive_request_interval(&self) -> Duration {
        self.ensure_peers_period / 3
    }
}

/// What the core knows of a connected peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its authenticated ID.
    pub id: NodeId,
    /// Who dialed.
    pub direction: Direction,
    /// The socket address (the dialed address for outbound peers).
    pub socket_addr: NetAddress,
    /// The address it reports in its `NodeInfo`, if it parses as an IP address.
    pub self_addr: Option<NetAddress>,
    /// Whether the switch redials it.
    pub persistent: bool,
}

/// Why the core stops a peer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PexError {
    /// The message did not decode or held an invalid address.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A third (or later) request came sooner than the minimum interval after the previous.
    #[error("peer sent next PEX request too soon ({elapsed:?} < {min:?})")]
    RequestTooSoon {
        /// Time since the previous accepted request.
        elapsed: Duration,
        /// The minimum interval.
        min: Duration,
    },
    /// Addresses we did not ask for (Go `ErrUnsolicitedList`).
    #[error("unsolicited pexAddrsMessage")]
    Unsolicited,
    /// The peer is banned and connected anyway.
    #[error("peer is banned")]
    Banned,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send `message` to `peer` on the PEX channel.
    Send {
        /// Recipient.
        peer: NodeId,
        /// The message.
        message: PexMessage,
    },
    /// Disconnect `peer` for `reason` (`Switch::stop_peer_for_error`). When `banned`, the
    /// core has already banned it in the book (Go `MarkBad`, 24 h) and in its own list.
    StopPeer {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: PexError,
        /// Whether it was banned.
        banned: bool,
    },
    /// Flush what is queued for `peer`, then disconnect it (`Switch::stop_peer_gracefully`).
    Disconnect {
        /// The peer.
        peer: NodeId,
    },
    /// Dial `addr` and report the outcome with [`PexCore::dial_finished`].
    Dial {
        /// The address.
        addr: NetAddress,
    },
    /// Save a snapshot of the address book.
    SaveBook,
    /// Feeler: connect to `addr`, complete the handshake and the `NodeInfo` exchange, then
    /// close (not a peer: no reactor sees it, no outbound slot is used), and report with
    /// [`PexCore::probe_finished`].
    Probe {
        /// The address.
        addr: NetAddress,
    },
    /// `peer` answered a request of ours: tell the switch the message was useful
    /// (`Network::mark_useful`), which protects the peer from inbound eviction.
    MarkUseful {
        /// The peer.
        peer: NodeId,
    },
}

/// The outcome of a dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialOutcome {
    /// Connected (the peer is or will be added).
    Connected,
    /// Already connected or being dialed (not a failure).
    AlreadyConnected,
    /// The dial failed.
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecvTrack {
    None,
    Free,
    At(Instant),
}

#[derive(Debug)]
struct PeerState {
    info: PeerInfo,
    connected_at: Instant,
    added: bool,
    in_flight: bool,
    last_request_sent: Option<Instant>,
    recv: RecvTrack,
    seed_answered: bool,
    crawled: bool,
    /// Address tokens ([`ADDR_TOKEN_BURST`], [`ADDR_TOKENS_PER_SECOND`]) as of `tokens_at`.
    tokens: f64,
    tokens_at: Instant,
}

impl PeerState {
    fn new(info: PeerInfo, now: Instant) -> Self {
        Self {
            info,
            connected_at: now,
            added: false,
            in_flight: false,
            last_request_sent: None,
            recv: RecvTrack::None,
            seed_answered: false,
            crawled: false,
            tokens: ADDR_TOKEN_BURST,
            tokens_at: now,
        }
    }

    /// Takes up to `want` address tokens; returns how many were granted.
    fn take_tokens(&mut self, want: usize, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.tokens_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * ADDR_TOKENS_PER_SECOND).min(ADDR_TOKEN_BURST);
        self.tokens_at = now;
        let granted = (self.tokens.floor().max(0.0) as usize).min(want);
        self.tokens -= granted as f64;
        granted
    }
}

#[derive(Clone, Copy, Debug)]
struct Attempts {
    count: u32,
    last: Instant,
}

/// The PEX policy. See the [module docs](self).
pub struct PexCore {
    cfg: CoreConfig,
    rng: Box<dyn RngCore + Send>,
    peers: HashMap<NodeId, PeerState>,
    dialing: HashMap<NodeId, NetAddress>,
    attempts: HashMap<SocketAddr, Attempts>,
    bans: HashMap<NodeId, Instant>,
    /// Ban order (all bans last [`DEFAULT_BAN_TIME`]: first in ends first).
    ban_order: VecDeque<(Instant, NodeId)>,
    next_feeler: Option<Instant>,
    probing: Option<NetAddress>,
    crawled: HashMap<NodeId, Instant>,
    verified: HashMap<NodeId, (NetAddress, SystemTime)>,
    /// IDs added to the book from inbound peers' self-adverts, oldest first (at most
    /// [`MAX_INBOUND_ADVERTS`] still in the book).
    inbound_adverts: VecDeque<NetAddress>,
    seed_queue: Vec<NetAddress>,
    seed_ids: HashSet<NodeId>,
    next_run: Option<Instant>,
    next_save: Option<Instant>,
    stopped: bool,
    runs: u64,
    refresh_interval: u32,
    last_refresh: u64,
    last_cleanup: Option<Instant>,
}

impl std::fmt::Debug for PexCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PexCore")
            .field("seed_mode", &self.cfg.seed_mode)
            .field("peers", &self.peers.len())
            .field("dialing", &self.dialing.len())
            .finish_non_exhaustive()
    }
}

/// The diversity group of an address ([`NetGroup`] without strict mode: its IPv4 /16 or
/// IPv6 /32, tunnels by their embedded IPv4). Non-routable addresses are grouped the same way
/// (so that a testnet on `127.x` or `10.x` exercises the rule; a network all in one group
/// falls back to "nothing else on offer").
fn group_of(addr: &NetAddress) -> Option<NetGroup> {
    Some(NetGroup::of(addr.ip(), false))
}

fn backoff(count: u32, jitter: Duration) -> Duration {
    Duration::from_secs(1u64 << count.min(40)) + jitter
}

impl PexCore {
    /// A core with settings `cfg` and randomness from `rng`.
    pub fn new(cfg: CoreConfig, rng: impl RngCore + Send + 'static) -> Self {
        let seed_ids = cfg.seeds.iter().map(NetAddress::id).collect();
        Self {
            cfg,
            rng: Box::new(rng),
            peers: HashMap::new(),
            dialing: HashMap::new(),
            attempts: HashMap::new(),
            bans: HashMap::new(),
            ban_order: VecDeque::new(),
            next_feeler: None,
            probing: None,
            crawled: HashMap::new(),
            verified: HashMap::new(),
            inbound_adverts: VecDeque::new(),
            seed_queue: Vec::new(),
            seed_ids,
            next_run: None,
            next_save: None,
            stopped: false,
            runs: 0,
            refresh_interval: 1,
            last_refresh: 0,
            last_cleanup: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Replaces the seed list (e.g. once host names are resolved).
    pub fn set_seeds(&mut self, seeds: Vec<NetAddress>) {
        self.seed_ids = seeds.iter().map(NetAddress::id).collect();
        self.cfg.seeds = seeds;
        self.seed_queue.clear();
    }

    /// Sets our own address (from the switch).
    pub fn set_our_address(&mut self, addr: NetAddress) {
        self.cfg.our_address = Some(addr);
    }

    /// Sets the outbound target (from the switch).
    pub fn set_max_outbound(&mut self, n: usize) {
        self.cfg.max_outbound = n;
    }

    /// Connected peers by direction: (outbound, inbound).
    pub fn num_peers(&self) -> (usize, usize) {
        let (mut out, mut inb) = (0, 0);
        for p in self.peers.values().filter(|p| p.added) {
            if p.info.direction.is_outbound() {
                out += 1;
            } else {
                inb += 1;
            }
        }
        (out, inb)
    }

    /// Dials in flight that the core started.
    pub fn num_dialing(&self) -> usize {
        self.dialing.len()
    }

    /// Whether `id` is on our own ban list at `now`.
    pub fn is_banned(&self, id: &NodeId, now: Instant) -> bool {
        self.bans.get(id).is_some_and(|until| *until > now)
    }

    /// Seed mode: addresses this node verified itself (outbound handshake) within the
    /// freshness window, with the time of verification.
    pub fn verified(&self, wall: SystemTime) -> Vec<(NetAddress, SystemTime)> {
        self.verified
            .values()
            .filter(|(_, t)| self.is_fresh(*t, wall))
            .copied()
            .collect()
    }

    fn is_fresh(&self, t: SystemTime, wall: SystemTime) -> bool {
        wall.duration_since(t)
            .map_or(true, |age| age <= self.cfg.verified_freshness)
    }

    /// When [`PexCore::tick`] is due next (`None` before `start` or after `stop`).
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.next_run, self.next_save, self.next_feeler]
            .into_iter()
            .flatten()
            .min()
    }

    /// The anchors to save on a clean stop (none in seed mode): the outbound peers (not
    /// persistent, not seeds) that have been connected longest, at most [`CoreConfig::max_anchors`], by the address
    /// we dialed. Ask before the switch removes its peers.
    pub fn anchors(&self) -> Vec<NetAddress> {
        if self.cfg.seed_mode {
            return Vec::new(); // a seed's outbound peers are crawled, not kept
        }
        let mut out: Vec<(Instant, NetAddress)> = self
            .peers
            .values()
            .filter(|p| p.added && p.info.direction.is_outbound() && !p.info.persistent)
            .filter(|p| !self.seed_ids.contains(&p.info.id))
            .map(|p| (p.connected_at, p.info.socket_addr))
            .collect();
        out.sort_unstable();
        out.into_iter()
            .take(self.cfg.max_anchors)
            .map(|(_, a)| a)
            .collect()
    }

    /// The feeler in flight, if any.
    pub fn probing(&self) -> Option<NetAddress> {
        self.probing
    }

    /// Starts the routines: records our address, schedules the first ensure-peers run (at
    /// once when we have no peers, else after a random jitter, as Go) or the first crawl.
    pub fn start(
        &mut self,
        book: &mut dyn AddressBook,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Action> {
        if let Some(ours) = self.cfg.our_address {
            book.add_our_address(ours);
        }
        self.stopped = false;
        let mut out = Vec::new();
        // Anchors first, once, before any pick from the book.
        let anchors = std::mem::take(&mut self.cfg.anchors);
        for a in anchors.into_iter().take(self.cfg.max_outbound) {
            if self.dialable(book, &a, now, wall) {
                self.dial(a, &mut out);
            }
        }
        let period = self.period();
        let first = if self.peers.is_empty() && self.dialing.is_empty() {
            now
        } else {
            now + self.jitter(period)
        };
        self.next_run = Some(first);
        self.next_save = Some(now + self.cfg.save_interval);
        if !self.cfg.seed_mode && !self.cfg.feeler_interval.is_zero() {
            self.next_feeler = Some(now + self.cfg.feeler_interval);
        }
        out
    }

    /// Stops the routines; the book is to be saved one last time.
    pub fn stop(&mut self) -> Vec<Action> {
        self.stopped = true;
        self.next_run = None;
        self.next_save = None;
        self.next_feeler = None;
        vec![Action::SaveBook]
    }

    fn period(&self) -> Duration {
        if self.cfg.seed_mode {
            self.cfg.crawl_period
        } else {
            self.cfg.ensure_peers_period
        }
    }

    fn jitter(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(self.rng.gen_range(0..nanos))
    }

    /// Runs what is due at `now`.
    pub fn tick(
        &mut self,
        book: &mut dyn AddressBook,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.stopped {
            return out;
        }
        if self.next_save.is_some_and(|t| t <= now) {
            out.push(Action::SaveBook);
            self.next_save = Some(now + self.cfg.save_interval);
        }
        if self.next_run.is_some_and(|t| t <= now) {
            self.next_run = Some(now + self.period());
            self.housekeeping(book, now, wall);
            if self.cfg.seed_mode {
                self.crawl(book, now, wall, &mut out);
            } else {
                self.ensure_peers(book, now, wall, true, &mut out);
            }
        }
        if self.next_feeler.is_some_and(|t| t <= now) {
            self.next_feeler = Some(now + self.cfg.feeler_interval);
            self.feeler(book, now, wall, &mut out);
        }
        out
    }

    fn housekeeping(&mut self, book: &mut dyn AddressBook, now: Instant, wall: SystemTime) {
        // Bans end on seeds too (upstream seeds never reinstate).
        book.reinstate_bad_peers(wall);
        if self
            .last_cleanup
            .is_some_and(|t| now.saturating_duration_since(t) < CLEANUP_INTERVAL)
        {
            return;
        }
        self.last_cleanup = Some(now);
        while self
            .ban_order
            .front()
            .is_some_and(|(until, _)| *until <= now)
        {
            if let Some((until, id)) = self.ban_order.pop_front() {
                if self.bans.get(&id) == Some(&until) {
                    self.bans.remove(&id);
                }
            }
        }
        let long = Duration::from_secs(1u64 << MAX_ATTEMPTS_TO_DIAL) + DEFAULT_BAN_TIME;
        self.attempts
            .retain(|_, a| now.saturating_duration_since(a.last) < long);
        self.crawled
            .retain(|_, t| now.saturating_duration_since(*t) < CRAWL_RECORD_TTL);
        let fresh = self.cfg.verified_freshness;
        self.verified
            .retain(|_, (_, t)| wall.duration_since(*t).map_or(true, |age| age <= fresh));
    }

    /// A peer is in the switch's peer set.
    pub fn peer_added(
        &mut self,
        book: &mut dyn AddressBook,
        info: PeerInfo,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.dialing.remove(&info.id);
        if info.persistent {
            self.cfg.persistent_ids.insert(info.id);
        }
        if self.is_banned(&info.id, now) && !info.persistent {
            self.peers.remove(&info.id);
            out.push(Action::StopPeer {
                peer: info.id,
                reason: PexError::Banned,
                banned: false,
            });
            return out;
        }
        let state = self
            .peers
            .entry(info.id)
            .or_insert_with(|| PeerState::new(info, now));
        state.info = info;
        state.added = true;
        match info.direction {
            Direction::Outbound => {
                self.attempts.remove(&info.socket_addr.socket_addr());
                // A completed handshake to an address we dialed: that address is real, so
                // it is good (Bitcoin Core; Go waits for consensus, so a node without it
                // never fills its old buckets).
                book.mark_good(info.id, wall);
                if self.cfg.seed_mode {
                    if self.verified.len() < MAX_RECORDS || self.verified.contains_key(&info.id) {
                        self.verified.insert(info.id, (info.socket_addr, wall));
                    }
                    if let Some(s) = self.peers.get_mut(&info.id) {
                        s.crawled = true;
                    }
                    self.request(info.id, now, &mut out);
                } else if book.need_more_addrs() {
                    self.request(info.id, now, &mut out);
                }
            }
            Direction::Inbound => {
                // Bucketed by the group of the connection's IP, never by what the peer
                // claims; a claimed IP other than the connection's is only unverified.
                // Outside seed mode, at most MAX_INBOUND_ADVERTS such addresses are in the
                // book at once (a seed learns from the nodes that dial it, and verifies
                // before it vouches).
                if let Some(addr) = info.self_addr {
                    let known = book.has_address(&addr);
                    if known || self.cfg.seed_mode || self.inbound_advert_room(book) {
                        let src = info.socket_addr;
                        let added = if addr.ip() == src.ip() {
                            book.add_address(addr, src, wall)
                        } else {
                            book.add_unverified_address(addr, src, wall)
                        };
                        if added.is_ok() && !known && !self.cfg.seed_mode && book.has_address(&addr)
                        {
                            self.inbound_adverts.push_back(addr);
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether one more inbound self-advert may enter the book: fewer than
    /// [`MAX_INBOUND_ADVERTS`] of those added before are still there.
    fn inbound_advert_room(&mut self, book: &dyn AddressBook) -> bool {
        if self.inbound_adverts.len() >= MAX_INBOUND_ADVERTS {
            // Forget those that left the book (evicted, banned, removed).
            self.inbound_adverts.retain(|a| book.has_address(a));
        }
        self.inbound_adverts.len() < MAX_INBOUND_ADVERTS
    }

    /// A peer left: all its PEX state goes (tendermint #3338).
    pub fn peer_removed(&mut self, id: &NodeId) {
        self.peers.remove(id);
    }
}
