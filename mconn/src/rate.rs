//! Byte-rate limiting and measuring on a virtual clock (the role of Go `libs/flowrate`).
//!
//! Go's limiter lets a whole batch of up to 10 packets through whenever the current 100 ms
//! sample is under `rate / 10`, which overshoots badly at low rates. This is a token bucket
//! instead: tokens accrue continuously at `rate` bytes/s up to a burst of `rate / 10` (at
//! least one packet), a packet may be sent whenever the balance is not negative, and its size
//! is then deducted (the balance may go negative, so a packet is never split). Over any long
//! window the bytes sent are `rate · t` plus at most one burst and one packet.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

const NANOS: i128 = 1_000_000_000;

/// A token bucket. `None` rate = unlimited.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    rate: Option<NonZeroU64>,
    /// Balance in byte-nanoseconds-per-second units (bytes × 10⁹), so refills are exact.
    balance: i128,
    burst: i128,
    last: Instant,
}

impl RateLimiter {
    pub(crate) fn new(rate: Option<NonZeroU64>, min_burst: usize, now: Instant) -> Self {
        let burst = rate.map_or(0, |r| (r.get() / 10).max(min_burst as u64));
        let burst = i128::from(burst) * NANOS;
        // Start empty-ish: one burst available, as a fresh Go sample allows.
        Self {
            rate,
            balance: burst,
            burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let Some(rate) = self.rate else { return };
        let elapsed = now.saturating_duration_since(self.last).as_nanos() as i128;
        self.last = self.last.max(now);
        self.balance = (self.balance + elapsed * i128::from(rate.get())).min(self.burst);
    }

    /// Whether a packet may go now.
    pub(crate) fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.rate.is_none() || self.balance >= 0
    }

    /// Records `n` bytes sent or received.
    pub(crate) fn consume(&mut self, n: usize, now: Instant) {
        if self.rate.is_none() {
            return;
        }
        self.refill(now);
        self.balance -= n as i128 * NANOS;
    }

    /// Adds what accrued since the last look, capped at the burst unless `owed` (for a
    /// bucket whose tokens were owed all along: a shared bucket with members waiting; cap it
    /// with [`Self::cap`] once they are paid).
    pub(crate) fn refill_owed(&mut self, now: Instant, owed: bool) {
        if owed {
            let Some(rate) = self.rate else { return };
            let elapsed = now.saturating_duration_since(self.last).as_nanos() as i128;
            self.last = self.last.max(now);
            self.balance += elapsed * i128::from(rate.get());
        } else {
            self.refill(now);
        }
    }

    /// Whether a packet may go, as of the last refill.
    pub(crate) fn has_tokens(&self) -> bool {
        self.rate.is_none() || self.balance >= 0
    }

    /// Charges `n` bytes as of the last refill.
    pub(crate) fn charge(&mut self, n: u64) {
        if self.rate.is_some() {
            self.balance -= i128::from(n) * NANOS;
        }
    }

    /// Whether the balance is above the burst (tokens owed, see [`Self::refill_owed`]).
    pub(crate) fn over_burst(&self) -> bool {
        self.rate.is_some() && self.balance > self.burst
    }

    /// Caps the balance at the burst.
    pub(crate) fn cap(&mut self) {
        self.balance = self.balance.min(self.burst);
    }

    /// Gives back (`delta > 0`, up to the burst) or charges (`delta < 0`) bytes.
    pub(crate) fn adjust(&mut self, delta: i64, now: Instant) {
        if self.rate.is_none() {
            return;
        }
        self.refill(now);
        self.balance = (self.balance + i128::from(delta) * NANOS).min(self.burst);
    }

    /// The last time the bucket was looked at.
    pub(crate) fn last(&self) -> Instant {
        self.last
    }

    /// When [`Self::ready`] becomes true ([`Self::last`] if it already is).
    pub(crate) fn next_ready(&self) -> Instant {
        self.ready_at().unwrap_or(self.last)
    }

    /// How long the bucket takes to earn `n` bytes (zero if unlimited).
    pub(crate) fn time_for(&self, n: u64) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let nanos = i128::from(n) * NANOS / i128::from(rate.get());
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// When [`Self::ready`] becomes true, if it is not now.
    pub(crate) fn ready_at(&self) -> Option<Instant> {
        let rate = self.rate?;
        if self.balance >= 0 {
            return None;
        }
        let rate = i128::from(rate.get());
        let nanos = (-self.balance + rate - 1) / rate;
        Some(self.last + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }
}

/// Counts bytes and keeps a 1 s exponential moving average of the rate, sampled every 100 ms
/// (Go `flowrate.Monitor` status).
#[derive(Debug, Clone)]
pub(crate) struct FlowMeter {
    start: Instant,
    total: u64,
    sample_bytes: u64,
    sample_start: Instant,
    ema: f64,
    has_sample: bool,
}

const SAMPLE: Duration = Duration::from_millis(100);

impl FlowMeter {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            start: now,
            total: 0,
            sample_bytes: 0,
            sample_start: now,
            ema: 0.0,
            has_sample: false,
        }
    }

    pub(crate) fn record(&mut self, n: usize, now: Instant) {
        self.tick(now);
        self.total += n as u64;
        self.sample_bytes += n as u64;
    }

    fn tick(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.sample_start);
        if elapsed < SAMPLE {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let rate = self.sample_bytes as f64 / secs;
        self.ema = if self.has_sample {
            rate + (-secs).exp() * (self.ema - rate)
        } else {
            rate
        };
        self.has_sample = true;
        self.sample_bytes = 0;
        self.sample_start = now;
    }

    pub(crate) fn status(&mut self, now: Instant) -> mukan_reactor_api::FlowStatus {
        self.tick(now);
        let secs = now.saturating_duration_since(self.start).as_secs_f64();
        let avg = if secs > 0.0 {
            self.total as f64 / secs
        } else {
            0.0
        };
        mukan_reactor_api::FlowStatus::new(self.total, self.ema as u64, avg as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_is_always_ready() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(None, 1034, t0);
        l.consume(1 << 30, t0);
        assert!(l.ready(t0));
        assert_eq!(l.ready_at(), None);
    }

    #[test]
    fn debt_is_repaid_at_the_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(NonZeroU64::new(1000), 100, t0);
        assert!(l.ready(t0));
        l.consume(100, t0); // burst 100 used
        assert!(l.ready(t0));
        l.consume(500, t0); // 500 in debt
        assert!(!l.ready(t0));
        assert_eq!(l.ready_at(), Some(t0 + Duration::from_millis(500)));
        assert!(!l.ready(t0 + Duration::from_millis(499)));
        assert!(l.ready(t0 + Duration::from_millis(500)));
    }
}
