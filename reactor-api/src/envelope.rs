//! [`Envelope`]: a message received from a peer.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::{ChannelId, Peer, RecvLease};

/// A complete message received on a channel (Go `p2p.Envelope`).
///
/// Unlike Go, the message is left encoded: the reactor that owns the channel decodes it (and
/// returns an error from [`Reactor::receive`](crate::Reactor::receive) if it cannot, which
/// disconnects the peer, as Go's unmarshal panic does).
pub struct Envelope {
    /// The peer that sent the message.
    pub src: Arc<dyn Peer>,
    /// The channel it arrived on.
    pub channel: ChannelId,
    /// The reassembled message bytes (may be empty).
    pub message: Bytes,
    /// The message's share of its channel's receive budget, released when the envelope is
    /// dropped (see [`RecvLease`]).
    pub lease: RecvLease,
}

impl Envelope {
    /// An envelope that holds no budget (for messages made up locally).
    pub fn new(src: Arc<dyn Peer>, channel: ChannelId, message: Bytes) -> Self {
        Self {
            src,
            channel,
            message,
            lease: RecvLease::detached(),
        }
    }
}

impl Clone for Envelope {
    /// The clone shares the bytes but not the lease: only the original holds budget.
    fn clone(&self) -> Self {
        Self::new(self.src.clone(), self.channel, self.message.clone())
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("src", &self.src.id())
            .field("channel", &self.channel)
            .field("len", &self.message.len())
            .finish()
    }
}
