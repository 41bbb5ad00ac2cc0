//! Dialing: reservations of outbound slots, one dial, dials in the background, and the
//! redial routine of persistent peers.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::SystemTime;

use mukan_reactor_api::{
    AdmissionRefusal, DialError, DialOutcome, NetAddress, NodeId, Observer, ParsedAddress,
    RejectDetail, TransportError, UnresolvedAddress,
};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::backoff::{STABLE_CONNECTION, redial_delay};
use crate::peer_set::{RunState, Table};
use crate::switch::{Inner, parsed_id, placeholder};

/// A dial's reservation of its peer ID, address and outbound slot; released on drop.
pub(crate) struct DialSlot {
    inner: Arc<Inner>,
    id: NodeId,
    key: String,
    counted: bool,
    released: bool,
}

impl DialSlot {
    pub(crate) fn release(&mut self, t: &mut Table) {
        if self.released {
            return;
        }
        self.released = true;
        t.dialing_ids.remove(&self.id);
        t.dialing_addrs.remove(&self.key);
        if self.counted {
            t.dialing_counted = t.dialing_counted.saturating_sub(1);
        }
    }
}

impl Drop for DialSlot {
    fn drop(&mut self) {
        if !self.released {
            let inner = self.inner.clone();
            let mut t = inner.table.lock();
            self.release(&mut t);
        }
    }
}

/// Removes a persistent peer from `reconnecting` when its redial routine ends.
pub(crate) struct ReconnectGuard {
    inner: Arc<Inner>,
    id: NodeId,
}

impl Drop for ReconnectGuard {
    fn drop(&mut self) {
        self.inner.table.lock().reconnecting.remove(&self.id);
    }
}

impl Inner {
    /// Reserves a dial of `id` at `key`.
    pub(crate) fn reserve(
        self: &Arc<Self>,
        id: NodeId,
        key: String,
    ) -> Result<DialSlot, DialError> {
        let counted = !self.exempt_outbound(&id);
        let mut t = self.table.lock();
        if t.state != RunState::Running {
            return Err(DialError::NotRunning);
        }
        if t.dialing_ids.contains(&id)
            || t.dialing_addrs.contains(&key)
            || t.slots.contains_key(&id)
        {
            return Err(DialError::AlreadyDialingOrConnected(placeholder(id)));
        }
        if counted && t.outbound_counted() + t.dialing_counted >= self.config.max_num_outbound_peers
        {
            return Err(DialError::OutboundLimit);
        }
        t.dialing_ids.insert(id);
        t.dialing_addrs.insert(key.clone());
        if counted {
            t.dialing_counted += 1;
        }
        Ok(DialSlot {
            inner: self.clone(),
            id,
            key,
            counted,
            released: false,
        })
    }

    /// Dials `target` and admits the peer; a persistent peer whose dial failed gets its
    /// redial routine (Go `addOutboundPeerWithConfig`).
    pub(crate) async fn dial(self: &Arc<Self>, target: ParsedAddress) -> Result<(), DialError> {
        let id = parsed_id(&target);
        let result = self.dial_once(&target).await;
        self.observer.dial_finished(&target, &result);
        let outcome = DialOutcome::of(&result);
        if self.persistent_ids.contains(&id)
            && matches!(
                outcome,
                DialOutcome::Failed
                    | DialOutcome::Rejected
                    | DialOutcome::Timeout
                    | DialOutcome::Unresolved
            )
        {
            self.spawn_redial(id, 0);
        }
        result
    }

    pub(crate) async fn dial_once(
        self: &Arc<Self>,
        target: &ParsedAddress,
    ) -> Result<(), DialError> {
        let id = parsed_id(target);
        if !self.is_running() {
            // A reactor may dial from its `on_start` (PEX's first crawl or ensure-peers run,
            // its anchors) while later reactors are still starting: the dial waits until
            // `start` has started them all, so that the peer it brings reaches every reactor
            // after its `on_start`, instead of failing and being retried minutes later.
            let mut started = self.started.subscribe();
            if self.is_starting() {
                let _ = started.wait_for(|s| *s).await;
            }
            if !self.is_running() {
                return Err(DialError::NotRunning);
            }
        }
        if id == self.our_id {
            let addr = match target {
                ParsedAddress::Resolved(a) => *a,
                ParsedAddress::Unresolved(u) => u.with_ip(Ipv4Addr::UNSPECIFIED.into()),
            };
            return Err(DialError::SelfAddress(addr));
        }
        let deny = &self.config.deny_list;
        if deny.is_denied_id(&id) {
            return Err(DialError::Denied(placeholder(id)));
        }
        if let ParsedAddress::Resolved(a) = target {
            if deny.is_denied_ip(a.ip()) {
                return Err(DialError::Denied(*a));
            }
        }
        let key = match target {
            ParsedAddress::Resolved(a) => a.dial_string(),
            ParsedAddress::Unresolved(u) => u.host_port(),
        };
        let mut slot = self.reserve(id, key)?;
        let addr = match target {
            ParsedAddress::Resolved(a) => *a,
            ParsedAddress::Unresolved(u) => match self.resolve(u).await {
                Some(a) => a,
                None => {
                    let shown = u.with_ip(Ipv4Addr::UNSPECIFIED.into());
                    return Err(DialError::Unresolved(shown));
                }
            },
        };
        if deny.is_denied_ip(addr.ip()) {
            return Err(DialError::Denied(addr));
        }
        if !self.config.allow_duplicate_ip && self.ip_connected(addr.ip()) {
            return Err(DialError::AlreadyDialingOrConnected(addr));
        }
        let dialed = {
            let mut shutdown = self.shutdown.subscribe();
            tokio::select! {
                r = self.transport.dial(addr, self.peer_config.clone()) => r,
                _ = shutdown.wait_for(|s| *s) => Err(TransportError::Closed),
            }
        };
        let peer = match dialed {
            Ok(peer) => peer,
            Err(e) => return self.dial_failed(addr, e),
        };
        match self.admit(peer.clone(), Some(&mut slot)) {
            Ok(()) => Ok(()),
            Err(refusal) => {
                peer.stop();
                match refusal {
                    AdmissionRefusal::NotRunning => Err(DialError::NotRunning),
                    AdmissionRefusal::Denied => Err(DialError::Denied(addr)),
                    _ => Err(DialError::AlreadyDialingOrConnected(addr)),
                }
            }
        }
    }

    /// A failed dial, with our own address and the deny list told apart from other
    /// rejections.
    pub(crate) fn dial_failed(&self, addr: NetAddress, e: TransportError) -> Result<(), DialError> {
        match e {
            TransportError::Rejected {
                detail: RejectDetail::SelfConnection,
                ..
            } => {
                self.saw_self(addr);
                Err(DialError::SelfAddress(addr))
            }
            TransportError::Rejected {
                detail: RejectDetail::DeniedId(_) | RejectDetail::DeniedIp(_),
                ..
            } => Err(DialError::Denied(addr)),
            TransportError::Closed => Err(DialError::NotRunning),
            e => Err(DialError::Transport(e)),
        }
    }

    /// Our own address seen from outside (Go: remove it from the book, add it as ours).
    pub(crate) fn saw_self(&self, addr: NetAddress) {
        if let Some(book) = &self.addr_book {
            let mut book = book.lock();
            book.remove_address(&addr);
            book.add_our_address(addr);
        }
    }

    /// Whether a peer on the host of `ip` (the IPv4 address, the IPv6 /64) is connected.
    pub(crate) fn ip_connected(&self, ip: IpAddr) -> bool {
        let host = mukan_reactor_api::HostPrefix::of(ip);
        self.table
            .lock()
            .slots
            .values()
            .any(|c| mukan_reactor_api::HostPrefix::of(c.socket_addr.ip()) == host)
    }

    /// Resolves a host name afresh (bounded by the resolve timeout); the first address wins
    /// (the first routable one with [`Config::routable_names_only`](crate::Config)).
    pub(crate) async fn resolve(&self, u: &UnresolvedAddress) -> Option<NetAddress> {
        let lookup = self.resolver.resolve(&u.host, u.port);
        match tokio::time::timeout(self.config.resolve_timeout, lookup).await {
            Ok(Ok(ips)) => ips
                .iter()
                .map(|ip| u.with_ip(*ip))
                .find(|a| !self.config.routable_names_only || a.routable()),
            _ => None,
        }
    }

    /// Dials `targets` in random order, each after a random delay (Go `dialPeersAsync`).
    pub(crate) fn dial_async(self: &Arc<Self>, targets: Vec<ParsedAddress>) {
        let our = self.transport.net_address();
        if let Some(book) = &self.addr_book {
            let mut book = book.lock();
            for t in &targets {
                if let ParsedAddress::Resolved(a) = t {
                    if !a.same(&our) {
                        // Refusals (private, non-routable…) are the book's business.
                        let _ = book.add_address(*a, our, SystemTime::now());
                    }
                }
            }
        }
        let mut order: Vec<(ParsedAddress, std::time::Duration)> = {
            let mut rng = self.rng.lock();
            let max = u64::try_from(self.config.dial_randomizer.as_millis()).unwrap_or(u64::MAX);
            targets
                .into_iter()
                .map(|t| {
                    let ms = if max == 0 { 0 } else { rng.gen_range(0..max) };
                    (t, std::time::Duration::from_millis(ms))
                })
                .collect()
        };
        order.shuffle(&mut *self.rng.lock());
        for (target, delay) in order {
            if let ParsedAddress::Resolved(a) = &target {
                if a.same(&our) {
                    continue;
                }
            }
            let inner = self.clone();
            tokio::spawn(async move {
                let mut shutdown = inner.shutdown.subscribe();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
                let _ = inner.dial(target).await;
            });
        }
    }

    /// Starts the redial routine of persistent peer `id` at attempt `first` of the schedule
    /// unless one runs or the switch stops (Go `reconnectToPeer`, which always starts at 0).
    pub(crate) fn spawn_redial(self: &Arc<Self>, id: NodeId, first: u32) {
        let Some(target) = self.persistent.iter().find(|p| parsed_id(p) == id).cloned() else {
            return;
        };
        {
            let mut t = self.table.lock();
            if t.state != RunState::Running || !t.reconnecting.insert(id) {
                return;
            }
        }
        let guard = ReconnectGuard {
            inner: self.clone(),
            id,
        };
        tokio::spawn(redial(guard, target, first));
    }

    /// Where the redial of persistent peer `id` starts after a connection that lasted
    /// `lived`: at once (attempt 0, as Go) if it lasted [`STABLE_CONNECTION`] or was not made
    /// by a redial routine; else where the routine that made it left off: a redialed
    /// connection dropped at once counts as a failed dial, so a peer that accepts and drops
    /// every connection is redialed on the schedule, not in a loop.
    pub(crate) fn redial_start(&self, id: NodeId, lived: std::time::Duration) -> u32 {
        let mut from = self.redial_from.lock();
        if lived >= STABLE_CONNECTION {
            from.remove(&id);
            0
        } else {
            from.get(&id).copied().unwrap_or(0)
        }
    }
}

/// The redial routine of one persistent peer: the configured address, on Go's schedule from
/// attempt `first`.
async fn redial(guard: ReconnectGuard, target: ParsedAddress, first: u32) {
    let inner = guard.inner.clone();
    let policy = inner.config.redial_policy();
    let mut shutdown = inner.shutdown.subscribe();
    let mut attempt = first;
    loop {
        let delay = redial_delay(attempt, &policy, &mut *inner.rng.lock());
        let Some(delay) = delay else {
            return;
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let result = inner.dial_once(&target).await;
        inner.observer.dial_finished(&target, &result);
        match result {
            Ok(()) => {
                // Should this connection not last, the next routine goes on from here.
                let next = attempt.saturating_add(1);
                inner.redial_from.lock().insert(guard.id, next);
                return;
            }
            Err(
                DialError::AlreadyDialingOrConnected(_)
                | DialError::Denied(_)
                | DialError::NotRunning
                | DialError::SelfAddress(_),
            ) => return,
            Err(_) => attempt = attempt.saturating_add(1),
        }
    }
}
