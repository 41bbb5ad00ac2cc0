//! The pending pool: inbound connections between `accept` and the end of their upgrade
//! (handshake, `NodeInfo` exchange), bounded in total and per netgroup, so that sockets that
//! never finish a handshake cannot keep an honest one waiting.
//!
//! Pure (no clock read, no I/O): the accept loop asks [`PendingPool::admit`] for each new
//! socket, tells the pool when a connection first sent a byte ([`PendingPool::heard`]) and
//! when its upgrade ended ([`PendingPool::remove`]), and acts on the answer.
//!
//! The rules:
//! - at most `per_group` connections of one netgroup ([`NetGroup`], IPv4 /16, IPv6 /32)
//!   pending at once; loopback connections are exempt from this cap (local testnets);
//! - at most `capacity` pending in all;
//! - a newcomer over either bound takes the place of the **oldest connection that has sent
//!   nothing** (of its group, for the group bound; of the pool, for the total), which is
//!   closed; when every such connection has sent something, the newcomer is refused (closed
//!   at once: it never waits unanswered in the kernel's backlog).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::Instant;

use mukan_reactor_api::{NetGroup, canonical_ip};

/// A pending connection's key in the pool.
pub(crate) type Key = u64;

/// What to do with a newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Upgrade it under this key.
    Admit(Key),
    /// Close the pending connection `close` (idle, the oldest), then upgrade the newcomer
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
    /// Its netgroup has `per_group` pending connections, each of which sent something.
    GroupFull,
    /// The pool is full and every connection in it sent something.
    PoolFull,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// `None` for loopback (exempt from the group cap).
    group: Option<NetGroup>,
    opened: Instant,
    heard: bool,
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

    /// Decides about a newcomer from `ip` accepted at `now` (see the module docs).
    pub(crate) fn admit(&mut self, ip: IpAddr, now: Instant) -> Admission {
        let ip = canonical_ip(ip);
        let group = (!ip.is_loopback()).then(|| NetGroup::of(ip, false));
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
        if close.is_none() && self.entries.len() >= self.capacity {
            match self.oldest_idle(|_| true) {
                Some(k) => close = Some(k),
                None => return Admission::Refuse(Refused::PoolFull),
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
                opened: now,
                heard: false,
            },
        );
        match close {
            Some(close) => Admission::Replace { close, key },
            None => Admission::Admit(key),
        }
    }

    /// Connection `key` received its first byte.
    pub(crate) fn heard(&mut self, key: Key) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.heard = true;
        }
    }

    /// Connection `key` left the pool (its upgrade ended, either way).
    pub(crate) fn remove(&mut self, key: Key) {
        self.entries.remove(&key);
    }

    /// Pending connections.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// When the oldest pending connection was accepted.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.entries.values().map(|e| e.opened).min()
    }

    fn oldest_idle(&self, which: impl Fn(&Entry) -> bool) -> Option<Key> {
        self.entries
            .iter()
            .find(|(_, e)| !e.heard && which(e))
            .map(|(k, _)| *k)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    #[test]
    fn idle_sockets_make_room_for_a_newcomer() {
        let t = Instant::now();
        let mut p = pool(4, 4);
        let keys: Vec<Key> = (0..4)
            .map(|i| match p.admit(ip(&format!("{}.1.1.1", i + 1)), t) {
                Admission::Admit(k) => k,
                other => panic!("{other:?}"),
            })
            .collect();
        // The oldest has spoken; the next oldest idle one gives way.
        p.heard(keys[0]);
        assert_eq!(
            p.admit(ip("9.9.9.9"), t),
            Admission::Replace {
                close: keys[1],
                key: 4
            }
        );
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn a_full_pool_of_speaking_handshakes_refuses() {
        let t = Instant::now();
        let mut p = pool(2, 2);
        for i in 0..2 {
            let Admission::Admit(k) = p.admit(ip(&format!("{}.1.1.1", i + 1)), t) else {
                panic!()
            };
            p.heard(k);
        }
        assert_eq!(
            p.admit(ip("9.9.9.9"), t),
            Admission::Refuse(Refused::PoolFull)
        );
        p.remove(0);
        assert_eq!(p.admit(ip("9.9.9.9"), t), Admission::Admit(2));
    }

    #[test]
    fn one_group_is_capped_and_replaces_only_its_own() {
        let t = Instant::now();
        let mut p = pool(100, 3);
        for i in 0..3 {
            assert!(matches!(
                p.admit(ip(&format!("5.5.{i}.1")), t),
                Admission::Admit(_)
            ));
        }
        // Another group's idle socket is older, but the group's own oldest idle goes.
        assert!(matches!(p.admit(ip("7.7.7.7"), t), Admission::Admit(3)));
        assert_eq!(
            p.admit(ip("5.5.9.9"), t),
            Admission::Replace { close: 0, key: 4 }
        );
        for k in [1, 2, 4] {
            p.heard(k);
        }
        assert_eq!(
            p.admit(ip("5.5.8.8"), t),
            Admission::Refuse(Refused::GroupFull)
        );
        // An IPv6 /64, or another /48 of the same /32, is the same group.
        for i in 0..3 {
            assert!(matches!(
                p.admit(ip(&format!("2a01:4f8:{i}::1")), t),
                Admission::Admit(_)
            ));
        }
        assert!(matches!(
            p.admit(ip("2a01:4f8:ff::1"), t),
            Admission::Replace { .. }
        ));
    }

    #[test]
    fn loopback_is_exempt_from_the_group_cap() {
        let t = Instant::now();
        let mut p = pool(10, 1);
        for _ in 0..10 {
            assert!(matches!(p.admit(ip("127.0.0.1"), t), Admission::Admit(_)));
        }
        assert_eq!(p.oldest(), Some(t));
        let later = t + Duration::from_secs(1);
        assert!(matches!(
            p.admit(ip("::1"), later),
            Admission::Replace { close: 0, .. }
        ));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Admit(u8, u8),
        Heard(u8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, any::<u8>()).prop_map(|(g, h)| Op::Admit(g, h)),
            2 => any::<u8>().prop_map(Op::Heard),
            1 => any::<u8>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Whatever happens: the pool never holds more than its capacity, no group more than
        /// its cap; only a connection that sent nothing is ever closed to make room, and it is
        /// the oldest such one of its scope; a refusal means no such connection existed.
        #[test]
        fn bounds_hold_and_only_idle_sockets_give_way(ops in proptest::collection::vec(op(), 0..300)) {
            let t = Instant::now();
            let mut p = pool(12, 4);
            let mut live: Vec<Key> = Vec::new();
            for op in ops {
                match op {
                    Op::Admit(g, h) => {
                        let ip = IpAddr::from([g + 1, 1, h, 1]);
                        let group = Some(NetGroup::of(ip, false));
                        let before = p.entries.clone();
                        match p.admit(ip, t) {
                            Admission::Admit(k) => live.push(k),
                            Admission::Replace { close, key } => {
                                let e = before.get(&close).copied();
                                prop_assert!(e.is_some_and(|e| !e.heard), "closed a speaking socket");
                                let scope_full = before.values().filter(|e| e.group == group).count() >= 4;
                                let older_idle = before.iter().any(|(k, o)| *k < close && !o.heard
                                    && (!scope_full || o.group == group));
                                prop_assert!(!older_idle, "not the oldest idle");
                                live.retain(|k| *k != close);
                                live.push(key);
                            }
                            Admission::Refuse(Refused::GroupFull) => {
                                prop_assert!(before.values().filter(|e| e.group == group).all(|e| e.heard));
                            }
                            Admission::Refuse(Refused::PoolFull) => {
                                prop_assert!(before.values().all(|e| e.heard));
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
