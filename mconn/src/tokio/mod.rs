//! [`MConnection`]: one tokio task driving an [`MConnState`] over a [`Wire`].
//!
//! - `mod.rs`: the handle (start, send, stop, status);
//! - `queues.rs`: the send queues, wake-up flag and stop request the handle and the task share;
//! - `driver.rs`: the task;
//! - `inbox.rs`: the receiving side handed to the consumer ([`Inbox`], a `PeerInbox`);
//! - `wire.rs`: the stream as the task sees it ([`Wire`], for a `SecretStream` or a
//!   [`PlainStream`]).

mod driver;
mod inbox;
mod queues;
mod wire;

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ::tokio::sync::watch;
use ::tokio::time::Instant;
use bytes::Bytes;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, PeerStatus, RecvBudget, SendError, TrySendError,
};

use self::driver::Driver;
pub use self::inbox::Inbox;
use self::inbox::InboxShared;
use self::queues::{SendQueue, Shared};
pub use self::wire::{PlainStream, Wire};
use crate::{Config, Error, MConnState};

/// A running MConnection: a handle onto one task that owns the stream (a [`Wire`]) and an
/// [`MConnState`].
///
/// Each channel has a bounded queue of `send_queue_capacity` messages in front of the task
/// (plus the one message being sent, as in Go). Received messages arrive in the [`Inbox`]
/// returned by [`MConnection::spawn`], each holding a lease on its channel's receive budget.
/// When the consumer falls behind, the task stops reading from the stream (back-pressure on
/// the peer) but keeps writing, so our own sends, pings and pongs are not held up by a slow
/// reactor.
///
/// Dropping the handle stops the connection (without flushing).
#[derive(Debug)]
pub struct MConnection {
    /// The channel IDs in descriptor order.
    ids: Box<[u8]>,
    shared: Arc<Shared>,
    done_rx: watch::Receiver<bool>,
    send_timeout: Duration,
    budgets: Vec<Arc<RecvBudget>>,
}

impl MConnection {
    /// Starts a connection over `wire` (a `SecretStream`, or any byte stream wrapped in a
    /// [`PlainStream`]) on the current tokio runtime. Received messages, then the reason the
    /// connection ended ([`InboxItem::Stopped`](mukan_reactor_api::InboxItem), unless it was
    /// stopped locally), arrive in the returned [`Inbox`].
    ///
    /// Each delivered message holds a lease on its channel's receive budget
    /// ([`RecvBudget`], `ChannelDescriptor::recv_budget()` bytes, see
    /// [`MConnection::recv_budget`]). The budget is enforced in the connection's core: a
    /// message whose channel budget is full is held back (that one message, nothing else is
    /// decoded meanwhile), reading stops, writing (queued messages, pings, pongs) goes on, and
    /// reading resumes when a lease is released. While reading is paused the pong deadline
    /// does not run. If the message still finds no room after `config.recv_stall_timeout`, the
    /// connection ends with [`Error::SlowReceiver`].
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or channel list.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn<W: Wire>(
        wire: W,
        channels: &[ChannelDescriptor],
        config: Config,
    ) -> Result<(Self, Inbox), Error> {
        Self::spawn_with(wire, channels, config, ())
    }

    /// As [`MConnection::spawn`]; `on_close` is kept by the connection's task and dropped as
    /// soon as the connection ends, right after the stream is closed, whether or not anybody
    /// reads the inbox: what a transport holds there is freed with the connection (its entry
    /// in a connection table, an inbound slot).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or channel list (`on_close` is then dropped at
    /// once).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn_with<W: Wire, G: Send + 'static>(
        wire: W,
        channels: &[ChannelDescriptor],
        config: Config,
        on_close: G,
    ) -> Result<(Self, Inbox), Error> {
        let now = Instant::now();
        let send_timeout = config.send_timeout;
        let event_capacity = config.event_capacity.get();
        let mut state = MConnState::new(channels, config, now.into_std())?;
        let budgets = state.recv_budgets().to_vec();
        let ids = channels.iter().map(|d| d.id.0).collect();
        let queues = channels
            .iter()
            .map(|d| SendQueue::new(d.send_queue_capacity.get()))
            .collect();
        let mut initial = state.status(now.into_std());
        initial.duration = Duration::ZERO;
        let shared = Arc::new(Shared::new(queues, initial, now));
        // A node-wide budget wakes the task through the same flag as a send.
        state.set_budget_waker(&std::task::Waker::from(Arc::new(BudgetWake(
            shared.clone(),
        ))));
        let inbox = Arc::new(InboxShared::new(event_capacity));
        let (done_tx, done_rx) = watch::channel(false);
        let driver = Driver {
            state,
            wire,
            shared: shared.clone(),
            inbox: inbox.clone(),
            batch: inbox::Batch::default(),
            flushing: false,
            status_at: now,
            active_at: now,
            quiet_check: now + driver::QUIET,
            shrunk: false,
        };
        ::tokio::spawn(driver.run(done_tx, on_close));
        let conn = Self {
            ids,
            shared,
            done_rx,
            send_timeout,
            budgets,
        };
        Ok((conn, Inbox::new(inbox)))
    }

    /// The receive budget of `channel`.
    pub fn recv_budget(&self, channel: ChannelId) -> Option<&Arc<RecvBudget>> {
        self.budgets.iter().find(|b| b.channel() == channel)
    }

    fn queue_index(&self, channel: ChannelId) -> Option<usize> {
        self.ids.iter().position(|&id| id == channel.0)
    }

    /// Queues `message` on `channel`, waiting at most the configured send timeout for room.
    ///
    /// # Errors
    /// [`SendError::UnknownChannel`], [`SendError::Closed`] or [`SendError::Timeout`].
    ///
    /// # Cancel safety
    /// Dropping the future before it completes leaves `message` unsent.
    pub async fn send(&self, channel: ChannelId, message: Bytes) -> Result<(), SendError> {
        let Some(i) = self.queue_index(channel) else {
            return Err(SendError::UnknownChannel(channel));
        };
        let shared = &*self.shared;
        let mut message = match shared.try_push(i, message) {
            Ok(()) => return Ok(()),
            Err((TrySendError::Full, message)) => message,
            Err(_) => return Err(SendError::Closed),
        };
        let wait = async move {
            loop {
                // Registered before looking, so that room made meanwhile is not missed.
                let room = shared.room.notified();
                let mut room = std::pin::pin!(room);
                room.as_mut().enable();
                match shared.try_push(i, message) {
                    Ok(()) => return Ok(()),
                    Err((TrySendError::Full, m)) => message = m,
                    Err(_) => return Err(SendError::Closed),
                }
                room.await;
            }
        };
        match ::tokio::time::timeout(self.send_timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout),
        }
    }

    /// Queues `message` on `channel` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::UnknownChannel`], [`TrySendError::Full`] or [`TrySendError::Closed`].
    pub fn try_send(&self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError> {
        let Some(i) = self.queue_index(channel) else {
            return Err(TrySendError::UnknownChannel(channel));
        };
        self.shared.try_push(i, message).map_err(|(e, _)| e)
    }

    /// Whether `channel`'s queue has room now.
    pub fn can_send(&self, channel: ChannelId) -> bool {
        self.queue_index(channel)
            .and_then(|i| self.shared.queues.get(i))
            .is_some_and(|q| {
                !self.shared.closed.load(Ordering::Acquire)
                    && q.len.load(Ordering::Acquire) < q.capacity
            })
    }

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        !*self.done_rx.borrow()
    }

    /// Waits until the task has ended (the stream is closed by then).
    pub async fn closed(&self) {
        let mut done = self.done_rx.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// A status snapshot: queue sizes are current, counters and rates are at most ~100 ms old.
    pub fn status(&self) -> PeerStatus {
        let mut status = self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        status.duration = self.shared.start.elapsed();
        for (ch, q) in status.channels.iter_mut().zip(&*self.shared.queues) {
            ch.send_queue_size += q.len.load(Ordering::Acquire);
        }
        status
    }

    /// Stops accepting messages, sends everything queued, flushes, closes the stream, and
    /// waits for the task to end (Go `FlushStop`). Nothing is read meanwhile. Returns within
    /// `flush_timeout` (plus scheduling) even if the peer reads nothing: the connection then
    /// ends with [`Error::FlushTimeout`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the flush; call [`MConnection::stop`] for that.
    pub async fn flush_stop(&self) {
        self.shared.ask_flush_stop();
        self.closed().await;
    }

    /// Stops at once, dropping whatever is queued, and closes the stream.
    pub fn stop(&self) {
        self.shared.ask_stop();
    }
}

impl Drop for MConnection {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wakes the connection's task (as a send does) when a node-wide budget grants it credit.
struct BudgetWake(Arc<Shared>);

impl std::task::Wake for BudgetWake {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake();
    }
}
