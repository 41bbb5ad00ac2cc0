//! [`NetGroup`]: the network group of an IP address, the unit an attacker must vary to look
//! like many independent peers (Go `groupKeyFor` of `p2p/pex/known_address.go` and
//! `addrbook.go`, Bitcoin Core's netgroup), and [`HostPrefix`], the unit "the same host"
//! stands for when duplicate IPs are refused.
//!
//! The address book places addresses by group, the switch caps inbound peers per group and
//! protects distinct groups from eviction, and the transport counts duplicate hosts by
//! [`HostPrefix`]. They live here, in the contract, because none of those crates may depend
//! on another.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::canonical_ip;
use crate::net_address::ip_range;

/// The network group of an IP address.
///
/// - IPv4: the /16 (`1.2.0.0`);
/// - IPv6: the /32 (the /36 inside Hurricane Electric's `2001:470::/32`, whose customers get
///   /48s from one /32);
/// - IPv6 forms that embed an IPv4 address (RFC 6145, RFC 6052 NAT64, RFC 3964 6to4, RFC 4380
///   Teredo): the /16 of the embedded IPv4 address, so tunnelling does not make a new group;
/// - the OnionCat Tor range: one of 16 groups;
/// - in strict mode, [`NetGroup::Local`] for loopback and `0.0.0.0/8`, and
///   [`NetGroup::Unroutable`] for the other non-routable ranges.
///
/// `Display` spells the group as Go's `groupKeyFor` does (`"1.2.0.0"`, `"2a01:4f8::"`,
/// `"tor:11"`, `"local"`, `"unroutable"`); the address book hashes that text.
///
/// ```
/// use mukan_reactor_api::NetGroup;
/// let a = NetGroup::of("1.2.3.4".parse().unwrap(), true);
/// let b = NetGroup::of("1.2.200.9".parse().unwrap(), true);
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "1.2.0.0");
/// assert_eq!(NetGroup::of("2a01:4f8:1:2::1".parse().unwrap(), true).to_string(), "2a01:4f8::");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetGroup {
    /// Strict mode: loopback or `0.0.0.0/8`.
    Local,
    /// Strict mode: any other address that is not routable (private, link-local, …).
    Unroutable,
    /// An IPv4 /16, given by its first two octets.
    V4([u8; 2]),
    /// An IPv6 prefix (the address with every bit past `bits` cleared) and its length.
    V6 {
        /// The masked address.
        prefix: Ipv6Addr,
        /// The prefix length: 32, or 36 inside `2001:470::/32`.
        bits: u8,
    },
    /// One of the 16 OnionCat Tor groups.
    Tor(u8),
}

impl NetGroup {
    /// The group of `ip` (IPv4-mapped IPv6 is read as IPv4). With `strict`, local and
    /// unroutable addresses each form one group, as Go's address book in strict mode does;
    /// without it they are grouped by prefix like any other (the form a node on a private
    /// network wants).
    pub fn of(ip: IpAddr, strict: bool) -> Self {
        let ip = canonical_ip(ip);
        if strict && ip_range::local(ip) {
            return Self::Local;
        }
        if strict && !ip_range::routable(ip) {
            return Self::Unroutable;
        }
        let v6 = match ip {
            IpAddr::V4(v4) => return v4_slash16(v4.octets()),
            IpAddr::V6(v6) => v6,
        };
        let [.., a, b, c, d] = v6.octets();
        if ip_range::rfc6145(ip) || ip_range::rfc6052(ip) {
            return v4_slash16([a, b, c, d]);
        }
        if ip_range::rfc3964(ip) {
            // 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
            let [_, _, a, b, ..] = v6.octets();
            return Self::V4([a, b]);
        }
        if ip_range::rfc4380(ip) {
            // Teredo stores the client's IPv4 address inverted in the last 4 bytes.
            return v4_slash16([a ^ 0xff, b ^ 0xff, c ^ 0xff, d ^ 0xff]);
        }
        if ip_range::onion_cat_tor(ip) {
            let [_, _, _, _, _, _, g, ..] = v6.octets();
            return Self::Tor(g & 0x0f);
        }
        let he_net = u128::from(v6) >> 96 == 0x2001_0470;
        let bits: u8 = if he_net { 36 } else { 32 };
        let masked = u128::from(v6) & (u128::MAX << (128 - u32::from(bits)));
        Self::V6 {
            prefix: Ipv6Addr::from(masked),
            bits,
        }
    }
}

impl NetGroup {
    /// The group `ip` counts against where peers are capped per netgroup (the switch's
    /// inbound peers, the transport's pending handshakes): the non-strict [`NetGroup::of`],
    /// or `None` for an address that is exempt because it is not routable on the internet
    /// (loopback, private networks, link-local, unique-local…). Local testnets, containers
    /// and tests put every node on such addresses, and nobody reaches them from outside.
    ///
    /// ```
    /// use mukan_reactor_api::NetGroup;
    /// assert!(NetGroup::capped("127.0.0.1".parse().unwrap()).is_none());
    /// assert!(NetGroup::capped("10.1.2.3".parse().unwrap()).is_none());
    /// assert_eq!(
    ///     NetGroup::capped("45.34.1.1".parse().unwrap()).map(|g| g.to_string()),
    ///     Some("45.34.0.0".to_owned())
    /// );
    /// ```
    pub fn capped(ip: IpAddr) -> Option<Self> {
        let ip = canonical_ip(ip);
        ip_range::routable(ip).then(|| Self::of(ip, false))
    }
}

fn v4_slash16([a, b, ..]: [u8; 4]) -> NetGroup {
    NetGroup::V4([a, b])
}

impl fmt::Display for NetGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Unroutable => f.write_str("unroutable"),
            Self::V4([a, b]) => Ipv4Addr::new(*a, *b, 0, 0).fmt(f),
            Self::V6 { prefix, .. } => prefix.fmt(f),
            Self::Tor(g) => write!(f, "tor:{g}"),
        }
    }
}

impl fmt::Debug for NetGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V6 { prefix, bits } => write!(f, "NetGroup({prefix}/{bits})"),
            other => write!(f, "NetGroup({other})"),
        }
    }
}

/// What "the same host" means when duplicate IPs are refused: an IPv4 address, or the /64 of
/// an IPv6 address (one subscriber or one machine usually holds a whole /64, so counting
/// single IPv6 addresses would let one host look like 2^64).
///
/// ```
/// use mukan_reactor_api::HostPrefix;
/// let a = HostPrefix::of("2a01:4f8:1:2::1".parse().unwrap());
/// let b = HostPrefix::of("2a01:4f8:1:2:ffff::9".parse().unwrap());
/// assert_eq!(a, b);
/// assert_ne!(a, HostPrefix::of("2a01:4f8:1:3::1".parse().unwrap()));
/// assert_eq!(HostPrefix::of("1.2.3.4".parse().unwrap()).to_string(), "1.2.3.4");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct HostPrefix(IpAddr);

impl HostPrefix {
    /// The host of `ip` (IPv4-mapped IPv6 is read as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        match canonical_ip(ip) {
            v4 @ IpAddr::V4(_) => Self(v4),
            IpAddr::V6(v6) => Self(IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & (u128::MAX << 64),
            ))),
        }
    }

    /// The IPv4 address, or the IPv6 address with its last 64 bits cleared.
    pub fn ip(&self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for HostPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn g(ip: &str, strict: bool) -> String {
        NetGroup::of(ip.parse().unwrap(), strict).to_string()
    }

    /// The spellings of Go's `groupKeyFor` (they are hashed by the address book, so they must
    /// not change).
    #[test]
    fn group_keys_as_go_spells_them() {
        let cases = [
            ("1.2.3.4", true, "1.2.0.0"),
            ("::ffff:1.2.3.4", true, "1.2.0.0"),
            ("127.0.0.1", true, "local"),
            ("127.0.0.1", false, "127.0.0.0"),
            ("10.1.2.3", true, "unroutable"),
            ("10.1.2.3", false, "10.1.0.0"),
            ("::ffff:0:102:304", true, "1.2.0.0"),
            ("64:ff9b::506:708", true, "5.6.0.0"),
            ("2002:0102:0304::1", true, "1.2.0.0"),
            ("2001:0:1:2:3:4:fefd:fcfb", true, "1.2.0.0"),
            ("fd87:d87e:eb43:cb00::1", false, "tor:11"),
            ("fd87:d87e:eb43:cb00::1", true, "unroutable"),
            ("2a01:4f8:1:2::1", true, "2a01:4f8::"),
            ("2001:470:1234::1", true, "2001:470:1000::"),
            ("::1", false, "::"),
            ("::1", true, "local"),
        ];
        for (ip, strict, want) in cases {
            assert_eq!(g(ip, strict), want, "{ip} strict={strict}");
        }
    }

    #[test]
    fn group_boundaries() {
        // IPv4 /16: the last address inside and the first outside.
        assert_eq!(g("1.2.255.255", true), "1.2.0.0");
        assert_eq!(g("1.3.0.0", true), "1.3.0.0");
        // IPv6 /32 and the Hurricane Electric /36.
        assert_eq!(g("2a01:4f8:ffff:ffff::1", true), "2a01:4f8::");
        assert_eq!(g("2a01:4f9::1", true), "2a01:4f9::");
        assert_eq!(g("2001:470:0fff:ffff::1", true), "2001:470::");
        assert_eq!(g("2001:470:f000::1", true), "2001:470:f000::");
    }

    #[test]
    fn host_prefix_is_the_v4_address_or_the_v6_slash64() {
        let h = |s: &str| HostPrefix::of(s.parse().unwrap());
        assert_eq!(h("1.2.3.4"), h("::ffff:1.2.3.4"));
        assert_ne!(h("1.2.3.4"), h("1.2.3.5"));
        assert_eq!(h("2a01:4f8:1:2::1"), h("2a01:4f8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(h("2a01:4f8:1:2::1"), h("2a01:4f8:1:3::1"));
        assert_eq!(h("2a01:4f8:1:2::1").to_string(), "2a01:4f8:1:2::/64");
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    proptest! {
        /// Addresses of one /16 (IPv4) or one /64 (IPv6) share their group, and a group
        /// never depends on bits a single subscriber controls.
        #[test]
        fn same_host_prefix_means_same_group(ip in arb_ip(), low in any::<u64>(), strict in any::<bool>()) {
            let other = match canonical_ip(ip) {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    IpAddr::from([o[0], o[1], low as u8, (low >> 8) as u8])
                }
                IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from((u128::from(v6) & (u128::MAX << 64)) | u128::from(low))),
            };
            // Embedded-IPv4 forms take their group from the low bits, so leave them out.
            let v6_embeds = |ip: IpAddr| ip_range::rfc6145(ip) || ip_range::rfc6052(ip) || ip_range::rfc4380(ip);
            prop_assume!(!v6_embeds(canonical_ip(ip)) && !v6_embeds(other));
            prop_assume!(canonical_ip(ip).is_ipv6() == canonical_ip(other).is_ipv6());
            // Strict mode splits a prefix when local or unroutable ranges cut across it.
            prop_assume!(!strict || (ip_range::routable(canonical_ip(ip)) && ip_range::routable(other)));
            prop_assert_eq!(NetGroup::of(ip, strict), NetGroup::of(other, strict));
        }

        /// The text of a group is a function of the group (two groups that print the same are
        /// the same group), so hashing the text is as good as hashing the value.
        #[test]
        fn display_is_injective(a in arb_ip(), b in arb_ip(), strict in any::<bool>()) {
            let (ga, gb) = (NetGroup::of(a, strict), NetGroup::of(b, strict));
            prop_assert_eq!(ga == gb, ga.to_string() == gb.to_string());
        }
    }
}
