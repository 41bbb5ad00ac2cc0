//! [`Switch`]: the facade (start, stop, deny, stats, the [`Network`] and [`Dialer`] that
//! reactors see) and the state its tasks share ([`Inner`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::Ipv4Addr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use mukan_reactor_api::{
    BroadcastOutcome, BroadcastReport, ChannelId, DenyEntry, DialError, Dialer, NetAddress,
    Network, NodeId, Observers, ParsedAddress, Peer, PeerConfig, PeerCounts, Reactor, ReactorError,
    StopReason, Transport, TrySendError,
};
use parking_lot::Mutex;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admission::accept_loop;
use crate::peer_set::{Conn, PeerInfo, Phase, RunState, Table};
use crate::resolver::Resolver;
use crate::routing::Routes;
use crate::stats::{Counters, Stats};
use crate::{Config, Error};

/// The switch (Go `p2p.Switch`): keeps the peers the configuration asks for, routes every
/// received message to its reactor and redials persistent peers.
///
/// Build it with [`Builder`](crate::Builder), then [`Switch::start`]; [`Switch::stop`] before dropping it
/// (its tasks hold it alive until then). Reactors reach it as `Weak<dyn Network>` and, when
/// they dial, `Weak<dyn Dialer>`.
pub struct Switch<T: Transport> {
    pub(crate) inner: Arc<Inner>,
    pub(crate) transport: Arc<T>,
}

impl<T: Transport> std::fmt::Debug for Switch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch")
            .field("id", &self.inner.our_id)
            .field("state", &self.inner.table.lock().state)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Switch<T> {
    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Starts the reactors ([`Reactor::on_start`], in registration order), then accepting
    /// peers. Tells the address book our own address and the private peer IDs.
    ///
    /// # Errors
    /// [`Error::AlreadyStarted`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(&self) -> Result<(), Error> {
        let inner = &self.inner;
        {
            let mut t = inner.table.lock();
            if t.state != RunState::Created {
                return Err(Error::AlreadyStarted);
            }
            t.state = RunState::Starting;
        }
        // Dials that reactors make from `on_start` wait for this (see `Inner::dial_once`);
        // it is told when `start` ends, by returning or by unwinding.
        let _started = StartedGuard(&inner.started);
        if let Some(book) = &inner.addr_book {
            let mut book = book.lock();
            book.add_our_address(inner.transport.net_address());
            book.add_private_ids(&inner.config.private_peer_ids);
        }
        for reactor in inner.routes.reactors() {
            guarded(|| reactor.on_start());
        }
        inner.table.lock().state = RunState::Running;
        let task = tokio::spawn(accept_loop(inner.clone()));
        *inner.accept_task.lock() = Some(task);
        Ok(())
    }

    /// Stops the switch, in order: stop accepting and dialing (the transport is closed),
    /// flush and close every peer (each flush bounded by the flush timeout) and remove it from
    /// every reactor, then stop the reactors ([`Reactor::on_stop`]). Returns when all of that
    /// is done.
    ///
    /// Before [`Switch::start`], it closes the transport and marks the switch stopped, so that
    /// a later `start` fails ([`Error::AlreadyStarted`]). A second `stop` is a no-op.
    ///
    /// Dropping the last handle to a started switch stops it too, without waiting: every
    /// connection is closed at once (no flush), the tasks end, and the reactors get `on_stop`
    /// once their peers are removed.
    ///
    /// # Cancel safety
    /// Not cancel-safe: dropping the future leaves the reactors unstopped (the peers still
    /// stop).
    pub async fn stop(&self) {
        let inner = &self.inner;
        let live: Vec<Arc<Conn>> = {
            let mut t = inner.table.lock();
            match t.state {
                RunState::Running => {}
                RunState::Created => {
                    t.state = RunState::Stopped;
                    drop(t);
                    inner.transport.close();
                    return;
                }
                _ => return,
            }
            t.state = RunState::Stopping;
            t.live.values().cloned().collect()
        };
        inner.shutdown.send_replace(true);
        inner.transport.close();
        for conn in &live {
            conn.request_stop(StopReason::Shutdown, true);
        }
        for conn in &live {
            let mut done = conn.done();
            let _ = done.wait_for(|d| *d).await;
        }
        let accept = inner.accept_task.lock().take();
        if let Some(task) = accept {
            let _ = task.await;
        }
        for reactor in inner.routes.reactors() {
            guarded(|| reactor.on_stop());
        }
        inner.table.lock().state = RunState::Stopped;
    }

    /// Dials `addrs` in random order, each after a random delay below
    /// [`Config::dial_randomizer`] (Go `DialPeersAsync`, which spreads the dials of nodes
    /// started together; zero dials at once), in background tasks. Addresses given by name are
    /// resolved when dialed; IP addresses are added to the address book first. Our own address
    /// is skipped. To dial one address now, use [`Dialer::dial_peer_with_address`].
    pub fn dial_peers_async(&self, addrs: &[ParsedAddress]) {
        self.inner.dial_async(addrs.to_vec());
    }

    /// Dials every configured persistent peer as [`Switch::dial_peers_async`] does (what a
    /// node does once started). A failed dial starts the redial schedule.
    pub fn dial_persistent_peers(&self) {
        self.inner.dial_async(self.inner.persistent.clone());
    }

    /// Adds `entry` to the deny list and stops the connected peers it matches (ID, or the IP
    /// of their socket address) with [`StopReason::Denied`]. Returns how many were stopped.
    pub fn deny(&self, entry: DenyEntry) -> usize {
        let inner = &self.inner;
        inner.config.deny_list.deny(entry);
        let victims: Vec<Arc<Conn>> = {
            let t = inner.table.lock();
            t.live
                .values()
                .filter(|c| inner.config.deny_list.denies(&c.socket_addr))
                .cloned()
                .collect()
        };
        let mut stopped = 0;
        for conn in victims {
            if inner.stop_conn(&conn, StopReason::Denied, false) {
                stopped += 1;
            }
        }
        stopped
    }

    /// Removes `entry` from the deny list; `true` if it was there.
    pub fn allow(&self, entry: &DenyEntry) -> bool {
        self.inner.config.deny_list.allow(entry)
    }

    /// The connected peers, for `/net_info`.
    pub fn peer_infos(&self) -> Vec<PeerInfo> {
        self.inner.added().iter().map(|c| PeerInfo::of(c)).collect()
    }

    /// A snapshot of the switch's counters.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let mut stats = inner.counters.snapshot(&inner.channel_ids);
        let t = inner.table.lock();
        stats.peers_outbound = t
            .slots
            .values()
            .filter(|c| c.direction.is_outbound())
            .count();
        stats.peers_inbound = t.slots.len() - stats.peers_outbound;
        stats.dialing = t.dialing_ids.len();
        stats
    }

    /// Whether `id` is a configured persistent peer.
    pub fn is_persistent(&self, id: &NodeId) -> bool {
        self.inner.persistent_ids.contains(id)
    }

    /// Whether `id` is a configured unconditional peer.
    pub fn is_unconditional(&self, id: &NodeId) -> bool {
        self.inner.unconditional.contains(id)
    }

    /// The channel IDs of the registered reactors, in registration order.
    pub fn channel_ids(&self) -> &[ChannelId] {
        &self.inner.channel_ids
    }

    /// Number of persistent peers with a redial routine running.
    pub fn num_reconnecting(&self) -> usize {
        self.inner.table.lock().reconnecting.len()
    }
}

impl<T: Transport> Drop for Switch<T> {
    /// The last handle is gone: nobody can stop the switch any more, so it stops itself
    /// without waiting (its tasks would otherwise keep it, and every connection, alive).
    fn drop(&mut self) {
        self.inner.abandon();
    }
}

impl<T: Transport> Network for Switch<T> {
    fn net_address(&self) -> NetAddress {
        self.inner.transport.net_address()
    }

    fn peers(&self) -> Vec<Arc<dyn Peer>> {
        self.inner
            .added()
            .into_iter()
            .map(|c| c.handle.clone())
            .collect()
    }

    fn peer(&self, id: &NodeId) -> Option<Arc<dyn Peer>> {
        let t = self.inner.table.lock();
        t.slots
            .get(id)
            .filter(|c| c.phase() == Phase::Added)
            .map(|c| c.handle.clone())
    }

    fn num_peers(&self) -> PeerCounts {
        let t = self.inner.table.lock();
        let mut counts = PeerCounts {
            outbound: 0,
            inbound: 0,
            dialing: t.dialing_ids.len(),
        };
        for c in t.slots.values().filter(|c| !c.unconditional) {
            if c.direction.is_outbound() {
                counts.outbound += 1;
            } else {
                counts.inbound += 1;
            }
        }
        counts
    }

    fn broadcast(&self, channel: ChannelId, message: Bytes) -> BroadcastReport {
        let inner = &self.inner;
        let conns = inner.added();
        let mut outcomes = Vec::with_capacity(conns.len());
        let message_type = inner.routes.message_type(channel, &message);
        let len = message.len();
        for conn in conns {
            let outcome = match conn.peer.try_send(channel, message.clone()) {
                Ok(()) => {
                    conn.traffic.observer().sent(channel, message_type, len);
                    BroadcastOutcome::Queued
                }
                Err(TrySendError::Full) => BroadcastOutcome::Full,
                Err(TrySendError::UnknownChannel(_)) => BroadcastOutcome::UnknownChannel,
                Err(_) => BroadcastOutcome::Closed,
            };
            outcomes.push((conn.id, outcome));
        }
        BroadcastReport { outcomes }
    }

    fn stop_peer_for_error(&self, id: &NodeId, reason: ReactorError) {
        let inner = &self.inner;
        let conn = inner.table.lock().slots.get(id).cloned();
        if let Some(conn) = conn {
            inner.stop_conn(&conn, StopReason::Reactor(reason), false);
        }
    }

    fn stop_peer_gracefully(&self, id: &NodeId) {
        let inner = &self.inner;
        let conn = inner.table.lock().slots.get(id).cloned();
        if let Some(conn) = conn {
            inner.stop_conn(&conn, StopReason::Graceful, true);
        }
    }

    fn mark_peer_as_good(&self, id: &NodeId) {
        if let Some(book) = &self.inner.addr_book {
            book.lock().mark_good(*id, SystemTime::now());
        }
    }

    fn mark_useful(&self, id: &NodeId) {
        let conn = self.inner.table.lock().slots.get(id).cloned();
        if let Some(conn) = conn {
            conn.mark_useful();
        }
    }

    fn reactor(&self, name: &str) -> Option<Arc<dyn Reactor>> {
        self.inner.routes.by_name(name).cloned()
    }
}

impl<T: Transport> Dialer for Switch<T> {
    fn max_num_outbound_peers(&self) -> usize {
        self.inner.config.max_num_outbound_peers
    }

    fn is_dialing_or_existing_address(&self, addr: &NetAddress) -> bool {
        let inner = &self.inner;
        let t = inner.table.lock();
        t.dialing_ids.contains(&addr.id())
            || t.dialing_addrs.contains(&addr.dial_string())
            || t.slots.contains_key(&addr.id())
            || (!inner.config.allow_duplicate_ip
                && t.slots.values().any(|c| {
                    mukan_reactor_api::HostPrefix::of(c.socket_addr.ip())
                        == mukan_reactor_api::HostPrefix::of(addr.ip())
                }))
    }

    fn dial_peer_with_address(
        &self,
        addr: NetAddress,
    ) -> Pin<Box<dyn Future<Output = Result<(), DialError>> + Send + '_>> {
        Box::pin(self.inner.dial(ParsedAddress::Resolved(addr)))
    }

    /// A host name is resolved through the switch's [`Resolver`] at every call, as for
    /// persistent peers.
    fn dial_parsed_address(
        &self,
        addr: ParsedAddress,
    ) -> Pin<Box<dyn Future<Output = Result<(), DialError>> + Send + '_>> {
        Box::pin(self.inner.dial(addr))
    }
}

/// Tells the waiters of `started` when [`Switch::start`] ends, however it ends.
struct StartedGuard<'a>(&'a watch::Sender<bool>);

impl Drop for StartedGuard<'_> {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// The state shared by the switch and its tasks.
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) routes: Arc<Routes>,
    pub(crate) channel_ids: Vec<ChannelId>,
    pub(crate) peer_config: PeerConfig,
    pub(crate) persistent: Vec<ParsedAddress>,
    pub(crate) persistent_ids: Arc<HashSet<NodeId>>,
    pub(crate) unconditional: HashSet<NodeId>,
    pub(crate) our_id: NodeId,
    pub(crate) resolver: Arc<dyn Resolver>,
    pub(crate) addr_book: Option<mukan_reactor_api::SharedAddressBook>,
    pub(crate) rng: Mutex<ChaCha8Rng>,
    /// Per persistent peer whose last connection came from a redial: the attempt the next
    /// redial routine starts at if that connection does not last ([`STABLE_CONNECTION`]).
    /// At most one entry per persistent peer.
    pub(crate) redial_from: Mutex<HashMap<NodeId, u32>>,
    pub(crate) table: Mutex<Table>,
    /// The node's secret key for ranking netgroups in eviction (drawn once, at random).
    pub(crate) group_key: u64,
    /// The switch's own counters (also the first of `observer`), for [`Switch::stats`].
    pub(crate) counters: Arc<Counters>,
    /// Everything that is told of the switch's events: the counters, the log, the user's.
    pub(crate) observer: Observers,
    pub(crate) shutdown: watch::Sender<bool>,
    /// `true` once [`Switch::start`] has left the starting state (every reactor's `on_start`
    /// has returned). A dial made meanwhile, from a reactor's `on_start`, waits for it.
    pub(crate) started: watch::Sender<bool>,
    pub(crate) accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    /// What [`Switch`]'s `Drop` does: if started, stop accepting and dialing, close every
    /// connection at once (each connection's task still runs its stop path, so reactors get
    /// `remove_peer`), then `on_stop` once they are done (in a task, when in a runtime).
    pub(crate) fn abandon(self: &Arc<Self>) {
        let live: Vec<Arc<Conn>> = {
            let mut t = self.table.lock();
            match t.state {
                RunState::Running => t.state = RunState::Stopping,
                RunState::Created => {
                    t.state = RunState::Stopped;
                    return;
                }
                _ => return,
            }
            t.live.values().cloned().collect()
        };
        self.shutdown.send_replace(true);
        self.transport.close();
        if let Some(task) = self.accept_task.lock().take() {
            task.abort();
        }
        for conn in &live {
            self.stop_conn(conn, StopReason::Shutdown, false);
        }
        let inner = self.clone();
        let finish = async move {
            for conn in &live {
                let mut done = conn.done();
                let _ = done.wait_for(|d| *d).await;
            }
            for reactor in inner.routes.reactors() {
                guarded(|| reactor.on_stop());
            }
            inner.table.lock().state = RunState::Stopped;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn(finish)),
            Err(_) => self.table.lock().state = RunState::Stopped,
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.table.lock().state == RunState::Running
    }

    /// Whether the switch is still running its reactors' `on_start`.
    pub(crate) fn is_starting(&self) -> bool {
        self.table.lock().state == RunState::Starting
    }

    /// Connections announced to the reactors, in admission order.
    pub(crate) fn added(&self) -> Vec<Arc<Conn>> {
        let mut conns: Vec<Arc<Conn>> = self
            .table
            .lock()
            .slots
            .values()
            .filter(|c| c.phase() == Phase::Added)
            .cloned()
            .collect();
        conns.sort_by_key(|c| c.seq);
        conns
    }

    pub(crate) fn exempt_outbound(&self, id: &NodeId) -> bool {
        self.persistent_ids.contains(id) || self.unconditional.contains(id)
    }

    /// Asks `conn` to stop; closes it at once unless it is to be flushed first.
    pub(crate) fn stop_conn(&self, conn: &Conn, reason: StopReason, flush: bool) -> bool {
        let asked = conn.request_stop(reason, flush);
        if asked && !flush {
            conn.peer.stop();
        }
        asked
    }
}

/// Runs reactor code so that a panic in one reactor neither skips the others' calls nor
/// kills the task that owes them `remove_peer` (the panic is reported by the panic hook).
pub(crate) fn guarded(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(f));
}

pub(crate) fn parsed_id(p: &ParsedAddress) -> NodeId {
    match p {
        ParsedAddress::Resolved(a) => a.id(),
        ParsedAddress::Unresolved(u) => u.id,
    }
}

/// An address for errors that only know the ID.
pub(crate) fn placeholder(id: NodeId) -> NetAddress {
    NetAddress::new(id, Ipv4Addr::UNSPECIFIED.into(), 0)
}
