//! The table of open connections (Go `ConnSet`): which remote sockets we hold, which host
//! each comes from ([`HostPrefix`]: the IPv4 address or the IPv6 /64), which direction, and
//! which node each authenticated as.

use std::collections::HashMap;
use std::net::SocketAddr;

use mukan_reactor_api::{HostPrefix, NodeId};

/// One open connection.
#[derive(Clone, Copy, Debug)]
struct Entry {
    host: HostPrefix,
    inbound: bool,
    /// Set once the secret connection authenticated the peer.
    id: Option<NodeId>,
}

/// Open connections by remote socket address. Pure data; the transport guards it with a lock
/// that is never held across an `.await`. An entry is removed the moment its connection
/// closes or fails, so only live connections count.
#[derive(Debug, Default)]
pub(crate) struct ConnSet {
    by_addr: HashMap<SocketAddr, Entry>,
    inbound: usize,
}

impl ConnSet {
    /// Whether a connection from exactly this socket address is open.
    #[cfg(test)]
    pub(crate) fn has(&self, addr: &SocketAddr) -> bool {
        self.by_addr.contains_key(addr)
    }

    /// Records a connection (not yet authenticated). Returns `false` if the socket address
    /// was already recorded.
    pub(crate) fn insert(&mut self, addr: SocketAddr, inbound: bool) -> bool {
        if self.by_addr.contains_key(&addr) {
            return false;
        }
        self.by_addr.insert(
            addr,
            Entry {
                host: HostPrefix::of(addr.ip()),
                inbound,
                id: None,
            },
        );
        if inbound {
            self.inbound += 1;
        }
        true
    }

    /// The connection from `addr` authenticated as `id`. Unless `allow_duplicate_ip`, it is
    /// refused (`false`, and the entry stays unauthenticated) when another authenticated
    /// connection from the same host belongs to another node: connections that have not
    /// authenticated yet never count (idle sockets cannot lock a host out), and the same node
    /// reconnecting is let through (the switch replaces its older connection).
    pub(crate) fn authenticate(
        &mut self,
        addr: &SocketAddr,
        id: NodeId,
        allow_duplicate_ip: bool,
    ) -> bool {
        let Some(host) = self.by_addr.get(addr).map(|e| e.host) else {
            return false;
        };
        if !allow_duplicate_ip
            && self
                .by_addr
                .iter()
                .any(|(a, e)| a != addr && e.host == host && e.id.is_some_and(|other| other != id))
        {
            return false;
        }
        if let Some(e) = self.by_addr.get_mut(addr) {
            e.id = Some(id);
        }
        true
    }

    /// Forgets a connection.
    pub(crate) fn remove(&mut self, addr: &SocketAddr) {
        if let Some(e) = self.by_addr.remove(addr) {
            if e.inbound {
                self.inbound = self.inbound.saturating_sub(1);
            }
        }
    }

    /// Number of open connections.
    pub(crate) fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Number of open inbound connections (upgrading or established).
    pub(crate) fn inbound(&self) -> usize {
        self.inbound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    #[test]
    fn tracks_addresses_and_directions() {
        let mut set = ConnSet::default();
        let a: SocketAddr = "1.2.3.4:100".parse().unwrap();
        let b: SocketAddr = "1.2.3.4:200".parse().unwrap();
        assert!(set.insert(a, true));
        assert!(!set.insert(a, true), "duplicate socket address");
        assert!(set.has(&a));
        assert!(!set.has(&b));
        assert!(set.insert(b, false));
        assert_eq!((set.len(), set.inbound()), (2, 1));
        set.remove(&a);
        set.remove(&a);
        assert_eq!((set.len(), set.inbound()), (1, 0));
    }

    #[test]
    fn one_node_per_host_counting_authenticated_connections_only() {
        let mut set = ConnSet::default();
        let first: SocketAddr = "1.2.3.4:100".parse().unwrap();
        let idle: SocketAddr = "1.2.3.4:101".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:300".parse().unwrap();
        let other_host: SocketAddr = "1.2.3.5:100".parse().unwrap();
        for a in [first, idle, mapped, other_host] {
            assert!(set.insert(a, true));
        }
        // Unauthenticated connections of the host do not count.
        assert!(set.authenticate(&first, id(1), false));
        // Another node from the same host (v4-mapped form included) is refused...
        assert!(!set.authenticate(&mapped, id(2), false));
        // ...unless duplicate IPs are allowed; the same node is let through.
        assert!(set.authenticate(&mapped, id(1), false));
        assert!(set.authenticate(&other_host, id(2), false));
        assert!(set.authenticate(&idle, id(3), true));
        // A closed connection stops counting at once.
        set.remove(&first);
        set.remove(&mapped);
        set.remove(&idle);
        let again: SocketAddr = "1.2.3.4:400".parse().unwrap();
        assert!(set.insert(again, true));
        assert!(set.authenticate(&again, id(4), false));
    }

    #[test]
    fn an_ipv6_host_is_its_slash64() {
        let mut set = ConnSet::default();
        let a: SocketAddr = "[2a01:4f8:10:20::1]:1".parse().unwrap();
        let b: SocketAddr = "[2a01:4f8:10:20:ffff::2]:1".parse().unwrap();
        let c: SocketAddr = "[2a01:4f8:10:21::1]:1".parse().unwrap();
        for s in [a, b, c] {
            assert!(set.insert(s, true));
        }
        assert!(set.authenticate(&a, id(1), false));
        assert!(!set.authenticate(&b, id(2), false), "same /64");
        assert!(set.authenticate(&c, id(2), false), "another /64");
    }
}
