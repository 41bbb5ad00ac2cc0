//! [`DenyList`]: node IDs and IP networks refused before any handshake, changeable at runtime.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use mukan_node_key::NodeId;
use parking_lot::RwLock;

use crate::NetAddress;

/// IDs and IP networks (CIDRs) that are refused: a transport checks the remote IP of every
/// connection before the secret-connection handshake and the authenticated ID right after
/// it; a switch checks both before every dial. Shared (`Arc<DenyList>`) between them and
/// changeable at runtime ([`DenyList::deny`] / [`DenyList::allow`]).
#[derive(Default)]
pub struct DenyList {
    inner: RwLock<Entries>,
}

#[derive(Default, Clone)]
struct Entries {
    ids: HashSet<NodeId>,
    nets: Vec<IpNet>,
}

/// One entry of a [`DenyList`]: a node ID, or an IP address or network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenyEntry {
    /// A node ID.
    Id(NodeId),
    /// An IP network; a single address is a `/32` or `/128` network.
    Net(IpNet),
}

/// Why a deny-list entry did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither a node ID (40 hex digits), an IP address nor a CIDR network")]
pub struct DenyEntryError(pub String);

impl FromStr for DenyEntry {
    type Err = DenyEntryError;

    /// `"<40 hex digits>"`, `"10.0.0.1"`, `"10.0.0.0/8"`, `"2001:db8::/32"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(id) = s.parse::<NodeId>() {
            return Ok(Self::Id(id));
        }
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self::Net(net.trunc()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Net(IpNet::from(canonical(ip))));
        }
        Err(DenyEntryError(s.to_owned()))
    }
}

impl fmt::Display for DenyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Net(net) => write!(f, "{net}"),
        }
    }
}

/// IPv4-mapped IPv6 addresses are compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl DenyList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// A list with `entries`.
    pub fn with_entries(entries: impl IntoIterator<Item = DenyEntry>) -> Self {
        let list = Self::new();
        for e in entries {
            list.deny(e);
        }
        list
    }

    /// Adds `entry`; returns whether it was new.
    pub fn deny(&self, entry: DenyEntry) -> bool {
        let mut inner = self.inner.write();
        match entry {
            DenyEntry::Id(id) => inner.ids.insert(id),
            DenyEntry::Net(net) => {
                if inner.nets.contains(&net) {
                    false
                } else {
                    inner.nets.push(net);
                    true
                }
            }
        }
    }

    /// Removes `entry` (exactly as it was added); returns whether it was there.
    pub fn allow(&self, entry: &DenyEntry) -> bool {
        let mut inner = self.inner.write();
        match entry {
            DenyEntry::Id(id) => inner.ids.remove(id),
            DenyEntry::Net(net) => {
                let before = inner.nets.len();
                inner.nets.retain(|n| n != net);
                inner.nets.len() != before
            }
        }
    }

    /// Whether `id` is denied.
    pub fn is_denied_id(&self, id: &NodeId) -> bool {
        self.inner.read().ids.contains(id)
    }

    /// Whether `ip` is in a denied network.
    pub fn is_denied_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.inner.read().nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether `addr`'s ID or IP is denied.
    pub fn denies(&self, addr: &NetAddress) -> bool {
        self.is_denied_id(&addr.id()) || self.is_denied_ip(addr.ip())
    }

    /// Every entry, IDs first.
    pub fn entries(&self) -> Vec<DenyEntry> {
        let inner = self.inner.read();
        let mut ids: Vec<_> = inner.ids.iter().copied().collect();
        ids.sort();
        ids.into_iter()
            .map(DenyEntry::Id)
            .chain(inner.nets.iter().copied().map(DenyEntry::Net))
            .collect()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        let inner = self.inner.read();
        inner.ids.is_empty() && inner.nets.is_empty()
    }
}

impl fmt::Debug for DenyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_ips_and_networks() {
        let id = "34750f98bd59fcfc946da45aaabe933be154a4b5";
        assert!(matches!(id.parse::<DenyEntry>(), Ok(DenyEntry::Id(_))));
        assert_eq!(
            "10.1.2.3".parse::<DenyEntry>().unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(
            "10.1.2.3/8".parse::<DenyEntry>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!("::ffff:1.2.3.4".parse::<DenyEntry>().is_ok());
        assert!("nonsense".parse::<DenyEntry>().is_err());
        assert!("10.0.0.0/33".parse::<DenyEntry>().is_err());
    }

    #[test]
    fn matches_networks_and_mapped_addresses_and_changes_at_runtime() {
        let list = DenyList::new();
        let net: DenyEntry = "192.168.0.0/16".parse().unwrap();
        assert!(list.deny(net));
        assert!(!list.deny(net));
        assert!(list.is_denied_ip("192.168.7.9".parse().unwrap()));
        assert!(list.is_denied_ip("::ffff:192.168.7.9".parse().unwrap()));
        assert!(!list.is_denied_ip("192.169.0.1".parse().unwrap()));
        assert!(list.allow(&net));
        assert!(!list.is_denied_ip("192.168.7.9".parse().unwrap()));
        let id = NodeId([7; 20]);
        list.deny(DenyEntry::Id(id));
        assert!(list.is_denied_id(&id));
        assert_eq!(list.entries(), vec![DenyEntry::Id(id)]);
    }
}
