//! [`Inbox`]: the receiving side of an [`MConnection`](super::MConnection), handed to the
//! consumer (the switch) as a [`PeerInbox`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use mukan_reactor_api::{InboxItem, PeerInbox};

use super::queues::lock;
use crate::Deliver;
use crate::channel::owned_item;

/// An item and whether its message is borrowed from the connection's read buffer.
pub(super) type Entry = (InboxItem, bool);

/// The messages of one read, moved into the inbox at once; `room` is how many more the inbox
/// takes (set before each use).
#[derive(Default)]
pub(super) struct Batch {
    pub(super) items: VecDeque<Entry>,
    pub(super) room: usize,
}

impl Deliver for Batch {
    fn has_room(&self) -> bool {
        self.room > 0
    }

    fn deliver(&mut self, item: InboxItem, borrowed: bool) {
        self.room = self.room.saturating_sub(1);
        self.items.push_back((item, borrowed));
    }
}

/// The messages a connection delivered and its consumer has not taken yet.
///
/// It holds at most `event_capacity` messages the consumer has not taken (the connection's
/// core holds the next one, and reading pauses, until the consumer takes them). The task moves
/// each read's messages in at once (one lock, one wake-up per socket read); the
/// consumer takes everything queued at once too and hands it out from its own side, copying a
/// small message of one packet out of the read buffer as it hands it over (the only copy of
/// the payload between the stream and the consumer; made on the consumer's thread, so that
/// the allocation is usually freed there too, and reused). Every [`InboxItem::Received`] holds a
/// lease on its channel's receive budget (64 bytes counted per message on top of its length),
/// so what waits here is bounded per channel in bytes, and so in number, and so are the read
/// buffers its messages keep alive: nothing else bounds it, and nothing else needs to.
pub(super) struct InboxShared {
    queue: Mutex<Queue>,
    capacity: usize,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Entry>,
    /// The consumer, while it waits.
    waker: Option<Waker>,
    /// The connection has delivered its last item.
    ended: bool,
    /// The consumer dropped its [`Inbox`]: items are dropped as they come.
    gone: bool,
    /// The connection's task, while it waits for the consumer to take what is here.
    producer: Option<Waker>,
}

impl InboxShared {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            capacity,
        }
    }

    /// How many more messages the inbox takes now.
    pub(super) fn room(&self) -> usize {
        let q = lock(&self.queue);
        if q.gone {
            return usize::MAX;
        }
        self.capacity.saturating_sub(q.items.len())
    }

    /// Ready once the inbox has room; otherwise `cx` is woken when the consumer takes.
    pub(super) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = lock(&self.queue);
        if q.gone || q.items.len() < self.capacity {
            return Poll::Ready(());
        }
        match &q.producer {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.producer = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Moves `batch` into the inbox (leaving it empty) and wakes the consumer once.
    pub(super) fn push(&self, batch: &mut VecDeque<Entry>) {
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
    pub(super) fn end(&self, last: &mut VecDeque<Entry>) {
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
    local: VecDeque<Entry>,
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
        if let Some(entry) = self.local.pop_front() {
            return Poll::Ready(Some(hand_over(entry)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let mut q = lock(&self.shared.queue);
        if !q.items.is_empty() {
            std::mem::swap(&mut self.local, &mut q.items);
            let producer = q.producer.take();
            drop(q);
            if let Some(w) = producer {
                w.wake();
            }
            return Poll::Ready(self.local.pop_front().map(hand_over));
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

/// Copies a small borrowed message out of the read buffer it lies in, as the consumer takes
/// it: one message at a time, so that a consumer that drops each message before taking the
/// next reuses one allocation (copying a whole batch at once allocates and frees in bulk,
/// which makes the allocator give memory back to the system and fault it in again).
fn hand_over((item, borrowed): Entry) -> InboxItem {
    owned_item(item, borrowed)
}

impl PeerInbox for Inbox {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<InboxItem>> {
        self.poll_recv(cx)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let (items, producer) = {
            let mut q = lock(&self.shared.queue);
            q.gone = true;
            q.waker = None;
            (std::mem::take(&mut q.items), q.producer.take())
        };
        if let Some(w) = producer {
            w.wake();
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use bytes::Bytes;
    use mukan_reactor_api::{ChannelId, RecvLease};

    use super::*;
    use crate::channel::COPY_BELOW;

    fn item(message: Bytes) -> InboxItem {
        InboxItem::Received {
            channel: ChannelId(1),
            message,
            lease: RecvLease::detached(),
        }
    }

    fn message(item: InboxItem) -> Bytes {
        match item {
            InboxItem::Received { message, .. } => message,
            other => panic!("{other:?}"),
        }
    }

    /// The one copy of a small message of one packet is made as the consumer takes it; a
    /// message with its own allocation, or a large one, is handed over as it is.
    #[test]
    fn a_borrowed_small_message_is_copied_once_at_hand_over() {
        let read_buffer = Bytes::from(vec![5u8; 8192]);
        let small = read_buffer.slice(10..1034);
        let large = read_buffer.slice(..COPY_BELOW);
        let own = Bytes::from(vec![6u8; 1024]);
        let shared = Arc::new(InboxShared::new(64));
        let mut inbox = Inbox::new(shared.clone());
        let mut batch = Batch {
            room: shared.room(),
            ..Default::default()
        };
        batch.deliver(item(small.clone()), true);
        batch.deliver(item(large.clone()), true);
        batch.deliver(item(own.clone()), false);
        shared.push(&mut batch.items);
        let got = message(inbox.try_recv().unwrap());
        assert_eq!(got, small);
        assert_ne!(
            got.as_ptr(),
            small.as_ptr(),
            "copied out of the read buffer"
        );
        let got = message(inbox.try_recv().unwrap());
        assert_eq!(got.as_ptr(), large.as_ptr(), "a large one is not copied");
        let got = message(inbox.try_recv().unwrap());
        assert_eq!(
            got.as_ptr(),
            own.as_ptr(),
            "its own allocation is not copied again"
        );
        assert!(inbox.try_recv().is_none());
    }
}
