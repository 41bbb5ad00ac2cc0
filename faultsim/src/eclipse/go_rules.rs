//! Go v0.38.25's address book and PEX reactor, rule by rule, as they apply to a node that
//! runs no consensus (so nothing ever calls `MarkGood`: the old buckets stay empty, which is
//! what a Go node running only the p2p layer gets). Line references are to
//! `github.com/cometbft/cometbft@v0.38.25`: `p2p/pex/addrbook.go` (A), `known_address.go`
//! (K), `params.go` (P), `pex_reactor.go` (R) and `p2p/switch.go` (S).
//!
//! Not reproduced, because the simulation never reaches them: `MarkGood`/`moveToOld` (no
//! consensus), `GetSelection*` (the victim's answers are not modelled), the seed-mode crawl,
//! the flood checks on requests we receive. The keyed hash is SipHash (`DefaultHasher`)
//! under a random per-process key where Go uses HighwayHash under one: only the placement
//! structure matters, not the function.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use mukan_reactor_api::{NetAddress, NodeId};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Cmd, OUTBOUND, PeerMeta, Victim};

const NEW_BUCKET_COUNT: usize = 256; // P:22
const NEW_BUCKET_SIZE: usize = 64; // P:19
const NEW_BUCKETS_PER_GROUP: u64 = 32; // P:28
const MAX_NEW_BUCKETS_PER_ADDRESS: usize = 4; // P:31
const NUM_MISSING_DAYS: u32 = 7; // P:35
const NUM_RETRIES: i32 = 3; // P:38
const MAX_FAILURES: i32 = 10; // P:41
const MIN_BAD_DAYS: u32 = 7; // P:44
const NEED_ADDRESS_THRESHOLD: usize = 1000; // P:7
const ENSURE_PEERS_PERIOD: Duration = Duration::from_secs(30); // R:34
const MAX_ATTEMPTS_TO_DIAL: u32 = 16; // R:44
const DEFAULT_BAN_TIME: Duration = Duration::from_secs(24 * 3600); // R:52
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Go `knownAddress` (K:11-20).
#[derive(Clone, Debug)]
struct Ka {
    addr: NetAddress,
    src: NetAddress,
    buckets: Vec<usize>,
    attempts: i32,
    old: bool,
    last_attempt: Duration,
    last_success: Option<Duration>,
    last_ban: Option<Duration>,
}

impl Ka {
    /// K:108-138.
    fn is_bad(&self, now: Duration) -> bool {
        if self.old {
            return false;
        }
        if self.last_attempt + Duration::from_secs(60) > now {
            return false;
        }
        if self.last_attempt + DAY * NUM_MISSING_DAYS < now {
            return true;
        }
        if self.last_success.is_none() && self.attempts >= NUM_RETRIES {
            return true;
        }
        let success = self.last_success.unwrap_or(Duration::ZERO);
        success + DAY * MIN_BAD_DAYS < now && self.attempts >= MAX_FAILURES
    }
}

/// Go `addrBook` (A:88-110), new buckets only (the old ones never fill without MarkGood).
struct GoBook {
    key: u64,
    rng: ChaCha8Rng,
    lookup: HashMap<NodeId, Ka>,
    bad: BTreeMap<NodeId, Ka>,
    new_buckets: Vec<Vec<NodeId>>,
    n_new: usize,
    n_old: usize,
    ours: NetAddress,
}

/// `groupKeyFor` (A:893-941) for the routable IPv4 addresses of the simulation: the /16.
fn group(a: &NetAddress) -> [u8; 2] {
    match a.ip() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [o[0], o[1]]
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[0], o[1]]
        }
    }
}

impl GoBook {
    fn new(ours: NetAddress, mut rng: ChaCha8Rng) -> Self {
        Self {
            key: rng.r#gen(),
            rng,
            lookup: HashMap::new(),
            bad: BTreeMap::new(),
            new_buckets: vec![Vec::new(); NEW_BUCKET_COUNT],
            n_new: 0,
            n_old: 0,
            ours,
        }
    }

    fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.key.hash(&mut h);
        for p in parts {
            p.hash(&mut h);
        }
        h.finish()
    }

    /// `calcNewBucket` (A:833-857): the source group picks one of 32 buckets per address
    /// group.
    fn new_bucket(&self, addr: &NetAddress, src: &NetAddress) -> usize {
        let h1 = self.hash(&[&group(addr), &group(src)]) % NEW_BUCKETS_PER_GROUP;
        (self.hash(&[&group(src), &h1.to_be_bytes()]) % NEW_BUCKET_COUNT as u64) as usize
    }

    fn size(&self) -> usize {
        self.n_new + self.n_old // A:486-488
    }

    /// `addAddress` (A:644-700).
    fn add(&mut self, addr: NetAddress, src: NetAddress, now: Duration) {
        if self.bad.contains_key(&addr.id()) {
            return; // A:653-655
        }
        if addr == self.ours || !addr.routable() {
            return; // A:666-672
        }
        if let Some(ka) = self.lookup.get(&addr.id()) {
            if ka.old {
                return; // A:679-681
            }
            if ka.buckets.len() == MAX_NEW_BUCKETS_PER_ADDRESS {
                return; // A:683-685
            }
            let factor = 2 * ka.buckets.len() as u32; // A:687-690
            if self.rng.gen_range(0..factor) != 0 {
                return;
            }
        } else {
            // `newKnownAddress` (K:22-31): last attempt = now.
            self.lookup.insert(
                addr.id(),
                Ka {
                    addr,
                    src,
                    buckets: Vec::new(),
                    attempts: 0,
                    old: false,
                    last_attempt: now,
                    last_success: None,
                    last_ban: None,
                },
            );
        }
        let b = self.new_bucket(&addr, &src);
        self.add_to_new_bucket(addr.id(), b, now);
    }

    /// `addToNewBucket` (A:529-559): the size check is `> 64`, so a bucket holds 65.
    fn add_to_new_bucket(&mut self, id: NodeId, b: usize, now: Duration) {
        if self.new_buckets[b].contains(&id) {
            return; // A:539-541
        }
        if self.new_buckets[b].len() > NEW_BUCKET_SIZE {
            self.expire_new(b, now); // A:544-547
        }
        self.new_buckets[b].push(id);
        let Some(ka) = self.lookup.get_mut(&id) else {
            return;
        };
        ka.buckets.push(b);
        if ka.buckets.len() == 1 {
            self.n_new += 1; // A:552-554
        }
    }

    /// `expireNew` (A:742-755): a bad entry (Go walks the map in random order), else the one
    /// with the oldest last attempt (`pickOldest`, A:631-640).
    fn expire_new(&mut self, b: usize, now: Duration) {
        let mut ids = self.new_buckets[b].clone();
        ids.shuffle(&mut self.rng);
        let victim = ids
            .iter()
            .copied()
            .find(|id| self.lookup.get(id).is_some_and(|ka| ka.is_bad(now)))
            .or_else(|| {
                ids.iter()
                    .copied()
                    .min_by_key(|id| self.lookup.get(id).map(|ka| ka.last_attempt))
            });
        if let Some(v) = victim {
            self.remove_from_bucket(v, b);
        }
    }

    /// `removeFromBucket` (A:598-613).
    fn remove_from_bucket(&mut self, id: NodeId, b: usize) {
        self.new_buckets[b].retain(|x| *x != id);
        let Some(ka) = self.lookup.get_mut(&id) else {
            return;
        };
        ka.buckets.retain(|x| *x != b);
        if ka.buckets.is_empty() {
            self.n_new -= 1;
            self.lookup.remove(&id);
        }
    }

    /// `removeFromAllBuckets` (A:615-627).
    fn remove_from_all(&mut self, id: NodeId) -> Option<Ka> {
        let mut ka = self.lookup.remove(&id)?;
        for b in &ka.buckets {
            self.new_buckets[*b].retain(|x| *x != id);
        }
        ka.buckets.clear();
        self.n_new -= 1;
        Some(ka)
    }

    /// `PickAddress` (A:275-321).
    fn pick(&mut self, bias: usize) -> Option<NetAddress> {
        if self.size() == 0 {
            return None;
        }
        let bias = bias.min(100) as f64;
        let old_c = (self.n_old as f64).sqrt() * (100.0 - bias); // A:294
        let new_c = (self.n_new as f64).sqrt() * bias; // A:295
        let pick_old = (new_c + old_c) * self.rng.r#gen::<f64>() < old_c; // A:299
        if (pick_old && self.n_old == 0) || (!pick_old && self.n_new == 0) {
            return None; // A:300-303
        }
        if pick_old {
            return None; // never: no old entries without MarkGood
        }
        loop {
            let b = self.rng.gen_range(0..NEW_BUCKET_COUNT); // A:305-311
            let bucket = &self.new_buckets[b];
            if bucket.is_empty() {
                continue;
            }
            let i = self.rng.gen_range(0..bucket.len()); // A:313-319
            return self.lookup.get(&bucket[i]).map(|ka| ka.addr);
        }
    }

    /// `MarkAttempt` (A:342-351, K:45-49).
    fn mark_attempt(&mut self, addr: &NetAddress, now: Duration) {
        if let Some(ka) = self.lookup.get_mut(&addr.id()) {
            ka.last_attempt = now;
            ka.attempts += 1;
        }
    }

    /// `MarkBad` (A:355-362) / `addBadPeer` (A:812-827): only an ID in the book is banned.
    fn mark_bad(&mut self, addr: &NetAddress, ban: Duration, now: Duration) {
        let id = addr.id();
        if !self.lookup.contains_key(&id) {
            return;
        }
        if !self.bad.contains_key(&id) {
            if let Some(ka) = self.lookup.get_mut(&id) {
                ka.last_ban = Some(now + ban); // K:58-62
                let ka = ka.clone();
                self.bad.insert(id, ka);
            }
        }
        self.remove_from_all(id);
    }

    /// `ReinstateBadPeers` (A:366-389): every ended ban, back into a new bucket.
    fn reinstate_bad_peers(&mut self, now: Duration) {
        let ended: Vec<NodeId> = (self.bad.iter())
            .filter(|(_, ka)| ka.last_ban.is_none_or(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            let Some(mut ka) = self.bad.remove(&id) else {
                continue;
            };
            let b = self.new_bucket(&ka.addr, &ka.src);
            ka.buckets.clear();
            self.lookup.insert(id, ka);
            self.add_to_new_bucket(id, b, now);
        }
    }
}

/// Go's PEX reactor (R) over `GoBook`, with the switch's part of the dial loop (S).
pub struct GoVictim {
    book: GoBook,
    rng: ChaCha8Rng,
    seeds: Vec<NetAddress>,
    /// Connected peers (S: `sw.peers`), by ID.
    peers: BTreeMap<NodeId, PeerMeta>,
    /// Dials in flight (S: `sw.dialing`).
    dialing: BTreeMap<NodeId, NetAddress>,
    /// R:95 `attemptsToDial`, by dial string.
    attempts: HashMap<(IpAddr, u16), (u32, Duration)>,
    /// R:90 `requestsSent`.
    requests_sent: BTreeSet<NodeId>,
    next_ensure: Option<Duration>,
    seed_dialing: bool,
}

impl GoVictim {
    /// A Go node at `ours` with these seeds.
    pub(crate) fn new(ours: NetAddress, seeds: Vec<NetAddress>, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let book = GoBook::new(ours, ChaCha8Rng::seed_from_u64(rng.r#gen()));
        Self {
            book,
            rng,
            seeds,
            peers: BTreeMap::new(),
            dialing: BTreeMap::new(),
            attempts: HashMap::new(),
            requests_sent: BTreeSet::new(),
            next_ensure: None,
            seed_dialing: false,
        }
    }

    /// `NumPeers` (S:301-316).
    fn num_peers(&self) -> (usize, usize, usize) {
        let out = self
            .peers
            .values()
            .filter(|p| p.direction.is_outbound())
            .count();
        (out, self.peers.len() - out, self.dialing.len())
    }

    /// `IsDialingOrExistingAddress` (S:573-577), `allow_duplicate_ip = false`.
    fn is_dialing_or_existing(&self, addr: &NetAddress) -> bool {
        self.dialing.contains_key(&addr.id())
            || self.peers.contains_key(&addr.id())
            || self.peers.values().any(|p| p.socket.ip() == addr.ip())
    }

    /// `RequestAddrs` (R:338-349).
    fn request(&mut self, id: NodeId, out: &mut Vec<Cmd>) {
        if self.requests_sent.insert(id) {
            out.push(Cmd::Request(id));
        }
    }

    /// `dialPeer` (R:536-574), up to the switch's dial.
    fn dial_peer(&mut self, addr: NetAddress, now: Duration, out: &mut Vec<Cmd>) {
        let key = (addr.ip(), addr.port());
        let (attempts, last) = self
            .attempts
            .get(&key)
            .copied()
            .unwrap_or((0, Duration::ZERO));
        if attempts > MAX_ATTEMPTS_TO_DIAL {
            self.book.mark_bad(&addr, DEFAULT_BAN_TIME, now); // R:538-541
            return;
        }
        if attempts > 0 {
            let jitter = Duration::from_secs_f64(self.rng.r#gen::<f64>()); // R:545
            let backoff = jitter + Duration::from_secs(1u64 << attempts.min(40)); // R:546
            if now.saturating_sub(last) < backoff {
                return; // R:549-551
            }
        }
        self.dialing.insert(addr.id(), addr); // S:559
        out.push(Cmd::Dial(addr));
    }

    /// `ensurePeers` (R:443-525).
    fn ensure_peers(&mut self, period_elapsed: bool, now: Duration, out: &mut Vec<Cmd>) {
        let (outbound, _, dialing) = self.num_peers();
        let num_to_dial = OUTBOUND as i64 - (outbound + dialing) as i64; // R:446
        if num_to_dial <= 0 {
            return; // R:456-458
        }
        let num_to_dial = num_to_dial as usize;
        let bias = outbound.min(8) * 10 + 10; // R:463
        let mut to_dial: BTreeMap<NodeId, NetAddress> = BTreeMap::new();
        let max_attempts = num_to_dial * 3; // R:467
        for _ in 0..max_attempts {
            if to_dial.len() >= num_to_dial {
                break;
            }
            let Some(t) = self.book.pick(bias) else {
                continue; // R:470-473
            };
            if to_dial.contains_key(&t.id()) || self.is_dialing_or_existing(&t) {
                continue; // R:474-479
            }
            to_dial.insert(t.id(), t); // R:483
        }
        // Go dials them in goroutines in map order (random); ours is by ID, as random.
        let mut picks: Vec<NetAddress> = to_dial.values().copied().collect();
        picks.shuffle(&mut self.rng);
        for a in picks {
            self.dial_peer(a, now, out); // R:487-499
        }
        if self.book.size() < NEED_ADDRESS_THRESHOLD {
            self.book.reinstate_bad_peers(now); // R:501-504
        }
        if self.book.size() < NEED_ADDRESS_THRESHOLD {
            // R:508-515: a random peer, any direction.
            let peers: Vec<NodeId> = self.peers.keys().copied().collect();
            if !peers.is_empty() && period_elapsed {
                let id = peers[self.rng.gen_range(0..peers.len())];
                self.request(id, out);
            }
            if to_dial.is_empty() {
                self.dial_seeds(out); // R:520-523
            }
        }
    }

    /// `dialSeeds` (R:610-628): seeds in random order, one at a time until one answers.
    fn dial_seeds(&mut self, out: &mut Vec<Cmd>) {
        if self.seed_dialing || self.seeds.is_empty() {
            return;
        }
        let s = self.seeds[self.rng.gen_range(0..self.seeds.len())];
        if self.is_dialing_or_existing(&s) {
            return;
        }
        self.seed_dialing = true;
        self.dialing.insert(s.id(), s);
        out.push(Cmd::Dial(s));
    }
}

impl Victim for GoVictim {
    fn start(&mut self, at: Duration) -> Vec<Cmd> {
        // R:406-421: at once when we have no peers.
        self.next_ensure = Some(at);
        Vec::new()
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.next_ensure
    }

    fn tick(&mut self, at: Duration) -> Vec<Cmd> {
        let mut out = Vec::new();
        if self.next_ensure.is_some_and(|t| t <= at) {
            self.next_ensure = Some(at + ENSURE_PEERS_PERIOD); // R:424-428
            self.ensure_peers(true, at, &mut out);
        }
        out
    }

    fn connected(&mut self, peer: PeerMeta, at: Duration) -> Vec<Cmd> {
        let mut out = Vec::new();
        self.dialing.remove(&peer.id);
        self.peers.insert(peer.id, peer);
        if peer.direction.is_outbound() {
            if self.seeds.contains(&peer.socket) {
                self.seed_dialing = false;
            }
            self.attempts
                .remove(&(peer.socket.ip(), peer.socket.port())); // R:572
            // AddPeer (R:194-200): ask while the book needs more.
            if self.book.size() < NEED_ADDRESS_THRESHOLD {
                self.request(peer.id, &mut out);
            }
        } else {
            // AddPeer (R:201-216): an inbound peer is its own source.
            self.book.add(peer.self_addr, peer.self_addr, at);
        }
        out
    }

    fn dial_failed(&mut self, addr: NetAddress, already: bool, at: Duration) -> Vec<Cmd> {
        let mut out = Vec::new();
        self.dialing.remove(&addr.id());
        if self.seeds.contains(&addr) {
            self.seed_dialing = false;
            if !already {
                // R:613-622: try the next seed.
                let others: Vec<NetAddress> =
                    self.seeds.iter().copied().filter(|s| *s != addr).collect();
                if let Some(s) = others.choose(&mut self.rng).copied() {
                    self.seed_dialing = true;
                    self.dialing.insert(s.id(), s);
                    out.push(Cmd::Dial(s));
                }
            }
            return out;
        }
        if already {
            return out; // R:556-558
        }
        self.book.mark_attempt(&addr, at); // R:560, R:747-755
        let key = (addr.ip(), addr.port());
        let attempts = self.attempts.get(&key).map_or(0, |a| a.0);
        self.attempts.insert(key, (attempts + 1, at)); // R:566
        out
    }

    fn disconnected(&mut self, id: NodeId, _at: Duration) {
        // RemovePeer (R:220-224).
        self.peers.remove(&id);
        self.requests_sent.remove(&id);
    }

    fn addrs(&mut self, from: &PeerMeta, addrs: Vec<NetAddress>, at: Duration) -> Vec<Cmd> {
        let mut out = Vec::new();
        // ReceiveAddrs (R:354-389): only if asked; the source is the peer's own NodeInfo
        // address.
        if !self.requests_sent.remove(&from.id) {
            return out;
        }
        let src = from.self_addr;
        for a in addrs {
            self.book.add(a, src, at);
        }
        if self.seeds.contains(&src) {
            self.ensure_peers(false, at, &mut out); // R:378-386
        }
        out
    }

    fn probed(&mut self, _addr: NetAddress, _reached: bool, _at: Duration) -> Vec<Cmd> {
        Vec::new() // Go has no feelers.
    }

    fn restart(&mut self, _at: Duration) {
        // The book is saved on stop and loaded at start (A:497-512, file.go); bans and
        // dial attempts live in memory only.
        self.book.bad.clear();
        self.peers.clear();
        self.dialing.clear();
        self.attempts.clear();
        self.requests_sent.clear();
        self.seed_dialing = false;
        self.next_ensure = None;
    }

    fn entries(&self) -> Vec<(NodeId, bool)> {
        self.book
            .lookup
            .values()
            .map(|ka| (ka.addr.id(), ka.old))
            .collect()
    }
}
