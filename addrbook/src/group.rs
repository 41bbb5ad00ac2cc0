//! Network groups and keyed bucket placement (Go `groupKey`, `calcNewBucket`, `calcOldBucket`).
//!
//! The group of an address is what an attacker must vary to reach more buckets
//! ([`NetGroup`], defined in `mukan-reactor-api` because the switch caps inbound peers by the
//! same groups): the IPv4 /16, the IPv6 /32 (/36 inside Hurricane Electric's
//! `2001:470::/32`), the embedded IPv4 /16 of tunnelled forms, 16 Tor groups, and in strict
//! mode `"local"` / `"unroutable"`.
//!
//! Placement hashes `SHA-256("mukan-addrbook/v1" || book key || data)`, read as a big-endian
//! u64 from the first 8 bytes. Go uses HighwayHash-64 under a random per-process key; no
//! peer can observe either, and a Go node loads the bucket indexes stored in the file without
//! recomputing them, so the choice of keyed hash does not affect interoperability.

use mukan_reactor_api::{NetAddress, NetGroup};
use sha2::{Digest, Sha256};

/// Go `newBucketsPerGroup`: new buckets a source group can reach.
pub(crate) const NEW_BUCKETS_PER_GROUP: u64 = 32;
/// Go `oldBucketsPerGroup`: old buckets an address group can reach.
pub(crate) const OLD_BUCKETS_PER_GROUP: u64 = 4;

/// The network group of `addr` (Go `groupKeyFor`), as Go spells it: the text of
/// [`NetGroup::of`], which defines the groups.
pub fn group_key(addr: &NetAddress, strict: bool) -> String {
    NetGroup::of(addr.ip(), strict).to_string()
}

/// The keyed hash of the book.
#[derive(Clone)]
pub(crate) struct Placement {
    key: String,
    strict: bool,
}

impl Placement {
    pub(crate) fn new(key: String, strict: bool) -> Self {
        Self { key, strict }
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut h = Sha256::new();
        h.update(b"mukan-addrbook/v1");
        h.update(self.key.as_bytes());
        for p in parts {
            h.update(p);
        }
        let out = h.finalize();
        let mut first = [0u8; 8];
        for (dst, src) in first.iter_mut().zip(out.iter()) {
            *dst = *src;
        }
        u64::from_be_bytes(first)
    }

    /// Go `calcNewBucket`: the source group picks one of 32 buckets, keyed by both groups.
    pub(crate) fn new_bucket(&self, addr: &NetAddress, src: &NetAddress) -> u16 {
        let (ga, gs) = (group_key(addr, self.strict), group_key(src, self.strict));
        let h1 = self.hash(&[ga.as_bytes(), gs.as_bytes()]) % NEW_BUCKETS_PER_GROUP;
        let h2 = self.hash(&[gs.as_bytes(), &h1.to_be_bytes()]);
        (h2 % crate::book::NEW_BUCKET_COUNT as u64) as u16
    }

    /// Go `calcOldBucket`: the address group picks one of 4 buckets, keyed by the address.
    pub(crate) fn old_bucket(&self, addr: &NetAddress) -> u16 {
        let ga = group_key(addr, self.strict);
        let h1 = self.hash(&[addr.to_string().as_bytes()]) % OLD_BUCKETS_PER_GROUP;
        let h2 = self.hash(&[ga.as_bytes(), &h1.to_be_bytes()]);
        (h2 % crate::book::OLD_BUCKET_COUNT as u64) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ip: &str) -> NetAddress {
        format!("34750f98bd59fcfc946da45aaabe933be154a4b5@{ip}:1")
            .parse()
            .unwrap()
    }

    #[test]
    fn group_keys_as_go_spells_them() {
        let cases = [
            ("1.2.3.4", true, "1.2.0.0"),
            ("[::ffff:1.2.3.4]", true, "1.2.0.0"),
            ("127.0.0.1", true, "local"),
            ("127.0.0.1", false, "127.0.0.0"),
            ("10.1.2.3", true, "unroutable"),
            ("10.1.2.3", false, "10.1.0.0"),
            ("[::ffff:0:102:304]", true, "1.2.0.0"),
            ("[64:ff9b::506:708]", true, "5.6.0.0"),
            ("[2002:0102:0304::1]", true, "1.2.0.0"),
            ("[2001:0:1:2:3:4:fefd:fcfb]", true, "1.2.0.0"),
            ("[fd87:d87e:eb43:cb00::1]", false, "tor:11"),
            ("[fd87:d87e:eb43:cb00::1]", true, "unroutable"),
            ("[2a01:4f8:1:2::1]", true, "2a01:4f8::"),
            ("[2001:470:1234::1]", true, "2001:470:1000::"),
            ("[::1]", false, "::"),
        ];
        for (ip, strict, want) in cases {
            assert_eq!(group_key(&a(ip), strict), want, "{ip} strict={strict}");
        }
    }

    #[test]
    fn placement_is_keyed_and_bounded() {
        let p1 = Placement::new("aaaaaaaaaaaaaaaaaaaaaaaa".into(), true);
        let p2 = Placement::new("bbbbbbbbbbbbbbbbbbbbbbbb".into(), true);
        let mut differ = 0;
        for i in 0..50u8 {
            let x = a(&format!("{i}.9.9.9"));
            let s = a(&format!("99.{i}.1.1"));
            assert!(p1.new_bucket(&x, &s) < 256);
            assert!(p1.old_bucket(&x) < 64);
            assert_eq!(p1.new_bucket(&x, &s), p1.new_bucket(&x, &s));
            if p1.new_bucket(&x, &s) != p2.new_bucket(&x, &s) {
                differ += 1;
            }
        }
        assert!(
            differ > 40,
            "placement must depend on the key ({differ}/50 differ)"
        );
    }
}
