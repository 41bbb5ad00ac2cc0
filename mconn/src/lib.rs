//! `mukan-mconn`: CometBFT's MConnection, many prioritised channels over one byte stream
//! (CometBFT `p2p/conn/connection.go`).
//!
//! What this crate owns:
//! - the [`Packet`] codec (`uvarint(len) || tendermint.p2p.Packet`: ping, pong, msg), with the
//!   receive size limit checked before anything is allocated ([`PacketDecoder`]);
//! - chunking of messages into `max_packet_msg_payload_size` pieces with `eof`, and
//!   reassembly bounded by each channel's `recv_message_capacity`;
//! - [`MConnState`], the sans-IO core: scheduler (least `recently_sent / priority`, decaying
//!   ×0.8 every 2 s), ping every `ping_interval` and failure after `pong_timeout`, send and
//!   receive rate limits (token buckets; `None` = unlimited), the flush policy, the receive
//!   budgets (every delivered message holds a lease) and the stall and graceful-stop
//!   deadlines;
//! - with the default `tokio` feature, [`MConnection`]: one task driving an [`MConnState`]
//!   over a [`Wire`] (a `mukan-secret-conn` `SecretStream` in production, whose frames it
//!   opens and seals in place; any `AsyncRead + AsyncWrite` in a [`PlainStream`]), delivering
//!   into an [`Inbox`].
//!
//! What it does not do: no handshake, no encryption (run it over `mukan-secret-conn`), no
//! decoding of messages (reactors do that), no peer policy. The core reads no clock and
//! spawns nothing; only `tokio.rs` does.
//!
//! # Differences from Go, on purpose
//! - Flushing: Go flushes on a 100 ms throttle, so a lone small message waits up to 100 ms.
//!   Here written packets are flushed as soon as the send queues are empty; batching into
//!   large writes happens only while there is a backlog, and `flush_throttle` bounds how long
//!   a rate-limited backlog may sit unflushed.
//! - Rate limiting is a token bucket (exact long-run rate) rather than Go's 100 ms samples
//!   that let a 10-packet batch through each time.
//! - A slow consumer stalls only the reading side, per channel: each delivered message holds
//!   a lease on its channel's receive budget (`ChannelDescriptor::recv_budget`), a message
//!   that does not fit is held back (one message, nothing more is decoded), reading pauses
//!   with the pong deadline frozen while sending goes on (queued messages, pings, pongs), and
//!   after `recv_stall_timeout` (10 s, well below the peer's 45 s pong timeout, since the
//!   peer's pings are not read meanwhile) the connection ends with [`Error::SlowReceiver`].
//!   Go instead blocks the whole connection on the slow reactor until the pong timeout kills
//!   it.
//! - A ping that falls due arms the pong deadline even when it cannot be written yet, so a
//!   peer that stops reading is detected within `ping_interval + pong_timeout`; a graceful
//!   stop gives up after `flush_timeout`.
//! - Received single-packet messages under 4 KiB are copied out of the read buffer, so kept
//!   messages do not pin it; that is the only copy of a message between the socket and the
//!   consumer over a secret stream, and the copy into the frame being sealed the only one
//!   between the sender and the socket.
//! - Buffers follow the traffic: reads start at 2 frames (2 KiB) and double while they fill
//!   the buffer (up to 64 frames); a drained read buffer and the write buffers of a burst are
//!   let go when the connection goes quiet, and the send queues allocate on first use. An
//!   idle connection holds a few KiB, where Go keeps its 64 KiB bufio buffers.
//! - The wire is identical: same packets, same chunking, same limits.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod budget;
mod channel;
mod config;
mod error;
mod packet;
mod rate;
mod state;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "tokio")]
pub use self::tokio::{Inbox, MConnection, PlainStream, Wire};
pub use budget::{
    Budget, BudgetHandle, BudgetStats, HELD_QUANTA, MAX_QUANTUM, MIN_QUANTUM, MemberId, ROUND,
    SharedBucket,
};
pub use channel::SendQueues;
pub use config::Config;
pub use error::{ConfigError, DecodeError, Error};
pub use packet::{
    Packet, PacketDecoder, PacketMsg, SendBuf, chunk_size, max_packet_size, max_packet_size_on,
};
pub use state::{Deliver, MConnState};
