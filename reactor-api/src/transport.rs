//! The [`Transport`] trait: how the switch gets connected, upgraded peers; and why a
//! connection was refused ([`TransportError`], [`RejectDetail`]).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use mukan_node_key::NodeId;

use crate::{
    ChannelDescriptor, IncompatibleError, NetAddress, NodeInfoDecodeError, NodeInfoError, Peer,
    PeerInbox, StopReason, TimeoutKind,
};

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

    /// Stops listening; pending and future [`Transport::accept`] calls return
    /// [`TransportError::Closed`].
    fn close(&self);
}

/// A peer with the lifecycle controls that only the switch uses.
///
/// A peer handed out by a transport frees what it holds in the transport (its entry in the
/// duplicate-connection table, its inbound slot) when it is stopped, when its connection ends
/// or when it is dropped, whichever comes first: the owner never hands it back.
pub trait ManagedPeer: Peer {
    /// Starts the connection; from now on received messages and the end of the connection
    /// are delivered through the returned inbox, which the caller drains at its own pace
    /// (bounded by each channel's receive budget, see [`PeerInbox`]). The connection's own
    /// task never runs the caller's code.
    ///
    /// # Errors
    /// Why the connection could not start, as the reason it stops: the connection is already
    /// gone ([`StopReason::ClosedByPeer`]), or its settings are refused
    /// ([`StopReason::Misconfigured`]).
    fn start(&self) -> Result<Box<dyn PeerInbox>, StopReason>;

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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerConfig {
    /// The channels of all registered reactors, in registration order.
    pub channels: Vec<ChannelDescriptor>,
}

impl PeerConfig {
    /// Peers with `channels`.
    pub fn new(channels: Vec<ChannelDescriptor>) -> Self {
        Self { channels }
    }
}

/// Which check refused a connection (the flags of Go `ErrRejected`): the category the switch
/// acts on. [`RejectDetail::reason`] maps each detail to one.
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
    /// No room: too many handshakes in progress (in all, or from the connection's
    /// netgroup), or too many open inbound connections. Closed at once, before any handshake
    /// byte, never left waiting.
    Capacity,
}

impl RejectReason {
    /// A short stable label (for metrics and logs).
    pub fn label(self) -> &'static str {
        match self {
            Self::AuthFailure => "auth_failure",
            Self::Duplicate => "duplicate",
            Self::Filtered => "filtered",
            Self::Incompatible => "incompatible",
            Self::NodeInfoInvalid => "node_info_invalid",
            Self::SelfConnection => "self",
            Self::Denied => "denied",
            Self::Capacity => "capacity",
        }
    }
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
    Io(#[from] io::Error),
    /// The upgrade refused the connection.
    #[error("connection rejected ({}): {detail}", detail.reason().label())]
    Rejected {
        /// The peer's address, when known.
        addr: Option<NetAddress>,
        /// Which check refused it, and with what.
        #[source]
        detail: RejectDetail,
    },
}

impl TransportError {
    /// A rejection for `detail`.
    pub fn rejected(detail: RejectDetail, addr: Option<NetAddress>) -> Self {
        Self::Rejected { addr, detail }
    }

    /// The category of a rejection; `None` for other errors.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            Self::Rejected { detail, .. } => Some(detail.reason()),
            _ => None,
        }
    }

    /// A short stable label: the rejection's category, or `closed`, `timeout`, `io`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::FilterTimeout | Self::Timeout(_) => "timeout",
            Self::Io(_) => "io",
            Self::Rejected { detail, .. } => detail.reason().label(),
        }
    }
}

/// Why an upgrade refused a connection, in the order of the checks (the detail of
/// [`TransportError::Rejected`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RejectDetail {
    /// A connection from this exact socket address is already open.
    #[error("connection from {0} is already open")]
    DuplicateConnection(SocketAddr),
    /// A connection with this IP is already open and duplicate IPs are not allowed
    /// (Go: `"ip<%v> already connected"`).
    #[error("ip<{0}> already connected")]
    DuplicateIp(IpAddr),
    /// A connection filter refused the connection.
    #[error(transparent)]
    Filtered(FilterRefusal),
    /// The secret-connection handshake failed (Go: `"secret conn failed: %v"`).
    #[error("secret conn failed: {0}")]
    Handshake(#[source] HandshakeFailure),
    /// The authenticated peer is not the one we dialed
    /// (Go: `"conn.ID (%v) dialed ID (%v) mismatch"`).
    #[error("conn.ID ({got}) dialed ID ({expected}) mismatch")]
    DialedIdMismatch {
        /// The ID we dialed.
        expected: NodeId,
        /// The ID the peer authenticated as.
        got: NodeId,
    },
    /// Exchanging `NodeInfo` failed (Go: `"handshake failed: %v"`).
    #[error("handshake failed: {0}")]
    Exchange(#[source] ExchangeError),
    /// The peer's `NodeInfo` is invalid.
    #[error("invalid NodeInfo: {0}")]
    InvalidNodeInfo(#[source] NodeInfoError),
    /// The `NodeInfo` ID is not the authenticated ID
    /// (Go: `"conn.ID (%v) NodeInfo.ID (%v) mismatch"`).
    #[error("conn.ID ({conn}) NodeInfo.ID ({node_info}) mismatch")]
    NodeInfoIdMismatch {
        /// The authenticated ID.
        conn: NodeId,
        /// The ID the `NodeInfo` claims (as sent, at most `NodeInfo::MAX_SIZE` bytes).
        node_info: String,
    },
    /// The peer is this node.
    #[error("self connection")]
    SelfConnection,
    /// The peer's `NodeInfo` is not compatible with ours.
    #[error("incompatible: {0}")]
    Incompatible(#[source] IncompatibleError),
    /// The remote IP is on the deny list (checked before any handshake).
    #[error("ip<{0}> is denied")]
    DeniedIp(IpAddr),
    /// The authenticated node ID is on the deny list (checked right after the secret
    /// connection, before any `NodeInfo` is sent).
    #[error("node {0} is denied")]
    DeniedId(NodeId),
    /// Every handshake slot is taken by a connection that has sent something (the pending
    /// pool is full): the newcomer from this address is closed at once.
    #[error("{0}: too many handshakes in progress")]
    PendingFull(SocketAddr),
    /// The newcomer's netgroup has its most handshakes in progress, each of which has sent
    /// something: the newcomer is closed at once.
    #[error("{0}: too many handshakes in progress from its netgroup")]
    PendingGroupFull(SocketAddr),
    /// The transport holds its most inbound connections (`max_inbound`) and no handshake in
    /// progress is idle: the newcomer is closed at once.
    #[error("{0}: too many inbound connections")]
    InboundFull(SocketAddr),
    /// A connection from this address that had sent nothing since it was accepted was
    /// closed to make room for a newcomer.
    #[error("{0}: idle, closed to make room for a new connection")]
    Displaced(SocketAddr),
}

impl RejectDetail {
    /// The category the switch acts on (Go `ErrRejected` flags).
    pub fn reason(&self) -> RejectReason {
        match self {
            Self::DuplicateConnection(_) | Self::DuplicateIp(_) => RejectReason::Duplicate,
            Self::Filtered(_) => RejectReason::Filtered,
            Self::Handshake(_)
            | Self::DialedIdMismatch { .. }
            | Self::Exchange(_)
            | Self::NodeInfoIdMismatch { .. } => RejectReason::AuthFailure,
            Self::DeniedIp(_) | Self::DeniedId(_) => RejectReason::Denied,
            Self::InvalidNodeInfo(_) => RejectReason::NodeInfoInvalid,
            Self::SelfConnection => RejectReason::SelfConnection,
            Self::Incompatible(_) => RejectReason::Incompatible,
            Self::PendingFull(_)
            | Self::PendingGroupFull(_)
            | Self::InboundFull(_)
            | Self::Displaced(_) => RejectReason::Capacity,
        }
    }
}

/// Why the secret-connection handshake failed, by kind (the crypto stays opaque: which check
/// of the peer's key or signature failed is all a caller can act on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[source] io::Error),
    /// The connection closed before the handshake was complete.
    #[error("connection closed during the handshake")]
    Closed,
    /// A handshake message was malformed (bad length prefix, invalid protobuf, too large).
    #[error("malformed handshake message")]
    Malformed,
    /// The peer's ephemeral or identity key was refused (wrong length, not a curve point, a
    /// low-order point, our own key reflected, a key type other than ed25519, none at all).
    #[error("peer key refused")]
    KeyRefused,
    /// The signature over the handshake challenge did not verify.
    #[error("challenge verification failed")]
    InvalidSignature,
    /// A frame failed authentication or broke the framing during the handshake.
    #[error("bad frame during the handshake")]
    BadFrame,
}

/// A connection filter's refusal ([`RejectDetail::Filtered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum FilterRefusal {
    /// The filter refused the connection; the text is the filter's own, fixed explanation
    /// (e.g. `"not on the allow list"`).
    #[error("connection denied: {0}")]
    Refused(&'static str),
    /// The filter panicked: the connection is refused.
    #[error("connection denied: connection filter panicked")]
    Panicked,
}

/// Why the `NodeInfo` exchange failed ([`RejectDetail::Exchange`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// Reading or writing the secret stream failed.
    #[error("io: {0}")]
    Io(#[source] io::Error),
    /// The length prefix is not a valid varint (over 10 bytes or overflowing).
    #[error("invalid varint length prefix")]
    Varint,
    /// The announced `NodeInfo` is larger than the limit (Go: 10240 bytes).
    #[error("message exceeds max size ({len} > {max})")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The body is not a `DefaultNodeInfo`.
    #[error("decode: {0}")]
    Decode(#[source] NodeInfoDecodeError),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_detail_has_its_category() {
        let id = NodeId([1; 20]);
        let cases = [
            (
                RejectDetail::DuplicateIp([1, 2, 3, 4].into()),
                RejectReason::Duplicate,
            ),
            (
                RejectDetail::Filtered(FilterRefusal::Panicked),
                RejectReason::Filtered,
            ),
            (
                RejectDetail::Handshake(HandshakeFailure::InvalidSignature),
                RejectReason::AuthFailure,
            ),
            (RejectDetail::DeniedId(id), RejectReason::Denied),
            (RejectDetail::SelfConnection, RejectReason::SelfConnection),
            (
                RejectDetail::Incompatible(IncompatibleError::BlockVersion {
                    got: 1,
                    expected: 11,
                }),
                RejectReason::Incompatible,
            ),
        ];
        for (detail, reason) in cases {
            assert_eq!(detail.reason(), reason, "{detail}");
            let e = TransportError::rejected(detail, None);
            assert_eq!(e.reject_reason(), Some(reason));
            assert_eq!(e.label(), reason.label());
        }
        assert_eq!(TransportError::Closed.reject_reason(), None);
    }
}
