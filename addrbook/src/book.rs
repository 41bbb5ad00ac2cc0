//! [`AddrBook`]: buckets, add rules, good/bad marking and bans (Go `p2p/pex/addrbook.go`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use mukan_reactor_api::NodeId;
use mukan_reactor_api::{AddAddressError, AddressBook, NetAddress};
use rand::{Rng, RngCore};

use crate::bans::{Ban, BanList};
use crate::group::Placement;
use crate::known_address::{KnownAddress, MAX_NEW_BUCKETS_PER_ADDRESS};

pub use crate::known_address::Kind as BucketKind;

/// Number of new buckets (Go `newBucketCount`).
pub const NEW_BUCKET_COUNT: usize = 256;
/// Number of old buckets (Go `oldBucketCount`).
pub const OLD_BUCKET_COUNT: usize = 64;
/// Capacity of every bucket (Go `newBucketSize` = `oldBucketSize`); never exceeded.
pub const BUCKET_SIZE: usize = 64;
/// Default of [`Config::max_bans`].
pub const DEFAULT_MAX_BANS: usize = 10_000;
/// At most this many promotions wait for a test of the old entry they would evict (Bitcoin
/// Core `ADDRMAN_SET_TRIED_COLLISION_SIZE`); further colliding promotions stay new.
pub const MAX_TRIED_COLLISIONS: usize = 10;
/// A resident old entry that succeeded within this is kept over a colliding promotion
/// (Bitcoin Core `ADDRMAN_REPLACEMENT`).
pub const REPLACEMENT_WINDOW: Duration = Duration::from_secs(4 * 3600);
/// A collision whose resident was not tested within this after the newcomer's success is
/// settled in the newcomer's favour (Bitcoin Core `ADDRMAN_TEST_WINDOW`).
pub const TEST_WINDOW: Duration = Duration::from_secs(40 * 60);
/// A test of a resident is taken as finished (and failed, without a success) this long after
/// it was attempted.
const TEST_GRACE: Duration = Duration::from_secs(60);

/// Settings of an [`AddrBook`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `addr_book_strict`: refuse non-routable addresses and group local / unroutable ones
    /// together (default `true`, as CometBFT).
    pub strict: bool,
    /// Files larger than this are not read (default 64 MiB; a full book of 20,480 entries
    /// plus bans is about 12 MiB).
    pub max_file_size: u64,
    /// Skip unusable entries of `addrbook.json` (invalid IDs or IPs, bucket indexes out of
    /// range, duplicates) instead of rejecting the whole file (default `false`).
    pub skip_invalid_entries: bool,
    /// At most this many bans are kept (default [`DEFAULT_MAX_BANS`], 10,000); past it the
    /// ban that ends first is dropped. Bans are kept apart from the address table, so an
    /// attacker with fresh keys cannot grow the book (or `addrbook.json`) by getting banned.
    pub max_bans: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            strict: true,
            max_file_size: 64 << 20,
            skip_invalid_entries: false,
            max_bans: DEFAULT_MAX_BANS,
        }
    }
}

impl Config {
    /// The default settings with `strict` set.
    pub fn with_strict(strict: bool) -> Self {
        Self {
            strict,
            ..Self::default()
        }
    }
}

/// The address book: 256 new and 64 old buckets of at most 64 addresses each, placed by a
/// keyed hash of the address and source groups (see the crate docs).
///
/// Sans-IO: time is passed to each operation, randomness comes from the RNG given to
/// [`AddrBook::new`], and the file is read or written only by [`AddrBook::load`] and
/// [`AddrBook::save`], when the owner calls them.
pub struct AddrBook {
    pub(crate) config: Config,
    pub(crate) rng: Box<dyn RngCore + Send>,
    pub(crate) placement: Placement,
    /// Every stored entry (new and old), densely packed; `index` maps IDs to slots. The
    /// order is deterministic for a given sequence of operations.
    pub(crate) slots: Vec<KnownAddress>,
    pub(crate) index: HashMap<NodeId, usize>,
    pub(crate) new_buckets: Vec<Vec<NodeId>>,
    pub(crate) old_buckets: Vec<Vec<NodeId>>,
    pub(crate) n_new: usize,
    pub(crate) n_old: usize,
    /// Bans, out of the buckets until they end; bounded by `config.max_bans`.
    pub(crate) banned: BanList,
    /// Promotions waiting for a test of the old entry they would evict (test-before-evict).
    collisions: Vec<Collision>,
    our_addrs: HashSet<NetAddress>,
    private_ids: HashSet<NodeId>,
}

impl AddrBook {
    /// An empty book; its key (persisted as `"key"`) is drawn from `rng`.
    pub fn new(config: Config, mut rng: impl RngCore + Send + 'static) -> Self {
        let mut key = [0u8; 12];
        rng.fill_bytes(&mut key);
        let placement = Placement::new(hex::encode(key), config.strict);
        Self {
            config,
            rng: Box::new(rng),
            placement,
            slots: Vec::new(),
            index: HashMap::new(),
            new_buckets: vec![Vec::new(); NEW_BUCKET_COUNT],
            old_buckets: vec![Vec::new(); OLD_BUCKET_COUNT],
            n_new: 0,
            n_old: 0,
            banned: BanList::default(),
            collisions: Vec::new(),
            our_addrs: HashSet::new(),
            private_ids: HashSet::new(),
        }
    }

    /// The book's key (24 hex characters for a key we generated).
    pub fn key(&self) -> &str {
        self.placement.key()
    }

    /// Number of addresses in new buckets.
    pub fn new_count(&self) -> usize {
        self.n_new
    }

    /// Number of addresses in old buckets.
    pub fn old_count(&self) -> usize {
        self.n_old
    }

    /// Number of bans kept (ended or not, until dropped or reinstated); at most
    /// [`Config::max_bans`].
    pub fn banned_count(&self) -> usize {
        self.banned.len()
    }

    /// Promotions waiting for the test of the old entry they would evict
    /// ([`AddressBook::tried_collision`]).
    pub fn pending_collisions(&self) -> usize {
        self.collisions.len()
    }

    /// Whether the stored address with this ID is a self-reported one we have not reached
    /// yet (never served to others).
    pub fn is_unverified(&self, id: &NodeId) -> bool {
        self.entry(id).is_some_and(|ka| ka.unverified)
    }

    /// The stored address with this ID.
    pub fn address(&self, id: &NodeId) -> Option<NetAddress> {
        self.entry(id).map(|ka| ka.addr)
    }

    /// The kind and indexes of the buckets holding `id`.
    pub fn buckets_of(&self, id: &NodeId) -> Option<(BucketKind, Vec<u16>)> {
        self.entry(id).map(|ka| (ka.kind, ka.buckets().to_vec()))
    }

    /// The IDs in one bucket.
    pub fn bucket(&self, kind: BucketKind, idx: usize) -> &[NodeId] {
        match kind {
            BucketKind::New => self.new_buckets.get(idx).map_or(&[], Vec::as_slice),
            BucketKind::Old => self.old_buckets.get(idx).map_or(&[], Vec::as_slice),
        }
    }

    /// All stored addresses, in storage order.
    pub fn addresses(&self) -> impl Iterator<Item = NetAddress> + '_ {
        self.slots.iter().map(|ka| ka.addr)
    }

    /// Checks every structural invariant (bucket capacity, new/old exclusivity, at most 4
    /// new buckets, exactly one old, counts, lookup ⇔ buckets, no banned ID stored), as
    /// Bitcoin Core's `-checkaddrman`. Meant for tests and fuzzing.
    ///
    /// # Errors
    /// A description of the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (kind, buckets) in [
            (BucketKind::New, &self.new_buckets),
            (BucketKind::Old, &self.old_buckets),
        ] {
            for (idx, bucket) in buckets.iter().enumerate() {
                if bucket.len() > BUCKET_SIZE {
                    return Err(format!("{kind:?} bucket {idx} holds {}", bucket.len()));
                }
                let mut sorted = bucket.clone();
                sorted.sort_unstable();
                if sorted.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
                    return Err(format!("{kind:?} bucket {idx} holds an ID twice"));
                }
                for id in bucket {
                    let Some(ka) = self.entry(id) else {
                        return Err(format!("{kind:?} bucket {idx} holds unknown {id}"));
                    };
                    if ka.kind != kind || !ka.has_bucket(idx as u16) {
                        return Err(format!("{id} in {kind:?} bucket {idx} disagrees"));
                    }
                }
            }
        }
        let (mut n_new, mut n_old) = (0, 0);
        for (slot, ka) in self.slots.iter().enumerate() {
            let id = ka.addr.id();
            if self.index.get(&id) != Some(&slot) {
                return Err(format!("index of {id} is not slot {slot}"));
            }
            let count = ka.buckets().len();
            match ka.kind {
                BucketKind::New if (1..=MAX_NEW_BUCKETS_PER_ADDRESS).contains(&count) => n_new += 1,
                BucketKind::Old if count == 1 => n_old += 1,
                kind => return Err(format!("{id} is {kind:?} in {count} buckets")),
            }
            for &b in ka.buckets() {
                if !self.bucket(ka.kind, usize::from(b)).contains(&id) {
                    return Err(format!(
                        "{id} lists {:?} bucket {b} but is not in it",
                        ka.kind
                    ));
                }
            }
            if self.banned.contains(&id) {
                return Err(format!("{id} is both stored and banned"));
            }
        }
        if self.index.len() != self.slots.len() {
            return Err("index and slots differ in length".into());
        }
        if (n_new, n_old) != (self.n_new, self.n_old) {
            return Err(format!(
                "counts new {}/{} old {}/{}",
                self.n_new, n_new, self.n_old, n_old
            ));
        }
        Ok(())
    }

    pub(crate) fn entry(&self, id: &NodeId) -> Option<&KnownAddress> {
        self.index.get(id).and_then(|&slot| self.slots.get(slot))
    }

    fn entry_mut(&mut self, id: &NodeId) -> Option<&mut KnownAddress> {
        self.index
            .get(id)
            .and_then(|&slot| self.slots.get_mut(slot))
    }

    pub(crate) fn insert_entry(&mut self, ka: KnownAddress) {
        self.index.insert(ka.addr.id(), self.slots.len());
        self.slots.push(ka);
    }

    pub(crate) fn remove_entry(&mut self, id: &NodeId) -> Option<KnownAddress> {
        let slot = self.index.remove(id)?;
        let ka = self.slots.swap_remove(slot);
        if let Some(moved) = self.slots.get(slot) {
            self.index.insert(moved.addr.id(), slot);
        }
        Some(ka)
    }

    fn buckets_mut(&mut self, kind: BucketKind) -> &mut Vec<Vec<NodeId>> {
        match kind {
            BucketKind::New => &mut self.new_buckets,
            BucketKind::Old => &mut self.old_buckets,
        }
    }

    /// Puts the stored new entry `id` into new bucket `idx`, expiring a bad or the oldest
    /// entry first when the bucket is full (Go `addToNewBucket`, without its 65th slot).
    pub(crate) fn add_to_new_bucket(&mut self, id: NodeId, idx: u16, now: SystemTime) {
        let bucket = usize::from(idx);
        let Some(held) = self.new_buckets.get(bucket) else {
            return;
        };
        if held.contains(&id) {
            return;
        }
        if held.len() >= BUCKET_SIZE {
            self.expire_new(bucket, now);
        }
        let Some(ka) = self.entry_mut(&id) else {
            return;
        };
        if ka.kind != BucketKind::New || !ka.add_bucket(idx) {
            return;
        }
        let first = ka.buckets().len() == 1;
        if let Some(held) = self.new_buckets.get_mut(bucket) {
            held.push(id);
        }
        if first {
            self.n_new += 1;
        }
    }

    /// Removes `id` from one bucket; an entry left in no bucket leaves the book.
    fn remove_from_bucket(&mut self, id: NodeId, kind: BucketKind, idx: usize) {
        if let Some(bucket) = self.buckets_mut(kind).get_mut(idx) {
            if let Some(pos) = bucket.iter().position(|x| *x == id) {
                bucket.swap_remove(pos);
            }
        }
        let Some(ka) = self.entry_mut(&id) else {
            return;
        };
        if !ka.remove_bucket(idx as u16) || !ka.buckets().is_empty() {
            return;
        }
        match kind {
            BucketKind::New => self.n_new -= 1,
            BucketKind::Old => self.n_old -= 1,
        }
        self.remove_entry(&id);
    }

    /// Takes `id` out of all its buckets, keeping the entry (the caller decides its fate).
    fn remove_from_all_buckets(&mut self, id: NodeId) {
        let Some(ka) = self.entry_mut(&id) else {
            return;
        };
        let kind = ka.kind;
        let held: Vec<u16> = ka.buckets().to_vec();
        ka.clear_buckets();
        if held.is_empty() {
            return;
        }
        for b in held {
            if let Some(bucket) = self.buckets_mut(kind).get_mut(usize::from(b)) {
                if let Some(pos) = bucket.iter().position(|x| *x == id) {
                    bucket.swap_remove(pos);
                }
            }
        }
        match kind {
            BucketKind::New => self.n_new -= 1,
            BucketKind::Old => self.n_old -= 1,
        }
    }

    /// The entry of the bucket with the oldest last attempt (never attempted counts oldest).
    fn oldest_in(&self, kind: BucketKind, idx: usize) -> Option<NodeId> {
        self.bucket(kind, idx)
            .iter()
            .filter_map(|id| self.entry(id))
            .min_by_key(|ka| ka.last_attempt)
            .map(|ka| ka.addr.id())
    }

    /// Go `expireNew`: drop the first bad entry of the bucket, else the oldest.
    fn expire_new(&mut self, idx: usize, now: SystemTime) {
        let bad = (self.bucket(BucketKind::New, idx).iter())
            .copied()
            .find(|id| self.entry(id).is_some_and(|ka| ka.is_bad(now)));
        if let Some(victim) = bad.or_else(|| self.oldest_in(BucketKind::New, idx)) {
            self.remove_from_bucket(victim, BucketKind::New, idx);
        }
    }

    /// Go `moveToOld`, following the spec when the old bucket is full: its oldest entry is
    /// demoted to a new bucket (Go drops it from the book).
    fn move_to_old(&mut self, id: NodeId, now: SystemTime) {
        let Some(ka) = self.entry(&id) else { return };
        if ka.kind != BucketKind::New {
            return;
        }
        let addr = ka.addr;
        self.remove_from_all_buckets(id);
        let idx = self.placement.old_bucket(&addr);
        let bucket = usize::from(idx);
        if self.bucket(BucketKind::Old, bucket).len() >= BUCKET_SIZE {
            if let Some(victim) = self.oldest_in(BucketKind::Old, bucket) {
                self.demote(victim, now);
            }
        }
        if let Some(ka) = self.entry_mut(&id) {
            ka.kind = BucketKind::Old;
            ka.add_bucket(idx);
            if let Some(held) = self.old_buckets.get_mut(bucket) {
                held.push(id);
            }
            self.n_old += 1;
        }
    }

    /// An old entry goes back to a new bucket.
    fn demote(&mut self, id: NodeId, now: SystemTime) {
        self.remove_from_all_buckets(id);
        let Some(ka) = self.entry_mut(&id) else {
            return;
        };
        ka.kind = BucketKind::New;
        let (addr, src) = (ka.addr, ka.src);
        let idx = self.placement.new_bucket(&addr, &src);
        self.add_to_new_bucket(id, idx, now);
        // The new bucket may have been full of entries that are all kept; an entry in no
        // bucket must not stay in the book.
        if self.entry(&id).is_some_and(|ka| ka.buckets().is_empty()) {
            self.remove_entry(&id);
        }
    }

    /// Puts a banned entry whose ban ended back into a new bucket.
    fn reinstate(&mut self, mut ka: KnownAddress, now: SystemTime) {
        let id = ka.addr.id();
        if self.index.contains_key(&id) {
            return;
        }
        ka.kind = BucketKind::New;
        ka.clear_buckets();
        let idx = self.placement.new_bucket(&ka.addr, &ka.src);
        self.insert_entry(ka);
        self.add_to_new_bucket(id, idx, now);
        if self.entry(&id).is_some_and(|ka| ka.buckets().is_empty()) {
            self.remove_entry(&id);
        }
    }

    /// Clears everything loaded from a file (keeps config, RNG, our addresses, private IDs).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.new_buckets.iter_mut().for_each(Vec::clear);
        self.old_buckets.iter_mut().for_each(Vec::clear);
        self.n_new = 0;
        self.n_old = 0;
        self.banned.clear();
        self.collisions.clear();
    }

    /// Records a ban (bounded: the ban that ends first goes when over `max_bans`).
    pub(crate) fn insert_ban(&mut self, ka: KnownAddress, ban_only: bool) {
        let cap = self.config.max_bans;
        self.banned.insert(Ban { ka, ban_only }, cap);
    }

    /// `add_address` and `add_unverified_address`: Go's checks in Go's order, then the add.
    fn add_checked(
        &mut self,
        addr: NetAddress,
        src: NetAddress,
        now: SystemTime,
        unverified: bool,
    ) -> Result<(), AddAddressError> {
        if let Err(reason) = addr.valid() {
            return Err(AddAddressError::Invalid { addr, reason });
        }
        let id = addr.id();
        if let Some(ban) = self.banned.get(&id) {
            if ban.until() > now {
                return Err(AddAddressError::Banned(addr));
            }
            if let Some(ban) = self.banned.remove(&id) {
                if !ban.ban_only {
                    self.reinstate(ban.ka, now);
                }
            }
        }
        if self.private_ids.contains(&id) {
            return Err(AddAddressError::Private(addr));
        }
        if self.private_ids.contains(&src.id()) {
            return Err(AddAddressError::PrivateSource(src));
        }
        if self.our_addrs.contains(&addr) {
            return Err(AddAddressError::OwnAddress(addr));
        }
        if self.config.strict && !addr.routable() {
            return Err(AddAddressError::NonRoutable(addr));
        }
        if let Some(ka) = self.entry(&id) {
            // A known ID keeps its first address; a new one only adds a bucket reference.
            if ka.kind == BucketKind::Old {
                return Ok(());
            }
            let refs = ka.buckets().len();
            if refs >= MAX_NEW_BUCKETS_PER_ADDRESS {
                return Ok(());
            }
            // Go: `rand.Int31n(2 * len(Buckets)) != 0` → keep as is (1/2, 1/4, 1/6).
            if refs > 0 && self.rng.gen_range(0..2 * refs) != 0 {
                return Ok(());
            }
        } else {
            let mut ka = KnownAddress::new(addr, src, now);
            ka.unverified = unverified;
            self.insert_entry(ka);
        }
        let idx = self.placement.new_bucket(&addr, &src);
        self.add_to_new_bucket(id, idx, now);
        if self.entry(&id).is_some_and(|ka| ka.buckets().is_empty()) {
            self.remove_entry(&id);
        }
        Ok(())
    }

    /// Settles one collision; `true` when it is settled (to be forgotten).
    fn settle(&mut self, c: &mut Collision, now: SystemTime) -> bool {
        let Some(cand) = self.entry(&c.candidate) else {
            return true;
        };
        if cand.kind != BucketKind::New {
            return true;
        }
        let cand_success = cand.last_success;
        let bucket = usize::from(self.placement.old_bucket(&cand.addr));
        if self.bucket(BucketKind::Old, bucket).len() < BUCKET_SIZE {
            self.move_to_old(c.candidate, now);
            return true;
        }
        let resident = self
            .entry(&c.resident)
            .filter(|r| r.kind == BucketKind::Old && r.has_bucket(bucket as u16));
        let Some(r) = resident else {
            // The resident left (or moved): test whoever is the oldest there now.
            if let Some(oldest) = self.oldest_in(BucketKind::Old, bucket) {
                c.resident = oldest;
            }
            return false;
        };
        let since = |t: Option<SystemTime>| t.and_then(|t| now.duration_since(t).ok());
        let within = |t: Option<SystemTime>, d: Duration| {
            t.is_some_and(|t| t >= now || since(Some(t)).is_some_and(|a| a < d))
        };
        let replace = if within(r.last_success, REPLACEMENT_WINDOW) {
            // Alive recently enough: keep the resident.
            false
        } else if within(r.last_attempt, REPLACEMENT_WINDOW) {
            // Tried recently without success: replace once the test had time to finish.
            if since(r.last_attempt).is_some_and(|a| a > TEST_GRACE) {
                true
            } else {
                return false;
            }
        } else if since(cand_success).is_some_and(|a| a > TEST_WINDOW) {
            // Never tested in the window: the newcomer wins (Bitcoin Core does the same).
            true
        } else {
            return false;
        };
        if replace {
            let resident = c.resident;
            self.demote(resident, now);
            self.move_to_old(c.candidate, now);
        }
        true
    }

    /// Places an entry read from a file: into the listed buckets while they have room,
    /// otherwise where the hash puts it.
    pub(crate) fn place_loaded(&mut self, mut ka: KnownAddress, now: SystemTime) {
        let id = ka.addr.id();
        let listed: Vec<u16> = ka.buckets().to_vec();
        ka.clear_buckets();
        let kind = ka.kind;
        self.insert_entry(ka);
        match kind {
            BucketKind::Old => {
                let idx = listed.first().copied().unwrap_or_else(|| {
                    self.entry(&id)
                        .map_or(0, |ka| self.placement.old_bucket(&ka.addr))
                });
                let has_room = (self.old_buckets.get(usize::from(idx)))
                    .is_some_and(|held| held.len() < BUCKET_SIZE);
                if has_room {
                    if let Some(ka) = self.entry_mut(&id) {
                        ka.add_bucket(idx);
                    }
                    if let Some(held) = self.old_buckets.get_mut(usize::from(idx)) {
                        held.push(id);
                    }
                    self.n_old += 1;
                    return;
                }
                if let Some(ka) = self.entry_mut(&id) {
                    ka.kind = BucketKind::New;
                }
            }
            BucketKind::New => {
                for idx in listed {
                    let has_room = (self.new_buckets.get(usize::from(idx)))
                        .is_some_and(|held| held.len() < BUCKET_SIZE);
                    if has_room {
                        self.add_to_new_bucket(id, idx, now);
                    }
                }
            }
        }
        if self.entry(&id).is_some_and(|ka| ka.buckets().is_empty()) {
            if let Some((addr, src)) = self.entry(&id).map(|ka| (ka.addr, ka.src)) {
                let idx = self.placement.new_bucket(&addr, &src);
                self.add_to_new_bucket(id, idx, now);
            }
            if self.entry(&id).is_some_and(|ka| ka.buckets().is_empty()) {
                self.remove_entry(&id);
            }
        }
    }

    /// Size of a selection for a book of `size` (Go `GetSelection`).
    pub(crate) fn selection_size(size: usize) -> usize {
        (MAX_GET_SELECTION)
            .min((MIN_GET_SELECTION.min(size)).max(size * GET_SELECTION_PERCENT / 100))
    }

    pub(crate) fn random_index(&mut self, len: usize) -> usize {
        self.rng.gen_range(0..len)
    }
}

/// A promotion waiting for a test of the old entry it would evict.
#[derive(Debug, Clone, Copy)]
struct Collision {
    candidate: NodeId,
    resident: NodeId,
}

/// Go `getSelectionPercent`.
const GET_SELECTION_PERCENT: usize = 23;
/// Go `minGetSelection`.
const MIN_GET_SELECTION: usize = 32;
/// Go `maxGetSelection`.
const MAX_GET_SELECTION: usize = 250;

impl AddressBook for AddrBook {
    fn add_our_address(&mut self, addr: NetAddress) {
        self.our_addrs.insert(addr);
    }

    fn our_address(&self, addr: &NetAddress) -> bool {
        self.our_addrs.contains(addr)
    }

    fn add_private_ids(&mut self, ids: &[NodeId]) {
        self.private_ids.extend(ids.iter().copied());
    }

    /// Go `addAddress`. One deviation: a ban that has ended at `now` is lifted here (the
    /// entry is reinstated first) instead of refusing the address until the next
    /// [`reinstate_bad_peers`](AddressBook::reinstate_bad_peers).
    fn add_address(
        &mut self,
        addr: NetAddress,
        src: NetAddress,
        now: SystemTime,
    ) -> Result<(), AddAddressError> {
        self.add_checked(addr, src, now, false)
    }

    /// As [`add_address`](AddressBook::add_address), but a new entry is marked unverified:
    /// dialable, never in [`selection`](AddressBook::selection) nor
    /// [`selection_with_bias`](AddressBook::selection_with_bias) until
    /// [`mark_good`](AddressBook::mark_good). The mark is saved (`"mukan_unverified": true`
    /// in the entry, which Go ignores).
    fn add_unverified_address(
        &mut self,
        addr: NetAddress,
        src: NetAddress,
        now: SystemTime,
    ) -> Result<(), AddAddressError> {
        self.add_checked(addr, src, now, true)
    }

    fn remove_address(&mut self, addr: &NetAddress) {
        let id = addr.id();
        self.remove_from_all_buckets(id);
        self.remove_entry(&id);
    }

    fn has_address(&self, addr: &NetAddress) -> bool {
        self.index.contains_key(&addr.id())
    }

    fn size(&self) -> usize {
        self.n_new + self.n_old
    }

    fn pick_address(&mut self, bias_towards_new: u8) -> Option<NetAddress> {
        crate::selection::pick_address(self, bias_towards_new)
    }

    /// Go `MarkGood`, with Bitcoin Core's test-before-evict: when the old bucket the entry
    /// belongs in is full, it stays new (marked good) and the collision waits for a test of
    /// the bucket's oldest entry ([`tried_collision`](AddressBook::tried_collision),
    /// [`resolve_collisions`](AddressBook::resolve_collisions)); at most
    /// [`MAX_TRIED_COLLISIONS`] wait at once.
    fn mark_good(&mut self, id: NodeId, now: SystemTime) {
        let Some(ka) = self.entry_mut(&id) else {
            return;
        };
        ka.mark_good(now);
        if ka.kind != BucketKind::New {
            return;
        }
        let addr = ka.addr;
        let bucket = usize::from(self.placement.old_bucket(&addr));
        if self.bucket(BucketKind::Old, bucket).len() < BUCKET_SIZE {
            self.move_to_old(id, now);
            return;
        }
        if self.collisions.len() >= MAX_TRIED_COLLISIONS
            || self.collisions.iter().any(|c| c.candidate == id)
        {
            return;
        }
        if let Some(resident) = self.oldest_in(BucketKind::Old, bucket) {
            self.collisions.push(Collision {
                candidate: id,
                resident,
            });
        }
    }

    fn tried_collision(&mut self) -> Option<NetAddress> {
        if self.collisions.is_empty() {
            return None;
        }
        let i = self.random_index(self.collisions.len());
        let resident = self.collisions.get(i)?.resident;
        self.address(&resident)
    }

    fn resolve_collisions(&mut self, now: SystemTime) {
        let mut pending = std::mem::take(&mut self.collisions);
        pending.retain_mut(|c| !self.settle(c, now));
        // Settling may have queued nothing new (mark_good is not called), but keep any.
        pending.append(&mut self.collisions);
        self.collisions = pending;
    }

    fn mark_attempt(&mut self, addr: &NetAddress, now: SystemTime) {
        if let Some(ka) = self.entry_mut(&addr.id()) {
            ka.mark_attempt(now);
        }
    }

    /// Go `MarkBad`, with two deviations: a second ban of a banned ID extends it to the
    /// later end, and an ID the table does not hold is banned too (Go ignores it), as a
    /// "ban only" entry that never enters the table. Bans are bounded by
    /// [`Config::max_bans`].
    fn mark_bad(&mut self, addr: &NetAddress, ban: Duration, now: SystemTime) {
        let id = addr.id();
        self.collisions
            .retain(|c| c.candidate != id && c.resident != id);
        if self.index.contains_key(&id) {
            self.remove_from_all_buckets(id);
            if let Some(mut ka) = self.remove_entry(&id) {
                ka.ban(ban, now);
                self.insert_ban(ka, false);
            }
            return;
        }
        let mut ka = match self.banned.get(&id) {
            Some(old) => old.ka.clone(),
            None => KnownAddress::new(*addr, *addr, now),
        };
        let ban_only = self.banned.get(&id).is_none_or(|old| old.ban_only);
        ka.ban(ban, now);
        self.insert_ban(ka, ban_only);
    }

    /// Go `ReinstateBadPeers`, one entry per call: ended "ban only" entries are dropped, and
    /// the first ended ban of an entry that was in the table comes back as new (formerly
    /// good ones too, following the spec; Go loses them). One per call, so that many bans
    /// ending together cannot flood the new buckets at once.
    fn reinstate_bad_peers(&mut self, now: SystemTime) {
        while let Some(ban) = self.banned.pop_ended(now) {
            if ban.ban_only {
                continue;
            }
            self.reinstate(ban.ka, now);
            return;
        }
    }

    fn is_good(&self, addr: &NetAddress) -> bool {
        self.entry(&addr.id())
            .is_some_and(|ka| ka.kind == BucketKind::Old)
    }

    fn is_banned(&self, addr: &NetAddress, now: SystemTime) -> bool {
        self.banned
            .get(&addr.id())
            .is_some_and(|b| b.ka.is_banned(now))
    }

    fn selection(&mut self) -> Vec<NetAddress> {
        crate::selection::selection(self)
    }

    fn selection_with_bias(&mut self, bias_towards_new: u8) -> Vec<NetAddress> {
        crate::selection::selection_with_bias(self, bias_towards_new)
    }
}

/// Two books are equal when they hold the same key, the same entries (with their history)
/// in the same buckets, and the same bans; storage order, RNG and settings are ignored.
impl PartialEq for AddrBook {
    fn eq(&self, other: &Self) -> bool {
        let sorted = |book: &Self| {
            let mut v: Vec<(NodeId, KnownAddress)> = book
                .slots
                .iter()
                .map(|ka| {
                    let mut ka = ka.clone();
                    let mut b = ka.buckets().to_vec();
                    b.sort_unstable();
                    ka.clear_buckets();
                    b.into_iter().for_each(|x| {
                        ka.add_bucket(x);
                    });
                    (ka.addr.id(), ka)
                })
                .collect();
            v.sort_by_key(|(id, _)| *id);
            v
        };
        self.key() == other.key()
            && (self.n_new, self.n_old) == (other.n_new, other.n_old)
            && sorted(self) == sorted(other)
            && self.banned == other.banned
    }
}

impl std::fmt::Debug for AddrBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddrBook")
            .field("new", &self.n_new)
            .field("old", &self.n_old)
            .field("banned", &self.banned.len())
            .finish_non_exhaustive()
    }
}
