//! [`Error`]: why a connection ended, classified by fault.

use mukan_reactor_api::{ChannelId, ProtocolError, StopReason, TimeoutKind};

/// Why an MConnection failed. Every variant is fatal: the connection is closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the underlying stream failed.
    #[error("mconn io: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not a valid packet stream.
    #[error("mconn decode: {0}")]
    Decode(#[from] DecodeError),
    /// A packet's length prefix exceeds the largest packet the configuration allows
    /// ([`max_packet_size`](crate::max_packet_size) of the payload limit); nothing was
    /// allocated for it.
    #[error("packet too large ({len} > {max})")]
    PacketTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A `PacketMsg` named a channel this connection does not have.
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
    /// No pong arrived within the pong timeout after a ping.
    #[error("pong timeout")]
    PongTimeout,
    /// The stream ended in the middle of a packet or of a multi-packet message.
    #[error("unexpected EOF in the middle of a packet or message")]
    UnexpectedEof,
    /// The peer closed the stream between messages.
    #[error("connection closed by peer")]
    ConnectionClosed,
    /// A received message on `channel` found no room in the channel's receive budget (or in
    /// the inbox) for longer than `recv_stall_timeout`: our consumer did not keep up.
    #[error("slow receiver: channel {channel} budget stayed full")]
    SlowReceiver {
        /// The channel whose message could not be delivered.
        channel: ChannelId,
    },
    /// A graceful stop did not finish sending within `flush_timeout` (the peer does not read).
    #[error("flush timeout")]
    FlushTimeout,
    /// The configuration is inconsistent (local misuse).
    #[error("invalid mconn config: {0}")]
    Config(#[from] ConfigError),
}

/// Ways the peer's byte stream fails to decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length prefix is not a valid varint (more than 10 bytes or over 64 bits).
    #[error("invalid varint length prefix")]
    Varint,
    /// The packet body is not a valid `tendermint.p2p.Packet`.
    #[error("invalid packet protobuf: {0}")]
    Protobuf(#[source] prost::DecodeError),
    /// The packet has none of ping, pong, msg set (Go: `"unknown message type"`).
    #[error("packet with no message set")]
    EmptyPacket,
    /// `PacketMsg.channel_id` is outside `0..=255`.
    #[error("channel id {0} out of range")]
    ChannelOutOfRange(i32),
}

/// Why a [`Config`](crate::Config) or a channel list was refused: the contract's
/// [`ConnConfigError`](mukan_reactor_api::ConnConfigError), under this crate's name, so that a
/// refused start reaches the switch as
/// [`StopReason::Misconfigured`](mukan_reactor_api::StopReason::Misconfigured) unchanged.
pub use mukan_reactor_api::ConnConfigError as ConfigError;

impl Error {
    /// Why the peer stopped, in the switch's terms: EOF between messages is
    /// [`StopReason::ClosedByPeer`], socket errors are [`StopReason::Io`], a missing pong is a
    /// [`TimeoutKind::Pong`] (or `Flush`) timeout, a full budget is
    /// [`StopReason::SlowReceiver`], and everything the peer sent wrong is
    /// [`StopReason::Protocol`].
    pub fn into_stop_reason(self) -> StopReason {
        match self {
            Self::ConnectionClosed => StopReason::ClosedByPeer,
            Self::Io(e) => StopReason::Io(std::sync::Arc::new(e)),
            Self::PongTimeout => StopReason::Timeout(TimeoutKind::Pong),
            Self::FlushTimeout => StopReason::Timeout(TimeoutKind::Flush),
            Self::SlowReceiver { channel } => StopReason::SlowReceiver { channel },
            Self::Config(e) => StopReason::Misconfigured(e),
            Self::Decode(DecodeError::Varint) => StopReason::Protocol(ProtocolError::Varint),
            Self::Decode(DecodeError::Protobuf(e)) => {
                StopReason::Protocol(ProtocolError::Packet(e))
            }
            Self::Decode(DecodeError::EmptyPacket) => {
                StopReason::Protocol(ProtocolError::EmptyPacket)
            }
            Self::Decode(DecodeError::ChannelOutOfRange(id)) => {
                StopReason::Protocol(ProtocolError::ChannelOutOfRange(id))
            }
            Self::PacketTooLarge { len, max } => {
                StopReason::Protocol(ProtocolError::PacketTooLarge { len, max })
            }
            Self::UnknownChannel(channel) => {
                StopReason::Protocol(ProtocolError::UnknownChannel(channel))
            }
            Self::MessageTooLarge { channel, len, max } => {
                StopReason::Protocol(ProtocolError::MessageTooLarge { channel, len, max })
            }
            Self::UnexpectedEof => StopReason::Protocol(ProtocolError::UnexpectedEof),
        }
    }
}
