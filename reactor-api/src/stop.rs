//! Why a peer stops ([`StopReason`]), with its typed causes: [`ProtocolError`] (the peer broke
//! the wire protocol), [`TimeoutKind`] and [`ConnConfigError`] (our own settings refused).

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::{ChannelId, ReactorError};

/// Why a peer was stopped, as passed to [`Reactor::remove_peer`](crate::Reactor::remove_peer)
/// and reported by a peer's inbox ([`InboxItem::Stopped`](crate::InboxItem::Stopped)).
///
/// Typed so that the switch and PEX decide "ban" or "redial" without parsing strings:
/// [`StopReason::is_misbehaviour`] and [`StopReason::redial`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum StopReason {
    /// The peer closed the connection between messages.
    ClosedByPeer,
    /// Reading or writing the socket failed.
    Io(Arc<io::Error>),
    /// The peer broke the wire protocol (undecodable or oversized packet, unknown channel,
    /// a stream cut in the middle of a message).
    Protocol(ProtocolError),
    /// A deadline passed.
    Timeout(TimeoutKind),
    /// A channel's receive budget stayed full longer than the stall timeout: our side did not
    /// keep up. Not the peer's fault; not a reason to ban.
    SlowReceiver {
        /// The channel whose budget was full.
        channel: ChannelId,
    },
    /// A reactor reported the peer
    /// ([`Network::stop_peer_for_error`](crate::Network::stop_peer_for_error), or an error
    /// returned by [`Reactor::receive`](crate::Reactor::receive) or
    /// [`Reactor::filter`](crate::Reactor::filter)).
    Reactor(ReactorError),
    /// The connection could not start: our own connection settings were refused. Not the
    /// peer's fault.
    Misconfigured(ConnConfigError),
    /// The peer's ID or IP is on the deny list.
    Denied,
    /// Stopped on purpose
    /// ([`Network::stop_peer_gracefully`](crate::Network::stop_peer_gracefully)).
    Graceful,
    /// The switch is shutting down.
    Shutdown,
    /// An inbound peer gave up its slot to a newcomer when the inbound slots were full
    /// (inbound eviction). Not the peer's fault.
    Evicted,
}

impl StopReason {
    /// The peer misbehaved (broke the protocol or was reported by a reactor): grounds to ban.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(self, Self::Protocol(_) | Self::Reactor(_))
    }

    /// A persistent peer stopped for this reason is redialed: everything but a graceful stop,
    /// a shutdown, the deny list and an eviction (which never picks a persistent peer).
    pub fn redial(&self) -> bool {
        !matches!(
            self,
            Self::Graceful | Self::Shutdown | Self::Denied | Self::Evicted
        )
    }

    /// A short stable label for metrics (`peer_stops{reason}`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::ClosedByPeer => "closed_by_peer",
            Self::Io(_) => "io",
            Self::Protocol(_) => "protocol",
            Self::Timeout(_) => "timeout",
            Self::SlowReceiver { .. } => "slow_receiver",
            Self::Reactor(_) => "reactor",
            Self::Misconfigured(_) => "misconfigured",
            Self::Denied => "denied",
            Self::Graceful => "graceful",
            Self::Shutdown => "shutdown",
            Self::Evicted => "evicted",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClosedByPeer => f.write_str("connection closed by peer"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Protocol(e) => write!(f, "protocol violation: {e}"),
            Self::Timeout(k) => write!(f, "{k} timeout"),
            Self::SlowReceiver { channel } => {
                write!(f, "slow receiver: channel {channel} budget stayed full")
            }
            Self::Reactor(e) => write!(f, "reported by a reactor: {e}"),
            Self::Misconfigured(e) => write!(f, "connection settings refused: {e}"),
            Self::Denied => f.write_str("on the deny list"),
            Self::Graceful => f.write_str("stopped gracefully"),
            Self::Shutdown => f.write_str("switch shut down"),
            Self::Evicted => f.write_str("evicted to make room for a new inbound peer"),
        }
    }
}

/// How a peer broke the wire protocol ([`StopReason::Protocol`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A packet's length prefix is not a valid varint (more than 10 bytes or over 64 bits).
    #[error("invalid varint length prefix")]
    Varint,
    /// A packet body is not a valid `tendermint.p2p.Packet`.
    #[error("invalid packet protobuf: {0}")]
    Packet(prost::DecodeError),
    /// A packet has none of ping, pong, msg set (Go: `"unknown message type"`).
    #[error("packet with no message set")]
    EmptyPacket,
    /// `PacketMsg.channel_id` is outside `0..=255`.
    #[error("channel id {0} out of range")]
    ChannelOutOfRange(i32),
    /// A packet's length prefix exceeds the largest packet the connection allows.
    #[error("packet too large ({len} > {max})")]
    PacketTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A packet named a channel this connection does not have.
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelId),
    /// A message being reassembled grew beyond its channel's receive message capacity.
    #[error("message on channel {channel} too large ({len} > {max})")]
    MessageTooLarge {
        /// The channel.
        channel: ChannelId,
        /// The size it would have reached.
        len: usize,
        /// The channel's `recv_message_capacity`.
        max: usize,
    },
    /// The stream ended in the middle of a packet or of a multi-packet message.
    #[error("unexpected EOF in the middle of a packet or message")]
    UnexpectedEof,
    /// A message arrived on a channel no reactor owns (a transport should not deliver it).
    #[error("message on channel {0}, which no reactor owns")]
    UnroutedChannel(ChannelId),
}

/// Which deadline passed ([`StopReason::Timeout`],
/// [`TransportError::Timeout`](crate::TransportError::Timeout)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Establishing the TCP connection.
    Dial,
    /// A connection filter did not answer.
    Filter,
    /// The secret-connection handshake.
    Handshake,
    /// The `NodeInfo` exchange.
    NodeInfo,
    /// No pong arrived in time after a ping.
    Pong,
    /// The peer stopped reading: our writes made no progress in time.
    Write,
    /// Flushing the send queues on a graceful stop.
    Flush,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dial => "dial",
            Self::Filter => "connection filter",
            Self::Handshake => "secret-connection handshake",
            Self::NodeInfo => "NodeInfo exchange",
            Self::Pong => "pong",
            Self::Write => "write",
            Self::Flush => "flush",
        })
    }
}

/// Why a connection's settings or channel list were refused (local misuse, e.g. the
/// MConnection config of `mukan-mconn`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnConfigError {
    /// `pong_timeout` must be shorter than `ping_interval` (Go panics otherwise).
    #[error("pong timeout must be shorter than the ping interval")]
    PongTimeoutNotBelowPingInterval,
    /// The same channel id appears twice.
    #[error("duplicate channel {0}")]
    DuplicateChannel(ChannelId),
    /// No channels were given.
    #[error("no channels")]
    NoChannels,
}
