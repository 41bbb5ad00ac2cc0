//! Channels: [`ChannelId`] and [`ChannelDescriptor`] (Go `p2p/conn.ChannelDescriptor`).

use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};

/// The one-byte identifier of a channel, as carried in `PacketMsg.channel_id` and in
/// `NodeInfo.channels`.
///
/// Every CometBFT v0.38 channel id is below `0x80`; see [`ChannelId::PEX`] and friends.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u8);

impl ChannelId {
    /// PEX (`p2p/pex`).
    pub const PEX: Self = Self(0x00);
    /// Consensus state.
    pub const CONSENSUS_STATE: Self = Self(0x20);
    /// Consensus data (proposals, block parts).
    pub const CONSENSUS_DATA: Self = Self(0x21);
    /// Consensus votes.
    pub const CONSENSUS_VOTE: Self = Self(0x22);
    /// Consensus vote-set bits.
    pub const CONSENSUS_VOTE_SET_BITS: Self = Self(0x23);
    /// Mempool.
    pub const MEMPOOL: Self = Self(0x30);
    /// Evidence.
    pub const EVIDENCE: Self = Self(0x38);
    /// Block sync.
    pub const BLOCKSYNC: Self = Self(0x40);
    /// State sync snapshots.
    pub const STATESYNC_SNAPSHOT: Self = Self(0x60);
    /// State sync chunks.
    pub const STATESYNC_CHUNK: Self = Self(0x61);
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({:#04x})", self.0)
    }
}

impl fmt::Display for ChannelId {
    /// Upper-case hex without prefix, as Go's `%X` prints a channel byte.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

impl From<u8> for ChannelId {
    fn from(id: u8) -> Self {
        Self(id)
    }
}

impl From<ChannelId> for u8 {
    fn from(id: ChannelId) -> Self {
        id.0
    }
}

/// What a reactor declares about one of its channels (Go `conn.ChannelDescriptor` after
/// `FillDefaults`).
///
/// Invalid values are unrepresentable: the priority and every capacity are non-zero (Go fills
/// zero capacities with defaults and panics on a priority `<= 0`). Construct with
/// [`ChannelDescriptor::new`], which applies CometBFT's defaults, then adjust with the
/// `with_*` methods.
///
/// ```
/// # use std::num::{NonZeroU32, NonZeroUsize};
/// # use mukan_reactor_api::{ChannelDescriptor, ChannelId};
/// // The PEX channel (`p2p/pex/pex_reactor.go: GetChannels`).
/// let pex = ChannelDescriptor::new(ChannelId::PEX, NonZeroU32::MIN)
///     .with_send_queue_capacity(NonZeroUsize::new(10).unwrap())
///     .with_recv_message_capacity(NonZeroUsize::new(64_000).unwrap());
/// assert_eq!(pex.recv_buffer_capacity.get(), 4096);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelDescriptor {
    /// The channel.
    pub id: ChannelId,
    /// Relative share of the send bandwidth: the scheduler sends next on the channel with
    /// the least `recently_sent / priority`.
    pub priority: NonZeroU32,
    /// How many messages may wait in the channel's send queue (default 1).
    pub send_queue_capacity: NonZeroUsize,
    /// Initial capacity of the receive buffer, in bytes (default 4096). A hint only.
    pub recv_buffer_capacity: NonZeroUsize,
    /// Largest message the channel accepts from a peer, in bytes (default 22020096 = 21 MiB).
    /// A peer that sends more is disconnected.
    pub recv_message_capacity: NonZeroUsize,
}

impl ChannelDescriptor {
    /// Go `defaultSendQueueCapacity`.
    pub const DEFAULT_SEND_QUEUE_CAPACITY: NonZeroUsize = NonZeroUsize::MIN;
    /// Go `defaultRecvBufferCapacity`.
    pub const DEFAULT_RECV_BUFFER_CAPACITY: NonZeroUsize = match NonZeroUsize::new(4096) {
        Some(v) => v,
        None => unreachable!(),
    };
    /// Go `defaultRecvMessageCapacity` (22020096 bytes).
    pub const DEFAULT_RECV_MESSAGE_CAPACITY: NonZeroUsize = match NonZeroUsize::new(22_020_096) {
        Some(v) => v,
        None => unreachable!(),
    };

    /// A descriptor with the given id and priority and CometBFT's default capacities.
    pub const fn new(id: ChannelId, priority: NonZeroU32) -> Self {
        Self {
            id,
            priority,
            send_queue_capacity: Self::DEFAULT_SEND_QUEUE_CAPACITY,
            recv_buffer_capacity: Self::DEFAULT_RECV_BUFFER_CAPACITY,
            recv_message_capacity: Self::DEFAULT_RECV_MESSAGE_CAPACITY,
        }
    }

    /// Sets [`Self::send_queue_capacity`].
    #[must_use]
    pub const fn with_send_queue_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.send_queue_capacity = capacity;
        self
    }

    /// Sets [`Self::recv_buffer_capacity`].
    #[must_use]
    pub const fn with_recv_buffer_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.recv_buffer_capacity = capacity;
        self
    }

    /// The channel's receive budget per peer, in bytes: how much received but not yet released
    /// data (see [`RecvLease`](crate::RecvLease)) a peer may have on this channel before the
    /// connection stops reading. One full message's worth, [`Self::recv_message_capacity`].
    pub const fn recv_budget(&self) -> usize {
        self.recv_message_capacity.get()
    }

    /// Sets [`Self::recv_message_capacity`].
    #[must_use]
    pub const fn with_recv_message_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.recv_message_capacity = capacity;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_cometbft() {
        let d = ChannelDescriptor::new(ChannelId::BLOCKSYNC, NonZeroU32::new(5).unwrap());
        assert_eq!(d.send_queue_capacity.get(), 1);
        assert_eq!(d.recv_buffer_capacity.get(), 4096);
        assert_eq!(d.recv_message_capacity.get(), 22_020_096);
        assert_eq!(d.priority.get(), 5);
    }

    #[test]
    fn channel_id_formats() {
        assert_eq!(ChannelId(0x0a).to_string(), "0A");
        assert_eq!(format!("{:?}", ChannelId(0x40)), "ChannelId(0x40)");
    }
}
