//! [`AddrBook`]: buckets, add rules, good/bad marking and bans (Go `p2p/pex/addrbook.go`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use mukan_reactor_api::NodeId;
use mukan_reactor_api::{AddAddressError, AddressBook, NetAddress};
use rand::{Rng, RngCore};

use crate::group::Placement;
use crate::known_address::{KnownAddress, MAX_NEW_BUCKETS_PER_ADDRESS};

pub use crate::known_address::Kind as BucketKind;

/// Number of new buckets (Go `newBucketCount`).
pub const NEW_BUCKET_COUNT: usize = 256;
/// Number of old buckets (Go `oldBucketCount`).
pub const OLD_BUCKET_COUNT: usize = 64;
/// Capacity of every bucket (Go `newBucketSize` = `oldBucketSize`); never exceeded.
pub const BUCKET_SIZE: usize = 64;

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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            strict: true,
            max_file_size: 64 << 20,
            skip_invalid_entries: false,
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
    /// Banned entries, out of the buckets until their ban ends.
    pub(crate) banned: BTreeMap<NodeId, KnownAddress>,
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
            banned: BTreeMap::new(),
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

    /// Number of banned entries (expired or not) awaiting reinstatement.
    pub fn banned_count(&self) -> usize {
        self.banned.len()
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
                if sorted.windows(2).any(|w| w[0] == w[1]) {
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
            if self.banned.contains_key(&id) {
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
        if self.new_buckets[bucket].contains(&id) {
            return;
        }
        if self.new_buckets[bucket].len() >= BUCKET_SIZE {
            self.expire_new(bucket, now);
        }
        let Some(ka) = self.entry_mut(&id) else {
            return;
        };
        if ka.kind != BucketKind::New || !ka.add_bucket(idx) {
            return;
        }
        let first = ka.buckets().len() == 1;
        self.new_buckets[bucket].push(id);
        if first {
            self.n_new += 1;
        }
    }

    /// Removes `id` from one bucket; an entry left in no bucket leaves the book.
    fn remove_from_bucket(&mut self, id: NodeId, kind: BucketKind, idx: usize) {
        let bucket = &mut self.buckets_mut(kind)[idx];
        if let Some(pos) = bucket.iter().position(|x| *x == id) {
            bucket.swap_remove(pos);
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
            let bucket = &mut self.buckets_mut(kind)[usize::from(b)];
            if let Some(pos) = bucket.iter().position(|x| *x == id) {
                bucket.swap_remove(pos);
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
        let bad = self.new_buckets[idx]
            .iter()
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
        if self.old_buckets[bucket].len() >= BUCKET_SIZE {
            if let Some(victim) = self.oldest_in(BucketKind::Old, bucket) {
                self.demote(victim, now);
            }
        }
        if let Some(ka) = self.entry_mut(&id) {
            ka.kind = BucketKind::Old;
            ka.add_bucket(idx);
            self.old_buckets[bucket].push(id);
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
                if self.old_buckets[usize::from(idx)].len() < BUCKET_SIZE {
                    if let Some(ka) = self.entry_mut(&id) {
                        ka.add_bucket(idx);
                    }
                    self.old_buckets[usize::from(idx)].push(id);
                    self.n_old += 1;
                    return;
                }
                if let Some(ka) = self.entry_mut(&id) {
                    ka.kind = BucketKind::New;
                }
            }
            BucketKind::New => {
                for idx in listed {
                    if self.new_buckets[usize::from(idx)].len() < BUCKET_SIZE {
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
        if let Err(reason) = addr.valid() {
            return Err(AddAddressError::Invalid { addr, reason });
        }
        let id = addr.id();
        if let Some(bad) = self.banned.get(&id) {
            if bad.is_banned(now) {
                return Err(AddAddressError::Banned(addr));
            }
            if let Some(ka) = self.banned.remove(&id) {
                self.reinstate(ka, now);
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
            self.insert_entry(KnownAddress::new(addr, src, now));
        }
        let idx = self.placement.new_bucket(&addr, &src);
        self.add_to_new_bucket(id, idx, now);
        if self.entry(&id).is_some_and(|ka| ka.buckets().is_empty()) {
            self.remove_entry(&id);
        }
        Ok(())
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

    fn mark_good(&mut self, id: NodeId, now: SystemTime) {
        let Some(ka) = self.entry_mut(&id) else {
            return;
        };
        ka.mark_good(now);
        if ka.kind == BucketKind::New {
            self.move_to_old(id, now);
        }
    }

    fn mark_attempt(&mut self, addr: &NetAddress, now: SystemTime) {
        if let Some(ka) = self.entry_mut(&addr.id()) {
            ka.mark_attempt(now);
        }
    }

    /// Go `MarkBad`; a second ban of a banned ID extends it to the later end.
    fn mark_bad(&mut self, addr: &NetAddress, ban: Duration, now: SystemTime) {
        let id = addr.id();
        if let Some(bad) = self.banned.get_mut(&id) {
            bad.ban(ban, now);
            return;
        }
        self.remove_from_all_buckets(id);
        if let Some(mut ka) = self.remove_entry(&id) {
            ka.ban(ban, now);
            self.banned.insert(id, ka);
        }
    }

    /// Go `ReinstateBadPeers`, following the spec for formerly good entries: they come back
    /// as new (Go loses them).
    fn reinstate_bad_peers(&mut self, now: SystemTime) {
        let expired: Vec<NodeId> = self
            .banned
            .iter()
            .filter(|(_, ka)| !ka.is_banned(now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(ka) = self.banned.remove(&id) {
                self.reinstate(ka, now);
            }
        }
    }

    fn is_good(&self, addr: &NetAddress) -> bool {
        self.entry(&addr.id())
            .is_some_and(|ka| ka.kind == BucketKind::Old)
    }

    fn is_banned(&self, addr: &NetAddress, now: SystemTime) -> bool {
        self.banned
            .get(&addr.id())
            .is_some_and(|ka| ka.is_banned(now))
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
