//! How an upgrade fails inside the transport: a stage timing out, or a refusal with its
//! [`RejectDetail`], which reaches the caller as `TransportError::Rejected`.

use std::fmt;

use mukan_reactor_api::{HandshakeFailure, RejectDetail, TimeoutKind, TransportError};

/// The stage of an upgrade that ran out of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
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

/// Why an upgrade did not produce a peer.
#[derive(Debug)]
pub(crate) enum UpgradeError {
    /// A connection filter did not answer within the filter timeout.
    FilterTimeout,
    /// A stage did not finish in time.
    Timeout(Stage),
    /// A check refused the connection.
    Rejected(RejectDetail),
}

impl From<RejectDetail> for UpgradeError {
    fn from(detail: RejectDetail) -> Self {
        Self::Rejected(detail)
    }
}

impl UpgradeError {
    /// As the caller sees it: timeouts are timeouts (`TransportError::Timeout`,
    /// `FilterTimeout`), never rejections.
    pub(crate) fn into_transport_error(
        self,
        addr: Option<mukan_reactor_api::NetAddress>,
    ) -> TransportError {
        match self {
            Self::FilterTimeout => TransportError::FilterTimeout,
            Self::Timeout(stage) => TransportError::Timeout(stage.into()),
            Self::Rejected(detail) => TransportError::rejected(detail, addr),
        }
    }
}

/// The kind of a failed secret-connection handshake. The crypto stays opaque: which check of
/// the peer's key failed is logged at debug level, not carried.
pub(crate) fn handshake_failure(e: mukan_secret_conn::Error) -> HandshakeFailure {
    use mukan_secret_conn::{Error, ProtocolViolation};
    tracing::debug!(target: "mukan_transport", "secret connection failed: {e}");
    match e {
        Error::Io(io) => HandshakeFailure::Io(io),
        Error::UnexpectedEof => HandshakeFailure::Closed,
        Error::Decode(_) | Error::Protocol(ProtocolViolation::MessageTooLarge { .. }) => {
            HandshakeFailure::Malformed
        }
        Error::Protocol(
            ProtocolViolation::InvalidSignature | ProtocolViolation::SignatureLength { .. },
        ) => HandshakeFailure::InvalidSignature,
        Error::Protocol(_) | Error::PeerIdMismatch { .. } => HandshakeFailure::KeyRefused,
        // A timeout is reported as one by the caller before it gets here.
        _ => HandshakeFailure::BadFrame,
    }
}
