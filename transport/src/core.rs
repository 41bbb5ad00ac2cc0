//! The transport core shared by [`TcpTransport`](crate::TcpTransport) and the in-memory
//! transport: connection table, filters, concurrent upgrades, accept queue.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use std::collections::HashMap;

use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    DenyList, Direction, FilterRefusal, ManagedPeer, NetAddress, NodeInfo, PeerConfig,
    RejectDetail, Transport, TransportError,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot, watch};

use crate::ConnFilter;
use crate::backend::{Backend, Incoming, Listener, Peek};
use crate::conn_set::ConnSet;
use crate::conn_set::Side;
use crate::error::{Stage, UpgradeError};
use crate::first_byte::FirstByte;
use crate::peer::{ConnGuard, wrap_peer};
use crate::pending::{Admission, Key, Look, PendingPool, Refused};
use crate::upgrade::{Io, UpgradeCtx, Upgraded, upgrade};

/// Limits and timeouts of a [`TcpTransport`](crate::TcpTransport).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Bound on connecting the TCP socket (config.toml `dial_timeout`, 3 s).
    pub dial_timeout: Duration,
    /// Bound on the secret-connection handshake (Go: 3 s).
    pub handshake_timeout: Duration,
    /// Bound on the `NodeInfo` exchange (Go: 3 s).
    pub node_info_timeout: Duration,
    /// Bound on each connection filter (Go: 5 s).
    pub filter_timeout: Duration,
    /// Inbound connections in their upgrade at the same time, or upgraded and waiting for
    /// room in the accept queue (the pending pool). A newcomer beyond it takes the place of
    /// the oldest pending connection that has sent nothing (which is closed), or is closed at
    /// once when every one has sent something: no connection waits unanswered in the
    /// kernel's backlog, and idle sockets never keep an honest handshake waiting.
    pub max_pending_upgrades: NonZeroUsize,
    /// Of `max_pending_upgrades`, how many may come from one netgroup (IPv4 /16, IPv6 /32;
    /// addresses that are not routable, such as loopback and private networks, are exempt).
    /// A newcomer beyond it takes the place of its netgroup's oldest pending connection that
    /// has sent nothing, or is closed at once.
    pub max_pending_per_netgroup: NonZeroUsize,
    /// Open inbound connections (in their upgrade or established); `None` for no bound. When
    /// it is reached a newcomer may only take an idle pending connection's place, else it is
    /// closed at once. A node sets it to its inbound peer slots (`max_num_inbound_peers` +
    /// unconditional peers) plus `max_pending_upgrades`: who holds the slots is the switch's
    /// decision (it evicts), so upgraded newcomers must reach it.
    pub max_inbound: Option<NonZeroUsize>,
    /// Upgraded inbound connections (or their errors) queued for [`Transport::accept`]; an
    /// upgraded connection that finds it full waits, holding its place in the pending pool.
    pub accept_queue: NonZeroUsize,
    /// Allow several nodes on one host (config.toml `allow_duplicate_ip`). When false, a
    /// connection that authenticates (secret connection) as one node while another node's
    /// authenticated connection from the same host (IPv4 address, IPv6 /64) is open is
    /// refused ([`RejectDetail::DuplicateIp`]). Connections that have not authenticated do
    /// not count, and the same node reconnecting is let through (the switch replaces its
    /// older connection).
    pub allow_duplicate_ip: bool,
    /// MConnection settings of every peer (default: what a CometBFT node uses, with the
    /// `[p2p]` send and receive rates of 5,120,000 B/s).
    pub mconn: mukan_mconn::Config,
    /// IDs and IP networks refused (default: empty). The remote IP is checked before any
    /// handshake (on accept, and before dialing along with the dialed ID), the authenticated
    /// ID right after the secret connection, before our `NodeInfo` is sent. Share it with the
    /// switch to ban and unban at runtime.
    pub deny: Arc<DenyList>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(3),
            node_info_timeout: Duration::from_secs(3),
            filter_timeout: Duration::from_secs(5),
            max_pending_upgrades: NonZeroUsize::new(256).unwrap_or(NonZeroUsize::MIN),
            max_pending_per_netgroup: NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN),
            max_inbound: None,
            accept_queue: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            allow_duplicate_ip: false,
            mconn: mukan_mconn::Config::node_default(),
            deny: Arc::new(DenyList::new()),
        }
    }
}

/// The shared core of the transports. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Core {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    ctx: RwLock<Arc<UpgradeCtx>>,
    pub(crate) config: Config,
    pub(crate) conns: Mutex<ConnSet>,
    /// Woken whenever a connection leaves `conns` (a duplicate-IP conflict waits on it).
    pub(crate) conn_removed: tokio::sync::Notify,
    /// Inbound connections in their upgrade (never locked together with `conns`).
    pub(crate) pending: Mutex<PendingConns>,
    filters: Vec<Arc<dyn ConnFilter>>,
    backend: Backend,
    accepted_tx: mpsc::Sender<Accepted>,
    accepted_rx: tokio::sync::Mutex<mpsc::Receiver<Accepted>>,
    closed: watch::Sender<bool>,
    net_address: RwLock<NetAddress>,
    local_addr: Mutex<Option<SocketAddr>>,
}

/// An upgraded inbound connection waiting for `accept`, or the error of one that failed.
type Accepted = Result<(Upgraded<Box<dyn Io>>, ConnGuard), TransportError>;

/// The pending pool, and how to close and look at each of its connections.
pub(crate) struct PendingConns {
    pool: PendingPool,
    conns: HashMap<Key, PendingConn>,
}

/// A connection of the pending pool, seen from the accept loop.
struct PendingConn {
    remote: SocketAddr,
    /// Dropping it closes the connection (its upgrade task ends).
    cancel: oneshot::Sender<()>,
    /// Whether bytes wait on it, until it is heard or its upgrade ends.
    peek: Peek,
}

impl PendingConns {
    /// Pending connection `key` sent its first byte: it may no longer be displaced (and
    /// needs no more looking at).
    pub(crate) fn heard(&mut self, key: Key) {
        self.pool.heard(key);
        self.stop_looking(key);
    }

    /// Drops connection `key`'s [`Peek`] (a second descriptor, which keeps the socket open).
    fn stop_looking(&mut self, key: Key) {
        if let Some(c) = self.conns.get_mut(&key) {
            c.peek = Peek::Blind;
        }
    }

    /// Pending connection `key`'s first read found nothing: it may be displaced until it
    /// sends something.
    pub(crate) fn idle(&mut self, key: Key) {
        self.pool.idle(key);
    }
}

/// A connection's place in the pending pool; dropping it frees the place.
struct PendingSlot {
    inner: Weak<Inner>,
    key: Key,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            let mut p = inner.pending.lock();
            p.pool.remove(self.key);
            p.conns.remove(&self.key);
        }
    }
}

impl Core {
    /// A transport for the node `node_key` announcing `node_info`. It dials at once; call
    /// [`TcpTransport::listen`] to accept connections too.
    pub(crate) fn new(
        node_key: Arc<NodeKey>,
        node_info: NodeInfo,
        config: Config,
        filters: Vec<Arc<dyn ConnFilter>>,
        backend: Backend,
    ) -> Self {
        let net_address = announced_address(&node_key, &node_info, None);
        let ctx = UpgradeCtx::new(
            node_key,
            node_info,
            config.handshake_timeout,
            config.node_info_timeout,
        );
        let (accepted_tx, accepted_rx) = mpsc::channel(config.accept_queue.get());
        let (closed, _) = watch::channel(false);
        let pending = PendingConns {
            pool: PendingPool::new(config.max_pending_upgrades, config.max_pending_per_netgroup),
            conns: HashMap::new(),
        };
        Self {
            inner: Arc::new(Inner {
                ctx: RwLock::new(Arc::new(ctx)),
                config,
                conns: Mutex::new(ConnSet::default()),
                conn_removed: tokio::sync::Notify::new(),
                pending: Mutex::new(pending),
                filters,
                backend,
                accepted_tx,
                accepted_rx: tokio::sync::Mutex::new(accepted_rx),
                closed,
                net_address: RwLock::new(net_address),
                local_addr: Mutex::new(None),
            }),
        }
    }

    /// Binds `addr` and starts accepting in a background task. Returns the bound address.
    ///
    /// If our `NodeInfo` announces no listen address, or one with port 0, it is replaced by
    /// `tcp://<bound address>`, so that peers learn an address they can dial.
    ///
    /// # Errors
    /// The bind error.
    pub(crate) async fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let (listener, bound) = self.inner.backend.bind(addr).await?;
        {
            let mut ctx = self.inner.ctx.write();
            let mut info = ctx.node_info.clone();
            if needs_listen_addr(&info.listen_addr) {
                info.listen_addr = format!("tcp://{bound}");
            }
            let node_key = ctx.node_key.clone();
            *self.inner.net_address.write() = announced_address(&node_key, &info, Some(bound));
            *ctx = Arc::new(UpgradeCtx::new(
                node_key,
                info,
                self.inner.config.handshake_timeout,
                self.inner.config.node_info_timeout,
            ));
        }
        *self.inner.local_addr.lock() = Some(bound);
        tokio::spawn(accept_loop(Arc::downgrade(&self.inner), listener));
        Ok(bound)
    }

    /// The bound listen address, once listening.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        *self.inner.local_addr.lock()
    }

    /// The `NodeInfo` we announce (with the listen address filled in).
    pub(crate) fn node_info(&self) -> NodeInfo {
        self.inner.ctx.read().node_info.clone()
    }

    /// Number of open connections (upgrading or established).
    pub(crate) fn connection_count(&self) -> usize {
        self.inner.conns.lock().len()
    }

    async fn dial_inner(
        &self,
        addr: NetAddress,
        peer_config: PeerConfig,
    ) -> Result<Arc<dyn ManagedPeer>, TransportError> {
        let inner = &self.inner;
        if *inner.closed.borrow() {
            return Err(TransportError::Closed);
        }
        if inner.config.deny.is_denied_ip(addr.ip()) {
            return Err(TransportError::rejected(
                RejectDetail::DeniedIp(addr.ip()),
                Some(addr),
            ));
        }
        if inner.config.deny.is_denied_id(&addr.id()) {
            return Err(TransportError::rejected(
                RejectDetail::DeniedId(addr.id()),
                Some(addr),
            ));
        }
        let target = addr.socket_addr();
        let local = *inner.local_addr.lock();
        let connect = inner.backend.connect(target, local);
        let (stream, remote) = match tokio::time::timeout(inner.config.dial_timeout, connect).await
        {
            Err(_) => return Err(UpgradeError::Timeout(Stage::Dial).into_transport_error(None)),
            Ok(Err(e)) => return Err(TransportError::Io(e)),
            Ok(Ok(pair)) => pair,
        };
        let guard = register(inner, remote, Side::Dialed)
            .map_err(|d| UpgradeError::from(d).into_transport_error(Some(addr)))?;
        run_filters(inner, remote)
            .await
            .map_err(|e| e.into_transport_error(Some(addr)))?;
        let ctx = inner.ctx.read().clone();
        let upgraded = upgrade(stream, &ctx, Some(&addr), &inner.config.deny, |id| {
            guard.authenticate(id)
        })
        .await
        .map_err(|e| e.into_transport_error(Some(addr)))?;
        Ok(wrap_peer(
            upgraded,
            Direction::Outbound,
            addr,
            guard,
            &peer_config,
            &inner.config.mconn,
        ))
    }

    async fn accept_inner(
        &self,
        peer_config: PeerConfig,
    ) -> Result<Arc<dyn ManagedPeer>, TransportError> {
        let mut closed = self.inner.closed.subscribe();
        let mut rx = self.inner.accepted_rx.lock().await;
        let next = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => None,
            next = rx.recv() => next,
        };
        let Some(accepted) = next else {
            drain(&mut rx);
            return Err(TransportError::Closed);
        };
        let (upgraded, guard) = accepted?;
        let socket = NetAddress::new(upgraded.id, guard.addr().ip(), guard.addr().port());
        Ok(wrap_peer(
            upgraded,
            Direction::Inbound,
            socket,
            guard,
            &peer_config,
            &self.inner.config.mconn,
        ))
    }
}

impl Transport for Core {
    fn net_address(&self) -> NetAddress {
        *self.inner.net_address.read()
    }

    fn dial(
        &self,
        addr: NetAddress,
        config: PeerConfig,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + '_>>
    {
        Box::pin(self.dial_inner(addr, config))
    }

    fn accept(
        &self,
        config: PeerConfig,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + '_>>
    {
        Box::pin(self.accept_inner(config))
    }

    fn close(&self) {
        self.inner.closed.send_replace(true);
        // Drop every queued connection now (an `accept` holding the queue drains it itself
        // as it returns); parked upgrade tasks see the closed queue and end.
        if let Ok(mut rx) = self.inner.accepted_rx.try_lock() {
            drain(&mut rx);
        }
    }
}

/// Closes the accept queue and drops what it holds (sockets, slots).
fn drain(rx: &mut mpsc::Receiver<Accepted>) {
    rx.close();
    while rx.try_recv().is_ok() {}
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("net_address", &*self.inner.net_address.read())
            .field("local_addr", &*self.inner.local_addr.lock())
            .finish_non_exhaustive()
    }
}

/// Accepts connections and upgrades each in its own task, so a slow peer never blocks the
/// others. Every connection is answered at once: it joins the pending pool (possibly in the
/// place of an idle one) or is closed. Ends when the transport is closed or dropped.
async fn accept_loop(inner: Weak<Inner>, mut listener: Listener) {
    let mut closed = {
        let Some(inner) = inner.upgrade() else { return };
        inner.closed.subscribe()
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = closed.wait_for(|c| *c) => return,
        };
        let Ok(Incoming {
            stream,
            remote,
            local,
            peek,
        }) = accepted
        else {
            // Out of file descriptors and the like: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.config.deny.is_denied_ip(remote.ip()) {
            // Refused before any handshake byte: the socket is closed at once.
            drop(stream);
            report(&strong, RejectDetail::DeniedIp(remote.ip()));
            continue;
        }
        match admit_pending(&strong, remote, local, peek) {
            Ok((guard, slot, cancel)) => {
                tokio::spawn(upgrade_inbound(strong, stream, remote, guard, slot, cancel));
            }
            Err(detail) => {
                drop(stream);
                report(&strong, detail);
            }
        }
    }
}

/// Reports a refused inbound connection to `accept` if there is room (never waits for it).
fn report(inner: &Inner, detail: RejectDetail) {
    let _ = inner
        .accepted_tx
        .try_send(Err(TransportError::rejected(detail, None)));
}

/// Gives the newcomer from `remote` a place in the pending pool (closing the silent
/// connection it replaces) and in the connection table, or says why it is refused. The pool
/// asks, before it closes a connection as silent, whether bytes wait on it: `peek` is how the
/// newcomer will be looked at in turn.
fn admit_pending(
    inner: &Arc<Inner>,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    peek: Peek,
) -> Result<(ConnGuard, PendingSlot, oneshot::Receiver<()>), RejectDetail> {
    let room = inner
        .config
        .max_inbound
        .is_none_or(|max| inner.conns.lock().inbound() < max.get());
    let (tx, rx) = oneshot::channel();
    let (key, displaced) = {
        let mut guard = inner.pending.lock();
        let p = &mut *guard;
        let conns = &p.conns;
        let look = |k: Key| conns.get(&k).map_or(Look::Blind, |c| c.peek.look());
        let (key, displaced) = match p.pool.admit(remote.ip(), room, look) {
            Admission::Admit(key) => (key, None),
            Admission::Replace { close, key } => (key, p.conns.remove(&close)),
            Admission::Refuse(Refused::GroupFull) => {
                return Err(RejectDetail::PendingGroupFull(remote));
            }
            Admission::Refuse(Refused::PoolFull) => return Err(RejectDetail::PendingFull(remote)),
            Admission::Refuse(Refused::NoRoom) => return Err(RejectDetail::InboundFull(remote)),
        };
        p.conns.insert(
            key,
            PendingConn {
                remote,
                cancel: tx,
                peek,
            },
        );
        (key, displaced)
    };
    let slot = PendingSlot {
        inner: Arc::downgrade(inner),
        key,
    };
    if let Some(PendingConn {
        remote,
        cancel,
        peek,
    }) = displaced
    {
        // Dropping the sender ends that connection's upgrade task, and with the look dropped
        // too its socket closes.
        drop((cancel, peek));
        report(inner, RejectDetail::Displaced(remote));
    }
    let guard = register(inner, remote, Side::Accepted { local })?;
    Ok((guard, slot, rx))
}

async fn upgrade_inbound(
    inner: Arc<Inner>,
    stream: Box<dyn Io>,
    remote: SocketAddr,
    guard: ConnGuard,
    slot: PendingSlot,
    mut cancel: oneshot::Receiver<()>,
) {
    let mut closed = inner.closed.subscribe();
    let stream: Box<dyn Io> = Box::new(FirstByte::new(stream, slot.inner.clone(), slot.key));
    let work = async {
        run_filters(&inner, remote).await?;
        let ctx = inner.ctx.read().clone();
        let upgraded = upgrade(stream, &ctx, None, &inner.config.deny, |id| {
            guard.authenticate(id)
        })
        .await?;
        Ok::<_, UpgradeError>((upgraded, guard))
    };
    let result = tokio::select! {
        result = work => result,
        // Closing the transport ends every upgrade in flight (and drops its socket).
        _ = closed.wait_for(|c| *c) => return,
        // Displaced by a newcomer while idle (already reported).
        _ = &mut cancel => return,
    };
    // Nothing more to look at; a failed upgrade's socket closes now, not after the queue.
    inner.pending.lock().stop_looking(slot.key);
    let item = result.map_err(|e| {
        let addr = match &e {
            UpgradeError::Rejected(RejectDetail::SelfConnection) => Some(NetAddress::new(
                inner.ctx.read().our_id(),
                remote.ip(),
                remote.port(),
            )),
            _ => None,
        };
        e.into_transport_error(addr)
    });
    // Bounded: a full queue makes this task wait, holding its place in the pending pool, so
    // upgraded connections never outnumber the pool plus the queue. A closed transport
    // fails the send (or ends the wait) and drops the connection.
    tokio::select! {
        _ = inner.accepted_tx.send(item) => {}
        _ = closed.wait_for(|c| *c) => {}
    }
    drop(slot);
}

/// Records a new connection from `remote` in the connection table (Go `filterConn`'s
/// duplicate-connection check). The duplicate-IP check comes once the peer authenticated
/// ([`ConnGuard::authenticate`]).
fn register(inner: &Arc<Inner>, remote: SocketAddr, side: Side) -> Result<ConnGuard, RejectDetail> {
    let Some(ticket) = inner.conns.lock().insert(remote, side) else {
        return Err(RejectDetail::DuplicateConnection(remote));
    };
    Ok(ConnGuard::new(Arc::downgrade(inner), ticket))
}

/// The user's connection filters (Go `filterConn`), concurrently, each bounded by the filter
/// timeout.
async fn run_filters(inner: &Arc<Inner>, remote: SocketAddr) -> Result<(), UpgradeError> {
    if inner.filters.is_empty() {
        return Ok(());
    }
    let checks = inner.filters.iter().map(|f| {
        let check = f.check(remote);
        let timeout = inner.config.filter_timeout;
        async move { tokio::time::timeout(timeout, check).await }
    });
    let mut set = tokio::task::JoinSet::new();
    for check in checks {
        set.spawn(check);
    }
    while let Some(result) = set.join_next().await {
        match result {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(refusal))) => return Err(RejectDetail::Filtered(refusal).into()),
            Ok(Err(_elapsed)) => return Err(UpgradeError::FilterTimeout),
            Err(_panicked) => {
                return Err(RejectDetail::Filtered(FilterRefusal::Panicked).into());
            }
        }
    }
    Ok(())
}

fn needs_listen_addr(listen_addr: &str) -> bool {
    let host_port = mukan_reactor_api::strip_protocol(listen_addr);
    host_port.is_empty() || host_port.ends_with(":0")
}

/// Our own address (Go `mt.netAddr`): the bound listen address once listening, else what our
/// `NodeInfo` announces.
fn announced_address(node_key: &NodeKey, info: &NodeInfo, bound: Option<SocketAddr>) -> NetAddress {
    if let Some(bound) = bound {
        return NetAddress::new(node_key.node_id(), bound.ip(), bound.port());
    }
    match info.net_address() {
        Ok(mukan_reactor_api::ParsedAddress::Resolved(addr)) => addr,
        _ => NetAddress::new(
            node_key.node_id(),
            std::net::Ipv4Addr::UNSPECIFIED.into(),
            0,
        ),
    }
}

/// Implements the inherent accessors and [`Transport`] for a public wrapper `{ core: Core }`.
macro_rules! delegate_transport {
    ($ty:ident) => {
        impl $ty {
            /// Binds `addr` and starts accepting in a background task. Returns the bound
            /// address.
            ///
            /// If our `NodeInfo` announces no listen address, or one with port 0, it is
            /// replaced by `tcp://<bound address>`, so that peers learn an address they can
            /// dial.
            ///
            /// # Errors
            /// The bind error.
            pub async fn listen(
                &self,
                addr: std::net::SocketAddr,
            ) -> std::io::Result<std::net::SocketAddr> {
                self.core.listen(addr).await
            }

            /// The bound listen address, once listening.
            pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
                self.core.local_addr()
            }

            /// The `NodeInfo` we announce (with the listen address filled in).
            pub fn node_info(&self) -> mukan_reactor_api::NodeInfo {
                self.core.node_info()
            }

            /// Number of open connections (upgrading or established).
            pub fn connection_count(&self) -> usize {
                self.core.connection_count()
            }
        }

        impl mukan_reactor_api::Transport for $ty {
            fn net_address(&self) -> mukan_reactor_api::NetAddress {
                mukan_reactor_api::Transport::net_address(&self.core)
            }

            fn dial(
                &self,
                addr: mukan_reactor_api::NetAddress,
                config: mukan_reactor_api::PeerConfig,
            ) -> std::pin::Pin<
                Box<
                    dyn std::future::Future<
                            Output = Result<
                                std::sync::Arc<dyn mukan_reactor_api::ManagedPeer>,
                                mukan_reactor_api::TransportError,
                            >,
                        > + Send
                        + '_,
                >,
            > {
                mukan_reactor_api::Transport::dial(&self.core, addr, config)
            }

            fn accept(
                &self,
                config: mukan_reactor_api::PeerConfig,
            ) -> std::pin::Pin<
                Box<
                    dyn std::future::Future<
                            Output = Result<
                                std::sync::Arc<dyn mukan_reactor_api::ManagedPeer>,
                                mukan_reactor_api::TransportError,
                            >,
                        > + Send
                        + '_,
                >,
            > {
                mukan_reactor_api::Transport::accept(&self.core, config)
            }

            fn close(&self) {
                mukan_reactor_api::Transport::close(&self.core);
            }
        }
    };
}
pub(crate) use delegate_transport;
