//! The task of one connection: feeds the [`MConnState`] with what the [`Wire`] receives and
//! with the handle's send queues, writes what it produces, and sleeps until the next deadline.
//! Every decision (what to send, when to flush, which deadline fails the connection, which
//! message may be delivered) is the core's.

use std::future::{Future as _, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::tokio::sync::watch;
use ::tokio::time::{Instant, Sleep, sleep_until};
use mukan_reactor_api::InboxItem;

use super::inbox::{Batch, InboxShared};
use super::queues::{Shared, SharedQueues, StopMode, lock};
use super::wire::Wire;
use crate::{Error, MConnState};

/// How often the task refreshes the status snapshot.
const STATUS_REFRESH: Duration = Duration::from_millis(100);
/// Rounds of work in one poll before the task yields to the others on its thread.
const TURNS_PER_POLL: usize = 32;
/// A deadline far enough away to mean "none".
const NO_DEADLINE: Duration = Duration::from_secs(3600);
/// After this long with nothing read or written, the buffers of the last burst are let go.
pub(super) const QUIET: Duration = Duration::from_millis(250);

pub(super) struct Driver<W> {
    pub(super) state: MConnState,
    pub(super) wire: W,
    pub(super) shared: Arc<Shared>,
    pub(super) inbox: Arc<InboxShared>,
    /// The messages of one read, moved into the inbox at once (always empty between polls).
    pub(super) batch: Batch,
    /// The core asked for a flush that is not done yet.
    pub(super) flushing: bool,
    pub(super) status_at: Instant,
    /// When something was last read or written.
    pub(super) active_at: Instant,
    /// When to look next whether the connection has gone quiet (moved only once passed, so
    /// that busy traffic does not move the timer at every wait).
    pub(super) quiet_check: Instant,
    /// The buffers were let go since the last activity.
    pub(super) shrunk: bool,
}

impl<W: Wire> Driver<W> {
    /// Runs the connection. When it ends: closes the send queues and the stream, drops
    /// `on_close` (what the owner keeps alive for the connection's life, e.g. its slot in a
    /// connection table), marks the connection done, then delivers the held message (if its
    /// budget has room) and the reason it ended ([`InboxItem::Stopped`], unless stopped
    /// locally) and ends the inbox.
    pub(super) async fn run<G>(mut self, done: watch::Sender<bool>, on_close: G) {
        let mut sleep = pin!(sleep_until(Instant::now() + NO_DEADLINE));
        // What the stream received before the connection started (bytes read with the
        // handshake or the NodeInfo exchange, left in the stream's buffer) is taken first:
        // nothing else would wake the task for it.
        let leftover = self.wire.received().len();
        let first = if leftover > 0 {
            self.deliver(leftover, Instant::now().into_std())
        } else {
            Ok(())
        };
        let result = match first {
            Ok(()) => poll_fn(|cx| self.poll(cx, sleep.as_mut())).await,
            Err(e) => Err(e),
        };
        self.refresh_status(Instant::now());
        let Self {
            mut state,
            wire,
            shared,
            inbox,
            mut batch,
            ..
        } = self;
        shared.close_queues(true);
        drop(wire);
        drop(on_close);
        let _ = done.send(true);
        batch
            .items
            .extend(state.take_held().map(|item| (item, false)));
        if let Err(e) = result {
            batch
                .items
                .push_back((InboxItem::Stopped(e.into_stop_reason()), false));
        }
        inbox.end(&mut batch.items);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        mut sleep: Pin<&mut Sleep>,
    ) -> Poll<Result<(), Error>> {
        for _ in 0..TURNS_PER_POLL {
            let now = Instant::now();
            let std_now = now.into_std();
            match self.shared.stop_mode() {
                StopMode::Stop => return Poll::Ready(Ok(())),
                StopMode::FlushStop if !self.state.is_closing() => {
                    self.state.close(std_now);
                    self.shared.close_queues(false);
                }
                _ => {}
            }
            self.state.handle_timeout(std_now)?;
            let mut progress = false;

            // Receive (nothing is read during a graceful stop).
            if !self.state.is_closing() {
                if let Some((budget, len)) = self.state.held() {
                    // Registers for the release of a lease, or for the consumer taking from
                    // the inbox, when there is no room yet.
                    if budget.poll_room(cx, len).is_ready() && self.inbox.poll_room(cx).is_ready() {
                        self.deliver(0, std_now)?;
                        progress = true;
                    }
                }
                // Asks the rate limits first (a node-wide budget may grant credit then), then
                // reads no more than this connection's credit.
                let ready = self.state.read_ready(std_now);
                let cap = self.state.read_allowance();
                if ready && cap != Some(0) {
                    match self.wire.poll_receive(cx, cap) {
                        Poll::Ready(Ok(Some(n))) => {
                            self.deliver(n, std_now)?;
                            progress = true;
                            self.active(now);
                        }
                        Poll::Ready(Ok(None)) => {
                            let unread = self.wire.received().len();
                            return Poll::Ready(Err(self.state.handle_eof(unread)));
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                        Poll::Pending => {}
                    }
                }
            }

            // Send: packets into the wire's buffer, then one write and flush of the batch.
            if !self.flushing {
                let mut queues = SharedQueues::new(&self.shared);
                self.flushing =
                    self.state
                        .poll_transmit_from(std_now, self.wire.send_buf(), &mut queues);
            }
            if self.flushing {
                match self.wire.poll_send(cx) {
                    Poll::Ready(Ok(())) => {
                        self.flushing = false;
                        progress = true;
                        self.active(now);
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => {}
                }
            }
            if self.state.is_closing()
                && !self.flushing
                && self
                    .state
                    .is_send_idle_from(&mut SharedQueues::new(&self.shared))
            {
                // Everything is out: close (the flush deadline still runs).
                if let Poll::Ready(r) = self.wire.poll_close(cx) {
                    return Poll::Ready(r.map_err(Error::from));
                }
            }
            if now >= self.status_at {
                self.refresh_status(now);
            }
            if progress {
                continue;
            }

            // Nothing more to do now: wait for a send or stop request, the stream (registered
            // by the polls above), a lease (registered above) or the next deadline.
            if !self.shrunk && !self.flushing && now >= self.quiet_check {
                if now >= self.active_at + QUIET {
                    self.wire.shrink_idle();
                    self.shrunk = true;
                } else {
                    self.quiet_check = self.active_at + QUIET;
                }
            }
            if self.shared.poll_woken(cx).is_ready() {
                continue;
            }
            let deadline = if self.flushing {
                self.state.poll_timeout_while_writing()
            } else {
                self.state.poll_timeout()
            };
            let mut deadline = deadline.map_or(now + NO_DEADLINE, Instant::from_std);
            if !self.shrunk && !self.flushing {
                deadline = deadline.min(self.quiet_check);
            }
            let deadline = deadline.max(now);
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_ready() {
                continue;
            }
            return Poll::Pending;
        }
        // A busy connection yields after a while, so that others on its thread get a turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Lets the core take the packets of `added` new bytes (or retry a held message) and moves
    /// the messages it delivers into the inbox at once.
    fn deliver(&mut self, added: usize, now: std::time::Instant) -> Result<(), Error> {
        self.batch.room = self.inbox.room();
        let result = self
            .state
            .handle_received(self.wire.received(), added, now, &mut self.batch);
        // Messages before a decoding error are still delivered, before the error.
        if !self.batch.items.is_empty() {
            self.inbox.push(&mut self.batch.items);
        }
        result
    }

    /// Something was read or written at `now`.
    fn active(&mut self, now: Instant) {
        self.active_at = now;
        if self.shrunk {
            self.shrunk = false;
            self.quiet_check = now + QUIET;
        }
    }

    fn refresh_status(&mut self, now: Instant) {
        let status = self.state.status(now.into_std());
        *lock(&self.shared.status) = status;
        self.status_at = now + STATUS_REFRESH;
    }
}
