//! [`Inbox`]: the receiving side of an [`MConnection`](super::MConnection), handed to the
//! consumer (the switch) as a [`PeerInbox`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use mukan_reactor_api::{InboxItem, PeerInbox};

use super::queues::lock;

/// The messages a connection delivered and its consumer has not taken yet.
///
/// The task moves each read's messages in at once (one lock, one wake-up per socket read); the
/// consumer takes everything queued at once too and hands it out from its own side. Every
/// [`InboxItem::Received`] holds a lease on its channel's receive budget (64 bytes counted per
/// message on top of its length), so what waits here is bounded per channel in bytes, and so
/// in number: nothing else bounds it, and nothing else needs to.
#[derive(Default)]
pub(super) struct InboxShared {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<InboxItem>,
    /// The consumer, while it waits.
    waker: Option<Waker>,
    /// The connection has delivered its last item.
    ended: bool,
    /// The consumer dropped its [`Inbox`]: items are dropped as they come.
    gone: bool,
}

impl InboxShared {
    /// Moves `batch` into the inbox (leaving it empty) and wakes the consumer once.
    pub(super) fn push(&self, batch: &mut VecDeque<InboxItem>) {
        let waker = {
            let mut q = lock(&self.queue);
            if q.gone {
                batch.clear();
                return;
            }
            if q.items.is_empty() {
                std::mem::swap(&mut q.items, batch);
            } else {
                q.items.append(batch);
            }
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Delivers the connection's last items and ends the inbox.
    pub(super) fn end(&self, last: &mut VecDeque<InboxItem>) {
        let waker = {
            let mut q = lock(&self.queue);
            if !q.gone {
                q.items.append(last);
            }
            q.ended = true;
            q.waker.take()
        };
        last.clear();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The messages of a running [`MConnection`](super::MConnection), in the order they were
/// received (per channel), then [`InboxItem::Stopped`] with the reason the connection ended,
/// unless it was stopped locally. Runtime-agnostic: poll it from any executor.
///
/// Each [`InboxItem::Received`] holds a lease on its channel's receive budget; drop the
/// message (or the `Envelope` made from it) to give the bytes back. While a channel's budget
/// is full the connection stops reading from the stream; see
/// [`MConnection::spawn`](super::MConnection::spawn).
///
/// Dropping the inbox does not stop the connection: what arrives afterwards is dropped.
pub struct Inbox {
    shared: Arc<InboxShared>,
    /// Items taken from the shared queue at once, handed out one by one without a lock.
    local: VecDeque<InboxItem>,
    done: bool,
}

impl Inbox {
    pub(super) fn new(shared: Arc<InboxShared>) -> Self {
        Self {
            shared,
            local: VecDeque::new(),
            done: false,
        }
    }

    /// The next item, `Ready(None)` once the inbox has ended.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<InboxItem>> {
        if let Some(item) = self.local.pop_front() {
            return Poll::Ready(Some(item));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let mut q = lock(&self.shared.queue);
        if !q.items.is_empty() {
            std::mem::swap(&mut self.local, &mut q.items);
            drop(q);
            return Poll::Ready(self.local.pop_front());
        }
        if q.ended {
            self.done = true;
            return Poll::Ready(None);
        }
        match &q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits for the next item; `None` once the inbox has ended.
    ///
    /// # Cancel safety
    /// Cancel-safe: an item is never lost by dropping the future.
    pub async fn recv(&mut self) -> Option<InboxItem> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next item if one is there now.
    pub fn try_recv(&mut self) -> Option<InboxItem> {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        match self.poll_recv(&mut cx) {
            Poll::Ready(item) => item,
            Poll::Pending => None,
        }
    }
}

impl PeerInbox for Inbox {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<InboxItem>> {
        self.poll_recv(cx)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let items = {
            let mut q = lock(&self.shared.queue);
            q.gone = true;
            q.waker = None;
            std::mem::take(&mut q.items)
        };
        // Released outside the lock (dropping leases wakes the connection).
        drop(items);
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("taken", &self.local.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
