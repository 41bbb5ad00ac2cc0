//! Per-channel state: the message being sent, the priority accounting, reassembly.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use mukan_reactor_api::{ChannelDescriptor, ChannelStatus, InboxItem};

use crate::{Error, PacketMsg};

/// A received single-packet message shorter than this is copied out of the read buffer before
/// a consumer gets it (by the tokio `Inbox` as it hands the message over, or by
/// `MConnState::handle_read`), so that a consumer keeping many small messages does not pin a
/// whole buffer for each; a larger one (only with a `max_packet_msg_payload_size` of 4 KiB or
/// more) is handed over as it is.
pub(crate) const COPY_BELOW: usize = 4096;

/// A delivered message as a consumer may keep it: a copy if it is `borrowed` (a slice of the
/// read buffer) and shorter than [`COPY_BELOW`], else the same `Bytes`.
pub(crate) fn owned_if_small(message: Bytes, borrowed: bool) -> Bytes {
    if borrowed && message.len() < COPY_BELOW {
        Bytes::copy_from_slice(&message)
    } else {
        message
    }
}

/// [`owned_if_small`] applied to a delivered item's message.
pub(crate) fn owned_item(item: InboxItem, borrowed: bool) -> InboxItem {
    match item {
        InboxItem::Received {
            channel,
            message,
            lease,
        } => InboxItem::Received {
            channel,
            message: owned_if_small(message, borrowed),
            lease,
        },
        other => other,
    }
}

/// Where the scheduler takes the next message of a channel from. The sans-IO
/// [`MConnState`](crate::MConnState) has its own bounded queues (used by
/// [`MConnState::send`](crate::MConnState::send)); a driver may keep the queues elsewhere and
/// pass them to [`MConnState::poll_transmit_from`](crate::MConnState::poll_transmit_from). The
/// tokio driver keeps one bounded deque per channel behind a lock, shared with the
/// `MConnection` handle that senders push into.
///
/// `index` is the position of the channel in the descriptor list given to
/// [`MConnState::new`](crate::MConnState::new).
pub trait SendQueues {
    /// Whether channel `index` has a message waiting.
    fn has_message(&self, index: usize) -> bool;
    /// Takes the next message of channel `index`.
    fn pop_message(&mut self, index: usize) -> Option<Bytes>;
}

/// The sans-IO core's own queues: one bounded `VecDeque` per channel.
#[derive(Debug, Default)]
pub(crate) struct LocalQueues {
    pub(crate) queues: Vec<VecDeque<Bytes>>,
}

impl SendQueues for LocalQueues {
    fn has_message(&self, index: usize) -> bool {
        self.queues.get(index).is_some_and(|q| !q.is_empty())
    }

    fn pop_message(&mut self, index: usize) -> Option<Bytes> {
        self.queues.get_mut(index)?.pop_front()
    }
}

#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) desc: ChannelDescriptor,
    /// The unsent remainder of the message being sent (`Some(empty)` for an empty message
    /// whose single eof packet is not out yet).
    sending: Option<Bytes>,
    pub(crate) recently_sent: u64,
    recving: BytesMut,
    /// Length of the last multi-packet message received: the next one reserves as much at
    /// its first packet (within the channel's capacity), so that a stream of similar messages
    /// is reassembled without growing (each growth copies what arrived so far).
    last_len: usize,
}

impl Channel {
    pub(crate) fn new(desc: ChannelDescriptor) -> Self {
        Self {
            desc,
            sending: None,
            recently_sent: 0,
            recving: BytesMut::new(),
            last_len: 0,
        }
    }

    /// Go `isSendPending`: pulls the next message into `sending` if needed.
    pub(crate) fn is_send_pending(&mut self, index: usize, queues: &mut dyn SendQueues) -> bool {
        if self.sending.is_none() {
            self.sending = queues.pop_message(index);
        }
        self.sending.is_some()
    }

    pub(crate) fn in_flight(&self) -> bool {
        self.sending.is_some()
    }

    /// Go `nextPacketMsg`: the next chunk of `sending`. Call only when pending.
    pub(crate) fn next_packet(&mut self, max_payload: usize) -> Option<PacketMsg> {
        let rest = self.sending.as_mut()?;
        if rest.len() <= max_payload {
            let data = std::mem::take(rest);
            self.sending = None;
            Some(PacketMsg {
                channel: self.desc.id,
                eof: true,
                data,
            })
        } else {
            let data = rest.split_to(max_payload);
            Some(PacketMsg {
                channel: self.desc.id,
                eof: false,
                data,
            })
        }
    }

    /// Go `recvPacketMsg`: appends a chunk; returns the message when `eof`, and whether it is a
    /// slice of the read buffer (a single-packet message) rather than its own allocation.
    pub(crate) fn recv_packet(
        &mut self,
        packet: PacketMsg,
    ) -> Result<Option<(Bytes, bool)>, Error> {
        let max = self.desc.recv_message_capacity.get();
        let len = self.recving.len() + packet.data.len();
        if len > max {
            return Err(Error::MessageTooLarge {
                channel: self.desc.id,
                len,
                max,
            });
        }
        if !packet.eof {
            if self.recving.is_empty() {
                let expect = self.desc.recv_buffer_capacity.get().max(self.last_len);
                self.recving.reserve(expect.min(max));
            }
            self.recving.extend_from_slice(&packet.data);
            return Ok(None);
        }
        if self.recving.is_empty() {
            // Single-packet message: a slice of the connection's read buffer, no copy here
            // (see `COPY_BELOW` for where a small one is copied out).
            return Ok(Some((packet.data, true)));
        }
        self.recving.extend_from_slice(&packet.data);
        let len = self.recving.len();
        self.last_len = len;
        let spare = self.recving.capacity() - len;
        if spare > (len / 2).max(self.desc.recv_buffer_capacity.get()) {
            // Reserved for a larger message than this one: give the spare room back (the
            // allocator shrinks in place), so that a kept message holds about what its lease
            // counts.
            let mut exact = Vec::from(std::mem::take(&mut self.recving));
            exact.shrink_to_fit();
            return Ok(Some((Bytes::from(exact), false)));
        }
        // Hand over the whole buffer: `split` would leave its spare capacity here, keeping
        // the (message-sized) allocation alive for as long as the channel lives.
        Ok(Some((std::mem::take(&mut self.recving).freeze(), false)))
    }

    pub(crate) fn recv_in_progress(&self) -> bool {
        !self.recving.is_empty()
    }

    /// Go `updateStats`: `recentlySent *= 0.8`.
    pub(crate) fn decay(&mut self) {
        self.recently_sent = self.recently_sent * 4 / 5;
    }

    pub(crate) fn status(&self, queued: usize) -> ChannelStatus {
        ChannelStatus::new(
            self.desc.id,
            self.desc.send_queue_capacity.get(),
            queued + usize::from(self.in_flight()),
            self.desc.priority.get(),
            self.recently_sent,
        )
    }
}

/// Go `selectChannelToGossipOn`: among pending channels, the least `recently_sent /
/// priority`; ties go to the earliest channel. Compared exactly by cross-multiplication.
pub(crate) fn select(channels: &mut [Channel], queues: &mut dyn SendQueues) -> Option<usize> {
    // (index, recently_sent, priority) of the best channel so far.
    let mut best: Option<(usize, u128, u128)> = None;
    for (i, c) in channels.iter_mut().enumerate() {
        if !c.is_send_pending(i, queues) {
            continue;
        }
        let (sent, priority) = (
            u128::from(c.recently_sent),
            u128::from(c.desc.priority.get()),
        );
        let better = match best {
            None => true,
            Some((_, best_sent, best_priority)) => sent * best_priority < best_sent * priority,
        };
        if better {
            best = Some((i, sent, priority));
        }
    }
    best.map(|(i, _, _)| i)
}
