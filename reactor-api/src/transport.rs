//! The [`Transport`] trait: how the switch gets connected, upgraded peers.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{ChannelDescriptor, NetAddress, Peer, PeerInbox, TimeoutKind};

/// Dials and accepts connections and upgrades them to peers: filters, secret connection,
/// `NodeInfo` exchange, validation and compatibility (Go `p2p.Transport` +
/// `transportLifecycle`).
///
/// Object-safe (the switch may hold it as its generic parameter or as `dyn Transport`).
#[expect(
    clippy::type_complexity,
    reason = "boxed std futures keep the trait object-safe without a runtime dependency"
)]
pub trait Transport: Send + Sync + 'static {
    /// Our own address as the transport announces it.
    fn net_address(&self) -> NetAddress;

    /// Dials `addr` and upgrades the connection. The returned peer is not started.
    ///
    /// # Errors
    /// A [`TransportError`]; [`TransportError::Rejected`] carries why an upgrade was refused.
    ///
    /// # Cancel safety
    /// Dropping the future closes the half-open connection.
    fn dial(
        &self,
        addr: NetAddress,
        config: PeerConfig,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + '_>>;

    /// The next inbound peer, upgraded and not started.
    ///
    /// # Errors
    /// [`TransportError::Closed`] once the transport is closed; other errors concern one
    /// connection and the caller keeps accepting.
    ///
    /// # Cancel safety
    /// Cancel-safe: an upgraded peer is never lost by dropping the future.
    fn accept(
        &self,
        config: PeerConfig,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + '_>>;

    /// Forgets a peer's connection (duplicate-IP table) and closes it (Go `Cleanup`).
    fn cleanup(&self, peer: &dyn ManagedPeer);

    /// Stops listening; pending and future [`Transport::accept`] calls return
    /// [`TransportError::Closed`].
    fn close(&self);
}

/// A peer with the lifecycle controls that only the switch uses.
pub trait ManagedPeer: Peer {
    /// Starts the connection; from now on received messages and the end of the connection
    /// are delivered through the returned inbox, which the caller drains at its own pace
    /// (bounded by each channel's receive budget, see [`PeerInbox`]). The connection's own
    /// task never runs the caller's code.
    ///
    /// # Errors
    /// [`TransportError::Closed`] if the connection is already gone or was started before.
    fn start(&self) -> Result<Box<dyn PeerInbox>, TransportError>;

    /// Stops the connection at once, dropping queued messages.
    fn stop(&self);

    /// Sends everything queued, then stops (Go `FlushStop`). Returns within a bound (the
    /// connection's flush timeout) even when the peer does not read.
    ///
    /// # Cancel safety
    /// Dropping the future stops the connection without waiting for the flush.
    fn flush_stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// This peer as the reactor-facing handle.
    fn as_peer(self: Arc<Self>) -> Arc<dyn Peer>;
}

/// What the switch tells the transport about the peers it wants.
#[derive(Clone)]
pub struct PeerConfig {
    /// The channels of all registered reactors, in registration order.
    pub channels: Vec<ChannelDescriptor>,
    /// Whether an address is a persistent peer: applied to the dialed address of an outbound
    /// peer and to the self-reported address of an inbound one (Go `isPersistent`).
    pub is_persistent: Arc<dyn Fn(&NetAddress) -> bool + Send + Sync>,
}

impl fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerConfig")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// Why the transport refused a connection (the flags of Go `ErrRejected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The secret connection's authentication failed, or an ID did not match. (Timeouts are
    /// [`TransportError::Timeout`], never this.)
    AuthFailure,
    /// Already connected to this connection, IP or ID.
    Duplicate,
    /// A connection or peer filter refused it.
    Filtered,
    /// [`NodeInfo::compatible_with`](crate::NodeInfo::compatible_with) failed.
    Incompatible,
    /// [`NodeInfo::validate`](crate::NodeInfo::validate) failed.
    NodeInfoInvalid,
    /// The peer is ourselves; `addr` is then our own address as seen by the peer.
    SelfConnection,
    /// The remote IP or the authenticated ID is on the deny list
    /// ([`DenyList`](crate::DenyList)); an IP is refused before any handshake.
    Denied,
}

/// Why [`Transport::dial`] or [`Transport::accept`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The transport is closed.
    #[error("transport is closed")]
    Closed,
    /// A connection filter did not answer in time (Go `ErrFilterTimeout`).
    #[error("filter timed out")]
    FilterTimeout,
    /// A stage of the dial or upgrade did not finish in time.
    #[error("{0} timeout")]
    Timeout(TimeoutKind),
    /// Socket error (connect, accept, read, write).
    #[error("transport io: {0}")]
    Io(#[from] std::io::Error),
    /// The upgrade refused the connection.
    #[error("connection rejected ({reason:?}): {source}")]
    Rejected {
        /// Which check refused it.
        reason: RejectReason,
        /// The peer's address, when known.
        addr: Option<NetAddress>,
        /// The underlying error.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
}
