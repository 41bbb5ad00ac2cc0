//! [`MConnState`]: the sans-IO MConnection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, PeerStatus, TrySendError};

use crate::budget::BudgetHandle;
use crate::channel::{self, Channel, LocalQueues, SendQueues};
use crate::packet::{PacketDecoder, chunk_size, max_packet_size_on};
use crate::rate::{FlowMeter, RateLimiter};
use crate::{Config, ConfigError, Error, Packet};

/// Go `updateStats`: how often `recently_sent` decays.
const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// What the connection reports to its owner.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A complete message arrived on `channel` (possibly empty).
    Received {
        /// The channel.
        channel: ChannelId,
        /// The reassembled message.
        message: Bytes,
    },
    /// The connection failed and is closed (only from the tokio driver, last event).
    Error(Error),
}

/// The MConnection protocol as a state machine: no IO, no clock, no tasks.
///
/// # Call order
/// - [`MConnState::new`] with the channel descriptors, the [`Config`] and the current time.
/// - Whenever bytes arrive: [`MConnState::handle_read`] (or write into
///   [`MConnState::read_buffer`] and call [`MConnState::handle_buffered`]); then drain
///   [`MConnState::poll_event`]. When the stream ends: [`MConnState::handle_eof`].
///   Read only while [`MConnState::read_ready`] (the receive rate limit).
/// - To queue a message: [`MConnState::send`] (or keep the queues yourself and use
///   [`MConnState::poll_transmit_from`]).
/// - Whenever the previous write is done: [`MConnState::poll_transmit`] and, if it returns
///   `Some`, write *and flush* those bytes.
/// - Sleep until [`MConnState::poll_timeout`], then call [`MConnState::handle_timeout`].
///
/// Any `Err` is fatal: stop using the state and close the stream.
///
/// # Flush policy
/// Packets are produced into an internal buffer, at most `write_batch_size` bytes at a time.
/// The buffer is handed out at once when it is full, when a ping or pong is in it, or when no
/// channel has anything left to send (so a lone message never waits). Only when the send rate
/// limit holds back a backlog does the buffer wait, at most `flush_throttle` after its first
/// byte, to be written in one piece.
#[derive(Debug)]
pub struct MConnState {
    config: Config,
    max_payload: usize,
    channels: Vec<Channel>,
    /// The channel IDs in descriptor order (a scan of a few bytes beats a 512-byte table
    /// held by every connection).
    ids: Box<[u8]>,
    local: LocalQueues,
    decoder: PacketDecoder,
    read_buf: BytesMut,
    events: VecDeque<Event>,
    unflushed: BytesMut,
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
    /// The driver has paused reading on purpose (its consumer is behind).
    read_paused: bool,
    /// The shared receive budget holds reading back.
    recv_held: bool,
    /// Since when reading has been held back (either reason); the pong deadline does not run
    /// meanwhile (our peer's pong may be waiting, unread, in the stream).
    read_held_since: Option<Instant>,
    /// The shared receive budget held reading back since our last pong.
    recv_held_since_pong: bool,
    /// When we last wrote a pong.
    last_pong: Instant,
    /// Decoding stops once this many events wait in `events`.
    event_limit: usize,
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
            local: LocalQueues {
                // Allocated on first use: most channels of an idle peer never queue anything.
                queues: channels.iter().map(|_| VecDeque::new()).collect(),
            },
            decoder: PacketDecoder::new(max_packet),
            read_buf: BytesMut::new(),
            events: VecDeque::new(),
            unflushed: BytesMut::new(),
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
            read_paused: false,
            recv_held: false,
            read_held_since: None,
            recv_held_since_pong: false,
            last_pong: now,
            event_limit: usize::MAX,
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

    /// Feeds bytes read from the stream.
    ///
    /// # Errors
    /// Any protocol violation of the peer ([`Error::Decode`], [`Error::PacketTooLarge`],
    /// [`Error::UnknownChannel`], [`Error::MessageTooLarge`]).
    pub fn handle_read(&mut self, data: &[u8], now: Instant) -> Result<(), Error> {
        self.read_buf.extend_from_slice(data);
        self.process(data.len(), now)
    }

    /// The buffer the driver may read into directly (then call
    /// [`MConnState::handle_buffered`] with the number of bytes added).
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.read_buf
    }

    /// Processes `added` bytes appended to [`MConnState::read_buffer`].
    ///
    /// # Errors
    /// As [`MConnState::handle_read`].
    pub fn handle_buffered(&mut self, added: usize, now: Instant) -> Result<(), Error> {
        self.process(added, now)
    }

    fn process(&mut self, added: usize, now: Instant) -> Result<(), Error> {
        self.last_read_at = now;
        self.recv_limit.consume(added, now);
        if let Some(total) = &self.recv_total {
            total.consume(added, now);
        }
        self.recv_meter.record(added, now);
        self.decode_buffered()
    }

    /// Decodes the packets already buffered, until [`MConnState::set_event_limit`] events
    /// wait to be taken by [`MConnState::poll_event`] (by default: all of them). A driver that
    /// limits events calls this after taking one, before reading more.
    ///
    /// # Errors
    /// As [`MConnState::handle_read`].
    pub fn decode_buffered(&mut self) -> Result<(), Error> {
        while self.events.len() < self.event_limit {
            let Some(packet) = self.decoder.decode(&mut self.read_buf)? else {
                break;
            };
            self.handle_packet(packet)?;
        }
        Ok(())
    }

    /// Decodes at most until `limit` events wait (so that a driver holding back a message
    /// does not decode, and hold, everything else it has read). Default: unlimited.
    pub fn set_event_limit(&mut self, limit: std::num::NonZeroUsize) {
        self.event_limit = limit.get();
    }

    /// The driver stops (`true`) or resumes (`false`) reading on purpose, because its
    /// consumer is behind. While reading is paused the pong deadline does not run (the pong
    /// may be waiting, unread, in the stream); on resuming it is pushed back by the pause.
    /// Bound the pause yourself (the tokio driver's `recv_stall_timeout`).
    pub fn set_read_paused(&mut self, paused: bool, now: Instant) {
        self.read_paused = paused;
        self.update_read_held(now);
    }

    /// Starts or ends a period of reading held back (paused by the driver, or by the shared
    /// receive budget): the pong deadline does not run during one.
    fn update_read_held(&mut self, now: Instant) {
        let held = self.read_paused || self.recv_held;
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

    fn handle_packet(&mut self, packet: Packet) -> Result<(), Error> {
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
                let Some(ch) = (self.channel_index(channel)).and_then(|i| self.channels.get_mut(i))
                else {
                    return Err(Error::UnknownChannel(channel));
                };
                if let Some(message) = ch.recv_packet(msg)? {
                    self.events.push_back(Event::Received { channel, message });
                }
            }
        }
        Ok(())
    }

    /// The stream ended.
    ///
    /// Returns [`Error::UnexpectedEof`] if it ended inside a packet or a multi-packet
    /// message (the partial message is discarded), else [`Error::ConnectionClosed`].
    pub fn handle_eof(&mut self) -> Error {
        if !self.read_buf.is_empty() || self.channels.iter().any(Channel::recv_in_progress) {
            Error::UnexpectedEof
        } else {
            Error::ConnectionClosed
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the receive rate limits (this connection's, then the node-wide one) allow
    /// reading now. While the node-wide budget holds reading back, the pong deadline does not
    /// run, and a pong goes out every third of `pong_timeout` (our peer's ping may be waiting,
    /// unread, behind its data: the pong keeps the peer from timing us out meanwhile).
    pub fn read_ready(&mut self, now: Instant) -> bool {
        if !self.recv_limit.ready(now) {
            return false;
        }
        let Some(total) = &self.recv_total else {
            return true;
        };
        let ready = total.ready(now);
        if self.recv_held == ready {
            self.recv_held = !ready;
            self.recv_held_since_pong |= !ready;
            self.update_read_held(now);
        }
        ready
    }

    /// While the receive budget holds reading back: when the next keep-alive pong is due.
    fn keepalive_at(&self) -> Option<Instant> {
        self.recv_held_since_pong
            .then(|| self.last_pong + self.config.pong_timeout / 3)
    }

    /// Advances timers to `now`: schedules pings, decays `recently_sent`.
    ///
    /// A ping that falls due arms the pong deadline at once, whether or not it can be written
    /// yet: a peer that stops reading (so that our writes, and the ping, make no progress) is
    /// detected within `ping_interval + pong_timeout`.
    ///
    /// # Errors
    /// [`Error::PongTimeout`] if a ping went unanswered for `pong_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.read_held_since.is_none() && self.pong_deadline.is_some_and(|d| now >= d) {
            return Err(Error::PongTimeout);
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

    /// Starts waiting for a pong, unless already waiting.
    fn arm_pong_deadline(&mut self, now: Instant) {
        if self.pong_deadline.is_none() {
            self.pong_deadline = Some(now + self.config.pong_timeout);
            self.pong_armed_at = now;
        }
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
    /// until while a previous write is still in progress.
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

    /// Bytes to write now, from the state's own queues: appended to `out`, returns their
    /// count. Write and flush them before calling again.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut BytesMut) -> Option<usize> {
        let mut local = std::mem::take(&mut self.local);
        let r = self.poll_transmit_from(now, out, &mut local);
        self.local = local;
        r
    }

    /// As [`MConnState::poll_transmit`], taking messages from `queues`.
    pub fn poll_transmit_from(
        &mut self,
        now: Instant,
        out: &mut BytesMut,
        queues: &mut dyn SendQueues,
    ) -> Option<usize> {
        if self.pong_due {
            self.pong_due = false;
            self.push_control(Packet::Pong, now);
        }
        if self.ping_due {
            self.ping_due = false;
            self.push_control(Packet::Ping, now);
            self.ping_sent_at = Some(now);
            // Armed when the ping fell due (`handle_timeout`); kept if already running.
            self.arm_pong_deadline(now);
        }
        let batch = self.config.write_batch_size.get();
        self.held_by_send_total = false;
        while self.unflushed.len() < batch && self.send_limit.ready(now) {
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
            if self.unflushed.is_empty() && self.unflushed.capacity() < batch {
                // One allocation for the batch rather than a chain of doublings (the buffer
                // is let go when the connection goes quiet, `shrink_idle`).
                self.unflushed.reserve(batch + self.max_payload + 16);
            }
            let before = self.unflushed.len();
            Packet::Msg(msg).encode(&mut self.unflushed);
            let n = self.unflushed.len() - before;
            ch.recently_sent += n as u64;
            self.send_limit.consume(n, now);
            self.send_meter.record(n, now);
            if let Some(total) = &self.send_total {
                total.consume(n, now);
            }
        }
        if self.unflushed.is_empty() {
            return None;
        }
        let since = *self.unflushed_since.get_or_insert(now);
        let drained = !self.has_pending(queues);
        // Held back by the node-wide budget, the connection's turn may be a round away: what
        // it has goes out now (a lone urgent message must not wait for the throttle too).
        let flush = self.force_flush
            || drained
            || self.held_by_send_total
            || self.unflushed.len() >= batch
            || now >= since + self.config.flush_throttle;
        if !flush {
            return None;
        }
        self.force_flush = false;
        self.unflushed_since = None;
        let n = self.unflushed.len();
        if out.is_empty() {
            std::mem::swap(out, &mut self.unflushed);
        } else {
            out.extend_from_slice(&self.unflushed);
            self.unflushed.clear();
        }
        Some(n)
    }

    /// Lets go of the packet buffer's spare capacity if nothing is in it and it holds more
    /// than `keep` bytes: what a driver calls before going idle, so that a quiet connection
    /// does not keep the buffer of its last burst.
    pub fn shrink_idle(&mut self, keep: usize) {
        if self.unflushed.is_empty() && self.unflushed.capacity() > keep {
            self.unflushed = BytesMut::new();
        }
    }

    /// A ping or pong: never held back by a rate limit (so that a budget never costs a peer
    /// its liveness), but counted.
    fn push_control(&mut self, packet: Packet, now: Instant) {
        if packet == Packet::Pong {
            self.last_pong = now;
            self.recv_held_since_pong = self.recv_held;
        }
        let before = self.unflushed.len();
        packet.encode(&mut self.unflushed);
        let n = self.unflushed.len() - before;
        self.send_meter.record(n, now);
        if let Some(total) = &self.send_total {
            total.consume(n, now);
        }
        self.force_flush = true;
    }

    fn has_pending(&self, queues: &mut dyn SendQueues) -> bool {
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
        !self.has_pending(queues) && self.unflushed.is_empty() && !self.pong_due && !self.ping_due
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
