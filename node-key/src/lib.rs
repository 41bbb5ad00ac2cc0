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
//! Signature verification ([`PublicKey::verify`]) follows the ZIP-215 rules through
//! `ed25519-consensus`, which is what CometBFT's `curve25519-voi` verifier implements.

mod error;
mod file;
mod key;
mod node_id;

pub use error::{FileError, ParseError};
pub use key::{NodeKey, PublicKey, SIGNATURE_LEN};
pub use node_id::NodeId;
