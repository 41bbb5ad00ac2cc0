//! `mukan-switch`: the switch of the Mukan P2P stack (CometBFT `p2p.Switch`,
//! CometBFT's `spec/p2p/implementation/switch.md`).
//!
//! The [`Switch`] turns the transport's connections into a node: it keeps the peers the
//! configuration asks for (inbound and outbound limits, persistent, unconditional and private
//! peers, a deny list), routes every received message to the reactor that owns its channel
//! and redials persistent peers on CometBFT's schedule ([`redial_delay`]).
//!
//! What it does not do: no socket or handshake code (that is the [`Transport`]'s), no wire
//! decoding (reactors get bytes), no address-book policy (PEX decides what to dial).
//!
//! # Design
//! - **Pull delivery.** A started peer hands the switch an inbox
//!   ([`PeerInbox`](mukan_reactor_api::PeerInbox)); one task per connection drains it and
//!   calls the owning reactor. The connection's own task never runs switch or reactor code,
//!   so a slow reactor cannot hold up pings, pongs or writes.
//! - **Budgets.** Each message carries a lease on its channel's receive budget, handed to the
//!   reactor inside the [`Envelope`](mukan_reactor_api::Envelope): a reactor that keeps
//!   messages fills its own channel's budget only; the connection stops reading while a
//!   budget is full and stops the peer as a slow receiver past `recv_stall_timeout`.
//! - **One stop path.** Reactor errors, [`stop_peer_for_error`], [`stop_peer_gracefully`],
//!   the deny list, shutdown and the end of the connection all become one stop request; the
//!   connection's task runs the stop path once: close (flushing first if graceful),
//!   `remove_peer` on every reactor, free the peer's slot, redial if persistent and
//!   [`StopReason::redial`](mukan_reactor_api::StopReason::redial).
//! - **Grammar.** Every reactor call for one connection comes from its task, in order
//!   `init_peer`, `add_peer`, `receive`*, `remove_peer`; a new connection of the same peer
//!   waits until the previous one's `remove_peer` returned. No lock is held while reactor
//!   code runs.
//!
//! [`Transport`]: mukan_reactor_api::Transport
//! [`stop_peer_for_error`]: mukan_reactor_api::Network::stop_peer_for_error
//! [`stop_peer_gracefully`]: mukan_reactor_api::Network::stop_peer_gracefully
//!
//! # Deviations from Go
//! See `README.md`: persistence by ID, the simultaneous-dial tie-break, the outbound limit on
//! every dial path, host names resolved at every dial, a synchronous `broadcast`, and
//! `remove_peer` after a start error.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

/// The code in `README.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod admission;
mod backoff;
mod builder;
mod config;
mod connection;
mod dial;
mod eviction;
mod inbound;
mod log;
mod peer_set;
mod resolver;
mod routing;
mod stats;
mod switch;

pub use backoff::{
    BACKOFF_ATTEMPTS, BACKOFF_BASE_SECONDS, DIAL_RANDOMIZER_MS, RECONNECT_ATTEMPTS,
    RECONNECT_INTERVAL, RedialPolicy, STABLE_CONNECTION, jitter, redial_bounds, redial_delay,
};
pub use builder::Builder;
pub use config::{Config, Error};
pub use eviction::{Candidate as EvictionCandidate, Protection, select_victim};
pub use mukan_reactor_api::DialOutcome;
pub use peer_set::PeerInfo;
pub use resolver::{Resolver, TokioResolver};
pub use stats::{ChannelStats, Stats};
pub use switch::Switch;
