//! [`NetAddress`]: the `id@ip:port` address of a peer (CometBFT `p2p/netaddress.go`).
//!
//! A [`NetAddress`] always holds a parsed [`NodeId`] and an IP literal: DNS names exist only at
//! the parsing edge. [`ParsedAddress`] (from configuration text such as `seeds`) reports an
//! unresolved host name as an [`UnresolvedAddress`], which the caller resolves asynchronously
//! and turns into a [`NetAddress`] with [`UnresolvedAddress::with_ip`]. Nothing here blocks or
//! touches the network.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are stored as IPv4, so equality, `Display`
//! and the range predicates agree with Go, whose `net.IP` treats the two forms as one.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use mukan_node_key::{NodeId, ParseError};

/// Why a node ID does not parse (`mukan_node_key::ParseError`).
pub use mukan_node_key::ParseError as NodeIdError;

/// The address of a peer: node ID, IP address and TCP port.
///
/// Text form `id@ip:port` (IPv6 in brackets), as Go's `NetAddress.String()`. Two addresses are
/// equal when their text forms are equal (Go `Equals`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetAddress {
    id: NodeId,
    ip: IpAddr,
    port: u16,
}

impl NetAddress {
    /// Builds an address; an IPv4-mapped IPv6 `ip` is stored as IPv4.
    pub fn new(id: NodeId, ip: IpAddr, port: u16) -> Self {
        Self {
            id,
            ip: canonical_ip(ip),
            port,
        }
    }

    /// The node ID.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The IP address (never an IPv4-mapped IPv6 address).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address to dial.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// `ip:port` with IPv6 in brackets (Go `DialString`).
    pub fn dial_string(&self) -> String {
        self.socket_addr().to_string()
    }

    /// Go `Same`: the same dial string or the same node ID.
    pub fn same(&self, other: &Self) -> bool {
        self.id == other.id || (self.ip == other.ip && self.port == other.port)
    }

    /// Go `Valid`: the IP is not unspecified (`0.0.0.0`, `::`), not the IPv6 documentation
    /// range (RFC 3849, `2001:db8::/32`) and not the IPv4 broadcast address. The ID is valid by
    /// construction.
    ///
    /// # Errors
    /// The [`InvalidAddress`] reason.
    pub fn valid(&self) -> Result<(), InvalidAddress> {
        ip_range::valid(self.ip)
    }

    /// Go `Routable`: valid and in none of RFC 1918, 3927, 4862, 4193, 4843, nor local.
    pub fn routable(&self) -> bool {
        ip_range::routable(self.ip)
    }

    /// Go `Local`: loopback (`127.0.0.0/8`, `::1`) or `0.0.0.0/8`.
    pub fn local(&self) -> bool {
        ip_range::local(self.ip)
    }

    /// RFC 1918 private IPv4: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    pub fn rfc1918(&self) -> bool {
        ip_range::rfc1918(self.ip)
    }

    /// RFC 3849 IPv6 documentation: `2001:db8::/32`.
    pub fn rfc3849(&self) -> bool {
        ip_range::rfc3849(self.ip)
    }

    /// RFC 3927 IPv4 link-local autoconfiguration: `169.254.0.0/16`.
    pub fn rfc3927(&self) -> bool {
        ip_range::rfc3927(self.ip)
    }

    /// RFC 3964 6to4: `2002::/16`.
    pub fn rfc3964(&self) -> bool {
        ip_range::rfc3964(self.ip)
    }

    /// RFC 4193 unique local IPv6: `fc00::/7`.
    pub fn rfc4193(&self) -> bool {
        ip_range::rfc4193(self.ip)
    }

    /// RFC 4380 Teredo: `2001::/32`.
    pub fn rfc4380(&self) -> bool {
        ip_range::rfc4380(self.ip)
    }

    /// RFC 4843 ORCHID: `2001:10::/28`.
    pub fn rfc4843(&self) -> bool {
        ip_range::rfc4843(self.ip)
    }

    /// RFC 4862 IPv6 link-local autoconfiguration: `fe80::/64`.
    pub fn rfc4862(&self) -> bool {
        ip_range::rfc4862(self.ip)
    }

    /// RFC 6052 well-known NAT64 prefix: `64:ff9b::/96`.
    pub fn rfc6052(&self) -> bool {
        ip_range::rfc6052(self.ip)
    }

    /// RFC 6145 IPv4-translated IPv6: `::ffff:0:0:0/96` (that is `0:0:0:0:ffff:0::/96`, not the
    /// IPv4-mapped range).
    pub fn rfc6145(&self) -> bool {
        ip_range::rfc6145(self.ip)
    }

    /// OnionCat Tor range: `fd87:d87e:eb43::/48`.
    pub fn onion_cat_tor(&self) -> bool {
        ip_range::onion_cat_tor(self.ip)
    }

    /// The protobuf form (Go `ToProto`).
    pub fn to_proto(&self) -> NetAddressProto {
        NetAddressProto {
            id: self.id.to_string(),
            ip: self.ip.to_string(),
            port: u32::from(self.port),
        }
    }

    /// Decodes the protobuf form (Go `NetAddressFromProto`, which additionally accepts an
    /// invalid ID; here the ID must parse because [`NetAddress`] always holds a [`NodeId`]).
    ///
    /// # Errors
    /// [`NetAddressError::InvalidId`], [`NetAddressError::InvalidIp`] (Go `"invalid IP address
    /// %v"`) or [`NetAddressError::PortOutOfRange`] (Go `"invalid port number %v"`).
    pub fn from_proto(pb: &NetAddressProto) -> Result<Self, NetAddressError> {
        let Some(ip) = parse_ip(&pb.ip) else {
            return Err(NetAddressError::InvalidIp { ip: pb.ip.clone() });
        };
        let Ok(port) = u16::try_from(pb.port) else {
            return Err(NetAddressError::PortOutOfRange { port: pb.port });
        };
        let id = pb
            .id
            .parse::<NodeId>()
            .map_err(|source| NetAddressError::InvalidId {
                addr: pb.id.clone(),
                source,
            })?;
        Ok(Self::new(id, ip, port))
    }
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.socket_addr())
    }
}

impl fmt::Debug for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetAddress({self})")
    }
}

impl FromStr for NetAddress {
    type Err = NetAddressError;

    /// Parses `[proto://]id@ip:port` (Go `NewNetAddressString` for IP literals).
    ///
    /// # Errors
    /// Every error of [`ParsedAddress::from_str`], and [`NetAddressError::Unresolved`] when the
    /// host is a DNS name (parse it as a [`ParsedAddress`] to resolve it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<ParsedAddress>()? {
            ParsedAddress::Resolved(addr) => Ok(addr),
            ParsedAddress::Unresolved(u) => Err(NetAddressError::Unresolved { host: u.host }),
        }
    }
}

/// The JSON form `{"id": "…", "ip": "…", "port": n}` of Go's `NetAddress` (used in
/// `addrbook.json`).
impl serde::Serialize for NetAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = serializer.serialize_struct("NetAddress", 3)?;
        st.serialize_field("id", &self.id.to_string())?;
        st.serialize_field("ip", &self.ip.to_string())?;
        st.serialize_field("port", &self.port)?;
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for NetAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Json {
            id: String,
            ip: String,
            port: u16,
        }
        let json = Json::deserialize(deserializer)?;
        let id = json
            .id
            .parse::<NodeId>()
            .map_err(serde::de::Error::custom)?;
        let ip = parse_ip(&json.ip)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid IP address {:?}", json.ip)))?;
        Ok(Self::new(id, ip, json.port))
    }
}

/// The wire form `tendermint.p2p.NetAddress { string id = 1; string ip = 2; uint32 port = 3; }`
/// (nested in PEX messages).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NetAddressProto {
    /// Node ID as hex text.
    #[prost(string, tag = "1")]
    pub id: String,
    /// IP address as text (Go `net.IP.String()`).
    #[prost(string, tag = "2")]
    pub ip: String,
    /// TCP port; values ≥ 65536 are rejected by [`NetAddress::from_proto`].
    #[prost(uint32, tag = "3")]
    pub port: u32,
}

/// A peer address from configuration text whose host may still need resolving.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ParsedAddress {
    /// The host was an IP literal.
    Resolved(NetAddress),
    /// The host is a DNS name; resolve it, then call [`UnresolvedAddress::with_ip`].
    Unresolved(UnresolvedAddress),
}

impl fmt::Display for ParsedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolved(a) => a.fmt(f),
            Self::Unresolved(u) => u.fmt(f),
        }
    }
}

impl fmt::Debug for ParsedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParsedAddress({self})")
    }
}

impl FromStr for ParsedAddress {
    type Err = NetAddressError;

    /// Parses `[proto://]id@host:port` in the order of Go's `NewNetAddressString`: strip the
    /// protocol, split on `@`, check the ID, split host and port (Go `net.SplitHostPort`), then
    /// the host (IP literal or DNS name) and the port (decimal, at most 65535).
    ///
    /// # Errors
    /// [`NetAddressError::NoId`], [`NetAddressError::InvalidId`],
    /// [`NetAddressError::BadHostPort`], [`NetAddressError::EmptyHost`],
    /// [`NetAddressError::BadHost`] or [`NetAddressError::BadPort`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = strip_protocol(s);
        let mut parts = rest.split('@');
        let (Some(id), Some(host_port), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NetAddressError::NoId { addr: s.to_owned() });
        };
        let id = id
            .parse::<NodeId>()
            .map_err(|source| NetAddressError::InvalidId {
                addr: rest.to_owned(),
                source,
            })?;
        let (host, port) =
            split_host_port(host_port).map_err(|reason| NetAddressError::BadHostPort {
                addr: host_port.to_owned(),
                reason,
            })?;
        if host.is_empty() {
            return Err(NetAddressError::EmptyHost {
                addr: host_port.to_owned(),
            });
        }
        let ip = parse_ip(host);
        if ip.is_none() && !is_dns_name(host) {
            return Err(NetAddressError::BadHost {
                host: host.to_owned(),
            });
        }
        let Some(port) = parse_port(port) else {
            return Err(NetAddressError::BadPort {
                port: port.to_owned(),
            });
        };
        Ok(match ip {
            Some(ip) => Self::Resolved(NetAddress::new(id, ip, port)),
            None => Self::Unresolved(UnresolvedAddress {
                id,
                host: host.to_owned(),
                port,
            }),
        })
    }
}

/// A host and port from configuration (`host:port`, `[v6]:port`, `:port`), parsed with the
/// rules of a [`ParsedAddress`]'s host and port (Go `net.SplitHostPort`, an IP literal or a
/// DNS name, a decimal port): the one host:port parser of the stack, for listen addresses
/// and the like. A leading `proto://` is stripped ([`strip_protocol`]); which protocols a
/// caller accepts is its own business.
///
/// ```
/// use mukan_reactor_api::HostPort;
/// let hp = HostPort::parse("tcp://[::1]:26656", false).unwrap();
/// assert_eq!((hp.host.as_str(), hp.port), ("::1", 26656));
/// assert_eq!(hp.to_string(), "[::1]:26656");
/// assert!(HostPort::parse(":26660", true).unwrap().host.is_empty());
/// assert!(HostPort::parse(":26660", false).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// An IP literal (without brackets) or a DNS name; empty for every interface.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl HostPort {
    /// Parses `[proto://]host:port`; `allow_empty_host` accepts `:port` (every interface).
    ///
    /// # Errors
    /// [`NetAddressError::BadHostPort`], [`NetAddressError::EmptyHost`],
    /// [`NetAddressError::BadHost`] or [`NetAddressError::BadPort`].
    pub fn parse(s: &str, allow_empty_host: bool) -> Result<Self, NetAddressError> {
        let host_port = strip_protocol(s);
        let (host, port) =
            split_host_port(host_port).map_err(|reason| NetAddressError::BadHostPort {
                addr: host_port.to_owned(),
                reason,
            })?;
        if host.is_empty() && !allow_empty_host {
            return Err(NetAddressError::EmptyHost {
                addr: host_port.to_owned(),
            });
        }
        if !host.is_empty() && parse_ip(host).is_none() && !is_dns_name(host) {
            return Err(NetAddressError::BadHost {
                host: host.to_owned(),
            });
        }
        let Some(port) = parse_port(port) else {
            return Err(NetAddressError::BadPort {
                port: port.to_owned(),
            });
        };
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// The host as an IP address, when it is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        parse_ip(&self.host)
    }
}

impl fmt::Display for HostPort {
    /// `host:port`, an IPv6 host in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `id@name:port` whose host is a DNS name not yet resolved.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UnresolvedAddress {
    /// The node ID.
    pub id: NodeId,
    /// The DNS name (syntax checked: labels of letters, digits, `-` and `_`).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl UnresolvedAddress {
    /// `host:port`, the form resolvers such as `tokio::net::lookup_host` take.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The address once the host resolved to `ip` (Go takes the first resolved IP).
    pub fn with_ip(&self, ip: IpAddr) -> NetAddress {
        NetAddress::new(self.id, ip, self.port)
    }
}

impl fmt::Display for UnresolvedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.id, self.host, self.port)
    }
}

impl fmt::Debug for UnresolvedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnresolvedAddress({self})")
    }
}

/// Why a [`NetAddress`] is not [`valid`](NetAddress::valid) (Go: `"invalid IP"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidAddress {
    /// The IPv4 broadcast address `255.255.255.255`.
    #[error("invalid IP: broadcast address")]
    Broadcast,
    /// The IPv6 documentation range `2001:db8::/32` (RFC 3849).
    #[error("invalid IP: documentation range")]
    Documentation,
    /// `0.0.0.0` or `::`.
    #[error("invalid IP: unspecified address")]
    Unspecified,
}

/// Why text or a protobuf message is not a [`NetAddress`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NetAddressError {
    /// `host:port` is malformed (Go `net.SplitHostPort`: missing port, too many colons,
    /// missing or unexpected bracket).
    #[error("invalid address {addr:?}: {reason}")]
    BadHostPort {
        /// The `host:port` text.
        addr: String,
        /// Go's wording of the problem.
        reason: &'static str,
    },
    /// The host is neither an IP literal nor a syntactically valid DNS name.
    #[error("invalid host {host:?}")]
    BadHost {
        /// The host text.
        host: String,
    },
    /// The port is not a decimal number in `0..=65535`.
    #[error("invalid port {port:?}")]
    BadPort {
        /// The port text.
        port: String,
    },
    /// The host part is empty (Go `"host is empty"`).
    #[error("invalid address {addr:?}: host is empty")]
    EmptyHost {
        /// The `host:port` text.
        addr: String,
    },
    /// The ID is not 40 hex characters (Go `ErrNetAddressInvalid` from `validateID`).
    #[error("invalid address {addr:?}: {source}")]
    InvalidId {
        /// The address text without protocol (or the ID, for protobuf input).
        addr: String,
        /// Why the ID does not parse.
        source: ParseError,
    },
    /// The protobuf `ip` field is not an IP address (Go `"invalid IP address %v"`).
    #[error("invalid IP address {ip:?}")]
    InvalidIp {
        /// The text received.
        ip: String,
    },
    /// There is not exactly one `@` (Go `"address (%s) does not contain ID"`).
    #[error("address ({addr}) does not contain ID")]
    NoId {
        /// The whole input.
        addr: String,
    },
    /// The protobuf `port` field is ≥ 65536 (Go `"invalid port number %v"`).
    #[error("invalid port number {port}")]
    PortOutOfRange {
        /// The value received.
        port: u32,
    },
    /// The host is a DNS name where an IP address is required; parse a [`ParsedAddress`]
    /// and resolve it.
    #[error("host {host:?} is a name, not an IP address; resolve it first")]
    Unresolved {
        /// The DNS name.
        host: String,
    },
}

/// The range predicates on a bare IP, shared by [`NetAddress`]'s methods and
/// [`NetGroup`](crate::NetGroup).
pub(crate) mod ip_range {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::{InvalidAddress, in_v4, in_v6};

    /// Go `Valid`: the IP is not unspecified (`0.0.0.0`, `::`), not the IPv6 documentation
    /// range (RFC 3849, `2001:db8::/32`) and not the IPv4 broadcast address.
    ///
    /// # Errors
    /// The [`InvalidAddress`] reason.
    pub(crate) fn valid(ip: IpAddr) -> Result<(), InvalidAddress> {
        if ip.is_unspecified() {
            return Err(InvalidAddress::Unspecified);
        }
        if rfc3849(ip) {
            return Err(InvalidAddress::Documentation);
        }
        if ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
            return Err(InvalidAddress::Broadcast);
        }
        Ok(())
    }

    /// Go `Routable`: valid and in none of RFC 1918, 3927, 4862, 4193, 4843, nor local.
    pub(crate) fn routable(ip: IpAddr) -> bool {
        valid(ip).is_ok()
            && !rfc1918(ip)
            && !rfc3927(ip)
            && !rfc4862(ip)
            && !rfc4193(ip)
            && !rfc4843(ip)
            && !local(ip)
    }

    /// Go `Local`: loopback (`127.0.0.0/8`, `::1`) or `0.0.0.0/8`.
    pub(crate) fn local(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.octets()[0] == 127 || v4.octets()[0] == 0,
            IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
        }
    }

    /// RFC 1918 private IPv4: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    pub(crate) fn rfc1918(ip: IpAddr) -> bool {
        in_v4(ip, [10, 0, 0, 0], 8)
            || in_v4(ip, [172, 16, 0, 0], 12)
            || in_v4(ip, [192, 168, 0, 0], 16)
    }

    /// RFC 3849 IPv6 documentation: `2001:db8::/32`.
    pub(crate) fn rfc3849(ip: IpAddr) -> bool {
        in_v6(ip, [0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32)
    }

    /// RFC 3927 IPv4 link-local autoconfiguration: `169.254.0.0/16`.
    pub(crate) fn rfc3927(ip: IpAddr) -> bool {
        in_v4(ip, [169, 254, 0, 0], 16)
    }

    /// RFC 3964 6to4: `2002::/16`.
    pub(crate) fn rfc3964(ip: IpAddr) -> bool {
        in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16)
    }

    /// RFC 4193 unique local IPv6: `fc00::/7`.
    pub(crate) fn rfc4193(ip: IpAddr) -> bool {
        in_v6(ip, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7)
    }

    /// RFC 4380 Teredo: `2001::/32`.
    pub(crate) fn rfc4380(ip: IpAddr) -> bool {
        in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 32)
    }

    /// RFC 4843 ORCHID: `2001:10::/28`.
    pub(crate) fn rfc4843(ip: IpAddr) -> bool {
        in_v6(ip, [0x2001, 0x0010, 0, 0, 0, 0, 0, 0], 28)
    }

    /// RFC 4862 IPv6 link-local autoconfiguration: `fe80::/64`.
    pub(crate) fn rfc4862(ip: IpAddr) -> bool {
        in_v6(ip, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 64)
    }

    /// RFC 6052 well-known NAT64 prefix: `64:ff9b::/96`.
    pub(crate) fn rfc6052(ip: IpAddr) -> bool {
        in_v6(ip, [0x0064, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    }

    /// RFC 6145 IPv4-translated IPv6: `::ffff:0:0:0/96` (that is `0:0:0:0:ffff:0::/96`, not the
    /// IPv4-mapped range).
    pub(crate) fn rfc6145(ip: IpAddr) -> bool {
        in_v6(ip, [0, 0, 0, 0, 0xffff, 0, 0, 0], 96)
    }

    /// OnionCat Tor range: `fd87:d87e:eb43::/48`.
    pub(crate) fn onion_cat_tor(ip: IpAddr) -> bool {
        in_v6(ip, [0xfd87, 0xd87e, 0xeb43, 0, 0, 0, 0, 0], 48)
    }
}

/// The form in which IPs are stored and compared: an IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) becomes its IPv4 address, as Go's `net.IP.Equal` sees them; anything
/// else is unchanged.
///
/// ```
/// use std::net::IpAddr;
/// let mapped: IpAddr = "::ffff:1.2.3.4".parse().unwrap();
/// assert_eq!(mukan_reactor_api::canonical_ip(mapped).to_string(), "1.2.3.4");
/// ```
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Parses an IP literal like Go `net.ParseIP` (no zones, no leading zeros in IPv4 octets).
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(canonical_ip)
}

fn in_v4(ip: IpAddr, net: [u8; 4], bits: u32) -> bool {
    let IpAddr::V4(v4) = ip else { return false };
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(v4) & mask == u32::from_be_bytes(net) & mask
}

fn in_v6(ip: IpAddr, net: [u16; 8], bits: u32) -> bool {
    let IpAddr::V6(v6) = ip else { return false };
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    u128::from(v6) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// An address without its protocol, as Go's `removeProtocolIfDefined` does: with `://`
/// present, what lies between the first and the second occurrence
/// (`strings.Split(addr, "://")[1]`); without it, the whole string.
///
/// ```
/// use mukan_reactor_api::strip_protocol;
/// assert_eq!(strip_protocol("tcp://0.0.0.0:26656"), "0.0.0.0:26656");
/// assert_eq!(strip_protocol("0.0.0.0:26656"), "0.0.0.0:26656");
/// assert_eq!(strip_protocol("a://b://c"), "b");
/// ```
pub fn strip_protocol(s: &str) -> &str {
    match s.split("://").nth(1) {
        Some(rest) => rest,
        None => s,
    }
}

/// Go `net.SplitHostPort`, returning Go's reason on failure.
fn split_host_port(hp: &str) -> Result<(&str, &str), &'static str> {
    const MISSING_PORT: &str = "missing port in address";
    const TOO_MANY_COLONS: &str = "too many colons in address";
    let Some(i) = hp.rfind(':') else {
        return Err(MISSING_PORT);
    };
    let (host, j, k);
    if hp.starts_with('[') {
        let Some(end) = hp.find(']') else {
            return Err("missing ']' in address");
        };
        if end + 1 == hp.len() {
            return Err(MISSING_PORT);
        }
        if end + 1 != i {
            return Err(if hp.as_bytes().get(end + 1) == Some(&b':') {
                TOO_MANY_COLONS
            } else {
                MISSING_PORT
            });
        }
        host = &hp[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hp[..i];
        if host.contains(':') {
            return Err(TOO_MANY_COLONS);
        }
        j = 0;
        k = 0;
    }
    if hp[j..].contains('[') {
        return Err("unexpected '[' in address");
    }
    if hp[k..].contains(']') {
        return Err("unexpected ']' in address");
    }
    Ok((host, &hp[i + 1..]))
}

/// Go `strconv.ParseUint(s, 10, 16)`: ASCII digits only (leading zeros allowed), ≤ 65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u32 = 0;
    for b in s.bytes() {
        v = v * 10 + u32::from(b - b'0');
        if v > u32::from(u16::MAX) {
            return None;
        }
    }
    u16::try_from(v).ok()
}

/// A DNS name: at most 253 characters (plus an optional final dot), labels of 1 to 63
/// letters, digits, `-` or `_`, and a last label that is not all digits (so a malformed IPv4
/// literal such as `1.2.3.999` is a bad host, not a name to look up).
fn is_dns_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let last_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_numeric
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    const ID: &str = "34750f98bd59fcfc946da45aaabe933be154a4b5";

    fn id() -> NodeId {
        ID.parse().unwrap()
    }

    fn addr(s: &str) -> NetAddress {
        s.parse().unwrap()
    }

    fn with_ip(ip: &str) -> NetAddress {
        NetAddress::new(id(), ip.parse().unwrap(), 26656)
    }

    /// (input, expected Display of the parsed address).
    #[test]
    fn parse_ok_table() {
        let cases = [
            (format!("{ID}@1.2.3.4:26656"), format!("{ID}@1.2.3.4:26656")),
            (
                format!("tcp://{ID}@1.2.3.4:26656"),
                format!("{ID}@1.2.3.4:26656"),
            ),
            (
                format!("a://{ID}@1.2.3.4:1://junk"),
                format!("{ID}@1.2.3.4:1"),
            ),
            (
                format!("{}@1.2.3.4:26656", ID.to_uppercase()),
                format!("{ID}@1.2.3.4:26656"),
            ),
            (format!("{ID}@[::1]:26656"), format!("{ID}@[::1]:26656")),
            (
                format!("{ID}@[2001:0DB8:0:0::1]:1"),
                format!("{ID}@[2001:db8::1]:1"),
            ),
            (
                format!("{ID}@[::ffff:1.2.3.4]:80"),
                format!("{ID}@1.2.3.4:80"),
            ),
            (
                format!("{ID}@[::ffff:0102:0304]:80"),
                format!("{ID}@1.2.3.4:80"),
            ),
            (format!("{ID}@[1.2.3.4]:80"), format!("{ID}@1.2.3.4:80")),
            (format!("{ID}@0.0.0.0:0"), format!("{ID}@0.0.0.0:0")),
            (format!("{ID}@1.2.3.4:65535"), format!("{ID}@1.2.3.4:65535")),
            (format!("{ID}@1.2.3.4:00080"), format!("{ID}@1.2.3.4:80")),
            // Go prints IPv4-compatible (not mapped) addresses in hex.
            (
                format!("{ID}@[::1.2.3.4]:80"),
                format!("{ID}@[::102:304]:80"),
            ),
        ];
        for (input, want) in cases {
            let got = input.parse::<NetAddress>();
            assert_eq!(got.map(|a| a.to_string()), Ok(want), "input {input}");
        }
    }

    #[test]
    fn parse_error_table() {
        use NetAddressError as E;
        type Check = fn(&NetAddressError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            ("1.2.3.4:26656".into(), |e| matches!(e, E::NoId { .. })),
            (format!("{ID}@{ID}@1.2.3.4:1"), |e| {
                matches!(e, E::NoId { .. })
            }),
            ("".into(), |e| matches!(e, E::NoId { .. })),
            ("@1.2.3.4:1".into(), |e| {
                matches!(
                    e,
                    E::InvalidId {
                        source: ParseError::Empty,
                        ..
                    }
                )
            }),
            (format!("{}@1.2.3.4:1", &ID[..38]), |e| {
                matches!(
                    e,
                    E::InvalidId {
                        source: ParseError::Length { got: 19, .. },
                        ..
                    }
                )
            }),
            (format!("{ID}00@1.2.3.4:1"), |e| {
                matches!(
                    e,
                    E::InvalidId {
                        source: ParseError::Length { got: 21, .. },
                        ..
                    }
                )
            }),
            (format!("{}g@1.2.3.4:1", &ID[..39]), |e| {
                matches!(
                    e,
                    E::InvalidId {
                        source: ParseError::Hex(_),
                        ..
                    }
                )
            }),
            (format!("{ID}@1.2.3.4"), |e| {
                matches!(
                    e,
                    E::BadHostPort {
                        reason: "missing port in address",
                        ..
                    }
                )
            }),
            (format!("{ID}@::1:80"), |e| {
                matches!(
                    e,
                    E::BadHostPort {
                        reason: "too many colons in address",
                        ..
                    }
                )
            }),
            (format!("{ID}@[::1:80"), |e| {
                matches!(
                    e,
                    E::BadHostPort {
                        reason: "missing ']' in address",
                        ..
                    }
                )
            }),
            (format!("{ID}@[::1]"), |e| {
                matches!(
                    e,
                    E::BadHostPort {
                        reason: "missing port in address",
                        ..
                    }
                )
            }),
            (format!("{ID}@[::1]x:80"), |e| {
                matches!(
                    e,
                    E::BadHostPort {
                        reason: "missing port in address",
                        ..
                    }
                )
            }),
            (format!("{ID}@[::1]:80:81"), |e| {
                matches!(
                    e,
                    E::BadHostPort {
                        reason: "too many colons in address",
                        ..
                    }
                )
            }),
            (format!("{ID}@1.2[.3.4:80"), |e| {
                matches!(
                    e,
                    E::BadHostPort {
                        reason: "unexpected '[' in address",
                        ..
                    }
                )
            }),
            (format!("{ID}@1.2].3.4:80"), |e| {
                matches!(
                    e,
                    E::BadHostPort {
                        reason: "unexpected ']' in address",
                        ..
                    }
                )
            }),
            (format!("{ID}@:80"), |e| matches!(e, E::EmptyHost { .. })),
            (format!("{ID}@[]:80"), |e| matches!(e, E::EmptyHost { .. })),
            (format!("{ID}@1.2.3.999:80"), |e| {
                matches!(e, E::BadHost { .. })
            }),
            (format!("{ID}@01.2.3.4:80"), |e| {
                matches!(e, E::BadHost { .. })
            }),
            (format!("{ID}@[fe80::1%eth0]:80"), |e| {
                matches!(e, E::BadHost { .. })
            }),
            (format!("{ID}@bad host:80"), |e| {
                matches!(e, E::BadHost { .. })
            }),
            (format!("{ID}@a..b:80"), |e| matches!(e, E::BadHost { .. })),
            (format!("{ID}@{}:80", "a".repeat(64)), |e| {
                matches!(e, E::BadHost { .. })
            }),
            (format!("{ID}@1.2.3.4:65536"), |e| {
                matches!(e, E::BadPort { .. })
            }),
            (format!("{ID}@1.2.3.4:"), |e| matches!(e, E::BadPort { .. })),
            (format!("{ID}@1.2.3.4:+80"), |e| {
                matches!(e, E::BadPort { .. })
            }),
            (format!("{ID}@1.2.3.4:-1"), |e| {
                matches!(e, E::BadPort { .. })
            }),
            (format!("{ID}@1.2.3.4:8o"), |e| {
                matches!(e, E::BadPort { .. })
            }),
            (format!("{ID}@1.2.3.4:99999999999999999999"), |e| {
                matches!(e, E::BadPort { .. })
            }),
            (
                format!("{ID}@example.com:26656"),
                |e| matches!(e, E::Unresolved { host } if host == "example.com"),
            ),
        ];
        for (input, check) in cases {
            match input.parse::<NetAddress>() {
                Ok(a) => panic!("{input:?} parsed as {a}"),
                Err(e) => assert!(check(&e), "{input:?} gave {e:?}"),
            }
        }
    }

    #[test]
    fn dns_names_parse_as_unresolved() {
        let parsed: ParsedAddress = format!("tcp://{ID}@seed-1.example_net.com.:26656")
            .parse()
            .unwrap();
        let ParsedAddress::Unresolved(u) = parsed else {
            panic!("expected a name")
        };
        assert_eq!(u.host, "seed-1.example_net.com.");
        assert_eq!(u.host_port(), "seed-1.example_net.com.:26656");
        assert_eq!(u.to_string(), format!("{ID}@seed-1.example_net.com.:26656"));
        let resolved = u.with_ip("::ffff:5.6.7.8".parse().unwrap());
        assert_eq!(resolved.to_string(), format!("{ID}@5.6.7.8:26656"));
        let ip: ParsedAddress = format!("{ID}@5.6.7.8:1").parse().unwrap();
        assert!(matches!(ip, ParsedAddress::Resolved(a) if a.port() == 1));
        assert_eq!(
            format!("{ID}@localhost:1")
                .parse::<ParsedAddress>()
                .map(|p| p.to_string()),
            Ok(format!("{ID}@localhost:1"))
        );
    }

    #[test]
    fn valid_boundaries() {
        assert_eq!(with_ip("0.0.0.0").valid(), Err(InvalidAddress::Unspecified));
        assert_eq!(with_ip("::").valid(), Err(InvalidAddress::Unspecified));
        assert_eq!(
            with_ip("255.255.255.255").valid(),
            Err(InvalidAddress::Broadcast)
        );
        assert_eq!(
            with_ip("::ffff:255.255.255.255").valid(),
            Err(InvalidAddress::Broadcast)
        );
        assert_eq!(
            with_ip("2001:db8::1").valid(),
            Err(InvalidAddress::Documentation)
        );
        assert_eq!(
            with_ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff").valid(),
            Err(InvalidAddress::Documentation)
        );
        for ok in [
            "0.0.0.1",
            "255.255.255.254",
            "2001:db9::",
            "2001:db7:ffff::",
            "::1",
        ] {
            assert_eq!(with_ip(ok).valid(), Ok(()), "{ok}");
        }
    }

    #[test]
    fn range_predicates_both_sides_of_each_boundary() {
        type Pred = fn(&NetAddress) -> bool;
        let cases: &[(Pred, &str, &str, &str)] = &[
            // (predicate, first inside, last inside, just outside)
            (
                NetAddress::rfc1918,
                "10.0.0.0",
                "10.255.255.255",
                "11.0.0.0",
            ),
            (
                NetAddress::rfc1918,
                "172.16.0.0",
                "172.31.255.255",
                "172.32.0.0",
            ),
            (
                NetAddress::rfc1918,
                "192.168.0.0",
                "192.168.255.255",
                "192.169.0.0",
            ),
            (
                NetAddress::rfc3849,
                "2001:db8::",
                "2001:db8:ffff:ffff::1",
                "2001:db9::",
            ),
            (
                NetAddress::rfc3927,
                "169.254.0.0",
                "169.254.255.255",
                "169.255.0.0",
            ),
            (NetAddress::rfc3964, "2002::", "2002:ffff:ffff::1", "2003::"),
            (NetAddress::rfc4193, "fc00::", "fdff:ffff::1", "fe00::"),
            (
                NetAddress::rfc4380,
                "2001::",
                "2001:0:ffff:ffff::1",
                "2001:1::",
            ),
            (
                NetAddress::rfc4843,
                "2001:10::",
                "2001:1f:ffff::1",
                "2001:20::",
            ),
            (
                NetAddress::rfc4862,
                "fe80::",
                "fe80::ffff:ffff:ffff:ffff",
                "fe80:0:0:1::",
            ),
            (
                NetAddress::rfc6052,
                "64:ff9b::",
                "64:ff9b::ffff:ffff",
                "64:ff9b::1:0:0",
            ),
            (
                NetAddress::rfc6145,
                "::ffff:0:0:0",
                "::ffff:0:ffff:ffff",
                "::fffe:0:0:0",
            ),
            (
                NetAddress::onion_cat_tor,
                "fd87:d87e:eb43::",
                "fd87:d87e:eb43:ffff::1",
                "fd87:d87e:eb44::",
            ),
        ];
        for (pred, first, last, outside) in cases {
            assert!(pred(&with_ip(first)), "{first}");
            assert!(pred(&with_ip(last)), "{last}");
            assert!(!pred(&with_ip(outside)), "{outside}");
        }
        // Below the lower bounds.
        assert!(!with_ip("172.15.255.255").rfc1918());
        assert!(!with_ip("9.255.255.255").rfc1918());
        assert!(!with_ip("fbff::").rfc4193());
        // IPv4 ranges apply to mapped addresses, IPv6 ranges never to IPv4.
        assert!(with_ip("::ffff:10.1.2.3").rfc1918());
        assert!(!with_ip("::ffff:1.2.3.4").rfc6145());
        assert!(!with_ip("1.2.3.4").rfc6145());
    }

    #[test]
    fn local_and_routable() {
        for local in [
            "127.0.0.1",
            "127.255.255.255",
            "0.0.0.1",
            "0.255.255.255",
            "::1",
        ] {
            assert!(with_ip(local).local(), "{local}");
            assert!(!with_ip(local).routable(), "{local}");
        }
        for not_local in ["126.255.255.255", "128.0.0.0", "1.0.0.0", "::2"] {
            assert!(!with_ip(not_local).local(), "{not_local}");
        }
        for unroutable in [
            "10.0.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "fe80::1",
            "fc00::1",
            "2001:10::1",
            "0.0.0.0",
        ] {
            assert!(!with_ip(unroutable).routable(), "{unroutable}");
        }
        for routable in [
            "1.2.3.4",
            "8.8.8.8",
            "2606:4700::1",
            "2002::1",
            "2001::1",
            "::2",
        ] {
            assert!(with_ip(routable).routable(), "{routable}");
        }
    }

    #[test]
    fn proto_round_trip_and_hand_derived_bytes() {
        let a = addr(&format!("{ID}@1.2.3.4:26656"));
        let pb = a.to_proto();
        let bytes = pb.encode_to_vec();
        // 0a 28 <40 id bytes> 12 07 "1.2.3.4" 18 a0 d0 01 (26656 = 0x6820)
        let mut want = vec![0x0a, 0x28];
        want.extend_from_slice(ID.as_bytes());
        want.extend_from_slice(&[0x12, 0x07]);
        want.extend_from_slice(b"1.2.3.4");
        want.extend_from_slice(&[0x18, 0xa0, 0xd0, 0x01]);
        assert_eq!(bytes, want);
        let back = NetAddressProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(NetAddress::from_proto(&back), Ok(a));
        let v6 = addr(&format!("{ID}@[2001:470::1]:1"));
        assert_eq!(v6.to_proto().ip, "2001:470::1");
        assert_eq!(NetAddress::from_proto(&v6.to_proto()), Ok(v6));
    }

    #[test]
    fn proto_errors() {
        let good = NetAddressProto {
            id: ID.into(),
            ip: "1.2.3.4".into(),
            port: 65535,
        };
        assert!(NetAddress::from_proto(&good).is_ok());
        let bad_port = NetAddressProto {
            port: 65536,
            ..good.clone()
        };
        assert_eq!(
            NetAddress::from_proto(&bad_port),
            Err(NetAddressError::PortOutOfRange { port: 65536 })
        );
        for ip in ["", "1.2.3", "example.com", "1.2.3.4:5", "[::1]"] {
            let bad_ip = NetAddressProto {
                ip: ip.into(),
                ..good.clone()
            };
            assert_eq!(
                NetAddress::from_proto(&bad_ip),
                Err(NetAddressError::InvalidIp { ip: ip.into() })
            );
        }
        let bad_id = NetAddressProto {
            id: "abc".into(),
            ..good.clone()
        };
        assert!(matches!(
            NetAddress::from_proto(&bad_id),
            Err(NetAddressError::InvalidId { .. })
        ));
        let mapped = NetAddressProto {
            ip: "::ffff:1.2.3.4".into(),
            ..good
        };
        assert_eq!(
            NetAddress::from_proto(&mapped).unwrap().ip().to_string(),
            "1.2.3.4"
        );
    }

    #[test]
    fn json_form() {
        let a = addr(&format!("{ID}@[::ffff:1.2.3.4]:26656"));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            format!(r#"{{"id":"{ID}","ip":"1.2.3.4","port":26656}}"#)
        );
        assert_eq!(serde_json::from_str::<NetAddress>(&json).unwrap(), a);
        let bad_ip = format!(r#"{{"id":"{ID}","ip":"host","port":1}}"#);
        assert!(serde_json::from_str::<NetAddress>(&bad_ip).is_err());
        let bad_port = format!(r#"{{"id":"{ID}","ip":"1.2.3.4","port":65536}}"#);
        assert!(serde_json::from_str::<NetAddress>(&bad_port).is_err());
    }

    #[test]
    fn same_and_dial_string() {
        let a = addr(&format!("{ID}@[::1]:80"));
        assert_eq!(a.dial_string(), "[::1]:80");
        let other_id = NetAddress::new(NodeId([7; 20]), a.ip(), a.port());
        assert!(a.same(&other_id));
        assert_ne!(a, other_id);
        let other_port = NetAddress::new(a.id(), a.ip(), 81);
        assert!(a.same(&other_port));
        let unrelated = NetAddress::new(NodeId([7; 20]), a.ip(), 81);
        assert!(!a.same(&unrelated));
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
            any::<[u8; 4]>().prop_map(|o| IpAddr::V6(std::net::Ipv4Addr::from(o).to_ipv6_mapped())),
        ]
    }

    proptest! {
        #[test]
        fn display_from_str_round_trip(
            bytes in any::<[u8; 20]>(),
            ip in arb_ip(),
            port in any::<u16>(),
        ) {
            let a = NetAddress::new(NodeId(bytes), ip, port);
            let text = a.to_string();
            prop_assert_eq!(text.parse::<NetAddress>(), Ok(a));
            prop_assert_eq!(format!("tcp://{text}").parse::<NetAddress>(), Ok(a));
            prop_assert_eq!(NetAddress::from_proto(&a.to_proto()), Ok(a));
            prop_assert!(!matches!(a.ip(), IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()));
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,80}") {
            if let Ok(a) = s.parse::<NetAddress>() {
                prop_assert_eq!(a.to_string().parse::<NetAddress>(), Ok(a));
            }
        }
    }
}
