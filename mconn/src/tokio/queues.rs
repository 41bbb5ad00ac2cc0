//! What the [`MConnection`](super::MConnection) handle and its task share: the bounded send
//! queues, the task's wake-up flag, the stop request and the status snapshot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use ::tokio::sync::Notify;
use ::tokio::time::Instant;
use bytes::Bytes;
use mukan_reactor_api::{PeerStatus, TrySendError};

use crate::SendQueues;

/// A queue that emptied keeps at most this many slots (a burst's deque is let go).
const QUEUE_KEEP: usize = 32;

/// Shared by the handle (senders, stop requests, status readers) and the task.
#[derive(Debug)]
pub(super) struct Shared {
    /// One per channel, in descriptor order.
    pub(super) queues: Box<[SendQueue]>,
    /// No more messages are accepted (set under no lock; each queue checks it under its own).
    pub(super) closed: AtomicBool,
    /// Set by a send or a stop request, cleared by the task when it looks.
    woken: AtomicBool,
    /// The task, while it waits.
    waker: Mutex<Option<Waker>>,
    /// A [`StopMode`].
    stop: AtomicU8,
    /// Senders waiting for room in a full queue.
    pub(super) room: Notify,
    pub(super) status: Mutex<PeerStatus>,
    pub(super) start: Instant,
}

/// One channel's send queue: a plain deque (allocated on first use) behind a lock, with its
/// length readable without the lock.
#[derive(Debug)]
pub(super) struct SendQueue {
    items: Mutex<VecDeque<Bytes>>,
    pub(super) len: AtomicUsize,
    pub(super) capacity: usize,
}

impl SendQueue {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            capacity,
        }
    }
}

/// What the task is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum StopMode {
    Run = 0,
    FlushStop = 1,
    Stop = 2,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(queues: Box<[SendQueue]>, status: PeerStatus, start: Instant) -> Self {
        Self {
            queues,
            closed: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            waker: Mutex::new(None),
            stop: AtomicU8::new(StopMode::Run as u8),
            room: Notify::new(),
            status: Mutex::new(status),
            start,
        }
    }

    /// Wakes the task (once, however many senders call this before it looks).
    pub(super) fn wake(&self) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            // Woken outside the lock, so that the task registering meanwhile does not wait.
            let waker = lock(&self.waker).clone();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Ready once [`Shared::wake`] was called since the last time.
    pub(super) fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
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

    pub(super) fn stop_mode(&self) -> StopMode {
        match self.stop.load(Ordering::Acquire) {
            0 => StopMode::Run,
            1 => StopMode::FlushStop,
            _ => StopMode::Stop,
        }
    }

    /// Asks for a graceful stop unless a stop was already asked; whether this call asked.
    pub(super) fn ask_flush_stop(&self) -> bool {
        let asked = self.stop.compare_exchange(
            StopMode::Run as u8,
            StopMode::FlushStop as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if asked.is_ok() {
            self.wake();
        }
        asked.is_ok()
    }

    /// Asks for an immediate stop.
    pub(super) fn ask_stop(&self) {
        self.stop.store(StopMode::Stop as u8, Ordering::Release);
        self.wake();
    }

    /// Queues `message` on queue `i`, or gives it back with the reason.
    pub(super) fn try_push(&self, i: usize, message: Bytes) -> Result<(), (TrySendError, Bytes)> {
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
    pub(super) fn close_queues(&self, drop_queued: bool) {
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

/// The task's view of the shared queues, for
/// [`MConnState::poll_transmit_from`](crate::MConnState::poll_transmit_from). Senders waiting
/// for room are woken once, when it is dropped (after a whole batch), not once per message
/// taken from a full queue.
pub(super) struct SharedQueues<'a> {
    shared: &'a Shared,
    made_room: bool,
}

impl<'a> SharedQueues<'a> {
    pub(super) fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            made_room: false,
        }
    }
}

impl Drop for SharedQueues<'_> {
    fn drop(&mut self) {
        if self.made_room {
            self.shared.room.notify_waiters();
        }
    }
}

impl SendQueues for SharedQueues<'_> {
    fn has_message(&self, index: usize) -> bool {
        (self.shared.queues.get(index)).is_some_and(|q| q.len.load(Ordering::Acquire) > 0)
    }

    fn pop_message(&mut self, index: usize) -> Option<Bytes> {
        let q = self.shared.queues.get(index)?;
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
        self.made_room |= was_full && message.is_some();
        message
    }
}
