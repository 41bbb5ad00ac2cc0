//! [`MConnState`]: the sans-IO MConnection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, InboxItem, PeerStatus, RecvBudget, TrySendError,
};

use crate::budget::BudgetHandle;
use crate::channel::{self, Channel, LocalQueues, SendQueues};
use crate::packet::{PacketDecoder, SendBuf, chunk_size, max_packet_size_on};
use crate::rate::{FlowMeter, RateLimiter};
use crate::{Config, ConfigError, Error, Packet};

/// Go `updateStats`: how often `recently_sent` decays.
const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// Where [`MConnState::handle_received`] delivers messages.
pub trait Deliver {
    /// Whether one more message may be delivered now. A message that finds no room is held
    /// as for a full receive budget (reading pauses, the stall deadline runs) and delivered
    /// by a later call once there is room. The default: always.
    fn has_room(&self) -> bool {
        true
    }

    /// One item. `borrowed` says that the message's bytes are a slice of the receive buffer
    /// (a message of one packet): keeping it keeps that whole buffer alive, so a consumer that
    /// may keep it should copy a small one out first (the tokio `Inbox` does, as it hands it
    /// over). A message of several packets has its own allocation.
    fn deliver(&mut self, item: InboxItem, borrowed: bool);
}

impl Deliver for VecDeque<InboxItem> {
    fn deliver(&mut self, item: InboxItem, _borrowed: bool) {
        self.push_back(item);
    }
}

/// Copies small borrowed messages out as they are delivered (for
/// [`MConnState::handle_read`], whose buffer is the state's own).
struct CopySmall<'a>(&'a mut VecDeque<InboxItem>);

impl Deliver for CopySmall<'_> {
    fn deliver(&mut self, item: InboxItem, borrowed: bool) {
        self.0.push_back(channel::owned_item(item, borrowed));
    }
}

/// The MConnection protocol as a state machine: no IO, no clock, no tasks.
///
/// # Call order
/// - [`MConnState::new`] with the channel descriptors, the [`Config`] and the current time.
/// - Whenever bytes arrive: [`MConnState::handle_received`] with the buffer that holds them
///   (the core takes whole packets off its front) and a queue for the messages it delivers;
///   or, simpler, [`MConnState::handle_read`] and then [`MConnState::poll_event`]. When the
///   stream ends: [`MConnState::handle_eof`]. Read only while [`MConnState::read_ready`].
/// - To queue a message: [`MConnState::send`] (or keep the queues yourself and use
///   [`MConnState::poll_transmit_from`]).
/// - Whenever the previous flush is done: [`MConnState::poll_transmit`], which writes packets
///   into a [`SendBuf`]; when it returns `true`, write *and flush* everything in that buffer.
/// - Sleep until [`MConnState::poll_timeout`], then call [`MConnState::handle_timeout`].
///
/// Any `Err` is fatal: stop using the state and close the stream.
///
/// # Delivery under receive budgets
/// Every channel has a [`RecvBudget`] of `ChannelDescriptor::recv_budget()` bytes. A message
/// is delivered as an [`InboxItem`] holding a lease on its channel's budget; the lease goes
/// back when the item (or the `Envelope` made from it) is dropped. A message whose budget is
/// full is held back: nothing more is decoded, [`MConnState::read_ready`] turns false (the
/// driver stops reading, so TCP pushes back on the peer), the pong deadline stops running
/// (the peer's pong may be unread in the stream), and writing goes on. Once the budget has
/// room ([`MConnState::held`] says which budget to wait on), the next
/// [`MConnState::handle_received`] delivers it. A [`Deliver`] without room (the tokio inbox
/// holding `event_capacity` messages its consumer has not taken) holds the message the same
/// way. If it is still held after
/// `recv_stall_timeout`, [`MConnState::handle_timeout`] fails with [`Error::SlowReceiver`].
///
/// # Flush policy
/// Packets go into the [`SendBuf`] as they are scheduled, at most `write_batch_size` bytes
/// between flushes. A flush is asked at once when the batch is full, when a ping or pong is
/// in it, or when no channel has anything left to send (so a lone message never waits). Only
/// when the send rate limit holds back a backlog does the batch wait, at most
/// `flush_throttle` after its first byte, to be written in one piece.
///
/// # Stopping
/// [`MConnState::close`] starts a graceful stop: send what is queued, then the driver closes
/// the stream once [`MConnState::is_send_idle`]; if that takes longer than `flush_timeout`,
/// [`MConnState::handle_timeout`] fails with [`Error::FlushTimeout`].
#[derive(Debug)]
pub struct MConnState {
    config: Config,
    max_payload: usize,
    channels: Vec<Channel>,
    /// The channel IDs in descriptor order (a scan of a few bytes beats a 512-byte table
    /// held by every connection).
    ids: Box<[u8]>,
    /// One per channel, in descriptor order.
    budgets: Vec<Arc<RecvBudget>>,
    local: LocalQueues,
    decoder: PacketDecoder,
    /// Bytes given to [`MConnState::handle_read`] (the simple API) not yet decoded.
    read_buf: BytesMut,
    /// Messages decoded by [`MConnState::handle_read`], for [`MConnState::poll_event`].
    events: VecDeque<InboxItem>,
    /// A decoded message waiting for room in its channel's budget: channel index, message,
    /// whether it is borrowed from the receive buffer.
    held: Option<(usize, Bytes, bool)>,
    /// Since when `held` has waited (reading is paused meanwhile).
    stall_since: Option<Instant>,
    /// Bytes written into the send buffer since the last flush.
    unflushed: usize,
    unflushed_since: Option<Instant>,
    force_flush: bool,
    ping_at: Instant,
    ping_due: bool,
    pong_due: bool,
    /// When the pong we wait for is overdue, and when that wait began.
    pong_deadline: Option<Instant>,
    /// When our last ping was written and not yet answered.
    ping_sent_at: Option<Instant>,
    /// When bytes were last fed to the state (the pong that ends a round trip came then).
    last_read_at: Instant,
    /// The lowest round trip between one of our pings and the next pong.
    min_ping: Option<Duration>,
    pong_armed_at: Instant,
    /// The shared receive budget holds reading back.
    recv_held: bool,
    /// Since when reading has been held back (a held message, or the shared receive
    /// budget); the pong deadline does not run meanwhile (our peer's pong may be waiting,
    /// unread, in the stream).
    read_held_since: Option<Instant>,
    /// The shared receive budget held reading back since our last pong.
    recv_held_since_pong: bool,
    /// When we last wrote a pong.
    last_pong: Instant,
    /// A graceful stop must be done by then.
    close_deadline: Option<Instant>,
    stats_at: Instant,
    send_limit: RateLimiter,
    recv_limit: RateLimiter,
    send_meter: FlowMeter,
    recv_meter: FlowMeter,
    /// This connection's share of the node-wide budgets (`Config::send_total` / `recv_total`).
    send_total: Option<BudgetHandle>,
    recv_total: Option<BudgetHandle>,
    /// The last packets were held back by the shared send budget (flush them at once).
    held_by_send_total: bool,
    start: Instant,
}

impl MConnState {
    /// A connection over `channels` (in priority-tie order), starting at `now`.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid, the list is empty or has a duplicate.
    pub fn new(
        channels: &[ChannelDescriptor],
        config: Config,
        now: Instant,
    ) -> Result<Self, Error> {
        config.validate()?;
        if channels.is_empty() {
            return Err(ConfigError::NoChannels.into());
        }
        let mut seen = [false; 256];
        for d in channels {
            #[expect(
                clippy::indexing_slicing,
                reason = "a `u8` channel ID always indexes a 256-entry table"
            )]
            let slot = &mut seen[usize::from(d.id.0)];
            if *slot {
                return Err(ConfigError::DuplicateChannel(d.id).into());
            }
            *slot = true;
        }
        let max_payload = config.max_packet_msg_payload_size.get();
        // Go's limit is a full chunk on channel 1; a Go peer sends full chunks on a channel
        // of 0x80 or more too, one byte longer: accept them on the channels we have.
        let widest = channels.iter().map(|d| d.id).max().unwrap_or(ChannelId(1));
        let max_packet = max_packet_size_on(widest, max_payload);
        Ok(Self {
            max_payload,
            channels: channels.iter().map(|d| Channel::new(*d)).collect(),
            ids: channels.iter().map(|d| d.id.0).collect(),
            budgets: channels
                .iter()
                .map(|d| RecvBudget::new(d.id, d.recv_budget()))
                .collect(),
            local: LocalQueues {
                // Allocated on first use: most channels of an idle peer never queue anything.
                queues: channels.iter().map(|_| VecDeque::new()).collect(),
            },
            decoder: PacketDecoder::new(max_packet),
            read_buf: BytesMut::new(),
            events: VecDeque::new(),
            held: None,
            stall_since: None,
            unflushed: 0,
            unflushed_since: None,
            force_flush: false,
            ping_at: now + config.ping_interval,
            ping_due: false,
            pong_due: false,
            pong_deadline: None,
            ping_sent_at: None,
            last_read_at: now,
            min_ping: None,
            pong_armed_at: now,
            recv_held: false,
            read_held_since: None,
            recv_held_since_pong: false,
            last_pong: now,
            close_deadline: None,
            stats_at: now + STATS_INTERVAL,
            send_limit: RateLimiter::new(config.send_rate, max_packet + 2, now),
            recv_limit: RateLimiter::new(config.recv_rate, max_packet + 2, now),
            send_meter: FlowMeter::new(now),
            recv_meter: FlowMeter::new(now),
            send_total: config.send_total.as_ref().map(crate::Budget::join),
            recv_total: config.recv_total.as_ref().map(crate::Budget::join),
            held_by_send_total: false,
            start: now,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The channel descriptors, in order.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelDescriptor> {
        self.channels.iter().map(|c| &c.desc)
    }

    /// Position of `channel` in the descriptor list.
    pub fn channel_index(&self, channel: ChannelId) -> Option<usize> {
        self.ids.iter().position(|&id| id == channel.0)
    }

    /// The receive budget of `channel`.
    pub fn recv_budget(&self, channel: ChannelId) -> Option<&Arc<RecvBudget>> {
        self.channel_index(channel)
            .and_then(|i| self.budgets.get(i))
    }

    /// The receive budgets, in descriptor order.
    pub fn recv_budgets(&self) -> &[Arc<RecvBudget>] {
        &self.budgets
    }

    /// Queues `message` on `channel` in the state's own queue (capacity
    /// `send_queue_capacity`).
    ///
    /// # Errors
    /// [`TrySendError::UnknownChannel`] or [`TrySendError::Full`].
    pub fn send(&mut self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError> {
        let Some(i) = self.channel_index(channel) else {
            return Err(TrySendError::UnknownChannel(channel));
        };
        let (Some(queue), Some(ch)) = (self.local.queues.get_mut(i), self.channels.get(i)) else {
            return Err(TrySendError::UnknownChannel(channel));
        };
        if queue.len() >= ch.desc.send_queue_capacity.get() {
            return Err(TrySendError::Full);
        }
        queue.push_back(message);
        Ok(())
    }

    /// Whether [`MConnState::send`] on `channel` would succeed now.
    pub fn can_send(&self, channel: ChannelId) -> bool {
        self.channel_index(channel).is_some_and(|i| {
            match (self.local.queues.get(i), self.channels.get(i)) {
                (Some(queue), Some(ch)) => queue.len() < ch.desc.send_queue_capacity.get(),
                _ => false,
            }
        })
    }

    /// Feeds bytes read from the stream into the state's own buffer and decodes them; the
    /// messages are then taken with [`MConnState::poll_event`].
    ///
    /// # Errors
    /// Any protocol violation of the peer ([`Error::Decode`], [`Error::PacketTooLarge`],
    /// [`Error::UnknownChannel`], [`Error::MessageTooLarge`]).
    pub fn handle_read(&mut self, data: &[u8], now: Instant) -> Result<(), Error> {
        self.read_buf.extend_from_slice(data);
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut events = std::mem::take(&mut self.events);
        let result = self.handle_received(&mut buf, data.len(), now, &mut CopySmall(&mut events));
        self.read_buf = buf;
        self.events = events;
        result
    }

    /// Accounts for `added` bytes just appended to `buf` (rate limit, meter), then takes every
    /// whole packet off the front of `buf` (no copy: a message of one packet is a slice of
    /// it, see [`Deliver`]) and delivers the complete messages into `out`, each with a lease
    /// on its channel's budget. Stops at a message whose budget is full (it is
    /// held, see the type's docs). Call it with `added = 0` to retry a held message once its
    /// budget has room.
    ///
    /// `buf` is the driver's: the core only takes bytes off its front and never grows it.
    ///
    /// # Errors
    /// As [`MConnState::handle_read`].
    pub fn handle_received(
        &mut self,
        buf: &mut BytesMut,
        added: usize,
        now: Instant,
        out: &mut impl Deliver,
    ) -> Result<(), Error> {
        if added > 0 {
            self.last_read_at = now;
            self.recv_limit.consume(added, now);
            if let Some(total) = &self.recv_total {
                total.consume(added, now);
            }
            self.recv_meter.record(added, now);
        }
        loop {
            if self.held.is_some() && !self.deliver_held(now, out) {
                return Ok(());
            }
            let Some(packet) = self.decoder.decode(buf)? else {
                return Ok(());
            };
            self.handle_packet(packet, now, out)?;
        }
    }

    /// Delivers the held message if its budget has room now; whether nothing is held after.
    fn deliver_held(&mut self, now: Instant, out: &mut impl Deliver) -> bool {
        let Some((i, message, _)) = &self.held else {
            return true;
        };
        let (Some(budget), Some(ch)) = (self.budgets.get(*i), self.channels.get(*i)) else {
            return true;
        };
        if !out.has_room() {
            return false;
        }
        let Some(lease) = budget.try_acquire(message.len()) else {
            return false;
        };
        let channel = ch.desc.id;
        if let Some((_, message, borrowed)) = self.held.take() {
            out.deliver(
                InboxItem::Received {
                    channel,
                    message,
                    lease,
                },
                borrowed,
            );
        }
        self.resume_reading(now);
        true
    }

    /// Reading resumes after a stall: the pong deadline is pushed back by the pause.
    fn resume_reading(&mut self, now: Instant) {
        self.stall_since = None;
        self.update_read_held(now);
    }

    /// Starts or ends a period of reading held back (a held message, or the shared receive
    /// budget): the pong deadline does not run during one.
    fn update_read_held(&mut self, now: Instant) {
        let held = self.stall_since.is_some() || self.recv_held;
        match (held, self.read_held_since) {
            (true, None) => self.read_held_since = Some(now),
            (false, Some(since)) => {
                // The wait ran only outside the period (it may have begun inside it).
                if let Some(d) = &mut self.pong_deadline {
                    *d += now.saturating_duration_since(since.max(self.pong_armed_at));
                }
                self.read_held_since = None;
            }
            _ => {}
        }
    }

    /// The waker of the task driving this connection, woken when a node-wide budget
    /// (`Config::send_total` / `recv_total`) grants it credit. Without it the connection
    /// finds out at [`MConnState::poll_timeout`].
    pub fn set_budget_waker(&self, waker: &std::task::Waker) {
        for total in [&self.send_total, &self.recv_total].into_iter().flatten() {
            total.set_waker(waker.clone());
        }
    }

    /// With a node-wide receive budget: how many bytes the next read may take (this
    /// connection's credit; reading more would be repaid later, out of its next turns).
    /// `None`: no such budget, read as much as you like.
    pub fn read_allowance(&self) -> Option<usize> {
        let total = self.recv_total.as_ref()?;
        Some(
            total
                .credit()
                .map_or(0, |c| usize::try_from(c).unwrap_or(usize::MAX)),
        )
    }

    fn handle_packet(
        &mut self,
        packet: Packet,
        now: Instant,
        out: &mut impl Deliver,
    ) -> Result<(), Error> {
        match packet {
            Packet::Ping => self.pong_due = true,
            // Unsolicited pongs are harmless.
            Packet::Pong => {
                self.pong_deadline = None;
                // The round trip of our last ping (an unsolicited pong measures nothing).
                if let Some(sent) = self.ping_sent_at.take() {
                    let rtt = self.last_read_at.saturating_duration_since(sent);
                    self.min_ping = Some(self.min_ping.map_or(rtt, |m| m.min(rtt)));
                }
            }
            Packet::Msg(msg) => {
                let channel = msg.channel;
                let Some(i) = self.channel_index(channel) else {
                    return Err(Error::UnknownChannel(channel));
                };
                let Some(ch) = self.channels.get_mut(i) else {
                    return Err(Error::UnknownChannel(channel));
                };
                let Some((message, borrowed)) = ch.recv_packet(msg)? else {
                    return Ok(());
                };
                let lease = if out.has_room() {
                    self.budgets
                        .get(i)
                        .and_then(|b| b.try_acquire(message.len()))
                } else {
                    None
                };
                match lease {
                    Some(lease) => out.deliver(
                        InboxItem::Received {
                            channel,
                            message,
                            lease,
                        },
                        borrowed,
                    ),
                    None => {
                        self.held = Some((i, message, borrowed));
                        self.stall_since = Some(now);
                        self.update_read_held(now);
                    }
                }
            }
        }
        Ok(())
    }

    /// The budget a held message waits on and the message's length, if one is held: the
    /// driver wakes up when that budget has room (`RecvBudget::poll_room`) and its
    /// [`Deliver`] has room, and calls [`MConnState::handle_received`] again.
    pub fn held(&self) -> Option<(&Arc<RecvBudget>, usize)> {
        let (i, message, _) = self.held.as_ref()?;
        Some((self.budgets.get(*i)?, message.len()))
    }

    /// Takes the held message back out, with a lease if its budget has room now: what a
    /// driver delivers when the connection has ended (a message that finds no room then is
    /// dropped: waiting could last forever).
    pub fn take_held(&mut self) -> Option<InboxItem> {
        let (i, message, borrowed) = self.held.take()?;
        let budget = self.budgets.get(i)?;
        let lease = budget.try_acquire(message.len())?;
        Some(InboxItem::Received {
            channel: budget.channel(),
            message: channel::owned_if_small(message, borrowed),
            lease,
        })
    }

    /// The stream ended.
    ///
    /// Returns [`Error::UnexpectedEof`] if it ended inside a packet (of `unread`, the bytes
    /// left in the driver's buffer) or a multi-packet message (the partial message is
    /// discarded), else [`Error::ConnectionClosed`].
    pub fn handle_eof(&mut self, unread: usize) -> Error {
        if unread > 0
            || !self.read_buf.is_empty()
            || self.channels.iter().any(Channel::recv_in_progress)
        {
            Error::UnexpectedEof
        } else {
            Error::ConnectionClosed
        }
    }

    /// The next message decoded by [`MConnState::handle_read`]. A held message is retried by
    /// the next `handle_read` (with no bytes, to retry only).
    pub fn poll_event(&mut self) -> Option<InboxItem> {
        self.events.pop_front()
    }

    /// Whether the driver may read now: no message is held back and the receive rate limits
    /// (this connection's, then the node-wide one) allow it. While the node-wide budget holds
    /// reading back, the pong deadline does not run, and a pong goes out every third of
    /// `pong_timeout` (our peer's ping may be waiting, unread, behind its data: the pong
    /// keeps the peer from timing us out meanwhile).
    pub fn read_ready(&mut self, now: Instant) -> bool {
        // Always refresh the limiters, so that their deadlines are never stale.
        let limit_ok = self.recv_limit.ready(now);
        if !limit_ok {
            return false;
        }
        if let Some(total) = &self.recv_total {
            let ready = total.ready(now);
            if self.recv_held == ready {
                self.recv_held = !ready;
                self.recv_held_since_pong |= !ready;
                self.update_read_held(now);
            }
            if !ready {
                return false;
            }
        }
        self.held.is_none()
    }

    /// While the receive budget holds reading back: when the next keep-alive pong is due.
    fn keepalive_at(&self) -> Option<Instant> {
        self.recv_held_since_pong
            .then(|| self.last_pong + self.config.pong_timeout / 3)
    }

    /// Starts waiting for a pong, unless already waiting.
    fn arm_pong_deadline(&mut self, now: Instant) {
        if self.pong_deadline.is_none() {
            self.pong_deadline = Some(now + self.config.pong_timeout);
            self.pong_armed_at = now;
        }
    }

    /// Starts a graceful stop at `now`: what is queued is still sent, and it must be done
    /// within `flush_timeout`.
    pub fn close(&mut self, now: Instant) {
        if self.close_deadline.is_none() {
            self.close_deadline = Some(now + self.config.flush_timeout);
        }
    }

    /// Whether [`MConnState::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.close_deadline.is_some()
    }

    /// Advances timers to `now`: schedules pings, decays `recently_sent`, checks the
    /// deadlines.
    ///
    /// A ping that falls due arms the pong deadline at once, whether or not it can be written
    /// yet: a peer that stops reading (so that our writes, and the ping, make no progress) is
    /// detected within `ping_interval + pong_timeout`.
    ///
    /// # Errors
    /// [`Error::PongTimeout`] if a ping went unanswered for `pong_timeout` (not counting time
    /// spent with reading paused), [`Error::SlowReceiver`] if a message was held for
    /// `recv_stall_timeout`, [`Error::FlushTimeout`] if a graceful stop took `flush_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.read_held_since.is_none() && self.pong_deadline.is_some_and(|d| now >= d) {
            return Err(Error::PongTimeout);
        }
        if let Some(since) = self.stall_since {
            if now >= since + self.config.recv_stall_timeout {
                let channel = self
                    .held
                    .as_ref()
                    .and_then(|(i, _, _)| self.budgets.get(*i))
                    .map_or(ChannelId(0), |b| b.channel());
                return Err(Error::SlowReceiver { channel });
            }
        }
        if self.close_deadline.is_some_and(|d| now >= d) {
            return Err(Error::FlushTimeout);
        }
        if self.keepalive_at().is_some_and(|t| now >= t) {
            self.pong_due = true;
            // Scheduled: the next one is due a period from now, whenever this one is written.
            self.last_pong = now;
            self.recv_held_since_pong = self.recv_held;
        }
        if now >= self.ping_at {
            self.ping_due = true;
            self.arm_pong_deadline(now);
            self.ping_at += self.config.ping_interval;
            if self.ping_at <= now {
                self.ping_at = now + self.config.ping_interval;
            }
        }
        while now >= self.stats_at {
            self.channels.iter_mut().for_each(Channel::decay);
            self.stats_at += STATS_INTERVAL;
        }
        Ok(())
    }

    /// When [`MConnState::handle_timeout`] (and [`MConnState::poll_transmit`]) should be
    /// called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.timer_timeout();
        if let Some(flush_at) = self.unflushed_since.map(|s| s + self.config.flush_throttle) {
            t = t.min(flush_at);
        }
        if let Some(ready) = self.send_limit.ready_at() {
            t = t.min(ready);
        }
        if let Some(ready) = self.send_total.as_ref().and_then(BudgetHandle::ready_at) {
            t = t.min(ready);
        }
        Some(t)
    }

    /// As [`MConnState::poll_timeout`], ignoring the deadlines that only matter to
    /// [`MConnState::poll_transmit`] (flush throttle, send rate limit): what a driver sleeps
    /// until while a previous flush is still in progress.
    pub fn poll_timeout_while_writing(&self) -> Option<Instant> {
        Some(self.timer_timeout())
    }

    fn timer_timeout(&self) -> Instant {
        let mut t = self.ping_at.min(self.stats_at);
        if let Some(d) = self
            .pong_deadline
            .filter(|_| self.read_held_since.is_none())
        {
            t = t.min(d);
        }
        if let Some(since) = self.stall_since {
            t = t.min(since + self.config.recv_stall_timeout);
        }
        if let Some(d) = self.close_deadline {
            t = t.min(d);
        }
        if let Some(r) = self.recv_limit.ready_at() {
            t = t.min(r);
        }
        if let Some(r) = self.recv_total.as_ref().and_then(BudgetHandle::ready_at) {
            t = t.min(r);
        }
        if let Some(k) = self.keepalive_at() {
            t = t.min(k);
        }
        t
    }

    /// Writes packets from the state's own queues into `out`; whether to flush now (write and
    /// flush everything in `out` before calling again).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut (impl SendBuf + ?Sized)) -> bool {
        let mut local = std::mem::take(&mut self.local);
        let flush = self.poll_transmit_from(now, out, &mut local);
        self.local = local;
        flush
    }

    /// As [`MConnState::poll_transmit`], taking messages from `queues`.
    pub fn poll_transmit_from(
        &mut self,
        now: Instant,
        out: &mut (impl SendBuf + ?Sized),
        queues: &mut dyn SendQueues,
    ) -> bool {
        if self.pong_due {
            self.pong_due = false;
            self.push_control(Packet::Pong, now, out);
        }
        if self.ping_due {
            self.ping_due = false;
            self.push_control(Packet::Ping, now, out);
            self.ping_sent_at = Some(now);
            // Armed when the ping fell due (`handle_timeout`); kept if already running.
            self.arm_pong_deadline(now);
        }
        let batch = self.config.write_batch_size.get();
        self.held_by_send_total = false;
        while self.unflushed < batch && self.send_limit.ready(now) {
            // Ask the node-wide budget only with something to send: asking takes a turn.
            if self.send_total.is_some() && !self.has_pending(queues) {
                break;
            }
            if let Some(total) = &self.send_total {
                if !total.ready(now) {
                    self.held_by_send_total = true;
                    break;
                }
            }
            let Some(i) = channel::select(&mut self.channels, queues) else {
                break;
            };
            let Some(ch) = self.channels.get_mut(i) else {
                break;
            };
            let Some(msg) = ch.next_packet(chunk_size(ch.desc.id, self.max_payload)) else {
                break;
            };
            let first = self.unflushed == 0;
            let n = Packet::Msg(msg).encode_to(out);
            ch.recently_sent += n as u64;
            self.unflushed += n;
            if first && self.unflushed < batch && self.has_pending(queues) {
                // More than one packet is coming: room for the whole batch at once.
                out.reserve(batch + self.max_payload + 16 - self.unflushed);
            }
            self.send_limit.consume(n, now);
            self.send_meter.record(n, now);
            if let Some(total) = &self.send_total {
                total.consume(n, now);
            }
        }
        if self.unflushed == 0 {
            return false;
        }
        let since = *self.unflushed_since.get_or_insert(now);
        let drained = !self.has_pending(queues);
        // Held back by the node-wide budget, the connection's turn may be a round away: what
        // it has goes out now (a lone urgent message must not wait for the throttle too).
        let flush = self.force_flush
            || drained
            || self.held_by_send_total
            || self.unflushed >= batch
            || now >= since + self.config.flush_throttle;
        if flush {
            self.force_flush = false;
            self.unflushed_since = None;
            self.unflushed = 0;
        }
        flush
    }

    /// A ping or pong: never held back by a rate limit (so that a budget never costs a peer
    /// its liveness), but counted.
    fn push_control(&mut self, packet: Packet, now: Instant, out: &mut (impl SendBuf + ?Sized)) {
        if packet == Packet::Pong {
            self.last_pong = now;
            self.recv_held_since_pong = self.recv_held;
        }
        let n = packet.encode_to(out);
        self.unflushed += n;
        self.send_meter.record(n, now);
        if let Some(total) = &self.send_total {
            total.consume(n, now);
        }
        self.force_flush = true;
    }

    fn has_pending(&mut self, queues: &mut dyn SendQueues) -> bool {
        (self.channels.iter().enumerate()).any(|(i, c)| c.in_flight() || queues.has_message(i))
    }

    /// Whether nothing is left to send: no queued or partly sent message in the state's own
    /// queues, nothing unflushed, no ping or pong due.
    pub fn is_send_idle(&mut self) -> bool {
        let mut local = std::mem::take(&mut self.local);
        let idle = self.is_send_idle_from(&mut local);
        self.local = local;
        idle
    }

    /// As [`MConnState::is_send_idle`], with external queues.
    pub fn is_send_idle_from(&mut self, queues: &mut dyn SendQueues) -> bool {
        !self.has_pending(queues) && self.unflushed == 0 && !self.pong_due && !self.ping_due
    }

    /// A status snapshot; queue sizes count the state's own queues and the message in flight.
    pub fn status(&mut self, now: Instant) -> PeerStatus {
        let channels = self
            .channels
            .iter()
            .zip(&self.local.queues)
            .map(|(c, q)| c.status(q.len()))
            .collect();
        PeerStatus::new(
            now.saturating_duration_since(self.start),
            self.send_meter.status(now),
            self.recv_meter.status(now),
            channels,
        )
        .with_min_ping(self.min_ping)
    }
}
