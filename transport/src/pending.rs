//! The pending pool: inbound connections between `accept` and the end of their upgrade
//! (handshake, `NodeInfo` exchange), bounded in total and per netgroup, so that sockets that
//! never finish a handshake cannot keep an honest one waiting.
//!
//! Pure (no clock, no I/O): the accept loop asks [`PendingPool::admit`] for each new
//! socket and acts on the answer; the connection's upgrade task tells the pool when its first
//! read found nothing to read ([`PendingPool::idle`]), when it first read a byte
//! ([`PendingPool::heard`]) and when its upgrade ended ([`PendingPool::remove`]).
//!
//! The rules:
//! - at most `per_group` connections of one netgroup ([`NetGroup::capped`], IPv4 /16, IPv6
//!   /32) pending at once; addresses that are not routable (loopback, private networks) are
//!   exempt from this cap (local testnets, containers);
//! - at most `capacity` pending in all, and none added when the caller says there is no room
//!   (the transport's bound on open inbound connections is reached);
//! - a newcomer over any bound takes the place of the **oldest idle connection**: one whose
//!   upgrade found nothing to read and that has sent nothing since (of its group, for the
//!   group bound; of the pool, for the others), which is closed. A connection whose task has
//!   not looked yet is not idle: an honest peer sends its first bytes right after connecting,
//!   and must not lose its place before they are read. When no connection is idle, the
//!   newcomer is refused (closed at once: it never waits unanswered in the kernel's
//!   backlog).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;

use mukan_reactor_api::NetGroup;

/// A pending connection's key in the pool.
pub(crate) type Key = u64;

/// What to do with a newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Upgrade it under this key.
    Admit(Key),
    /// Close the pending connection `close` (the oldest idle one), then upgrade the newcomer
    /// under `key`.
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
    /// Its netgroup has `per_group` pending connections, none of them idle.
    GroupFull,
    /// The pool is full and none of its connections is idle.
    PoolFull,
    /// The caller had no room ([`PendingPool::admit`]'s `room`) and no connection in the pool
    /// is idle.
    NoRoom,
}

/// What a pending connection has shown so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// Its task has not read yet.
    Fresh,
    /// A read found nothing, and nothing came since: may be displaced.
    Idle,
    /// It sent a byte.
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
    /// newcomer may only take an idle connection's place.
    pub(crate) fn admit(&mut self, ip: IpAddr, room: bool) -> Admission {
        let group = NetGroup::capped(ip);
        let mut close = None;
        if let Some(g) = group {
            let in_group = self.entries.values().filter(|e| e.group == Some(g)).count();
            if in_group >= self.per_group {
                match self.oldest_idle(|e| e.group == Some(g)) {
                    Some(k) => close = Some(k),
                    None => return Admission::Refuse(Refused::GroupFull),
                }
            }
        }
        if close.is_none() && (self.entries.len() >= self.capacity || !room) {
            match self.oldest_idle(|_| true) {
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

    fn oldest_idle(&self, which: impl Fn(&Entry) -> bool) -> Option<Key> {
        self.entries
            .iter()
            .find(|(_, e)| e.seen == Seen::Idle && which(e))
            .map(|(k, _)| *k)
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

    /// Admits `addr` and returns its key (panics on anything but `Admit`).
    fn admitted(p: &mut PendingPool, addr: &str) -> Key {
        match p.admit(ip(addr), true) {
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
            p.admit(ip("9.9.9.9"), true),
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
            p.admit(ip("3.1.1.1"), true),
            Admission::Refuse(Refused::PoolFull)
        );
        // A read that found nothing makes one idle; a later byte makes it heard for good.
        p.idle(b);
        p.heard(a);
        p.idle(a);
        assert_eq!(
            p.admit(ip("3.1.1.1"), true),
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
            p.admit(ip("9.9.9.9"), true),
            Admission::Refuse(Refused::PoolFull)
        );
        p.remove(0);
        assert_eq!(p.admit(ip("9.9.9.9"), true), Admission::Admit(2));
    }

    #[test]
    fn without_room_a_newcomer_only_replaces_an_idle_connection() {
        let mut p = pool(10, 10);
        let a = admitted(&mut p, "1.1.1.1");
        let b = admitted(&mut p, "2.2.2.2");
        p.heard(a);
        p.idle(b);
        assert_eq!(
            p.admit(ip("3.3.3.3"), false),
            Admission::Replace { close: b, key: 2 }
        );
        p.heard(2);
        assert_eq!(
            p.admit(ip("4.4.4.4"), false),
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
            p.admit(ip("5.5.9.9"), true),
            Admission::Replace { close: 0, key: 4 }
        );
        for k in [1, 2, 4] {
            p.heard(k);
        }
        assert_eq!(
            p.admit(ip("5.5.8.8"), true),
            Admission::Refuse(Refused::GroupFull)
        );
        // An IPv6 /64, or another /48 of the same /32, is the same group.
        for i in 0..3 {
            let k = admitted(&mut p, &format!("2a01:4f8:{i}::1"));
            p.idle(k);
        }
        assert!(matches!(
            p.admit(ip("2a01:4f8:ff::1"), true),
            Admission::Replace { .. }
        ));
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
            p.admit(ip("::1"), true),
            Admission::Replace { close: 0, .. }
        ));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Admit(u8, u8, bool),
        Idle(u8),
        Heard(u8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, any::<u8>(), any::<u8>()).prop_map(|(g, h, r)| Op::Admit(g, h, r % 8 != 0)),
            3 => any::<u8>().prop_map(Op::Idle),
            2 => any::<u8>().prop_map(Op::Heard),
            1 => any::<u8>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Whatever happens: the pool never holds more than its capacity, no group more than
        /// its cap; only an idle connection is ever closed to make room (never one that sent
        /// something or that was not read yet), and it is the oldest idle one of its scope;
        /// a refusal means no such connection existed.
        #[test]
        fn bounds_hold_and_only_idle_sockets_give_way(ops in proptest::collection::vec(op(), 0..300)) {
            let mut p = pool(12, 4);
            let mut live: Vec<Key> = Vec::new();
            for op in ops {
                match op {
                    Op::Admit(g, h, room) => {
                        let ip = IpAddr::from([g + 1, 1, h, 1]);
                        let group = Some(NetGroup::of(ip, false));
                        let before = p.entries.clone();
                        let idle = |e: &Entry| e.seen == Seen::Idle;
                        match p.admit(ip, room) {
                            Admission::Admit(k) => {
                                prop_assert!(room, "added without room");
                                live.push(k);
                            }
                            Admission::Replace { close, key } => {
                                let e = before.get(&close).copied();
                                prop_assert!(e.is_some_and(|e| idle(&e)), "closed a socket that was not idle");
                                prop_assert!(!room || before.len() >= 12
                                    || before.values().filter(|e| e.group == group).count() >= 4,
                                    "replaced with room to spare");
                                let scope_full = before.values().filter(|e| e.group == group).count() >= 4;
                                let older_idle = before.iter().any(|(k, o)| *k < close && idle(o)
                                    && (!scope_full || o.group == group));
                                prop_assert!(!older_idle, "not the oldest idle");
                                live.retain(|k| *k != close);
                                live.push(key);
                            }
                            Admission::Refuse(Refused::GroupFull) => {
                                prop_assert!(!before.values().any(|e| e.group == group && idle(e)));
                            }
                            Admission::Refuse(Refused::PoolFull) => {
                                prop_assert!(room && before.len() >= 12);
                                prop_assert!(!before.values().any(idle));
                            }
                            Admission::Refuse(Refused::NoRoom) => {
                                prop_assert!(!room);
                                prop_assert!(!before.values().any(idle));
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
