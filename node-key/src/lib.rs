//! `mukan-node-key`: the ed25519 identity of a CometBFT node.
//!
//! This crate owns [`NodeKey`] (the secret key, redacted in `Debug` and zeroized on drop),
//! [`PublicKey`], [`NodeId`] (the 20-byte address `SHA256(pubkey)[..20]`, shown as 40
//! lower-case hex characters) and the `node_key.json` file in the exact format a CometBFT
//! v0.38 node reads and writes (`p2p/key.go`).
//!
//! What it does not do: no networking, no async, no global randomness (callers pass an RNG
//! to [`NodeKey::generate`]). Only [`NodeKey::load`], [`NodeKey::save`] and
//! [`NodeKey::load_or_generate`] touch the file system.
//!
//! Signature verification ([`PublicKey::verify`]) follows the ZIP-215 rules, which is what
//! CometBFT's `curve25519-voi` verifier implements, through `ed25519-zebra` (on
//! curve25519-dalek 4 with its run-time AVX2 backend; tested to decide exactly as
//! `ed25519-consensus`, which signs).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod error;
mod file;
mod key;
mod node_id;

pub use error::{FileError, ParseError};
pub use key::{NodeKey, PublicKey, SIGNATURE_LEN};
pub use node_id::NodeId;
