//! `mukan-secret-conn`: CometBFT's secret connection, wire-compatible with CometBFT v0.38.
//!
//! A secret connection authenticates two nodes by their ed25519 [node keys] and encrypts the
//! byte stream between them (spec: CometBFT `spec/p2p/legacy-docs/peer.md` "Authenticated
//! Encryption Handshake"; code: `p2p/conn/secret_connection.go` at tag
//! v0.38.25). It is a Station-to-Station handshake:
//!
//! 1. both sides send a plaintext X25519 ephemeral key (`BytesValue`, 35 bytes on the wire);
//! 2. the X25519 secret feeds a Merlin transcript (the 32-byte challenge) and HKDF-SHA256 (one
//!    ChaCha20-Poly1305 key per direction);
//! 3. both sides send, sealed, an `AuthSigMessage`: their ed25519 key and a signature over the
//!    challenge, verified with the ZIP-215 rules (through `mukan-node-key`) as CometBFT does;
//! 4. the application stream follows in 1044-byte sealed frames of at most 1024 payload bytes.
//!
//! # What this crate owns
//! - A sans-IO core: the typestate [`Handshake`], the frame codec [`FrameSealer`] /
//!   [`FrameOpener`], the frame buffers [`SealBuffer`] / [`OpenBuffer`] (seal and open in
//!   place, payloads contiguous), and [`Error`]. It does no IO and reads no clock. Randomness comes from
//!   the caller ([`Handshake::new`], [`Handshake::from_ephemeral_secret`]: x25519-dalek, so
//!   test vectors can fix the ephemeral secret), or, on the production path
//!   ([`Handshake::generate`]), from the OS inside `ring`, whose X25519 is faster.
//! - With the default `tokio` feature, the driver [`SecretStream`]: the handshake over any
//!   `AsyncRead + AsyncWrite` with a timeout, then `AsyncRead` / `AsyncWrite` over sealed
//!   frames or the buffer-level [`SecretStream::poll_receive`] / [`SecretStream::received`] /
//!   [`SecretStream::send_buffer`] / [`SecretStream::poll_send`] (no copy between the frames
//!   and a parser that works in place), and [`SecretStream::split`] into halves usable from
//!   different tasks.
//!
//! # What it does not do
//! It does not open sockets, exchange `NodeInfo` or run MConnection (the `transport` and `mconn`
//! crates do). It spawns no tasks.
//!
//! # Deviations from Go (all stricter; no honest peer notices)
//! - An ephemeral key that is not exactly 32 bytes is rejected (Go pads or truncates).
//! - An ephemeral key equal to our own is rejected (a reflection).
//! - Handshake messages are capped at 64 bytes (ephemeral key) and 1 KiB (`AuthSigMessage`)
//!   before anything is allocated; Go allows 1 MiB for both.
//! - Nonce exhaustion after 2^64 frames is [`Error::NonceExhausted`]; Go panics.
//! - Frames with an empty payload are skipped by the reader (Go returns a 0-byte read, which
//!   async readers would take for end of stream).
//!
//! [node keys]: mukan_node_key::NodeKey

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod buffer;
mod error;
mod frame;
mod handshake;
mod kdf;
mod nonce;
mod proto;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "tokio")]
pub use crate::tokio::{Config, ReadHalf, SecretStream, WriteHalf};
pub use crate::{
    buffer::{OpenBuffer, SealBuffer},
    error::{CryptoError, DecodeError, Error, ProtocolViolation},
    frame::{DATA_MAX_SIZE, FRAME_LEN, FrameOpener, FrameSealer, SEALED_FRAME_LEN},
    handshake::{
        AwaitingAuthSig, AwaitingEphKey, Handshake, MAX_AUTH_SIG_MSG_LEN, MAX_EPH_KEY_MSG_LEN,
    },
    proto::LengthPrefix,
};

/// Hooks for the fuzz targets (`fuzz/`); not part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use crate::{Error, FrameOpener, FrameSealer, proto};

    /// Decodes an ephemeral-key message stream (prefix included) into the 32-byte key.
    ///
    /// # Errors
    /// As the handshake would report them.
    pub fn decode_eph_key_msg(buf: &[u8]) -> Result<Option<[u8; 32]>, Error> {
        match proto::split_delimited(buf, proto::MAX_EPH_MSG_BODY)? {
            Some(body) => proto::decode_eph_msg(body).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes an `AuthSigMessage` stream (prefix included) into key and signature lengths.
    ///
    /// # Errors
    /// As the handshake would report them.
    pub fn decode_auth_sig_msg(buf: &[u8]) -> Result<Option<(usize, usize)>, Error> {
        match proto::split_delimited(buf, proto::MAX_AUTH_SIG_MSG_BODY)? {
            Some(body) => {
                proto::decode_auth_sig_msg(body).map(|m| Some((m.ed25519_key.len(), m.sig.len())))
            }
            None => Ok(None),
        }
    }

    /// Seals an arbitrary 1028-byte plaintext, length prefix included (so it can exceed 1024).
    pub fn seal_raw(
        sealer: &mut FrameSealer,
        plain: &[u8; crate::FRAME_LEN],
    ) -> [u8; crate::SEALED_FRAME_LEN] {
        sealer.seal_raw(plain)
    }

    /// A sealer and an opener sharing `key`, the counters starting at `counter`.
    pub fn frame_pair(key: &[u8; 32], counter: u64) -> (FrameSealer, FrameOpener) {
        (
            FrameSealer::with_counter(key, counter),
            FrameOpener::with_counter(key, counter),
        )
    }
}
