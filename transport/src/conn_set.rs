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
    /// Our end of an inbound TCP connection, when known.
    local: Option<SocketAddr>,
    /// Which connection from this socket address the entry is (see [`ConnSet::insert`]).
    generation: u64,
}

/// What [`ConnSet::authenticate`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Recorded as authenticated.
    Done,
    /// Another node's authenticated connection from the same host is recorded.
    DuplicateIp,
    /// The entry is gone (a newer connection on the same pair of sockets replaced it).
    Gone,
}

/// How a connection came to be.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    /// We dialed it.
    Dialed,
    /// We accepted it; `local` is our end (known for TCP).
    Accepted { local: Option<SocketAddr> },
}

/// The ticket of one recorded connection: which socket address, and which connection from
/// it. Removing with a ticket whose connection was replaced does nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) addr: SocketAddr,
    generation: u64,
}

/// Open connections by remote socket address. Pure data; the transport guards it with a lock
/// that is never held across an `.await`. An entry is removed the moment its connection
/// closes or fails, so only live connections count.
#[derive(Debug, Default)]
pub(crate) struct ConnSet {
    by_addr: HashMap<SocketAddr, Entry>,
    inbound: usize,
    generations: u64,
}

impl ConnSet {
    /// Whether a connection from exactly this socket address is open.
    #[cfg(test)]
    pub(crate) fn has(&self, addr: &SocketAddr) -> bool {
        self.by_addr.contains_key(addr)
    }

    /// Records a connection (not yet authenticated), or refuses it (`None`) when a
    /// connection from the same socket address is recorded.
    ///
    /// One exception: an inbound connection on the very pair of sockets of a recorded inbound
    /// one (same remote address and port, same `local` end) replaces it. The kernel accepts a
    /// new connection on a pair only once the old connection on it is gone, so the recorded
    /// one is already closed; its task has just not seen it yet. A peer that reset its
    /// connection and reconnected at once from the same port would otherwise be refused as a
    /// duplicate (netns A5, mode `same-port`). The replaced connection's ticket then neither
    /// authenticates nor removes anything.
    pub(crate) fn insert(&mut self, addr: SocketAddr, side: Side) -> Option<Ticket> {
        let (inbound, local) = match side {
            Side::Dialed => (false, None),
            Side::Accepted { local } => (true, local),
        };
        if let Some(old) = self.by_addr.get(&addr) {
            let same_pair = inbound && old.inbound && local.is_some() && old.local == local;
            if !same_pair {
                return None;
            }
            self.remove_entry(&addr);
        }
        self.generations += 1;
        let generation = self.generations;
        self.by_addr.insert(
            addr,
            Entry {
                host: HostPrefix::of(addr.ip()),
                inbound,
                id: None,
                local,
                generation,
            },
        );
        if inbound {
            self.inbound += 1;
        }
        Some(Ticket { addr, generation })
    }

    /// The connection of `ticket` authenticated as `id`. Unless `allow_duplicate_ip`, it is
    /// refused ([`Auth::DuplicateIp`], and the entry stays unauthenticated) when another
    /// authenticated connection from the same host belongs to another node: connections that
    /// have not authenticated yet never count (idle sockets cannot lock a host out), and the
    /// same node reconnecting is let through (the switch replaces its older connection).
    pub(crate) fn authenticate(
        &mut self,
        ticket: &Ticket,
        id: NodeId,
        allow_duplicate_ip: bool,
    ) -> Auth {
        let addr = &ticket.addr;
        let Some(host) = self
            .by_addr
            .get(addr)
            .filter(|e| e.generation == ticket.generation)
            .map(|e| e.host)
        else {
            return Auth::Gone;
        };
        if !allow_duplicate_ip
            && self
                .by_addr
                .iter()
                .any(|(a, e)| a != addr && e.host == host && e.id.is_some_and(|other| other != id))
        {
            return Auth::DuplicateIp;
        }
        if let Some(e) = self.by_addr.get_mut(addr) {
            e.id = Some(id);
        }
        Auth::Done
    }

    /// Forgets a connection (nothing if another connection from its address replaced it).
    pub(crate) fn remove(&mut self, ticket: &Ticket) {
        if self
            .by_addr
            .get(&ticket.addr)
            .is_some_and(|e| e.generation == ticket.generation)
        {
            self.remove_entry(&ticket.addr);
        }
    }

    fn remove_entry(&mut self, addr: &SocketAddr) {
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

    const IN: Side = Side::Accepted { local: None };

    fn accepted_on(local: &str) -> Side {
        Side::Accepted {
            local: Some(local.parse().unwrap()),
        }
    }

    #[test]
    fn tracks_addresses_and_directions() {
        let mut set = ConnSet::default();
        let a: SocketAddr = "1.2.3.4:100".parse().unwrap();
        let b: SocketAddr = "1.2.3.4:200".parse().unwrap();
        let ta = set.insert(a, IN).unwrap();
        assert!(set.insert(a, IN).is_none(), "duplicate socket address");
        assert!(set.has(&a));
        assert!(!set.has(&b));
        assert!(set.insert(b, Side::Dialed).is_some());
        assert_eq!((set.len(), set.inbound()), (2, 1));
        set.remove(&ta);
        set.remove(&ta);
        assert_eq!((set.len(), set.inbound()), (1, 0));
    }

    #[test]
    fn a_new_connection_on_the_same_pair_of_sockets_replaces_the_closed_one() {
        let mut set = ConnSet::default();
        let remote: SocketAddr = "81.1.0.2:45295".parse().unwrap();
        let old = set.insert(remote, accepted_on("10.0.0.1:26656")).unwrap();
        assert_eq!(set.authenticate(&old, id(1), false), Auth::Done);
        // The peer reset and reconnected from the same port before the old connection's task
        // saw the reset: the kernel only accepts it once the old one is gone.
        let new = set.insert(remote, accepted_on("10.0.0.1:26656")).unwrap();
        assert_ne!(old, new);
        assert_eq!((set.len(), set.inbound()), (1, 1));
        // Another node from that host now authenticates: the closed one does not count.
        assert_eq!(set.authenticate(&new, id(2), false), Auth::Done);
        // The old connection's end frees nothing and authenticates nothing.
        assert_eq!(set.authenticate(&old, id(1), false), Auth::Gone);
        set.remove(&old);
        assert!(set.has(&remote));
        assert_eq!((set.len(), set.inbound()), (1, 1));
        set.remove(&new);
        assert_eq!((set.len(), set.inbound()), (0, 0));
    }

    #[test]
    fn the_same_remote_port_on_another_pair_is_still_a_duplicate() {
        let mut set = ConnSet::default();
        let remote: SocketAddr = "81.1.0.2:45295".parse().unwrap();
        assert!(set.insert(remote, accepted_on("10.0.0.1:26656")).is_some());
        // Our other address: both connections may be live, so no replacing.
        assert!(set.insert(remote, accepted_on("10.0.0.2:26656")).is_none());
        // Our end unknown (in-memory pipes): as before, a duplicate.
        assert!(set.insert(remote, IN).is_none());
        // A dial to an address that is connected to us is a duplicate, and vice versa.
        assert!(set.insert(remote, Side::Dialed).is_none());
        let dialed: SocketAddr = "81.1.0.3:26656".parse().unwrap();
        assert!(set.insert(dialed, Side::Dialed).is_some());
        assert!(set.insert(dialed, accepted_on("10.0.0.1:26656")).is_none());
        assert_eq!((set.len(), set.inbound()), (2, 1));
    }

    #[test]
    fn one_node_per_host_counting_authenticated_connections_only() {
        let mut set = ConnSet::default();
        let first: SocketAddr = "1.2.3.4:100".parse().unwrap();
        let idle: SocketAddr = "1.2.3.4:101".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:300".parse().unwrap();
        let other_host: SocketAddr = "1.2.3.5:100".parse().unwrap();
        let [first, idle, mapped, other_host] =
            [first, idle, mapped, other_host].map(|a| set.insert(a, IN).unwrap());
        // Unauthenticated connections of the host do not count.
        assert_eq!(set.authenticate(&first, id(1), false), Auth::Done);
        // Another node from the same host (v4-mapped form included) is refused...
        assert_eq!(set.authenticate(&mapped, id(2), false), Auth::DuplicateIp);
        // ...unless duplicate IPs are allowed; the same node is let through.
        assert_eq!(set.authenticate(&mapped, id(1), false), Auth::Done);
        assert_eq!(set.authenticate(&other_host, id(2), false), Auth::Done);
        assert_eq!(set.authenticate(&idle, id(3), true), Auth::Done);
        // A closed connection stops counting at once.
        set.remove(&first);
        set.remove(&mapped);
        set.remove(&idle);
        let again: SocketAddr = "1.2.3.4:400".parse().unwrap();
        let again = set.insert(again, IN).unwrap();
        assert_eq!(set.authenticate(&again, id(4), false), Auth::Done);
    }

    #[test]
    fn an_ipv6_host_is_its_slash64() {
        let mut set = ConnSet::default();
        let a: SocketAddr = "[2a01:4f8:10:20::1]:1".parse().unwrap();
        let b: SocketAddr = "[2a01:4f8:10:20:ffff::2]:1".parse().unwrap();
        let c: SocketAddr = "[2a01:4f8:10:21::1]:1".parse().unwrap();
        let [a, b, c] = [a, b, c].map(|s| set.insert(s, IN).unwrap());
        assert_eq!(set.authenticate(&a, id(1), false), Auth::Done);
        assert_eq!(
            set.authenticate(&b, id(2), false),
            Auth::DuplicateIp,
            "same /64"
        );
        assert_eq!(
            set.authenticate(&c, id(2), false),
            Auth::Done,
            "another /64"
        );
    }
}
