//! Pull delivery from a started peer: [`PeerInbox`], [`RecvBudget`] and [`RecvLease`].
//!
//! A started peer does not call into its owner. It keeps what it received in a bounded inbox
//! that the owner (the switch) drains at its own pace. Each channel has a receive budget in
//! bytes; every delivered message holds a [`RecvLease`] on its channel's budget until the
//! message is dropped, so a reactor that keeps messages longer than it should fills the budget
//! of *its* channel only. While a channel's budget is full the connection stops reading from
//! the socket (it keeps writing, pinging and answering pings), and if the budget stays full
//! longer than the connection's stall timeout the peer is stopped with
//! [`StopReason::SlowReceiver`].

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::{ChannelId, StopReason};

/// The bytes of one channel's receive budget, shared by the connection (which acquires) and
/// the holders of [`RecvLease`]s (which release when dropped).
pub struct RecvBudget {
    channel: ChannelId,
    capacity: usize,
    used: AtomicUsize,
    /// A waiter is registered in `waker` (so that releases take the lock only then).
    waiting: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl RecvBudget {
    /// What each message costs on top of its length, so that empty messages are bounded too.
    pub const PER_MESSAGE_OVERHEAD: usize = 64;

    /// A budget of `capacity` bytes for `channel`.
    pub fn new(channel: ChannelId, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            channel,
            capacity,
            used: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            waker: Mutex::new(None),
        })
    }

    /// The channel this budget belongs to.
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    /// The budget, in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held by live leases.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// What a message of `len` bytes costs.
    pub fn cost(len: usize) -> usize {
        len.saturating_add(Self::PER_MESSAGE_OVERHEAD)
    }

    /// Takes the cost of a `len`-byte message if it fits, or if nothing is held at all (so a
    /// message larger than the whole budget still passes, alone).
    pub fn try_acquire(self: &Arc<Self>, len: usize) -> Option<RecvLease> {
        let cost = Self::cost(len);
        // SeqCst: a waiter's second attempt and a release's look at `waiting` must not both
        // miss each other.
        let mut used = self.used.load(Ordering::SeqCst);
        loop {
            if used != 0 && used.saturating_add(cost) > self.capacity {
                return None;
            }
            match self.used.compare_exchange_weak(
                used,
                used.saturating_add(cost),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    return Some(RecvLease {
                        budget: Some(self.clone()),
                        bytes: cost,
                    });
                }
                Err(now) => used = now,
            }
        }
    }

    /// Whether a message of `len` bytes fits now.
    fn fits(&self, len: usize) -> bool {
        let used = self.used.load(Ordering::SeqCst);
        used == 0 || used.saturating_add(Self::cost(len)) <= self.capacity
    }

    /// Remembers `cx`'s waker, to be woken by the next release.
    fn register(&self, cx: &Context<'_>) {
        {
            let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        self.waiting.store(true, Ordering::SeqCst);
    }

    /// As [`RecvBudget::try_acquire`]; when the message does not fit, `cx` is woken once a
    /// lease is released. Only one waiter is remembered (the connection that owns the budget).
    pub fn poll_acquire(self: &Arc<Self>, cx: &mut Context<'_>, len: usize) -> Poll<RecvLease> {
        if let Some(lease) = self.try_acquire(len) {
            return Poll::Ready(lease);
        }
        self.register(cx);
        // A release between the first attempt and the registration would be missed.
        match self.try_acquire(len) {
            Some(lease) => Poll::Ready(lease),
            None => Poll::Pending,
        }
    }

    /// Ready when a message of `len` bytes fits now (a [`RecvBudget::try_acquire`] by the
    /// budget's only acquirer would succeed); otherwise `cx` is woken once a lease is
    /// released. Takes nothing.
    pub fn poll_room(&self, cx: &mut Context<'_>, len: usize) -> Poll<()> {
        if self.fits(len) {
            return Poll::Ready(());
        }
        self.register(cx);
        if self.fits(len) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
        if !self.waiting.swap(false, Ordering::SeqCst) {
            return;
        }
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl fmt::Debug for RecvBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBudget")
            .field("channel", &self.channel)
            .field("capacity", &self.capacity)
            .field("used", &self.used())
            .finish()
    }
}

/// A received message's share of its channel's [`RecvBudget`]; dropping it gives the share
/// back. Held by [`Envelope`](crate::Envelope): decode what you need and drop the envelope.
#[must_use = "dropping a lease releases it at once"]
pub struct RecvLease {
    budget: Option<Arc<RecvBudget>>,
    bytes: usize,
}

impl RecvLease {
    /// A lease on no budget (for messages made up locally, in tests and by clones).
    pub fn detached() -> Self {
        Self {
            budget: None,
            bytes: 0,
        }
    }

    /// The bytes this lease holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The channel whose budget this lease holds, if any.
    pub fn channel(&self) -> Option<ChannelId> {
        self.budget.as_ref().map(|b| b.channel)
    }
}

impl Drop for RecvLease {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.take() {
            budget.release(self.bytes);
        }
    }
}

impl fmt::Debug for RecvLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvLease")
            .field("channel", &self.channel())
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// One thing a started peer delivers.
#[derive(Debug)]
#[non_exhaustive]
pub enum InboxItem {
    /// A complete message arrived on `channel`.
    Received {
        /// The channel.
        channel: ChannelId,
        /// The reassembled message (may be empty).
        message: Bytes,
        /// Its share of the channel's receive budget.
        lease: RecvLease,
    },
    /// The connection ended for `reason` (the remote closed it, it failed, or a deadline
    /// passed). The last item.
    Stopped(StopReason),
}

/// The receiving side of a started peer ([`ManagedPeer::start`](crate::ManagedPeer::start)).
///
/// Runtime-agnostic: poll it from any executor. Messages of one channel come in the order they
/// were received. The inbox ends (`Ready(None)`) after [`InboxItem::Stopped`], or directly
/// when the peer was stopped locally ([`ManagedPeer::stop`](crate::ManagedPeer::stop)).
/// Dropping the inbox does not stop the peer.
pub trait PeerInbox: Send + 'static {
    /// The next item, `Ready(None)` once the inbox has ended.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<InboxItem>>;
}

impl dyn PeerInbox {
    /// Waits for the next item.
    ///
    /// # Cancel safety
    /// Cancel-safe: an item is never lost by dropping the future.
    pub fn recv(&mut self) -> impl Future<Output = Option<InboxItem>> + Send + '_ {
        std::future::poll_fn(move |cx| self.poll_next(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_bounds_bytes_and_releases_on_drop() {
        let b = RecvBudget::new(ChannelId(1), 1_000);
        let first = b.try_acquire(500).expect("fits");
        assert_eq!(b.used(), 564);
        // 564 + 464 > 1000
        assert!(b.try_acquire(400).is_none());
        let second = b.try_acquire(300).expect("fits");
        assert_eq!(b.used(), 928);
        drop(first);
        assert_eq!(b.used(), 364);
        drop(second);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn oversized_message_passes_alone() {
        let b = RecvBudget::new(ChannelId(1), 100);
        let big = b
            .try_acquire(10_000)
            .expect("empty budget admits one message");
        assert!(b.try_acquire(0).is_none());
        drop(big);
        assert!(b.try_acquire(0).is_some());
    }

    #[test]
    fn release_wakes_the_waiter() {
        use std::sync::atomic::AtomicBool;
        use std::task::Wake;
        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let b = RecvBudget::new(ChannelId(1), 200);
        let held = b.try_acquire(100).expect("fits");
        assert!(b.poll_acquire(&mut cx, 100).is_pending());
        assert!(!flag.0.load(Ordering::SeqCst));
        drop(held);
        assert!(flag.0.load(Ordering::SeqCst));
        assert!(b.poll_acquire(&mut cx, 100).is_ready());
    }

    #[test]
    fn poll_room_waits_for_a_release_and_takes_nothing() {
        use std::task::Wake;
        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let b = RecvBudget::new(ChannelId(1), 200);
        assert!(b.poll_room(&mut cx, 100).is_ready(), "empty budget");
        assert_eq!(b.used(), 0, "nothing taken");
        let held = b.try_acquire(100).expect("fits");
        assert!(b.poll_room(&mut cx, 100).is_pending());
        let other = RecvLease::detached();
        drop(other);
        assert!(!flag.0.load(Ordering::SeqCst));
        drop(held);
        assert!(flag.0.load(Ordering::SeqCst), "the release woke the waiter");
        assert!(b.poll_room(&mut cx, 100).is_ready());
    }

    #[test]
    fn detached_lease_holds_nothing() {
        let l = RecvLease::detached();
        assert_eq!(l.bytes(), 0);
        assert_eq!(l.channel(), None);
    }
}
