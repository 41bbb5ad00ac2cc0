//! `mukan-transport`: the TCP transport of the Mukan P2P stack.
//!
//! [`TcpTransport`] implements [`mukan_reactor_api::Transport`] as CometBFT's
//! `MultiplexTransport` does (CometBFT's `spec/p2p/implementation/transport.md`):
//!
//! ```text
//! accept ─► IP not denied ─► a place in the pending pool (or closed at once)
//! dial / accept ─► filters (duplicate connection, user filters with a timeout)
//!   ─► secret connection (timeout) ─► dialed-ID check ─► ID not denied
//!   ─► duplicate host (another node's authenticated connection from the IP, or IPv6 /64)
//!   ─► NodeInfo exchange, both directions at once, ≤ 10240 bytes (timeout)
//!   ─► validate ─► NodeInfo ID == authenticated ID ─► not ourselves ─► compatible
//!   ─► a peer running MConnection
//! ```
//!
//! Every refusal is a [`TransportError::Rejected`](mukan_reactor_api::TransportError) whose
//! typed [`RejectDetail`](mukan_reactor_api::RejectDetail) says which check refused it and
//! with what (its [`reason`](mukan_reactor_api::RejectDetail::reason) is the category the
//! switch acts on). A stage that runs out of time is a `TransportError::Timeout`.
//!
//! Accepted connections are upgraded concurrently, each in its own task, so one slow peer
//! never blocks the others. Every accepted connection is answered at once: it takes a place
//! in the pending pool (bounded in all and per netgroup), displacing the oldest pending
//! connection that has sent nothing when the pool is full, or it is closed. Nothing waits in
//! the kernel's backlog for a slot, so idle sockets cannot keep an honest handshake waiting.
//! Open inbound connections are bounded too ([`Config::max_inbound`]).
//!
//! # Deviations from Go
//! - The dial and handshake timeouts are configurable ([`Config`]); Go hard-codes 1 s / 3 s
//!   and ignores `dial_timeout` / `handshake_timeout` from config.toml.
//! - If our `NodeInfo` announces no listen address or port 0, [`TcpTransport::listen`] fills
//!   in the bound address so that peers learn an address they can dial.
//! - The deny list's ID check runs right after the secret connection, so a denied node never
//!   gets our `NodeInfo` (Go filters by ID only after the whole upgrade).
//! - A connection's entry in the duplicate table (and its inbound slot) is freed when its
//!   peer is stopped, when its connection ends, or when the peer is dropped: the owner never
//!   hands a peer back (Go's `Cleanup`).
//! - Duplicate IPs: Go refuses a second connection from an IP before any handshake, counting
//!   every open connection. Here a host is an IPv4 address or an IPv6 /64, only
//!   authenticated connections count, the check comes right after the secret connection, and
//!   the same node reconnecting is let through (the switch keeps the newer connection): idle
//!   sockets cannot lock a host out, and a quick reconnect is never refused as a duplicate.
//! - Go's listener waits for a free slot before `accept` (`LimitListener`), so a full node
//!   leaves newcomers unanswered in the backlog. Here the pending pool answers every
//!   connection at once (see above).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod backend;
mod conn_set;
mod core;
mod error;
#[cfg(feature = "test-util")]
mod fault;
mod filter;
mod first_byte;
#[cfg(feature = "test-util")]
mod memory;
mod peer;
mod pending;
mod tcp;
mod upgrade;

pub use core::Config;
#[cfg(feature = "test-util")]
pub use fault::{LinkProfile, NetEvent};
pub use filter::ConnFilter;
#[cfg(feature = "test-util")]
pub use memory::{MemoryNetwork, MemoryTransport};
pub use tcp::TcpTransport;
