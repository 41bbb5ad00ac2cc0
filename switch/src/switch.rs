//! [`Switch`]: peers, reactors, dialing and redialing over a [`Transport`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::SystemTime;

use bytes::Bytes;
use mukan_reactor_api::{
    AdmissionRefusal, BroadcastOutcome, BroadcastReport, ChannelDescriptor, ChannelId, DenyEntry,
    DialError, DialOutcome, Dialer, Direction, Envelope, HostPrefix, InboxItem, ManagedPeer,
    NetAddress,
    NetGroup, Network, NodeId, Observer, Observers, ParsedAddress, Peer, PeerConfig, PeerCounts,
    PeerInbox,
    ProtocolError, Reactor, ReactorError, RejectDetail, StopReason, Transport, TransportError,
    TrySendError, UnresolvedAddress,
};
use parking_lot::Mutex;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backoff::{STABLE_CONNECTION, redial_delay};
use crate::inbound;
use crate::log::Log;
use crate::peer_set::{Conn, PeerInfo, Phase, RunState, StopRequest, Table};
use crate::resolver::{Resolver, TokioResolver};
use crate::routing::Routes;
use crate::stats::{Counters, Stats};
use crate::{Config, Error};

/// Registers reactors, then builds a [`Switch`] over a transport.
///
/// Reactors are asked for their channels when added (so the node can build its `NodeInfo`
/// from [`Builder::channel_ids`] before creating the transport), and get the switch
/// ([`Reactor::set_switch`], [`Reactor::set_dialer`]) when it is built.
pub struct Builder {
    config: Config,
    routes: Routes,
    resolver: Arc<dyn Resolver>,
    addr_book: Option<mukan_reactor_api::SharedAddressBook>,
    observers: Vec<Arc<dyn Observer>>,
}

impl Builder {
    /// A builder with `config`, the system resolver and no address book.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            routes: Routes::default(),
            resolver: Arc::new(TokioResolver),
            addr_book: None,
            observers: Vec::new(),
        }
    }

    /// Adds `observer`: it is told of every peer, message, dial and refusal
    /// ([`Observer`]), after the switch's own counters ([`Switch::stats`]) and its log
    /// lines. Observers added in turn are told in that order.
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Registers `reactor` under `name` (Go `AddReactor`).
    ///
    /// # Errors
    /// [`Error::DuplicateReactorName`] or [`Error::DuplicateChannel`]; the reactor is not
    /// registered then.
    pub fn add_reactor(&mut self, name: &str, reactor: Arc<dyn Reactor>) -> Result<(), Error> {
        self.routes.add(name, reactor)
    }

    /// Uses `resolver` for host names instead of the system resolver.
    #[must_use]
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Gives the switch an address book: it learns our own address, the private IDs, the
    /// addresses of [`Switch::dial_peers_async`] and which peers were good.
    #[must_use]
    pub fn address_book(mut self, book: mukan_reactor_api::SharedAddressBook) -> Self {
        self.addr_book = Some(book);
        self
    }

    /// The channels of every registered reactor, in registration order (for `PeerConfig`).
    pub fn channels(&self) -> Vec<ChannelDescriptor> {
        self.routes.channels().to_vec()
    }

    /// The channel IDs of every registered reactor, in registration order (our `NodeInfo`'s
    /// `channels`).
    pub fn channel_ids(&self) -> Vec<ChannelId> {
        self.routes.channel_ids()
    }

    /// Builds the switch over `transport` and hands it to every reactor
    /// ([`Reactor::set_switch`], then [`Reactor::set_dialer`]).
    ///
    /// # Errors
    /// [`Error::PersistentPeer`] when a persistent peer does not parse (an unresolvable host
    /// name is fine: it is resolved at each dial).
    pub fn build<T: Transport>(self, transport: T) -> Result<Arc<Switch<T>>, Error> {
        let persistent = self.config.parse_persistent()?;
        let persistent_ids: Arc<HashSet<NodeId>> =
            Arc::new(persistent.iter().map(parsed_id).collect());
        let unconditional: HashSet<NodeId> =
            self.config.unconditional_peer_ids.iter().copied().collect();
        let mut rng = match self.config.rng_seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_entropy(),
        };
        let group_key = rng.r#gen::<u64>();
        let peer_config = PeerConfig::new(self.routes.channels().to_vec());
        let counters = Arc::new(Counters::new());
        let mut observer = Observers::new();
        observer.push(counters.clone());
        observer.push(Arc::new(Log));
        for o in self.observers {
            observer.push(o);
        }
        let transport = Arc::new(transport);
        let dyn_transport: Arc<dyn Transport> = transport.clone();
        let our_id = dyn_transport.net_address().id();
        let (shutdown, _) = watch::channel(false);
        let channel_ids = self.routes.channel_ids();
        let inner = Arc::new(Inner {
            config: self.config,
            transport: dyn_transport,
            routes: Arc::new(self.routes),
            channel_ids,
            peer_config,
            persistent,
            persistent_ids,
            unconditional,
            our_id,
            resolver: self.resolver,
            addr_book: self.addr_book,
            rng: Mutex::new(rng),
            redial_from: Mutex::new(HashMap::new()),
            table: Mutex::new(Table::new()),
            group_key,
            counters,
            observer,
            shutdown,
            accept_task: Mutex::new(None),
        });
        let switch = Arc::new_cyclic(|weak: &Weak<Switch<T>>| {
            let network: Weak<dyn Network> = weak.clone();
            let dialer: Weak<dyn Dialer> = weak.clone();
            for reactor in inner.routes.reactors() {
                reactor.set_switch(network.clone());
                reactor.set_dialer(dialer.clone());
            }
            Switch {
                inner: inner.clone(),
                transport,
            }
        });
        Ok(switch)
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("channels", &self.routes.channel_ids())
            .finish_non_exhaustive()
    }
}

/// The switch (Go `p2p.Switch`): keeps the peers the configuration asks for, routes every
/// received message to its reactor and redials persistent peers.
///
/// Build it with [`Builder`], then [`Switch::start`]; [`Switch::stop`] before dropping it
/// (its tasks hold it alive until then). Reactors reach it as `Weak<dyn Network>` and, when
/// they dial, `Weak<dyn Dialer>`.
pub struct Switch<T: Transport> {
    inner: Arc<Inner>,
    transport: Arc<T>,
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
    /// is done. A no-op unless running.
    ///
    /// # Cancel safety
    /// Not cancel-safe: dropping the future leaves the reactors unstopped (the peers still
    /// stop).
    pub async fn stop(&self) {
        let inner = &self.inner;
        let live: Vec<Arc<Conn>> = {
            let mut t = inner.table.lock();
            if t.state != RunState::Running {
                return;
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

    /// Dials `addrs` (`id@host:port`) in random order, each after a random delay below
    /// `dial_randomizer` (Go `DialPeersAsync`), in background tasks. Addresses given by name
    /// are resolved when dialed; IP addresses are added to the address book first. Our own
    /// address is skipped.
    ///
    /// # Errors
    /// The first address that does not parse; nothing is dialed then.
    pub fn dial_peers_async(&self, addrs: &[String]) -> Result<(), Error> {
        let parsed: Vec<ParsedAddress> = addrs
            .iter()
            .map(|s| {
                s.parse::<ParsedAddress>().map_err(|source| Error::Address {
                    addr: s.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        self.inner.dial_async(parsed);
        Ok(())
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
                && t.slots
                    .values()
                    .any(|c| HostPrefix::of(c.socket_addr.ip()) == HostPrefix::of(addr.ip())))
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

/// The state shared by the switch and its tasks.
pub(crate) struct Inner {
    pub(crate) config: Config,
    transport: Arc<dyn Transport>,
    routes: Arc<Routes>,
    channel_ids: Vec<ChannelId>,
    peer_config: PeerConfig,
    persistent: Vec<ParsedAddress>,
    persistent_ids: Arc<HashSet<NodeId>>,
    unconditional: HashSet<NodeId>,
    our_id: NodeId,
    resolver: Arc<dyn Resolver>,
    addr_book: Option<mukan_reactor_api::SharedAddressBook>,
    rng: Mutex<ChaCha8Rng>,
    /// Per persistent peer whose last connection came from a redial: the attempt the next
    /// redial routine starts at if that connection does not last ([`STABLE_CONNECTION`]).
    /// At most one entry per persistent peer.
    redial_from: Mutex<HashMap<NodeId, u32>>,
    pub(crate) table: Mutex<Table>,
    /// The node's secret key for ranking netgroups in eviction (drawn once, at random).
    pub(crate) group_key: u64,
    /// The switch's own counters (also the first of `observer`), for [`Switch::stats`].
    counters: Arc<Counters>,
    /// Everything that is told of the switch's events: the counters, the log, the user's.
    observer: Observers,
    shutdown: watch::Sender<bool>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

/// A dial's reservation of its peer ID, address and outbound slot; released on drop.
struct DialSlot {
    inner: Arc<Inner>,
    id: NodeId,
    key: String,
    counted: bool,
    released: bool,
}

impl DialSlot {
    fn release(&mut self, t: &mut Table) {
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
struct ReconnectGuard {
    inner: Arc<Inner>,
    id: NodeId,
}

impl Drop for ReconnectGuard {
    fn drop(&mut self) {
        self.inner.table.lock().reconnecting.remove(&self.id);
    }
}

impl Inner {
    fn is_running(&self) -> bool {
        self.table.lock().state == RunState::Running
    }

    /// Connections announced to the reactors, in admission order.
    fn added(&self) -> Vec<Arc<Conn>> {
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

    fn exempt_outbound(&self, id: &NodeId) -> bool {
        self.persistent_ids.contains(id) || self.unconditional.contains(id)
    }

    /// Asks `conn` to stop; closes it at once unless it is to be flushed first.
    fn stop_conn(&self, conn: &Conn, reason: StopReason, flush: bool) -> bool {
        let asked = conn.request_stop(reason, flush);
        if asked && !flush {
            conn.peer.stop();
        }
        asked
    }

    /// Admits an upgraded peer: checks, takes its ID's slot (replacing a stopping
    /// connection, or the loser of a simultaneous dial), and starts its task.
    fn admit(
        self: &Arc<Self>,
        peer: Arc<dyn ManagedPeer>,
        dial: Option<&mut DialSlot>,
    ) -> Result<(), AdmissionRefusal> {
        let id = peer.id();
        let direction = peer.direction();
        let socket_addr = peer.socket_addr();
        let unconditional = self.unconditional.contains(&id);
        let persistent = self.persistent_ids.contains(&id);
        // Inbound peers count against the inbound limit and their netgroup's cap, unless
        // unconditional; when the slots are full, one may be evicted for the newcomer.
        let counted = direction == Direction::Inbound && !unconditional;
        let victim = if counted {
            self.eviction_victim(id)
        } else {
            None
        };
        let (conn, replaced, evicted) = {
            let mut t = self.table.lock();
            if t.state != RunState::Running {
                return Err(AdmissionRefusal::NotRunning);
            }
            if self.config.deny_list.denies(&socket_addr) {
                return Err(AdmissionRefusal::Denied);
            }
            let evicted = if counted {
                let newcomer = inbound::Newcomer {
                    id,
                    group: NetGroup::capped(socket_addr.ip()),
                    persistent,
                };
                let decision = inbound::decide(
                    &t,
                    self.config.max_num_inbound_peers,
                    self.config.max_inbound_per_netgroup,
                    &newcomer,
                    victim,
                );
                match decision {
                    inbound::Decision::Admit => None,
                    inbound::Decision::Evict(conn) => Some(conn),
                    inbound::Decision::Refuse(refusal) => return Err(refusal),
                }
            } else {
                None
            };
            let replaced = match t.slots.get(&id) {
                None => None,
                Some(old) if old.is_stopping() || self.keep_new(old.direction, direction, id) => {
                    Some(old.clone())
                }
                Some(_) => return Err(AdmissionRefusal::Duplicate),
            };
            let seq = t.next_seq;
            t.next_seq += 1;
            let conn = Arc::new(Conn::new(
                seq,
                peer,
                &self.observer,
                self.routes.clone(),
                unconditional,
                persistent,
                direction,
                socket_addr,
                id,
            ));
            t.slots.insert(id, conn.clone());
            t.live.insert(seq, conn.clone());
            if let Some(dial) = dial {
                dial.release(&mut t);
            }
            // Stopping counts at once: the victim no longer holds a slot.
            if let Some(victim) = &evicted {
                victim.request_stop(StopReason::Evicted, false);
            }
            (conn, replaced, evicted)
        };
        if let Some(victim) = evicted {
            victim.peer.stop();
        }
        let predecessor = replaced.map(|old| {
            // Replaced by a connection both sides keep: no flush, no redial.
            self.stop_conn(&old, StopReason::Graceful, false);
            old.done()
        });
        tokio::spawn(run_conn(self.clone(), conn, predecessor));
        Ok(())
    }

    /// Which of two connections to peer `their_id` both sides keep. When each side dialed the
    /// other, the connection dialed by the node with the smaller ID wins on both sides, so
    /// exactly one survives. Between two connections in the same direction the newer wins
    /// (the older one is most likely half-open).
    fn keep_new(&self, old: Direction, new: Direction, their_id: NodeId) -> bool {
        if old == new {
            return true;
        }
        let we_dialed_new = new.is_outbound();
        let we_are_smaller = self.our_id < their_id;
        we_dialed_new == we_are_smaller
    }

    /// Reserves a dial of `id` at `key`.
    fn reserve(self: &Arc<Self>, id: NodeId, key: String) -> Result<DialSlot, DialError> {
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
    async fn dial(self: &Arc<Self>, target: ParsedAddress) -> Result<(), DialError> {
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

    async fn dial_once(self: &Arc<Self>, target: &ParsedAddress) -> Result<(), DialError> {
        let id = parsed_id(target);
        if !self.is_running() {
            return Err(DialError::NotRunning);
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
    fn dial_failed(&self, addr: NetAddress, e: TransportError) -> Result<(), DialError> {
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
    fn saw_self(&self, addr: NetAddress) {
        if let Some(book) = &self.addr_book {
            let mut book = book.lock();
            book.remove_address(&addr);
            book.add_our_address(addr);
        }
    }

    /// Whether a peer on the host of `ip` (the IPv4 address, the IPv6 /64) is connected.
    fn ip_connected(&self, ip: IpAddr) -> bool {
        let host = HostPrefix::of(ip);
        self.table
            .lock()
            .slots
            .values()
            .any(|c| HostPrefix::of(c.socket_addr.ip()) == host)
    }

    /// Resolves a host name afresh (bounded by the resolve timeout); the first address wins.
    async fn resolve(&self, u: &UnresolvedAddress) -> Option<NetAddress> {
        let lookup = self.resolver.resolve(&u.host, u.port);
        match tokio::time::timeout(self.config.resolve_timeout, lookup).await {
            Ok(Ok(ips)) => ips.first().map(|ip| u.with_ip(*ip)),
            _ => None,
        }
    }

    /// Dials `targets` in random order, each after a random delay (Go `dialPeersAsync`).
    fn dial_async(self: &Arc<Self>, targets: Vec<ParsedAddress>) {
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
    fn spawn_redial(self: &Arc<Self>, id: NodeId, first: u32) {
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
    fn redial_start(&self, id: NodeId, lived: std::time::Duration) -> u32 {
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

/// Accepts inbound peers until the transport closes (Go `acceptRoutine`).
async fn accept_loop(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            r = inner.transport.accept(inner.peer_config.clone()) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok(peer) => {
                if let Err(refusal) = inner.admit(peer.clone(), None) {
                    inner.observer.inbound_refused(&*peer, refusal);
                    peer.stop();
                }
            }
            Err(TransportError::Closed) => return,
            // One connection failed: report it and keep accepting.
            Err(e) => {
                inner.observer.inbound_failed(&e);
                if let TransportError::Rejected {
                    detail: RejectDetail::SelfConnection,
                    addr: Some(addr),
                } = e
                {
                    inner.saw_self(addr);
                }
            }
        }
    }
}

/// The task of one admitted connection: every reactor call for it, in grammar order.
async fn run_conn(inner: Arc<Inner>, conn: Arc<Conn>, predecessor: Option<watch::Receiver<bool>>) {
    if let Some(mut done) = predecessor {
        // The replaced connection's remove_peer comes before our init_peer.
        let _ = done.wait_for(|d| *d).await;
    }
    if conn.stop_requested().is_some() || !inner.is_running() {
        let request = conn.settle(StopReason::Shutdown);
        finish(&inner, &conn, None, request, false).await;
        return;
    }
    let routes = inner.routes.clone();
    for reactor in routes.reactors() {
        guarded(|| reactor.init_peer(&conn.handle));
    }
    let mut inbox = match conn.peer.start() {
        Ok(inbox) => inbox,
        Err(observed) => {
            let request = conn.settle(observed);
            finish(&inner, &conn, None, request, true).await;
            return;
        }
    };
    if conn.stop_requested().is_none() {
        conn.set_phase(Phase::Added);
        for reactor in routes.reactors() {
            guarded(|| reactor.add_peer(&conn.handle));
        }
    }
    let observed = drain(&routes, &conn, &mut *inbox).await;
    let request = conn.settle(observed);
    finish(&inner, &conn, Some(inbox), request, true).await;
}

/// Delivers the peer's messages to their reactors until the connection ends or a stop is
/// asked; returns what ended it.
async fn drain(routes: &Routes, conn: &Conn, inbox: &mut dyn PeerInbox) -> StopReason {
    loop {
        // Lock-free on the hot path: the stop flag is an atomic, and the task registers for
        // a stop wake-up only when its inbox is empty.
        let next = std::future::poll_fn(|cx| {
            if conn.stop_flagged() {
                return Poll::Ready(None);
            }
            match inbox.poll_next(cx) {
                Poll::Ready(item) => Poll::Ready(Some(item)),
                Poll::Pending if conn.park_drain(cx.waker()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let Some(item) = next else {
            return conn
                .stop_requested()
                .map_or(StopReason::Shutdown, |r| r.reason);
        };
        match item {
            Some(InboxItem::Received {
                channel,
                message,
                lease,
            }) => {
                let Some(reactor) = routes.route(channel) else {
                    return StopReason::Protocol(ProtocolError::UnroutedChannel(channel));
                };
                let message_type = reactor.message_type(channel, &message);
                conn.traffic
                    .observer()
                    .received(channel, message_type, message.len());
                let envelope = Envelope {
                    src: conn.handle.clone(),
                    channel,
                    message,
                    lease,
                };
                let deliver = || {
                    reactor.filter(channel, &envelope.message)?;
                    reactor.receive(envelope)
                };
                match std::panic::catch_unwind(AssertUnwindSafe(deliver)) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return StopReason::Reactor(e),
                    Err(_) => return StopReason::Reactor(ReactorError::Panicked { channel }),
                }
            }
            Some(InboxItem::Stopped(reason)) => return reason,
            Some(_) => {}
            None => return StopReason::ClosedByPeer,
        }
    }
}

/// The stop path of a connection, run once by its task: close (flushing first if asked),
/// `remove_peer` on every reactor if `init_peer` was called, free the slot, then redial a
/// persistent peer if the reason allows it.
async fn finish(
    inner: &Arc<Inner>,
    conn: &Arc<Conn>,
    inbox: Option<Box<dyn PeerInbox>>,
    request: StopRequest,
    initialized: bool,
) {
    conn.set_phase(Phase::Stopping);
    let StopRequest { reason, flush } = request;
    if flush && initialized {
        let _ = tokio::time::timeout(inner.config.flush_timeout, conn.peer.flush_stop()).await;
    }
    conn.peer.stop();
    drop(inbox);
    if initialized {
        for reactor in inner.routes.reactors() {
            guarded(|| reactor.remove_peer(&conn.handle, &reason));
        }
    }
    inner.observer.peer_stopped(&*conn.handle, &reason);
    // Also forgets an old redial position once a connection lasted, whatever ended it.
    let first = conn
        .persistent
        .then(|| inner.redial_start(conn.id, conn.connected_at.elapsed()));
    let redial = {
        let mut t = inner.table.lock();
        let holds_slot = t.slots.get(&conn.id).is_some_and(|c| c.seq == conn.seq);
        if holds_slot {
            t.slots.remove(&conn.id);
        }
        t.live.remove(&conn.seq);
        holds_slot && conn.persistent && reason.redial() && t.state == RunState::Running
    };
    conn.finish();
    if redial {
        inner.spawn_redial(conn.id, first.unwrap_or(0));
    }
}

/// Runs reactor code so that a panic in one reactor neither skips the others' calls nor
/// kills the task that owes them `remove_peer` (the panic is reported by the panic hook).
fn guarded(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(f));
}

fn parsed_id(p: &ParsedAddress) -> NodeId {
    match p {
        ParsedAddress::Resolved(a) => a.id(),
        ParsedAddress::Unresolved(u) => u.id,
    }
}

/// An address for errors that only know the ID.
fn placeholder(id: NodeId) -> NetAddress {
    NetAddress::new(id, Ipv4Addr::UNSPECIFIED.into(), 0)
}
