//! The crate's error type, classified by fault (rustls style).

use std::{fmt, io};

use mukan_node_key::NodeId;

/// Everything that can go wrong in a secret connection.
///
/// Peer misbehaviour during the handshake is a [`ProtocolViolation`]; a frame that fails
/// authentication is [`Error::Crypto`]. Any error ends the session: the stream (or the sans-IO
/// state that returned it) must not be used afterwards.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A sealed frame failed ChaCha20-Poly1305 authentication (bit flip, replay, reordering or
    /// wrong key). Go: `"failed to decrypt SecretConnection"`.
    #[error("sealed frame failed authentication")]
    Crypto(#[from] CryptoError),
    /// A handshake message is not valid protobuf or its length prefix is malformed.
    #[error("malformed handshake message: {0}")]
    Decode(#[from] DecodeError),
    /// An authenticated frame declares a chunk longer than 1024 bytes.
    /// Go: `"chunkLength is greater than dataMaxSize"`.
    #[error("frame chunk length {len} is greater than 1024")]
    FrameTooLarge {
        /// The declared chunk length.
        len: u32,
    },
    /// The underlying transport failed.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// The 64-bit frame counter of one direction is used up; the session must be re-established.
    /// (Go panics here, in `incrNonce`.)
    #[error("nonce counter exhausted")]
    NonceExhausted,
    /// The authenticated peer is not the one that was dialed.
    #[error("peer ID mismatch: dialed {expected}, authenticated {got}")]
    PeerIdMismatch {
        /// The ID the caller required.
        expected: NodeId,
        /// The ID derived from the key the peer proved it owns.
        got: NodeId,
    },
    /// The peer broke the handshake protocol.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolViolation),
    /// The handshake did not finish within the configured timeout.
    #[error("handshake timed out")]
    Timeout,
    /// The connection closed in the middle of a sealed frame.
    #[error("connection closed mid-frame ({received} of 1044 bytes received)")]
    TruncatedFrame {
        /// Bytes of the incomplete frame that had arrived.
        received: usize,
    },
    /// The connection closed before a handshake message was complete.
    #[error("connection closed during the handshake")]
    UnexpectedEof,
}

impl Error {
    /// Converts an [`io::Error`] returned by the [`AsyncRead`] / [`AsyncWrite`] implementations
    /// back into the typed error that caused it (or [`Error::Io`] for a transport failure).
    ///
    /// [`AsyncRead`]: https://docs.rs/tokio/latest/tokio/io/trait.AsyncRead.html
    /// [`AsyncWrite`]: https://docs.rs/tokio/latest/tokio/io/trait.AsyncWrite.html
    pub fn from_io(err: io::Error) -> Self {
        if err.get_ref().is_some_and(|inner| inner.is::<Self>()) {
            match err.into_inner().map(|inner| inner.downcast::<Self>()) {
                Some(Ok(typed)) => *typed,
                // Unreachable after the `is` check; keep the information anyway.
                Some(Err(other)) => Self::Io(io::Error::other(other)),
                None => Self::Io(io::Error::other("empty error")),
            }
        } else {
            Self::Io(err)
        }
    }

    /// Wraps the error into an [`io::Error`] with a fitting kind, so that it can travel through
    /// `AsyncRead` / `AsyncWrite`. [`Error::from_io`] reverses it.
    pub fn into_io(self) -> io::Error {
        let kind = match self {
            Self::Io(err) => return err,
            Self::TruncatedFrame { .. } | Self::UnexpectedEof => io::ErrorKind::UnexpectedEof,
            Self::Timeout => io::ErrorKind::TimedOut,
            Self::NonceExhausted => io::ErrorKind::Other,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Self::from_io(err)
    }
}

/// Ways the remote peer can break the handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// The ephemeral X25519 key is not 32 bytes long. (Go zero-pads or truncates it; we are
    /// stricter, as no honest peer sends another length.)
    #[error("ephemeral key is {len} bytes, expected 32")]
    EphKeyLength {
        /// Length received.
        len: usize,
    },
    /// The `AuthSigMessage` carries an ed25519 key that is not 32 bytes or not a curve point.
    /// Go: `"invalid size for PubKeyEd25519"`.
    #[error("invalid ed25519 public key ({len} bytes)")]
    InvalidPubKey {
        /// Length received.
        len: usize,
    },
    /// The signature over the handshake challenge does not verify (ZIP-215 rules).
    /// Go: `"challenge verification failed"`.
    #[error("challenge verification failed")]
    InvalidSignature,
    /// The X25519 exchange produced the all-zero shared secret: the peer sent a low-order point.
    /// Go: `"bad input point: low order point"`.
    #[error("ephemeral key is a low-order point")]
    LowOrderEphKey,
    /// A handshake message declares a length above the limit for that message.
    #[error("handshake message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// Declared length.
        len: u64,
        /// Limit for this message.
        max: usize,
    },
    /// The `AuthSigMessage` has no public key. Go: `"key type <nil> is not supported"`.
    #[error("AuthSigMessage carries no public key")]
    MissingPubKey,
    /// The peer sent our own ephemeral key back (a reflection); Go does not check this.
    #[error("peer echoed our own ephemeral key")]
    ReflectedEphKey,
    /// The signature is not 64 bytes long (Go: verification fails).
    #[error("signature is {len} bytes, expected 64")]
    SignatureLength {
        /// Length received.
        len: usize,
    },
    /// The key is of a type other than ed25519 (protobuf oneof tag; 2 = secp256k1).
    /// Go: `"expected ed25519 pubkey"`.
    #[error("unsupported public key type (oneof tag {tag}), expected ed25519")]
    UnsupportedKeyType {
        /// Protobuf field number of the key in `tendermint.crypto.PublicKey`.
        tag: u32,
    },
}

/// A sealed frame did not authenticate. Deliberately opaque: the AEAD reveals nothing more.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AEAD authentication failed")]
pub struct CryptoError(pub(crate) ());

impl fmt::Debug for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CryptoError")
    }
}

/// A handshake message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct DecodeError {
    kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) fn varint() -> Self {
        Self {
            kind: DecodeErrorKind::Varint,
        }
    }

    /// Whether the message body was not valid protobuf for the expected message type.
    pub fn is_protobuf(&self) -> bool {
        matches!(self.kind, DecodeErrorKind::Proto(_))
    }

    /// Whether the length prefix was not a valid uvarint (more than 10 bytes or overflowing).
    pub fn is_varint(&self) -> bool {
        matches!(self.kind, DecodeErrorKind::Varint)
    }
}

impl From<prost::DecodeError> for DecodeError {
    fn from(err: prost::DecodeError) -> Self {
        Self {
            kind: DecodeErrorKind::Proto(err),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DecodeErrorKind {
    #[error("invalid protobuf: {0}")]
    Proto(prost::DecodeError),
    #[error("invalid uvarint length prefix")]
    Varint,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trip_keeps_the_variant() {
        let io = Error::FrameTooLarge { len: 2000 }.into_io();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(
            Error::from_io(io),
            Error::FrameTooLarge { len: 2000 }
        ));

        let io = Error::TruncatedFrame { received: 7 }.into_io();
        assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);
        assert!(matches!(
            Error::from(io),
            Error::TruncatedFrame { received: 7 }
        ));

        let plain = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        let Error::Io(back) = Error::from(plain) else {
            panic!("expected Io");
        };
        assert_eq!(back.kind(), io::ErrorKind::ConnectionReset);
    }
}
