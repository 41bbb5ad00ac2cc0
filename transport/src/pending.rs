//! The pending pool: inbound connections between `accept` and the end of their upgrade
//! (handshake, `NodeInfo` exchange), bounded in total and per netgroup, so that sockets that
//! never finish a handshake cannot keep an honest one waiting.
//!
//! Pure (no clock, no I/O): the accept loop asks [`PendingPool::admit`] for each new
//! socket and acts on the answer; the connection's upgrade task tells the pool when its first
//! read found nothing to read ([`PendingPool::idle`]), when it first read a byte
//! ([`PendingPool::heard`]) and when its upgrade ended ([`PendingPool::remove`]). What the
//! pool cannot know by itself, whether bytes wait unread on a socket at this moment, the
//! accept loop looks at for it when asked ([`Look`], the `look` argument of
//! [`PendingPool::admit`]).
//!
//! The rules:
//! - at most `per_group` connections of one netgroup ([`NetGroup::capped`], IPv4 /16, IPv6
//!   /32) pending at once; addresses that are not routable (loopback, private networks) are
//!   exempt from this cap (local testnets, containers);
//! - at most `capacity` pending in all, and none added when the caller says there is no room
//!   (the transport's bound on open inbound connections is reached);
//! - a newcomer over any bound takes the place of the **oldest silent connection** (of its
//!   group, for the group bound; of the pool, for the others), which is closed. Silent: it
//!   has sent nothing, by both what its upgrade read and what waits on its socket now. A
//!   connection looked at and found with bytes waiting is heard from then on (its task has
//!   not read them yet) and never displaced. A connection that cannot be looked at
//!   ([`Look::Blind`]) is silent only once its upgrade's first read found nothing: until its
//!   task has read, it keeps its place. When no connection is silent, the newcomer is refused
//!   (closed at once: it never waits unanswered in the kernel's backlog).
//!
//! Why the look, and not the first read alone: an honest peer sends its first bytes right
//! after connecting, but a flood of idle sockets from its own netgroup, reopened as fast as
//! they are closed, runs through the group's places faster than upgrade tasks are scheduled.
//! Judged by reads alone, the honest connection was either refused (every place held by a
//! flood socket whose task had not read yet, so not yet idle) or closed as idle (its first
//! read came a moment before its bytes, which then waited unread). Judged by what waits on
//! the sockets, the flood's sockets give way to each other, and the honest one keeps its
//! place once its bytes are in.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;

use mukan_reactor_api::NetGroup;

/// A pending connection's key in the pool.
pub(crate) type Key = u64;

/// What the caller saw on a pending connection's socket when the pool asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// Bytes it sent wait unread.
    Waiting,
    /// Nothing waits (nothing sent, or the peer closed).
    Nothing,
    /// The connection cannot be looked at.
    Blind,
}

/// What to do with a newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Upgrade it under this key.
    Admit(Key),
    /// Close the pending connection `close` (the oldest silent one), then upgrade the
    /// newcomer under `key`.
    Replace {
        /// The connection to close.
        close: Key,
        /// The newcomer's key.
        key: Key,
    },
    /// Close the newcomer at once.
    Refuse(Refused),
}

/// Why a newcomer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its netgroup has `per_group` pending connections, none of them silent.
    GroupFull,
    /// The pool is full and none of its connections is silent.
    PoolFull,
    /// The caller had no room ([`PendingPool::admit`]'s `room`) and no connection in the pool
    /// is silent.
    NoRoom,
}

/// What a pending connection's upgrade has read so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// Its task has not read yet.
    Fresh,
    /// A read found nothing, and nothing came since.
    Idle,
    /// It sent a byte (read, or seen waiting).
    Heard,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// `None` for unroutable addresses (exempt from the group cap).
    group: Option<NetGroup>,
    seen: Seen,
}

/// The pool. Keys increase with admission time, so the smallest key is the oldest.
#[derive(Debug)]
pub(crate) struct PendingPool {
    capacity: usize,
    per_group: usize,
    next: Key,
    entries: BTreeMap<Key, Entry>,
}

impl PendingPool {
    pub(crate) fn new(capacity: NonZeroUsize, per_group: NonZeroUsize) -> Self {
        Self {
            capacity: capacity.get(),
            per_group: per_group.get(),
            next: 0,
            entries: BTreeMap::new(),
        }
    }

    /// Decides about a newcomer from `ip` (see the module docs). With `room == false` the
    /// newcomer may only take a silent connection's place.
    ///
    /// `look(key)` is the caller's look at connection `key`'s socket at this moment. It is
    /// asked only about connections that have not been heard, oldest first, until one is
    /// silent; one found with bytes waiting is heard from then on.
    pub(crate) fn admit(
        &mut self,
        ip: IpAddr,
        room: bool,
        mut look: impl FnMut(Key) -> Look,
    ) -> Admission {
        let group = NetGroup::capped(ip);
        let mut close = None;
        if let Some(g) = group {
            let in_group = self.entries.values().filter(|e| e.group == Some(g)).count();
            if in_group >= self.per_group {
                match self.oldest_silent(|e| e.group == Some(g), &mut look) {
                    Some(k) => close = Some(k),
                    None => return Admission::Refuse(Refused::GroupFull),
                }
            }
        }
        if close.is_none() && (self.entries.len() >= self.capacity || !room) {
            match self.oldest_silent(|_| true, &mut look) {
                Some(k) => close = Some(k),
                None if room => return Admission::Refuse(Refused::PoolFull),
                None => return Admission::Refuse(Refused::NoRoom),
            }
        }
        if let Some(k) = close {
            self.entries.remove(&k);
        }
        let key = self.next;
        self.next += 1;
        self.entries.insert(
            key,
            Entry {
                group,
                seen: Seen::Fresh,
            },
        );
        match close {
            Some(close) => Admission::Replace { close, key },
            None => Admission::Admit(key),
        }
    }

    /// Connection `key` received its first byte: never displaced from now on.
    pub(crate) fn heard(&mut self, key: Key) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.seen = Seen::Heard;
        }
    }

    /// Connection `key`'s first read found nothing to read: it may be displaced until it
    /// sends something.
    pub(crate) fn idle(&mut self, key: Key) {
        if let Some(e) = self.entries.get_mut(&key) {
            if e.seen == Seen::Fresh {
                e.seen = Seen::Idle;
            }
        }
    }

    /// Connection `key` left the pool (its upgrade ended, either way).
    pub(crate) fn remove(&mut self, key: Key) {
        self.entries.remove(&key);
    }

    /// Pending connections.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The oldest connection that `which` selects and that is silent (see the module docs);
    /// those found with bytes waiting on the way are marked heard.
    fn oldest_silent(
        &mut self,
        which: impl Fn(&Entry) -> bool,
        look: &mut impl FnMut(Key) -> Look,
    ) -> Option<Key> {
        for (key, entry) in self.entries.iter_mut() {
            if entry.seen == Seen::Heard || !which(entry) {
                continue;
            }
            match look(*key) {
                Look::Waiting => entry.seen = Seen::Heard,
                Look::Nothing => return Some(*key),
                Look::Blind if entry.seen == Seen::Idle => return Some(*key),
                Look::Blind => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pool(cap: usize, per_group: usize) -> PendingPool {
        PendingPool::new(
            NonZeroUsize::new(cap).unwrap(),
            NonZeroUsize::new(per_group).unwrap(),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The look of a caller that cannot look at its connections (in-memory pipes): judged by
    /// their reads alone.
    fn blind(_: Key) -> Look {
        Look::Blind
    }

    /// Admits `addr` and returns its key (panics on anything but `Admit`).
    fn admitted(p: &mut PendingPool, addr: &str) -> Key {
        match p.admit(ip(addr), true, blind) {
            Admission::Admit(k) => k,
            other => panic!("{addr}: {other:?}"),
        }
    }

    #[test]
    fn idle_sockets_make_room_for_a_newcomer() {
        let mut p = pool(4, 4);
        let keys: Vec<Key> = (0..4)
            .map(|i| admitted(&mut p, &format!("{}.1.1.1", i + 1)))
            .collect();
        // The oldest has spoken; the next oldest idle one gives way.
        p.heard(keys[0]);
        for k in &keys {
            p.idle(*k);
        }
        assert_eq!(
            p.admit(ip("9.9.9.9"), true, blind),
            Admission::Replace {
                close: keys[1],
                key: 4
            }
        );
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn a_connection_not_yet_read_is_never_displaced() {
        let mut p = pool(2, 2);
        let a = admitted(&mut p, "1.1.1.1");
        let b = admitted(&mut p, "2.1.1.1");
        // Neither task has read yet: the newcomer is refused, not given a place.
        assert_eq!(
            p.admit(ip("3.1.1.1"), true, blind),
            Admission::Refuse(Refused::PoolFull)
        );
        // A read that found nothing makes one idle; a later byte makes it heard for good.
        p.idle(b);
        p.heard(a);
        p.idle(a);
        assert_eq!(
            p.admit(ip("3.1.1.1"), true, blind),
            Admission::Replace { close: b, key: 2 }
        );
    }

    #[test]
    fn a_full_pool_of_speaking_handshakes_refuses() {
        let mut p = pool(2, 2);
        for i in 0..2 {
            let k = admitted(&mut p, &format!("{}.1.1.1", i + 1));
            p.heard(k);
        }
        assert_eq!(
            p.admit(ip("9.9.9.9"), true, blind),
            Admission::Refuse(Refused::PoolFull)
        );
        p.remove(0);
        assert_eq!(p.admit(ip("9.9.9.9"), true, blind), Admission::Admit(2));
    }

    #[test]
    fn without_room_a_newcomer_only_replaces_an_idle_connection() {
        let mut p = pool(10, 10);
        let a = admitted(&mut p, "1.1.1.1");
        let b = admitted(&mut p, "2.2.2.2");
        p.heard(a);
        p.idle(b);
        assert_eq!(
            p.admit(ip("3.3.3.3"), false, blind),
            Admission::Replace { close: b, key: 2 }
        );
        p.heard(2);
        assert_eq!(
            p.admit(ip("4.4.4.4"), false, blind),
            Admission::Refuse(Refused::NoRoom)
        );
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn one_group_is_capped_and_replaces_only_its_own() {
        let mut p = pool(100, 3);
        for i in 0..3 {
            let k = admitted(&mut p, &format!("5.5.{i}.1"));
            p.idle(k);
        }
        // Another group's idle socket is older, but the group's own oldest idle goes.
        let other = admitted(&mut p, "7.7.7.7");
        p.idle(other);
        assert_eq!(
            p.admit(ip("5.5.9.9"), true, blind),
            Admission::Replace { close: 0, key: 4 }
        );
        for k in [1, 2, 4] {
            p.heard(k);
        }
        assert_eq!(
            p.admit(ip("5.5.8.8"), true, blind),
            Admission::Refuse(Refused::GroupFull)
        );
        // An IPv6 /64, or another /48 of the same /32, is the same group.
        for i in 0..3 {
            let k = admitted(&mut p, &format!("2a01:4f8:{i}::1"));
            p.idle(k);
        }
        assert!(matches!(
            p.admit(ip("2a01:4f8:ff::1"), true, blind),
            Admission::Replace { .. }
        ));
    }

    /// The A4 race, as the accept loop sees it: a flood of idle sockets from one address
    /// reopens each socket as soon as it is closed, faster than upgrade tasks run, so the
    /// netgroup's places are held by sockets not read yet. An honest peer from the same
    /// address arrives: it takes a silent socket's place (judged by reads alone it was
    /// refused: no socket of the group had been read yet), its bytes come in a little later
    /// while its task has not read them, and the flood keeps coming: the flood's sockets give
    /// way to each other, never the honest one.
    #[test]
    fn an_honest_peer_in_a_flood_from_its_own_address_gets_and_keeps_a_place() {
        let mut p = pool(256, 8);
        // Nothing ever waits on the flood's sockets.
        let mut bytes_in = None;
        let look = |bytes_in: Option<Key>| {
            move |k: Key| {
                if Some(k) == bytes_in {
                    Look::Waiting
                } else {
                    Look::Nothing
                }
            }
        };
        for _ in 0..8 {
            admitted(&mut p, "45.34.1.1");
        }
        let honest = match p.admit(ip("45.34.1.1"), true, look(bytes_in)) {
            Admission::Replace { close: 0, key } => key,
            other => panic!("the honest peer: {other:?}"),
        };
        let mut closed = Vec::new();
        for i in 0..200 {
            if i == 5 {
                // Its bytes are in (before it became the oldest silent socket).
                bytes_in = Some(honest);
            }
            match p.admit(ip("45.34.1.1"), true, look(bytes_in)) {
                Admission::Replace { close, .. } => closed.push(close),
                other => panic!("flood {i}: {other:?}"),
            }
            if i % 3 == 0 {
                // Some flood tasks get to read (and find nothing).
                let newest = p.entries.keys().next_back().copied().unwrap();
                p.idle(newest);
            }
        }
        assert!(!closed.contains(&honest), "the honest peer was closed");
        assert_eq!(p.entries.get(&honest).map(|e| e.seen), Some(Seen::Heard));
        assert_eq!(p.len(), 8);
        // Heard for good: not looked at any more.
        let asked = std::cell::Cell::new(false);
        let _ = p.admit(ip("45.34.1.1"), true, |k| {
            asked.set(asked.get() || k == honest);
            Look::Nothing
        });
        assert!(!asked.get());
    }

    /// An idle connection (its first read found nothing) whose bytes came since, unread: seen
    /// waiting, it keeps its place and the next silent one goes; a blind look leaves it idle.
    #[test]
    fn a_connection_with_bytes_waiting_is_heard_not_displaced() {
        let mut p = pool(100, 3);
        for i in 0..3 {
            let k = admitted(&mut p, &format!("5.5.{i}.1"));
            p.idle(k);
        }
        assert_eq!(
            p.admit(ip("5.5.9.9"), true, |k| if k == 0 {
                Look::Waiting
            } else {
                Look::Nothing
            }),
            Admission::Replace { close: 1, key: 3 }
        );
        assert_eq!(p.entries.get(&0).map(|e| e.seen), Some(Seen::Heard));
        // Bytes wait on every one: none is closed, each was looked at once, in age order.
        let mut asked = Vec::new();
        let answer = p.admit(ip("5.5.9.9"), true, |k| {
            asked.push(k);
            Look::Waiting
        });
        assert_eq!(answer, Admission::Refuse(Refused::GroupFull));
        assert_eq!(asked, vec![2, 3]);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn unroutable_addresses_are_exempt_from_the_group_cap() {
        let mut p = pool(16, 1);
        for a in [
            "10.0.0.1",
            "10.0.0.2",
            "192.168.1.1",
            "192.168.1.2",
            "fd00::1",
            "fd00::2",
        ] {
            let k = admitted(&mut p, a);
            p.idle(k);
        }
        for _ in 0..10 {
            admitted(&mut p, "127.0.0.1");
        }
        // The pool's bound still holds: the oldest idle gives way.
        assert!(matches!(
            p.admit(ip("::1"), true, blind),
            Admission::Replace { close: 0, .. }
        ));
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Group, host, room; which keys have bytes waiting, and which cannot be looked at
        /// (bits `key % 64`).
        Admit(u8, u8, bool, u64, u64),
        Idle(u8),
        Heard(u8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, any::<u8>(), any::<u8>(), any::<u64>(), any::<u64>())
                .prop_map(|(g, h, r, w, b)| Op::Admit(g, h, r % 8 != 0, w & some(r), b | all(r))),
            3 => any::<u8>().prop_map(Op::Idle),
            2 => any::<u8>().prop_map(Op::Heard),
            1 => any::<u8>().prop_map(Op::Remove),
        ]
    }

    /// Some admissions see bytes waiting on a random few connections, most on none.
    fn some(r: u8) -> u64 {
        if r % 3 == 0 { u64::MAX } else { 0 }
    }

    /// Some admissions cannot look at any connection (an in-memory transport).
    fn all(r: u8) -> u64 {
        if r % 5 == 0 { u64::MAX } else { 0 }
    }

    proptest! {
        /// Whatever happens: the pool never holds more than its capacity, no group more than
        /// its cap; only a silent connection is ever closed to make room (never one that sent
        /// something, on which bytes wait, or that cannot be looked at and was not read yet),
        /// and it is the oldest silent one of its scope; one found with bytes waiting is heard
        /// from then on; a refusal means no silent connection existed.
        #[test]
        fn bounds_hold_and_only_idle_sockets_give_way(ops in proptest::collection::vec(op(), 0..300)) {
            let mut p = pool(12, 4);
            let mut live: Vec<Key> = Vec::new();
            for op in ops {
                match op {
                    Op::Admit(g, h, room, bits, blind_bits) => {
                        let ip = IpAddr::from([g + 1, 1, h, 1]);
                        let group = Some(NetGroup::of(ip, false));
                        let before = p.entries.clone();
                        let bit = |b: u64, k: Key| b & (1u64 << (k % 64)) != 0;
                        let look = |k: Key| {
                            if bit(bits, k) {
                                Look::Waiting
                            } else if bit(blind_bits, k) {
                                Look::Blind
                            } else {
                                Look::Nothing
                            }
                        };
                        let free = |k: Key, e: &Entry| match look(k) {
                            Look::Waiting => false,
                            Look::Nothing => e.seen != Seen::Heard,
                            Look::Blind => e.seen == Seen::Idle,
                        };
                        match p.admit(ip, room, look) {
                            Admission::Admit(k) => {
                                prop_assert!(room, "added without room");
                                live.push(k);
                            }
                            Admission::Replace { close, key } => {
                                let e = before.get(&close).copied();
                                prop_assert!(e.is_some_and(|e| free(close, &e)), "closed a socket that was not idle");
                                prop_assert!(!room || before.len() >= 12
                                    || before.values().filter(|e| e.group == group).count() >= 4,
                                    "replaced with room to spare");
                                let scope_full = before.values().filter(|e| e.group == group).count() >= 4;
                                let older_idle = before.iter().any(|(k, o)| *k < close && free(*k, o)
                                    && (!scope_full || o.group == group));
                                prop_assert!(!older_idle, "not the oldest idle");
                                live.retain(|k| *k != close);
                                live.push(key);
                            }
                            Admission::Refuse(Refused::GroupFull) => {
                                prop_assert!(!before.iter().any(|(k, e)| e.group == group && free(*k, e)));
                            }
                            Admission::Refuse(Refused::PoolFull) => {
                                prop_assert!(room && before.len() >= 12);
                                prop_assert!(!before.iter().any(|(k, e)| free(*k, e)));
                            }
                            Admission::Refuse(Refused::NoRoom) => {
                                prop_assert!(!room);
                                prop_assert!(!before.iter().any(|(k, e)| free(*k, e)));
                            }
                        }
                        // Only a socket with bytes waiting turns heard.
                        for (k, e) in &p.entries {
                            if before.get(k).is_some_and(|b| b.seen != Seen::Heard) && e.seen == Seen::Heard {
                                prop_assert_eq!(look(*k), Look::Waiting, "{} heard without bytes", k);
                            }
                        }
                    }
                    Op::Idle(i) => {
                        if let Some(k) = live.get(usize::from(i) % live.len().max(1)) {
                            let was = p.entries.get(k).map(|e| e.seen);
                            p.idle(*k);
                            if was == Some(Seen::Heard) {
                                prop_assert_eq!(p.entries.get(k).map(|e| e.seen), Some(Seen::Heard), "heard is for good");
                            }
                        }
                    }
                    Op::Heard(i) => {
                        if let Some(k) = live.get(usize::from(i) % live.len().max(1)) {
                            p.heard(*k);
                        }
                    }
                    Op::Remove(i) => {
                        if !live.is_empty() {
                            let k = live.remove(usize::from(i) % live.len());
                            p.remove(k);
                        }
                    }
                }
                prop_assert!(p.len() <= 12);
                let mut per: BTreeMap<NetGroup, usize> = BTreeMap::new();
                for e in p.entries.values() {
                    if let Some(g) = e.group {
                        *per.entry(g).or_default() += 1;
                    }
                }
                prop_assert!(per.values().all(|n| *n <= 4), "{per:?}");
                prop_assert_eq!(p.len(), live.len());
            }
        }
    }
}
