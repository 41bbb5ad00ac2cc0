//! Two reactors of our own, built only on the public API of `mukan-reactor-api`, as worked
//! examples of carrying a real CometBFT protocol over Mukan P2P (see this crate's README and
//! reactor-api's):
//!
//! - [`tx_relay`]: gossips transactions on the mempool channel (program `tx-relay`);
//! - [`consensus_watch`]: follows CometBFT consensus read-only on the consensus channels
//!   (program `consensus-watch`).
//!
//! [`proto`] holds their wire messages (CometBFT's protobuf types).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod consensus_watch;
pub mod node;
pub mod proto;
pub mod tx_relay;
