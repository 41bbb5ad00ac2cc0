//! The peers a transport hands out: an upgraded connection that runs MConnection once the
//! switch starts it.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use mukan_mconn::MConnection;
use mukan_node_key::NodeId;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Direction, ManagedPeer, NetAddress, NodeInfo, Peer, PeerConfig,
    PeerData, PeerInbox, PeerStatus, RejectDetail, SendError, StopReason, TrySendError,
};
use mukan_secret_conn::SecretStream;
use parking_lot::Mutex;

use crate::conn_set::{Auth, Ticket};
use crate::core::Inner;
use crate::upgrade::{Io, Upgraded};

/// How long a newly authenticated connection waits for another node's connection from the
/// same host to end before it is refused as a duplicate IP (see [`ConnGuard::authenticate`]).
/// Far below the `NodeInfo` exchange's timeout that follows; a refused duplicate holds its
/// place in the pending pool this much longer, within its netgroup's share.
pub(crate) const DUPLICATE_IP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps a connection's entry in the connection table (which counts it against the inbound
/// bound and, once authenticated, against its host) for as long as the connection lives;
/// dropping it frees the entry.
pub(crate) struct ConnGuard {
    inner: Weak<Inner>,
    ticket: Ticket,
}

impl ConnGuard {
    pub(crate) fn new(inner: Weak<Inner>, ticket: Ticket) -> Self {
        Self { inner, ticket }
    }

    /// The connection authenticated as `id`: refused as a duplicate IP when another node's
    /// authenticated connection from the same host is open and duplicate IPs are not allowed
    /// (see [`ConnSet::authenticate`](crate::conn_set::ConnSet::authenticate)).
    ///
    /// A connection that the other side has just closed stays recorded until its task sees
    /// the close (a wake-up away, longer on a loaded machine, or behind the reconnect's own
    /// packets). So a conflict is not final at once: it waits up to [`DUPLICATE_IP_GRACE`]
    /// for the other connections of the host to end, and is refused only if one of another
    /// node is still open then. A peer that closes and reconnects at once as another node
    /// gets in; two live nodes on one host still do not.
    pub(crate) async fn authenticate(&self, id: NodeId) -> Result<(), RejectDetail> {
        let refused = RejectDetail::DuplicateIp(self.ticket.addr.ip());
        let deadline = tokio::time::Instant::now() + DUPLICATE_IP_GRACE;
        loop {
            let Some(inner) = self.inner.upgrade() else {
                return Ok(());
            };
            // Registered before looking, so a removal between the look and the wait is seen.
            let removed = inner.conn_removed.notified();
            let mut removed = std::pin::pin!(removed);
            removed.as_mut().enable();
            let allow = inner.config.allow_duplicate_ip;
            let auth = inner.conns.lock().authenticate(&self.ticket, id, allow);
            match auth {
                Auth::Done => return Ok(()),
                Auth::Gone => return Err(refused),
                Auth::DuplicateIp => {}
            }
            // (A closed transport ends the upgrade task, and this wait with it.)
            if tokio::time::timeout_at(deadline, removed).await.is_err() {
                return Err(refused);
            }
        }
    }

    /// The remote socket address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.ticket.addr
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.conns.lock().remove(&self.ticket);
            inner.conn_removed.notify_waiters();
        }
    }
}

/// A peer of a transport (Go `peer`): the authenticated, upgraded connection, then the
/// MConnection running over it.
struct TransportPeer {
    id: NodeId,
    node_info: NodeInfo,
    direction: Direction,
    socket_addr: NetAddress,
    data: PeerData,
    state: Mutex<State>,
    /// The connection-table entry and inbound slot until the connection starts (then its
    /// task holds them, and frees them when it ends), or until the peer is stopped unstarted.
    guard: Mutex<Option<ConnGuard>>,
}

enum State {
    /// Upgraded, waiting for `start`.
    Ready {
        stream: Box<SecretStream<Box<dyn Io>>>,
        channels: Vec<ChannelDescriptor>,
        config: mukan_mconn::Config,
    },
    Running(Arc<MConnection>),
    Stopped,
}

pub(crate) fn wrap_peer(
    upgraded: Upgraded<Box<dyn Io>>,
    direction: Direction,
    socket_addr: NetAddress,
    guard: ConnGuard,
    peer_config: &PeerConfig,
    mconn: &mukan_mconn::Config,
) -> Arc<dyn ManagedPeer> {
    let Upgraded {
        stream,
        node_info,
        id,
    } = upgraded;
    Arc::new(TransportPeer {
        id,
        node_info,
        direction,
        socket_addr,
        data: PeerData::default(),
        state: Mutex::new(State::Ready {
            stream: Box::new(stream),
            channels: peer_config.channels.clone(),
            config: mconn.clone(),
        }),
        guard: Mutex::new(Some(guard)),
    })
}

impl TransportPeer {
    fn connection(&self) -> Option<Arc<MConnection>> {
        match &*self.state.lock() {
            State::Running(conn) => Some(conn.clone()),
            _ => None,
        }
    }

    /// Go's `peer.send` refuses channels the peer did not announce.
    fn peer_has(&self, channel: ChannelId) -> bool {
        self.node_info.has_channel(channel)
    }
}

impl Peer for TransportPeer {
    fn id(&self) -> NodeId {
        self.id
    }

    fn node_info(&self) -> &NodeInfo {
        &self.node_info
    }

    fn direction(&self) -> Direction {
        self.direction
    }

    /// Always `false`: persistence is the switch's decision, and the peer handle the switch
    /// gives reactors answers it.
    fn is_persistent(&self) -> bool {
        false
    }

    fn socket_addr(&self) -> NetAddress {
        self.socket_addr
    }

    fn status(&self) -> PeerStatus {
        self.connection().map(|c| c.status()).unwrap_or_default()
    }

    fn send(
        &self,
        channel: ChannelId,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + '_>> {
        Box::pin(async move {
            if !self.peer_has(channel) {
                return Err(SendError::UnknownChannel(channel));
            }
            let Some(conn) = self.connection() else {
                return Err(SendError::Closed);
            };
            conn.send(channel, message).await
        })
    }

    fn try_send(&self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError> {
        if !self.peer_has(channel) {
            return Err(TrySendError::UnknownChannel(channel));
        }
        let Some(conn) = self.connection() else {
            return Err(TrySendError::Closed);
        };
        conn.try_send(channel, message)
    }

    fn data(&self) -> &PeerData {
        &self.data
    }
}

impl ManagedPeer for TransportPeer {
    fn start(&self) -> Result<Box<dyn PeerInbox>, StopReason> {
        let mut state = self.state.lock();
        let State::Ready { .. } = &*state else {
            return Err(StopReason::ClosedByPeer);
        };
        let State::Ready {
            stream,
            channels,
            config,
        } = std::mem::replace(&mut *state, State::Stopped)
        else {
            return Err(StopReason::ClosedByPeer);
        };
        // The connection's task holds the connection-table entry and the inbound slot, and
        // frees them as soon as the connection ends, whether or not the inbox is read.
        let guard = self.guard.lock().take();
        let (conn, inbox) = MConnection::spawn_with(*stream, &channels, config, guard)
            .map_err(mukan_mconn::Error::into_stop_reason)?;
        *state = State::Running(Arc::new(conn));
        Ok(Box::new(inbox))
    }

    fn stop(&self) {
        let previous = std::mem::replace(&mut *self.state.lock(), State::Stopped);
        if let State::Running(conn) = previous {
            conn.stop();
        }
        self.guard.lock().take();
    }

    fn flush_stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let Some(conn) = self.connection() {
                conn.flush_stop().await;
            }
            self.stop();
        })
    }

    fn as_peer(self: Arc<Self>) -> Arc<dyn Peer> {
        self
    }
}

impl fmt::Debug for TransportPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("direction", &self.direction)
            .field("socket_addr", &self.socket_addr)
            .finish_non_exhaustive()
    }
}
