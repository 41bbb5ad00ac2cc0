//! [`MConnection`]: one tokio task driving an [`MConnState`] over a byte stream.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use ::tokio::sync::{Notify, mpsc, watch};
use ::tokio::time::{Instant, sleep_until, timeout_at};
use bytes::{Buf, Bytes, BytesMut};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, InboxItem, PeerStatus, RecvBudget, RecvLease, SendError,
    TrySendError,
};

use crate::{Config, Error, Event, MConnState, SendQueues};

/// Bytes reserved for a read while the connection is quiet: one small message fits. An idle
/// connection holds only this much read buffer.
const READ_MIN: usize = 2 * 1024;
/// The largest read: reads that fill the buffer double the next one up to this.
const READ_MAX: usize = 32 * 1024;
/// Write buffers larger than this are let go when there is nothing to write.
const WRITE_KEEP: usize = 4 * 1024;
/// How often the driver refreshes the status snapshot.
const STATUS_REFRESH: Duration = Duration::from_millis(100);

/// A running MConnection: a handle onto one task that owns the stream and an [`MConnState`].
///
/// Each channel has a bounded queue of `send_queue_capacity` messages in front of the task
/// (plus the one message being sent, as in Go). Received messages and the final error are
/// delivered as [`Event`]s, either through a bounded channel ([`MConnection::spawn`]) or to a
/// callback run on the task ([`MConnection::spawn_with_handler`]), or as [`InboxItem`]s holding
/// leases on per-channel receive budgets ([`MConnection::spawn_inbox`]). When the consumer
/// falls behind, the task stops reading from the stream (back-pressure on the peer) but keeps
/// writing, so our own sends, pings and pongs are not held up by a slow reactor.
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

/// What the handle and the task share: the send queues, the task's wake-up, the stop request
/// and the status snapshot.
#[derive(Debug)]
struct Shared {
    /// One per channel, in descriptor order.
    queues: Box<[SendQueue]>,
    /// No more messages are accepted (set under no lock; each queue checks it under its own).
    closed: AtomicBool,
    /// Set by a send or a stop request, cleared by the task when it looks.
    woken: AtomicBool,
    /// The task, while it waits.
    waker: Mutex<Option<Waker>>,
    /// A [`StopMode`].
    stop: AtomicU8,
    /// Senders waiting for room in a full queue.
    room: Notify,
    status: Mutex<PeerStatus>,
    start: Instant,
}

/// One channel's send queue: a plain deque (allocated on first use) behind a lock, with its
/// length readable without the lock.
#[derive(Debug)]
struct SendQueue {
    items: Mutex<VecDeque<Bytes>>,
    len: AtomicUsize,
    capacity: usize,
}

/// A queue that emptied keeps at most this many slots (a burst's deque is let go).
const QUEUE_KEEP: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum StopMode {
    Run = 0,
    FlushStop = 1,
    Stop = 2,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Wakes the task (once, however many senders call this before it looks).
    fn wake(&self) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            // Woken outside the lock, so that the task registering meanwhile does not wait.
            let waker = lock(&self.waker).clone();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Ready once [`Shared::wake`] was called since the last time.
    fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        {
            let mut slot = lock(&self.waker);
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        if self.woken.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn stop_mode(&self) -> StopMode {
        match self.stop.load(Ordering::Acquire) {
            0 => StopMode::Run,
            1 => StopMode::FlushStop,
            _ => StopMode::Stop,
        }
    }

    /// Queues `message` on queue `i`, or gives it back with the reason.
    fn try_push(&self, i: usize, message: Bytes) -> Result<(), (TrySendError, Bytes)> {
        let Some(q) = self.queues.get(i) else {
            return Err((TrySendError::Closed, message));
        };
        {
            let mut items = lock(&q.items);
            if self.closed.load(Ordering::Acquire) {
                return Err((TrySendError::Closed, message));
            }
            if items.len() >= q.capacity {
                return Err((TrySendError::Full, message));
            }
            items.push_back(message);
            q.len.store(items.len(), Ordering::Release);
        }
        self.wake();
        Ok(())
    }

    /// Accepts no more messages; with `drop_queued`, also drops what is queued. Wakes the
    /// senders waiting for room (they see the queues closed).
    fn close_queues(&self, drop_queued: bool) {
        self.closed.store(true, Ordering::Release);
        for q in &*self.queues {
            let mut items = lock(&q.items);
            if drop_queued {
                *items = VecDeque::new();
                q.len.store(0, Ordering::Release);
            }
        }
        self.room.notify_waiters();
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

/// Reads into `buf`, at most `cap` bytes if given.
async fn read_capped<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    cap: Option<usize>,
) -> std::io::Result<usize> {
    match cap {
        None => reader.read_buf(buf).await,
        Some(cap) => reader.read_buf(&mut bytes::BufMut::limit(buf, cap)).await,
    }
}

/// The task's view of the shared queues, for [`MConnState::poll_transmit_from`].
struct SharedQueues<'a>(&'a Shared);

impl SendQueues for SharedQueues<'_> {
    fn has_message(&self, index: usize) -> bool {
        (self.0.queues.get(index)).is_some_and(|q| q.len.load(Ordering::Acquire) > 0)
    }

    fn pop_message(&mut self, index: usize) -> Option<Bytes> {
        let q = self.0.queues.get(index)?;
        // Only the task pops, so an empty queue stays empty until it looks again.
        if q.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let (message, was_full) = {
            let mut items = lock(&q.items);
            let was_full = items.len() >= q.capacity;
            let message = items.pop_front();
            if items.is_empty() && items.capacity() > QUEUE_KEEP {
                *items = VecDeque::new();
            }
            q.len.store(items.len(), Ordering::Release);
            (message, was_full)
        };
        if was_full && message.is_some() {
            self.0.room.notify_waiters();
        }
        message
    }
}

enum Sink {
    Channel(mpsc::Sender<Event>),
    Handler(Box<dyn FnMut(Event) + Send>),
    /// Items with leases on the budgets (one per channel, in descriptor order).
    Inbox {
        tx: mpsc::Sender<InboxItem>,
        budgets: Vec<Arc<RecvBudget>>,
    },
}

impl MConnection {
    /// Starts a connection over `io` on the current tokio runtime. Events arrive on the
    /// returned receiver (capacity `config.event_capacity`); the last one is
    /// [`Event::Error`] unless the connection was stopped locally.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or channel list.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn<T>(
        io: T,
        channels: &[ChannelDescriptor],
        config: Config,
    ) -> Result<(Self, mpsc::Receiver<Event>), Error>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(config.event_capacity.get());
        let conn = Self::start(io, channels, config, Sink::Channel(tx))?;
        Ok((conn, rx))
    }

    /// As [`MConnection::spawn`], calling `handler` on the connection's task for every event
    /// (Go's `onReceive` / `onError`). The handler must not block.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or channel list.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn_with_handler<T>(
        io: T,
        channels: &[ChannelDescriptor],
        config: Config,
        handler: impl FnMut(Event) + Send + 'static,
    ) -> Result<Self, Error>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::start(io, channels, config, Sink::Handler(Box::new(handler)))
    }

    /// Starts a connection whose received messages are delivered with a lease on their
    /// channel's receive budget ([`RecvBudget`], `ChannelDescriptor::recv_budget()` bytes, see
    /// [`MConnection::recv_budget`]). Items arrive on the returned receiver (capacity
    /// `config.event_capacity`); the last one is [`InboxItem::Stopped`] unless the connection
    /// was stopped locally.
    ///
    /// The budget is enforced here, in the connection's task: a message whose channel budget
    /// is full is held back (that one message, nothing else is decoded meanwhile), reading
    /// stops, writing (queued messages, pings, pongs) goes on, and reading resumes when a
    /// lease is released. While reading is paused the pong deadline does not run. If the
    /// message still finds no room after `config.recv_stall_timeout`, the connection ends
    /// with [`Error::SlowReceiver`].
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or channel list.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn_inbox<T>(
        io: T,
        channels: &[ChannelDescriptor],
        config: Config,
    ) -> Result<(Self, mpsc::Receiver<InboxItem>), Error>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(config.event_capacity.get());
        let budgets = channels
            .iter()
            .map(|d| RecvBudget::new(d.id, d.recv_budget()))
            .collect();
        let conn = Self::start(io, channels, config, Sink::Inbox { tx, budgets })?;
        Ok((conn, rx))
    }

    /// The receive budget of `channel` (only for [`MConnection::spawn_inbox`]).
    pub fn recv_budget(&self, channel: ChannelId) -> Option<&Arc<RecvBudget>> {
        self.budgets.iter().find(|b| b.channel() == channel)
    }

    fn start<T>(
        io: T,
        channels: &[ChannelDescriptor],
        config: Config,
        sink: Sink,
    ) -> Result<Self, Error>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let now = Instant::now();
        let send_timeout = config.send_timeout;
        let recv_stall_timeout = config.recv_stall_timeout;
        let flush_timeout = config.flush_timeout;
        let mut state = MConnState::new(channels, config, now.into_std())?;
        let budgets = match &sink {
            Sink::Inbox { budgets, .. } => {
                // Hold back at most one decoded message at a time.
                state.set_event_limit(NonZeroUsize::MIN);
                budgets.clone()
            }
            _ => Vec::new(),
        };
        let ids = channels.iter().map(|d| d.id.0).collect();
        let queues = channels
            .iter()
            .map(|d| SendQueue {
                items: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
                capacity: d.send_queue_capacity.get(),
            })
            .collect();
        let mut initial = state.status(now.into_std());
        initial.duration = Duration::ZERO;
        let shared = Arc::new(Shared {
            queues,
            closed: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            waker: Mutex::new(None),
            stop: AtomicU8::new(StopMode::Run as u8),
            room: Notify::new(),
            status: Mutex::new(initial),
            start: now,
        });
        // A node-wide budget wakes the task through the same flag as a send.
        state.set_budget_waker(&Waker::from(Arc::new(BudgetWake(shared.clone()))));
        let (done_tx, done_rx) = watch::channel(false);
        let (reader, writer) = ::tokio::io::split(io);
        let driver = Driver {
            state,
            reader,
            writer,
            sink,
            pending: VecDeque::new(),
            shared: shared.clone(),
            wbuf: BytesMut::new(),
            read_want: READ_MIN,
            flush_pending: false,
            stopping: false,
            status_at: now,
            lease: None,
            stall_since: None,
            recv_stall_timeout,
            flush_timeout,
            flush_deadline: None,
        };
        ::tokio::spawn(driver.run(done_tx));
        Ok(Self {
            ids,
            shared,
            done_rx,
            send_timeout,
            budgets,
        })
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
        let asked = self.shared.stop.compare_exchange(
            StopMode::Run as u8,
            StopMode::FlushStop as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if asked.is_ok() {
            self.shared.wake();
        }
        let mut done = self.done_rx.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// Stops at once, dropping whatever is queued, and closes the stream.
    pub fn stop(&self) {
        self.shared
            .stop
            .store(StopMode::Stop as u8, Ordering::Release);
        self.shared.wake();
    }
}

impl Drop for MConnection {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes some of `buf`, or flushes when `buf` is empty (`None`). Cancel-safe: a write that
/// has not completed wrote nothing.
async fn write_or_flush<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &[u8],
) -> std::io::Result<Option<usize>> {
    if buf.is_empty() {
        writer.flush().await.map(|()| None)
    } else {
        writer.write(buf).await.map(Some)
    }
}

struct Driver<T> {
    state: MConnState,
    reader: ReadHalf<T>,
    writer: WriteHalf<T>,
    sink: Sink,
    pending: VecDeque<Event>,
    shared: Arc<Shared>,
    wbuf: BytesMut,
    /// Spare room to reserve for the next read: doubling (up to `READ_MAX`) while reads fill
    /// it, halving (down to `READ_MIN`) while they do not.
    read_want: usize,
    flush_pending: bool,
    stopping: bool,
    status_at: Instant,
    /// Inbox mode: the lease taken for the message at the front of `pending`.
    lease: Option<RecvLease>,
    /// Inbox mode: since when the front of `pending` has been waiting for room.
    stall_since: Option<Instant>,
    recv_stall_timeout: Duration,
    flush_timeout: Duration,
    flush_deadline: Option<Instant>,
}

impl<T: AsyncRead + AsyncWrite> Driver<T> {
    /// Runs the connection; closes the stream and the send queues as soon as it ends, marks
    /// the connection done, then delivers the remaining events (messages, then the error).
    async fn run(mut self, done: watch::Sender<bool>) {
        let result = self.run_inner().await;
        self.refresh_status(Instant::now());
        let Self {
            state,
            shared,
            reader,
            writer,
            mut sink,
            mut pending,
            mut lease,
            ..
        } = self;
        shared.close_queues(true);
        drop((reader, writer, state));
        let _ = done.send(true);
        if let Err(e) = result {
            pending.push_back(Event::Error(e));
        }
        match &mut sink {
            Sink::Channel(tx) => {
                for ev in pending.drain(..) {
                    if tx.send(ev).await.is_err() {
                        break;
                    }
                }
            }
            Sink::Handler(h) => pending.drain(..).for_each(h),
            Sink::Inbox { tx, budgets } => {
                for ev in pending.drain(..) {
                    let item = match ev {
                        Event::Received { channel, message } => {
                            // A message that finds no room now is dropped: the connection
                            // is over, and waiting could last forever.
                            let lease = lease.take().or_else(|| {
                                budgets
                                    .iter()
                                    .find(|b| b.channel() == channel)
                                    .and_then(|b| b.try_acquire(message.len()))
                            });
                            let Some(lease) = lease else { continue };
                            InboxItem::Received {
                                channel,
                                message,
                                lease,
                            }
                        }
                        Event::Error(e) => InboxItem::Stopped(e.into_stop_reason()),
                    };
                    if tx.send(item).await.is_err() {
                        break;
                    }
                }
            }
        }
    }

    async fn run_inner(&mut self) -> Result<(), Error> {
        // One timer for the task's life, moved as deadlines change.
        let mut sleep = std::pin::pin!(sleep_until(Instant::now() + Duration::from_secs(3600)));
        loop {
            let now = Instant::now();
            match self.shared.stop_mode() {
                StopMode::Stop => return Ok(()),
                StopMode::FlushStop if !self.stopping => {
                    self.stopping = true;
                    self.flush_deadline = Some(now + self.flush_timeout);
                    self.shared.close_queues(false);
                }
                _ => {}
            }
            self.state.handle_timeout(now.into_std())?;
            if self.flush_deadline.is_some_and(|d| now >= d) {
                return Err(Error::FlushTimeout);
            }
            self.deliver_events(now)?;
            let inbox = matches!(self.sink, Sink::Inbox { .. });
            if let Some(since) = self.stall_since {
                if now >= since + self.recv_stall_timeout {
                    let channel = match self.pending.front() {
                        Some(Event::Received { channel, .. }) => *channel,
                        _ => ChannelId(0),
                    };
                    return Err(Error::SlowReceiver { channel });
                }
            }
            if inbox {
                self.state
                    .set_read_paused(!self.pending.is_empty(), now.into_std());
            }
            if self.wbuf.is_empty() && !self.flush_pending {
                self.state.poll_transmit_from(
                    now.into_std(),
                    &mut self.wbuf,
                    &mut SharedQueues(&self.shared),
                );
            }
            if self.stopping
                && self.wbuf.is_empty()
                && !self.flush_pending
                && self
                    .state
                    .is_send_idle_from(&mut SharedQueues(&self.shared))
            {
                let deadline = self.flush_deadline.unwrap_or(now + self.flush_timeout);
                return match timeout_at(deadline, self.writer.shutdown()).await {
                    Ok(r) => r.map_err(Error::from),
                    Err(_) => Err(Error::FlushTimeout),
                };
            }
            if now >= self.status_at {
                self.refresh_status(now);
            }
            // Write (and flush) at once what can be written without waiting; only what must
            // wait goes through the `select!` below.
            if (!self.wbuf.is_empty() || self.flush_pending)
                && std::future::poll_fn(|cx| Poll::Ready(self.write_now(cx))).await?
            {
                continue;
            }
            // Always refresh the receive limits before taking the deadline, so that it is never
            // stale (asking a node-wide budget sets when to look again).
            let read_ready = self.state.read_ready(now.into_std());
            let writing = !self.wbuf.is_empty() || self.flush_pending;
            let deadline = if writing {
                self.state.poll_timeout_while_writing()
            } else {
                self.state.poll_timeout()
            };
            let mut deadline = deadline.map_or(now + Duration::from_secs(3600), Instant::from_std);
            if let Some(since) = self.stall_since {
                deadline = deadline.min(since + self.recv_stall_timeout);
            }
            if let Some(d) = self.flush_deadline {
                deadline = deadline.min(d);
            }
            let deadline = deadline.max(now);
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            let can_read = !self.stopping && self.pending.is_empty() && read_ready;
            let mut read_room = 0;
            // A node-wide receive budget: read no more than this connection's credit.
            let read_cap = self.state.read_allowance();
            let can_read = can_read && read_cap != Some(0);
            if can_read {
                read_room = self.reserve_read().min(read_cap.unwrap_or(usize::MAX));
            }
            let can_write = !self.wbuf.is_empty();
            let can_flush = self.flush_pending && !can_write;
            if !can_write && !can_flush {
                // Nothing to write: let go of the buffers of the last burst.
                if self.wbuf.capacity() > WRITE_KEEP {
                    self.wbuf = BytesMut::new();
                }
                self.state.shrink_idle(WRITE_KEEP);
            }
            // Inbox mode: the front message first needs a lease on its channel's budget.
            let need_lease = match (&self.sink, self.pending.front()) {
                (Sink::Inbox { budgets, .. }, Some(Event::Received { channel, message }))
                    if self.lease.is_none() =>
                {
                    self.state
                        .channel_index(*channel)
                        .and_then(|i| budgets.get(i))
                        .map(|b| (b.clone(), message.len()))
                }
                _ => None,
            };
            let wants_lease = need_lease.is_some();
            let wants_event_room = !self.pending.is_empty() && !wants_lease;
            let event_tx = match &self.sink {
                Sink::Channel(tx) if wants_event_room => Some(tx.clone()),
                _ => None,
            };
            let inbox_tx = match &self.sink {
                Sink::Inbox { tx, .. } if wants_event_room => Some(tx.clone()),
                _ => None,
            };
            let wants_inbox_room = inbox_tx.is_some();
            let wants_event_room = event_tx.is_some();
            ::tokio::select! {
                biased;
                io = write_or_flush(&mut self.writer, &self.wbuf), if can_write || can_flush => {
                    match io? {
                        Some(0) => return Err(Error::Io(std::io::ErrorKind::WriteZero.into())),
                        Some(n) => {
                            self.wbuf.advance(n);
                            self.flush_pending = self.wbuf.is_empty();
                        }
                        None => self.flush_pending = false,
                    }
                }
                lease = std::future::poll_fn(|cx| match &need_lease {
                    Some((budget, len)) => budget.poll_acquire(cx, *len),
                    None => Poll::Pending,
                }), if wants_lease => {
                    self.lease = Some(lease);
                }
                permit = async { inbox_tx?.reserve_owned().await.ok() }, if wants_inbox_room => {
                    match permit {
                        Some(permit) => {
                            if let Some(ev) = self.pending.pop_front() {
                                permit.send(self.inbox_item(ev));
                                self.stall_since = None;
                            }
                        }
                        // The inbox is gone: nobody wants the messages.
                        None => {
                            self.pending.clear();
                            self.lease = None;
                            self.stall_since = None;
                        }
                    }
                }
                permit = async { event_tx?.reserve_owned().await.ok() }, if wants_event_room => {
                    match permit {
                        Some(permit) => {
                            if let Some(ev) = self.pending.pop_front() {
                                permit.send(ev);
                            }
                        }
                        // The receiver is gone: nobody wants the events.
                        None => self.pending.clear(),
                    }
                }
                read = read_capped(&mut self.reader, self.state.read_buffer(), read_cap), if can_read => {
                    let n = read?;
                    if n == 0 {
                        return Err(self.state.handle_eof());
                    }
                    // A full read: more is probably waiting, read more at once next time.
                    // A partial one: halve, down to small reads once caught up.
                    self.read_want = if n >= read_room {
                        (self.read_want * 2).min(READ_MAX)
                    } else {
                        (self.read_want / 2).max(READ_MIN)
                    };
                    self.state.handle_buffered(n, Instant::now().into_std())?;
                }
                // A send or a stop request: looked at at the top of the loop.
                () = std::future::poll_fn(|cx| self.shared.poll_woken(cx)) => {}
                () = sleep.as_mut() => {}
            }
        }
    }

    /// Writes and flushes `wbuf` as far as the stream takes it without waiting; whether
    /// anything was done.
    fn write_now(&mut self, cx: &mut Context<'_>) -> Result<bool, Error> {
        let mut progressed = false;
        loop {
            if !self.wbuf.is_empty() {
                match Pin::new(&mut self.writer).poll_write(cx, &self.wbuf) {
                    Poll::Ready(Ok(0)) => {
                        return Err(Error::Io(std::io::ErrorKind::WriteZero.into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.wbuf.advance(n);
                        self.flush_pending = self.wbuf.is_empty();
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Err(e.into()),
                    Poll::Pending => return Ok(progressed),
                }
            } else if self.flush_pending {
                return match Pin::new(&mut self.writer).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        self.flush_pending = false;
                        Ok(true)
                    }
                    Poll::Ready(Err(e)) => Err(e.into()),
                    Poll::Pending => Ok(progressed),
                };
            } else {
                return Ok(progressed);
            }
        }
    }

    /// Makes room for the next read and returns it: `read_want` bytes, or `READ_MIN` when
    /// the buffer is drained (the connection may have gone quiet: a larger drained buffer is
    /// let go, and a read that fills the small one brings back `read_want`).
    fn reserve_read(&mut self) -> usize {
        let buf = self.state.read_buffer();
        let want = if buf.is_empty() {
            READ_MIN
        } else {
            self.read_want
        };
        if buf.is_empty() && buf.capacity() > READ_MIN {
            *buf = BytesMut::new();
        }
        let spare = buf.capacity() - buf.len();
        if spare < want {
            buf.reserve(want);
        }
        buf.capacity() - buf.len()
    }

    /// Turns the front event into an inbox item, with the lease taken for it.
    fn inbox_item(&mut self, ev: Event) -> InboxItem {
        match ev {
            Event::Received { channel, message } => InboxItem::Received {
                channel,
                message,
                lease: self.lease.take().unwrap_or_else(RecvLease::detached),
            },
            Event::Error(e) => InboxItem::Stopped(e.into_stop_reason()),
        }
    }

    /// Inbox mode: takes decoded messages one at a time and delivers each as soon as its
    /// channel's budget and the inbox have room; stops at the first that does not fit (it
    /// stays at the front of `pending`, and nothing more is decoded).
    fn deliver_inbox(&mut self, now: Instant) -> Result<(), Error> {
        loop {
            if self.pending.is_empty() {
                let ev = match self.state.poll_event() {
                    Some(ev) => ev,
                    None => {
                        self.state.decode_buffered()?;
                        match self.state.poll_event() {
                            Some(ev) => ev,
                            None => break,
                        }
                    }
                };
                self.pending.push_back(ev);
            }
            let Sink::Inbox { tx, budgets } = &self.sink else {
                break;
            };
            if self.lease.is_none() {
                if let Some(Event::Received { channel, message }) = self.pending.front() {
                    let budget = self
                        .state
                        .channel_index(*channel)
                        .and_then(|i| budgets.get(i));
                    match budget.map(|b| b.try_acquire(message.len())) {
                        Some(Some(lease)) => self.lease = Some(lease),
                        Some(None) => break,
                        // Every decoded channel is known; no budget, no accounting.
                        None => self.lease = Some(RecvLease::detached()),
                    }
                }
            }
            match tx.clone().try_reserve_owned() {
                Ok(permit) => {
                    if let Some(ev) = self.pending.pop_front() {
                        permit.send(self.inbox_item(ev));
                    }
                    self.stall_since = None;
                }
                Err(mpsc::error::TrySendError::Full(_)) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    // Nobody listens: drop the message and go on.
                    self.pending.clear();
                    self.lease = None;
                    self.stall_since = None;
                }
            }
        }
        if !self.pending.is_empty() && self.stall_since.is_none() {
            self.stall_since = Some(now);
        }
        Ok(())
    }

    fn deliver_events(&mut self, now: Instant) -> Result<(), Error> {
        if matches!(self.sink, Sink::Inbox { .. }) {
            return self.deliver_inbox(now);
        }
        while let Some(ev) = self.state.poll_event() {
            self.pending.push_back(ev);
        }
        match &mut self.sink {
            Sink::Handler(h) => self.pending.drain(..).for_each(h),
            Sink::Channel(tx) => {
                while let Some(ev) = self.pending.pop_front() {
                    match tx.try_send(ev) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(ev)) => {
                            self.pending.push_front(ev);
                            break;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            self.pending.clear();
                            break;
                        }
                    }
                }
            }
            Sink::Inbox { .. } => {}
        }
        Ok(())
    }

    fn refresh_status(&mut self, now: Instant) {
        let status = self.state.status(now.into_std());
        *self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status;
        self.status_at = now + STATUS_REFRESH;
    }
}
