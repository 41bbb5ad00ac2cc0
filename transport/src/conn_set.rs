//! The table of open connections (Go `ConnSet`): which remote sockets and IPs we hold.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use mukan_reactor_api::canonical_ip;

/// Open connections by remote socket address. Pure data; the transport guards it with a lock
/// that is never held across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct ConnSet {
    by_addr: HashMap<SocketAddr, IpAddr>,
}

impl ConnSet {
    /// Whether a connection from exactly this socket address is open.
    pub(crate) fn has(&self, addr: &SocketAddr) -> bool {
        self.by_addr.contains_key(addr)
    }

    /// Whether any open connection (inbound or outbound) is with this IP.
    pub(crate) fn has_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.by_addr.values().any(|known| *known == ip)
    }

    /// How many open connections are with this IP.
    pub(crate) fn count_ip(&self, ip: IpAddr) -> usize {
        let ip = canonical_ip(ip);
        self.by_addr.values().filter(|known| **known == ip).count()
    }

    /// Records a connection. Returns `false` if the socket address was already recorded.
    pub(crate) fn insert(&mut self, addr: SocketAddr) -> bool {
        if self.by_addr.contains_key(&addr) {
            return false;
        }
        self.by_addr.insert(addr, canonical_ip(addr.ip()));
        true
    }

    /// Forgets a connection.
    pub(crate) fn remove(&mut self, addr: &SocketAddr) {
        self.by_addr.remove(addr);
    }

    /// Number of open connections.
    pub(crate) fn len(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_addresses_and_ips() {
        let mut set = ConnSet::default();
        let a: SocketAddr = "1.2.3.4:100".parse().unwrap();
        let b: SocketAddr = "1.2.3.4:200".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:300".parse().unwrap();
        assert!(!set.has_ip(a.ip()));
        assert!(set.insert(a));
        assert!(!set.insert(a), "duplicate socket address");
        assert!(set.has(&a));
        assert!(!set.has(&b));
        assert!(set.has_ip(b.ip()));
        assert!(set.has_ip(mapped.ip()), "v4-mapped form is the same IP");
        set.remove(&a);
        assert!(!set.has_ip(a.ip()));
        assert_eq!(set.len(), 0);
    }
}
