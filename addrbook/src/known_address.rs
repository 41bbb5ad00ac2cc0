//! One stored address and its history (Go `knownAddress`, `p2p/pex/known_address.go`).

use std::time::{Duration, SystemTime};

use mukan_reactor_api::NetAddress;

/// At most this many new buckets reference one address (Go `maxNewBucketsPerAddress`).
pub(crate) const MAX_NEW_BUCKETS_PER_ADDRESS: usize = 4;

/// Which kind of bucket an address lives in (the JSON `bucket_type`: new 1, old 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Not (yet) proven good.
    New,
    /// Marked good.
    Old,
}

impl Kind {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::New => 1,
            Self::Old => 2,
        }
    }
}

/// An address with the buckets it is in and its dial history.
#[derive(Debug, Clone)]
pub(crate) struct KnownAddress {
    pub(crate) addr: NetAddress,
    pub(crate) src: NetAddress,
    /// Bucket indexes, `len` of them used: up to 4 new buckets, or exactly 1 old one (0 only
    /// while banned or in transit).
    buckets: [u16; MAX_NEW_BUCKETS_PER_ADDRESS],
    len: u8,
    pub(crate) attempts: i32,
    pub(crate) kind: Kind,
    pub(crate) last_attempt: Option<SystemTime>,
    pub(crate) last_success: Option<SystemTime>,
    pub(crate) last_ban_time: Option<SystemTime>,
    /// A self-reported address we have not reached yet (its IP was not the connection's):
    /// never served to others until a handshake with it succeeds (`mark_good`).
    pub(crate) unverified: bool,
}

impl PartialEq for KnownAddress {
    fn eq(&self, o: &Self) -> bool {
        (self.addr, self.src, self.attempts, self.kind) == (o.addr, o.src, o.attempts, o.kind)
            && self.buckets() == o.buckets()
            && (self.last_attempt, self.last_success, self.last_ban_time)
                == (o.last_attempt, o.last_success, o.last_ban_time)
            && self.unverified == o.unverified
    }
}

impl Eq for KnownAddress {}

impl KnownAddress {
    /// A fresh new entry (Go `newKnownAddress`: last attempt = now).
    pub(crate) fn new(addr: NetAddress, src: NetAddress, now: SystemTime) -> Self {
        Self {
            addr,
            src,
            buckets: [0; MAX_NEW_BUCKETS_PER_ADDRESS],
            len: 0,
            attempts: 0,
            kind: Kind::New,
            last_attempt: Some(now),
            last_success: None,
            last_ban_time: None,
            unverified: false,
        }
    }

    pub(crate) fn buckets(&self) -> &[u16] {
        self.buckets.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub(crate) fn has_bucket(&self, idx: u16) -> bool {
        self.buckets().contains(&idx)
    }

    /// Adds a bucket reference; returns false when already present or full.
    pub(crate) fn add_bucket(&mut self, idx: u16) -> bool {
        let len = usize::from(self.len);
        if self.has_bucket(idx) || len == MAX_NEW_BUCKETS_PER_ADDRESS {
            return false;
        }
        let Some(slot) = self.buckets.get_mut(len) else {
            return false;
        };
        *slot = idx;
        self.len += 1;
        true
    }

    /// Removes a bucket reference (keeping the order of the others); returns whether it was
    /// present.
    pub(crate) fn remove_bucket(&mut self, idx: u16) -> bool {
        let len = usize::from(self.len);
        let Some(pos) = self.buckets().iter().position(|&b| b == idx) else {
            return false;
        };
        self.buckets.copy_within(pos + 1..len, pos);
        self.len -= 1;
        true
    }

    pub(crate) fn clear_buckets(&mut self) {
        self.len = 0;
    }

    /// Go `markAttempt`.
    pub(crate) fn mark_attempt(&mut self, now: SystemTime) {
        self.last_attempt = Some(now);
        self.attempts = self.attempts.saturating_add(1);
    }

    /// Go `markGood`; we reached the address, so it is verified.
    pub(crate) fn mark_good(&mut self, now: SystemTime) {
        self.last_attempt = Some(now);
        self.last_success = Some(now);
        self.attempts = 0;
        self.unverified = false;
    }

    /// Go `ban`: the ban ends at the later of the current end and `now + ban`.
    pub(crate) fn ban(&mut self, ban: Duration, now: SystemTime) {
        let until = now.checked_add(ban).unwrap_or(now);
        if self.last_ban_time.is_none_or(|t| t < until) {
            self.last_ban_time = Some(until);
        }
    }

    /// Go `isBanned`.
    pub(crate) fn is_banned(&self, now: SystemTime) -> bool {
        self.last_ban_time.is_some_and(|t| t > now)
    }

    /// Go `isBad` (consulted when a new bucket is full): old entries are never bad; an entry
    /// tried within the last minute is not; one not tried for a week is; so is one with 3
    /// failed attempts and no success, or 10 failed attempts and no success for a week.
    pub(crate) fn is_bad(&self, now: SystemTime) -> bool {
        const MINUTE: Duration = Duration::from_secs(60);
        const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
        if self.kind == Kind::Old {
            return false;
        }
        let ago = |d: Duration| now.checked_sub(d);
        let before = |t: Option<SystemTime>, d: Duration| match (t, ago(d)) {
            (None, _) => true,
            (Some(t), Some(limit)) => t < limit,
            (Some(_), None) => false,
        };
        if !before(self.last_attempt, MINUTE) {
            return false;
        }
        if before(self.last_attempt, WEEK) {
            return true;
        }
        if self.last_success.is_none() && self.attempts >= 3 {
            return true;
        }
        before(self.last_success, WEEK) && self.attempts >= 10
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn ka(now: SystemTime) -> KnownAddress {
        let a: NetAddress = "34750f98bd59fcfc946da45aaabe933be154a4b5@1.2.3.4:1"
            .parse()
            .unwrap();
        KnownAddress::new(a, a, now)
    }

    #[test]
    fn bucket_refs() {
        let mut k = ka(UNIX_EPOCH);
        assert!(k.add_bucket(5));
        assert!(!k.add_bucket(5));
        assert!(k.add_bucket(6) && k.add_bucket(7) && k.add_bucket(8));
        assert!(!k.add_bucket(9));
        assert!(k.remove_bucket(6));
        assert!(!k.remove_bucket(6));
        assert_eq!(k.buckets(), &[5, 7, 8]);
    }

    #[test]
    fn is_bad_rules() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let day = Duration::from_secs(86_400);
        let mut k = ka(t0);
        // Tried within the last minute: never bad.
        k.attempts = 100;
        assert!(!k.is_bad(t0 + Duration::from_secs(59)));
        // 3 failures, never succeeded.
        k.attempts = 2;
        assert!(!k.is_bad(t0 + Duration::from_secs(61)));
        k.attempts = 3;
        assert!(k.is_bad(t0 + Duration::from_secs(61)));
        // Not tried for a week.
        k.attempts = 0;
        assert!(!k.is_bad(t0 + 7 * day - Duration::from_secs(1)));
        assert!(k.is_bad(t0 + 7 * day + Duration::from_secs(1)));
        // 10 failures, last success over a week ago.
        k.last_success = Some(t0);
        k.last_attempt = Some(t0 + 8 * day);
        k.attempts = 9;
        assert!(!k.is_bad(t0 + 8 * day + Duration::from_secs(120)));
        k.attempts = 10;
        assert!(k.is_bad(t0 + 8 * day + Duration::from_secs(120)));
        k.kind = Kind::Old;
        assert!(!k.is_bad(t0 + 100 * day));
    }

    #[test]
    fn ban_keeps_the_later_end() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let mut k = ka(t0);
        k.ban(Duration::from_secs(100), t0);
        k.ban(Duration::from_secs(10), t0);
        assert_eq!(k.last_ban_time, Some(t0 + Duration::from_secs(100)));
        assert!(k.is_banned(t0 + Duration::from_secs(99)));
        assert!(!k.is_banned(t0 + Duration::from_secs(100)));
    }
}
