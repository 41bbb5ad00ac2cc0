//! Peer exchange (PEX) for the Mukan P2P stack (CometBFT v0.38 `p2p/pex`, wire-compatible).
//!
//! - [`msg`]: the messages of channel `0x00` and their typed decoding.
//! - [`core`]: the sans-IO policy (request/response rules, the peer manager, seed mode) on a
//!   virtual clock with an injected RNG.
//! - `reactor` (feature `runtime`, default): `PexReactor`, the thin tokio adapter
//!   implementing [`mukan_reactor_api::Reactor`].
//! - `tests/common/sim.rs` (not part of the library): a single-threaded, deterministic network simulation over the core, used by the
//!   tests and the benchmark.
//!
//! See `README.md` for the design and every deliberate deviation from Go.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod core;
pub mod msg;
#[cfg(feature = "runtime")]
pub mod reactor;

pub use crate::core::{Action, CoreConfig, DialOutcome, PeerInfo, PexCore, PexError};
pub use crate::msg::{DecodeError, PexMessage, channel_descriptor};
#[cfg(feature = "runtime")]
pub use crate::reactor::{
    PROBE_TIMEOUT, PexConfig, PexObserver, PexReactor, ProbeCallback, SaveCallback,
};
