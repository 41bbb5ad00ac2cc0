//! Why an upgrade refused a connection: the `source` of `TransportError::Rejected`.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use mukan_node_key::NodeId;
use mukan_reactor_api::{
    IncompatibleError, NodeInfoDecodeError, NodeInfoError, RejectReason, TimeoutKind,
};

use crate::Denied;

/// The stage of an upgrade that ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Connecting the TCP socket.
    Dial,
    /// The secret-connection handshake.
    SecretConnection,
    /// The `NodeInfo` exchange.
    NodeInfoExchange,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dial => "dial",
            Self::SecretConnection => "secret connection handshake",
            Self::NodeInfoExchange => "NodeInfo exchange",
        })
    }
}

impl From<Stage> for TimeoutKind {
    fn from(stage: Stage) -> Self {
        match stage {
            Stage::Dial => Self::Dial,
            Stage::SecretConnection => Self::Handshake,
            Stage::NodeInfoExchange => Self::NodeInfo,
        }
    }
}

/// The detailed cause of a refused connection (carried as the `source` of
/// `TransportError::Rejected`; downcast to this type to act on it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// A connection from this exact socket address is already open.
    #[error("connection from {0} is already open")]
    DuplicateConnection(SocketAddr),
    /// A connection with this IP is already open and duplicate IPs are not allowed
    /// (Go: `"ip<%v> already connected"`).
    #[error("ip<{0}> already connected")]
    DuplicateIp(IpAddr),
    /// A connection filter refused the connection.
    #[error(transparent)]
    Filtered(Denied),
    /// The secret-connection handshake failed (Go: `"secret conn failed: %v"`).
    #[error("secret conn failed: {0}")]
    SecretConn(#[source] mukan_secret_conn::Error),
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
        /// The ID the `NodeInfo` claims (as sent).
        node_info: String,
    },
    /// The peer is this node.
    #[error("self connection")]
    SelfConnection,
    /// The peer's `NodeInfo` is not compatible with ours.
    #[error("incompatible: {0}")]
    Incompatible(#[source] IncompatibleError),
    /// A connection filter did not answer within the filter timeout.
    #[error("connection filter timed out")]
    FilterTimeout,
    /// A stage did not finish in time. Reported as `TransportError::Timeout`, never as a
    /// rejection.
    #[error("{0} timed out")]
    Timeout(Stage),
    /// The remote IP is on the deny list (checked before any handshake).
    #[error("ip<{0}> is denied")]
    DeniedIp(IpAddr),
    /// The authenticated node ID is on the deny list (checked right after the secret
    /// connection, before any `NodeInfo` is sent).
    #[error("node {0} is denied")]
    DeniedId(NodeId),
}

impl UpgradeError {
    /// The category the switch acts on (Go `ErrRejected` flags).
    pub fn reason(&self) -> RejectReason {
        match self {
            Self::DuplicateConnection(_) | Self::DuplicateIp(_) => RejectReason::Duplicate,
            Self::Filtered(_) | Self::FilterTimeout => RejectReason::Filtered,
            Self::SecretConn(_)
            | Self::DialedIdMismatch { .. }
            | Self::Exchange(_)
            | Self::NodeInfoIdMismatch { .. } => RejectReason::AuthFailure,
            // Not a rejection: the transport reports it as `TransportError::Timeout`
            // ([`UpgradeError::timeout`]). Kept total for callers that classify anyway.
            Self::Timeout(_) => RejectReason::AuthFailure,
            Self::DeniedIp(_) | Self::DeniedId(_) => RejectReason::Denied,
            Self::InvalidNodeInfo(_) => RejectReason::NodeInfoInvalid,
            Self::SelfConnection => RejectReason::SelfConnection,
            Self::Incompatible(_) => RejectReason::Incompatible,
        }
    }
}

impl UpgradeError {
    /// Which deadline passed, if this is a timeout (a dial, handshake, `NodeInfo` or filter
    /// timeout): the transport reports these as `TransportError::Timeout` /
    /// `FilterTimeout`, not as rejections.
    pub fn timeout(&self) -> Option<TimeoutKind> {
        match self {
            Self::Timeout(stage) => Some((*stage).into()),
            Self::FilterTimeout => Some(TimeoutKind::Filter),
            _ => None,
        }
    }
}

/// Why the `NodeInfo` exchange failed.
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
