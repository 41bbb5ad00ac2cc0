//! A bandwidth budget shared by many connections (a node-wide total per direction).
//!
//! [`SharedBucket`] is the sans-IO core: one token bucket ([`RateLimiter`], the design of each
//! connection's own limit) that the members draw from in *deficit round robin*. A member with
//! no credit asks ([`SharedBucket::ready`]) and joins the rotation at the back. Whenever the
//! bucket is not in debt, the member at the front of the rotation gets a quantum of credit
//! (the bucket is charged for it) and goes to the back, staying in the rotation while it
//! keeps spending. A member spends its credit transfer by transfer
//! ([`SharedBucket::consume`]) and may overdraw it by one packet (or one read); its debt is
//! repaid from its next quanta before it may go again. Grants are made only while some member
//! waits (without contention nobody needs more than it has). A member keeps its place in the
//! rotation, and is topped up at each turn, for as long as it holds less than
//! [`HELD_QUANTA`] − 1 quanta: so a member whose task runs late (woken, but waiting for a
//! worker thread for several rounds) does not lose its share, and spends what it holds when it
//! runs. One that holds more has spent nothing for several rounds: it is not backlogged, leaves
//! the rotation keeping that credit, and asks again once it has spent it. So every member that
//! keeps transferring gets the same number of bytes per round whatever its packet or read
//! sizes, and the members together get exactly the bucket's rate (what idle members hold is
//! bounded, and given back when they leave); a member that asks for nothing gets nothing and
//! takes nothing from the others.
//!
//! Grants go in rounds: a round serves the members in the rotation when it starts, once each,
//! with one quantum for all of them. The quantum follows the number of members in the round,
//! so that a round takes about [`ROUND`] (5 ms): with one member a grant is large (fewer
//! wake-ups), with many it is small (a member's turn comes back soon, which bounds what a lone
//! urgent message waits), never below [`MIN_QUANTUM`] or above [`MAX_QUANTUM`].
//!
//! [`Budget`] wraps the core for connections on different tasks: a lock held only inside its
//! synchronous methods (never across an `.await`) and one [`Waker`] per member, woken when the
//! member is granted credit. [`BudgetHandle`] is one connection's membership; dropping it
//! leaves (unused credit goes back to the bucket, debt is charged to it).

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::rate::RateLimiter;

/// How long a round of grants over every waiting member should take.
pub const ROUND: Duration = Duration::from_millis(5);
/// The smallest grant, bytes: one full packet of the default 1024-byte payload (1,036 bytes
/// with its length prefix) and a little more, so that a member sending full packets goes once
/// every round.
pub const MIN_QUANTUM: u64 = 1088;
/// The largest grant, bytes (one write batch).
pub const MAX_QUANTUM: u64 = 64 * 1024;

/// A member stays in the rotation while it holds less than this many quanta: one whose task
/// runs late keeps its place and its share, and what an idle member may hold is bounded (to
/// about 16 rounds of its share). On a busy machine a woken task may wait for a worker thread
/// for several rounds: with 4 quanta, 50 connections on two loaded cores got 0.89–1.22 of
/// their share in `mukan-load l9`; with 16, 0.998–1.001.
pub const HELD_QUANTA: u64 = 16;

/// A member of a [`SharedBucket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberId(u32);

#[derive(Debug, Default)]
struct Member {
    live: bool,
    /// Bytes granted and not yet spent; negative: overdrawn.
    credit: i64,
    /// In the rotation.
    queued: bool,
    /// Asked and was told to wait (no credit yet).
    waiting: bool,
}

/// What a budget has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetStats {
    /// The budget, bytes per second.
    pub rate: u64,
    /// Bytes the members spent.
    pub used: u64,
    /// Time during which at least one member waited for credit (the budget held it back).
    pub throttled: Duration,
    /// Members (connections) drawing from it.
    pub members: usize,
    /// Members waiting for credit now.
    pub waiting: usize,
}

/// The sans-IO shared token bucket: the token bucket of the per-connection limits, handed out
/// in deficit round robin. No clock, no lock, no task: every call takes `now`.
///
/// A member with no credit asks ([`SharedBucket::ready`]) and joins the rotation. While some
/// member waits, the bucket pays the member at the front a quantum and puts it at the back.
/// Grants go in rounds, one quantum per member in the round, sized so that a round takes
/// about [`ROUND`] (never below [`MIN_QUANTUM`] or above [`MAX_QUANTUM`]). A member spends its
/// credit transfer by transfer ([`SharedBucket::consume`]), may overdraw it by one transfer
/// and repays the debt from its next quanta; it keeps its place while it holds less than
/// [`HELD_QUANTA`] − 1 quanta (a task scheduled late keeps its share), and leaves the
/// rotation with what it holds otherwise. Tokens earned while members wait are not capped at
/// the burst. So the members that keep transferring get equal bytes, together exactly the
/// rate.
#[derive(Debug)]
pub struct SharedBucket {
    bucket: RateLimiter,
    rate: NonZeroU64,
    members: Vec<Member>,
    free: Vec<u32>,
    /// The rotation, in turn order.
    queue: VecDeque<u32>,
    /// Members granted credit since the last [`SharedBucket::take_granted`].
    granted: Vec<u32>,
    /// Turns left in the current round (the first `round_left` of `queue`).
    round_left: usize,
    /// The quantum of the current round.
    round_quantum: u64,
    live: usize,
    waiting: usize,
    used: u64,
    throttled: Duration,
    throttled_since: Option<Instant>,
}

impl SharedBucket {
    /// A bucket of `rate` bytes per second, full (one burst, `rate / 10`, available) at `now`.
    pub fn new(rate: NonZeroU64, now: Instant) -> Self {
        Self {
            bucket: RateLimiter::new(Some(rate), MIN_QUANTUM as usize, now),
            rate,
            members: Vec::new(),
            free: Vec::new(),
            queue: VecDeque::new(),
            granted: Vec::new(),
            round_left: 0,
            round_quantum: MIN_QUANTUM,
            live: 0,
            waiting: 0,
            used: 0,
            throttled: Duration::ZERO,
            throttled_since: None,
        }
    }

    /// The rate, bytes per second.
    pub fn rate(&self) -> NonZeroU64 {
        self.rate
    }

    /// A new member, with no credit.
    pub fn join(&mut self) -> MemberId {
        self.live += 1;
        let member = Member {
            live: true,
            ..Member::default()
        };
        if let Some(i) = self.free.pop() {
            if let Some(m) = self.members.get_mut(i as usize) {
                *m = member;
                return MemberId(i);
            }
        }
        self.members.push(member);
        MemberId(u32::try_from(self.members.len() - 1).unwrap_or(u32::MAX))
    }

    /// `id` leaves: its unused credit goes back to the bucket, its debt is charged to it, and
    /// its place in the rotation is given up.
    pub fn leave(&mut self, id: MemberId, now: Instant) {
        self.catch_up(now);
        let Some(m) = self.members.get_mut(id.0 as usize).filter(|m| m.live) else {
            return;
        };
        let old = std::mem::take(m);
        self.free.push(id.0);
        self.live -= 1;
        if old.waiting {
            self.waiting -= 1;
        }
        if old.queued {
            if let Some(pos) = self.queue.iter().position(|&q| q == id.0) {
                self.queue.remove(pos);
                if pos < self.round_left {
                    self.round_left -= 1;
                }
            }
        }
        self.granted.retain(|&g| g != id.0);
        self.bucket.adjust(old.credit, now);
        self.distribute(now);
    }

    /// Whether `id` may transfer now (it has credit). If not, it takes its place in the
    /// rotation (once) and is told through [`SharedBucket::take_granted`] when credit comes;
    /// meanwhile [`SharedBucket::ready_at`] says when to look again at the latest.
    pub fn ready(&mut self, id: MemberId, now: Instant) -> bool {
        self.distribute(now);
        let Some(m) = self.members.get_mut(id.0 as usize).filter(|m| m.live) else {
            return true;
        };
        if m.credit > 0 {
            return true;
        }
        if !m.queued {
            m.queued = true;
            self.queue.push_back(id.0);
        }
        if !m.waiting {
            m.waiting = true;
            self.waiting += 1;
        }
        self.distribute(now);
        self.members
            .get(id.0 as usize)
            .is_some_and(|m| m.credit > 0)
    }

    /// `id` transferred `n` bytes (possibly more than its credit: the debt is repaid from its
    /// next grants).
    pub fn consume(&mut self, id: MemberId, n: usize, now: Instant) {
        let n = n as u64;
        self.used += n;
        if let Some(m) = self.members.get_mut(id.0 as usize).filter(|m| m.live) {
            m.credit = m
                .credit
                .saturating_sub(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.distribute(now);
    }

    /// The credit `id` has left, if positive: what it may transfer before asking again.
    pub fn credit(&self, id: MemberId) -> Option<u64> {
        let m = self.members.get(id.0 as usize).filter(|m| m.live)?;
        u64::try_from(m.credit).ok().filter(|&c| c > 0)
    }

    /// When `id`, waiting, should look again at the latest: when the bucket will have paid
    /// for the grants of the members ahead of it. `None` if it is not waiting.
    pub fn ready_at(&self, id: MemberId) -> Option<Instant> {
        if !self.members.get(id.0 as usize).is_some_and(|m| m.waiting) {
            return None;
        }
        let pos = self.queue.iter().position(|&q| q == id.0)?;
        let base = self.bucket.next_ready();
        // The grants of the members ahead, and the member's own debt (as if it got every
        // grant from then on: an early estimate, and waking early costs only a look).
        let debt = self
            .members
            .get(id.0 as usize)
            .map_or(0, |m| m.credit.unsigned_abs());
        let ahead = self.round_quantum.saturating_mul(pos as u64) + debt;
        Some(base + self.bucket.time_for(ahead))
    }

    /// The next member granted credit since the last call (so that its task is woken).
    pub fn take_granted(&mut self) -> Option<MemberId> {
        self.granted.pop().map(MemberId)
    }

    /// What the budget has done so far.
    pub fn stats(&self, now: Instant) -> BudgetStats {
        let running = self
            .throttled_since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        BudgetStats {
            rate: self.rate.get(),
            used: self.used,
            throttled: self.throttled + running,
            members: self.live,
            waiting: self.waiting,
        }
    }

    /// The grant size for a round of `members`: the round takes about [`ROUND`].
    fn quantum(&self, members: usize) -> u64 {
        let members = (members as u64).max(1);
        let per_round =
            u64::try_from(u128::from(self.rate.get()) * ROUND.as_nanos() / 1_000_000_000)
                .unwrap_or(u64::MAX);
        (per_round / members).clamp(MIN_QUANTUM, MAX_QUANTUM)
    }

    /// Brings the bucket up to `now`. While members wait, everything it earned is theirs:
    /// not capped at the burst, however long nobody looked.
    fn catch_up(&mut self, now: Instant) {
        self.bucket.refill_owed(now, self.waiting > 0);
    }

    /// What the bucket earned beyond a burst while members waited and nobody looked (a
    /// process whose tasks all ran late) is owed to the members in the rotation: it goes to
    /// them in rounds of one quantum each, each up to what it may hold, and only the rest is
    /// capped. Their turns in the rotation do not move.
    fn top_up(&mut self) {
        let q = self.quantum(self.queue.len());
        let keep = i64::try_from(q.saturating_mul(HELD_QUANTA - 1)).unwrap_or(i64::MAX);
        let step = i64::try_from(q).unwrap_or(i64::MAX);
        let mut progress = true;
        while progress && self.bucket.over_burst() {
            progress = false;
            for &i in &self.queue {
                if !self.bucket.over_burst() {
                    break;
                }
                let Some(m) = self.members.get_mut(i as usize) else {
                    continue;
                };
                if m.credit >= keep {
                    continue;
                }
                self.bucket.charge(q);
                m.credit = m.credit.saturating_add(step);
                progress = true;
                if m.credit > 0 && m.waiting {
                    m.waiting = false;
                    self.waiting -= 1;
                    if !self.granted.contains(&i) {
                        self.granted.push(i);
                    }
                }
            }
        }
    }

    /// Hands out what the bucket allows, one quantum per turn, and puts the member at the
    /// back; a member that holds [`HELD_QUANTA`] − 1 quanta or more when its turn comes leaves
    /// the rotation instead.
    fn distribute(&mut self, now: Instant) {
        self.catch_up(now);
        self.top_up();
        // Grants go only while someone waits: without contention nobody needs more credit
        // than it has.
        while let Some(&front) = self.queue.front() {
            if self.waiting == 0 || !self.bucket.has_tokens() {
                break;
            }
            if self.round_left == 0 {
                self.round_left = self.queue.len();
                self.round_quantum = self.quantum(self.round_left);
            }
            self.round_left -= 1;
            self.queue.pop_front();
            let Some(m) = self.members.get_mut(front as usize) else {
                continue;
            };
            let q = self.round_quantum;
            let keep = i64::try_from(q.saturating_mul(HELD_QUANTA - 1)).unwrap_or(i64::MAX);
            if m.credit >= keep {
                m.queued = false;
                continue;
            }
            self.bucket.charge(q);
            m.credit = m
                .credit
                .saturating_add(i64::try_from(q).unwrap_or(i64::MAX));
            self.queue.push_back(front);
            if m.credit > 0 && m.waiting {
                m.waiting = false;
                self.waiting -= 1;
                if !self.granted.contains(&front) {
                    self.granted.push(front);
                }
            }
        }
        self.bucket.cap();
        match (self.waiting > 0, self.throttled_since) {
            (true, None) => self.throttled_since = Some(now),
            (false, Some(since)) => {
                self.throttled += now.saturating_duration_since(since);
                self.throttled_since = None;
            }
            _ => {}
        }
    }
}

/// A budget shared by the connections of a node: [`SharedBucket`] behind a lock, with the
/// wakers of its members. Cheap to clone (one budget, many owners); two `Budget`s are equal
/// when they are the same budget.
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    core: SharedBucket,
    /// One per member slot.
    wakers: Vec<Option<Waker>>,
}

impl Budget {
    /// A budget of `rate` bytes per second, starting at `now`.
    pub fn new(rate: NonZeroU64, now: Instant) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                core: SharedBucket::new(rate, now),
                wakers: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The rate, bytes per second.
    pub fn rate(&self) -> NonZeroU64 {
        self.lock().core.rate()
    }

    /// A new member (one connection). Until [`BudgetHandle::set_waker`] it is not woken when
    /// credit comes; it finds out at its next [`BudgetHandle::ready_at`].
    pub fn join(&self) -> BudgetHandle {
        let id = self.lock().core.join();
        BudgetHandle {
            budget: self.clone(),
            id,
        }
    }

    /// What the budget has done so far.
    pub fn stats(&self, now: Instant) -> BudgetStats {
        self.lock().core.stats(now)
    }

    /// Runs `f` on the core, then wakes the members it granted credit to (outside the lock),
    /// except `me`, the caller.
    fn with<R>(&self, me: MemberId, f: impl FnOnce(&mut SharedBucket) -> R) -> R {
        let mut wake: Vec<Waker> = Vec::new();
        let r = {
            let mut inner = self.lock();
            let r = f(&mut inner.core);
            while let Some(g) = inner.core.take_granted() {
                if g == me {
                    continue;
                }
                if let Some(Some(w)) = inner.wakers.get(g.0 as usize) {
                    wake.push(w.clone());
                }
            }
            r
        };
        wake.into_iter().for_each(Waker::wake);
        r
    }
}

impl PartialEq for Budget {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Budget {}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("rate", &self.rate())
            .finish_non_exhaustive()
    }
}

/// One connection's membership of a [`Budget`]; dropping it leaves the budget.
pub struct BudgetHandle {
    budget: Budget,
    id: MemberId,
}

impl BudgetHandle {
    /// The task to wake when this member is granted credit.
    pub fn set_waker(&self, waker: Waker) {
        let mut inner = self.budget.lock();
        let i = self.id.0 as usize;
        if inner.wakers.len() <= i {
            inner.wakers.resize(i + 1, None);
        }
        if let Some(slot) = inner.wakers.get_mut(i) {
            *slot = Some(waker);
        }
    }

    /// As [`SharedBucket::ready`].
    pub fn ready(&self, now: Instant) -> bool {
        self.budget.with(self.id, |c| c.ready(self.id, now))
    }

    /// As [`SharedBucket::consume`].
    pub fn consume(&self, n: usize, now: Instant) {
        self.budget.with(self.id, |c| c.consume(self.id, n, now));
    }

    /// As [`SharedBucket::credit`].
    pub fn credit(&self) -> Option<u64> {
        self.budget.lock().core.credit(self.id)
    }

    /// As [`SharedBucket::ready_at`].
    pub fn ready_at(&self) -> Option<Instant> {
        self.budget.lock().core.ready_at(self.id)
    }

    /// The budget this handle draws from.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }
}

impl Drop for BudgetHandle {
    fn drop(&mut self) {
        let id = self.id;
        let mut inner = self.budget.lock();
        let now = inner.core.bucket.last();
        if let Some(Some(_)) = inner.wakers.get(id.0 as usize) {
            if let Some(slot) = inner.wakers.get_mut(id.0 as usize) {
                *slot = None;
            }
        }
        inner.core.leave(id, now);
        let mut wake = Vec::new();
        while let Some(g) = inner.core.take_granted() {
            if let Some(Some(w)) = inner.wakers.get(g.0 as usize) {
                wake.push(w.clone());
            }
        }
        drop(inner);
        wake.into_iter().for_each(Waker::wake);
    }
}

impl fmt::Debug for BudgetHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetHandle")
            .field("member", &self.id)
            .finish_non_exhaustive()
    }
}
