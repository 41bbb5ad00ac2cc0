//! The persistent-peer redial schedule (Go `Switch.reconnectToPeer`), as a pure function of
//! the attempt number and a random source.
//!
//! Go v0.38.25 dials at once, then, after each failure, sleeps `5 s + jitter` and dials again,
//! 20 dials in all; then it sleeps `3^i s + jitter` before dial `i` of 10 more (i = 1..=10);
//! then it gives up. `jitter` is `rng.Int63n(3000)` milliseconds, i.e. 0..=2999 ms. Because
//! the first loop also sleeps after its 20th failure, the 21st dial comes after two sleeps
//! (`5 s + jitter + 3 s + jitter`). (The spec's remark that the first backoff is `3^0` does not
//! match the code, whose exponents start at 1.)

use std::time::Duration;

use rand::Rng;

/// Dials made at a fixed interval before the backoff starts (Go `reconnectAttempts`).
pub const RECONNECT_ATTEMPTS: u32 = 20;
/// The fixed interval (Go `reconnectInterval`).
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(5);
/// Dials made with an exponential backoff (Go `reconnectBackOffAttempts`).
pub const BACKOFF_ATTEMPTS: u32 = 10;
/// The base of the backoff, in seconds (Go `reconnectBackOffBaseSeconds`).
pub const BACKOFF_BASE_SECONDS: u64 = 3;
/// Random delay added to each sleep: 0 to this many milliseconds, exclusive (Go
/// `dialRandomizerIntervalMilliseconds`).
pub const DIAL_RANDOMIZER_MS: u64 = 3_000;

/// How long a redialed connection to a persistent peer must last to count as a success (ours:
/// Go has no such rule). One that ends sooner counts as a failed attempt, so the next redial
/// goes on with the schedule instead of starting over at once; a peer that completes the
/// handshake and drops every connection is then redialed no faster than a peer that refuses
/// them. One that lasted starts the schedule over (the first redial at once).
pub const STABLE_CONNECTION: Duration = RECONNECT_INTERVAL;

/// How a persistent peer is redialed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedialPolicy {
    /// Upper bound on the wait before any one dial (`persistent_peers_max_dial_period`);
    /// `None` for Go's schedule uncapped.
    pub max_dial_period: Option<Duration>,
    /// Keep dialing after Go's 30 attempts, at the last interval (3^10 s + jitter, or the cap).
    pub forever: bool,
}

/// The random part of one sleep: 0..=2999 ms, as Go's `rng.Int63n(3000)`.
pub fn jitter(rng: &mut impl Rng) -> Duration {
    Duration::from_millis(rng.gen_range(0..DIAL_RANDOMIZER_MS))
}

/// The wait before redial `attempt` (0-based, counted from the start of a reconnection), or
/// `None` once the schedule gives up.
///
/// Attempt 0 is immediate; 1..=19 wait 5 s + jitter; 20 waits 5 s + jitter + 3 s + jitter;
/// 21..=29 wait 3^(attempt − 19) s + jitter; from 30 on, `None` unless `policy.forever`, which
/// keeps waiting 3^10 s + jitter. Every wait is capped by `policy.max_dial_period`.
pub fn redial_delay(attempt: u32, policy: &RedialPolicy, rng: &mut impl Rng) -> Option<Duration> {
    let planned = if attempt == 0 {
        Duration::ZERO
    } else if attempt < RECONNECT_ATTEMPTS {
        RECONNECT_INTERVAL + jitter(rng)
    } else if attempt == RECONNECT_ATTEMPTS {
        // Go sleeps after the 20th failure too, then again before its first backoff dial.
        RECONNECT_INTERVAL + jitter(rng) + backoff(1) + jitter(rng)
    } else if attempt < RECONNECT_ATTEMPTS + BACKOFF_ATTEMPTS {
        backoff(attempt - RECONNECT_ATTEMPTS + 1) + jitter(rng)
    } else if policy.forever {
        backoff(BACKOFF_ATTEMPTS) + jitter(rng)
    } else {
        return None;
    };
    Some(match policy.max_dial_period {
        Some(cap) if !cap.is_zero() => planned.min(cap),
        _ => planned,
    })
}

/// The bounds `[min, max]` of [`redial_delay`] for `attempt` (uncapped), for tests and docs.
pub fn redial_bounds(attempt: u32) -> Option<(Duration, Duration)> {
    let max_jitter = Duration::from_millis(DIAL_RANDOMIZER_MS - 1);
    if attempt == 0 {
        Some((Duration::ZERO, Duration::ZERO))
    } else if attempt < RECONNECT_ATTEMPTS {
        Some((RECONNECT_INTERVAL, RECONNECT_INTERVAL + max_jitter))
    } else if attempt == RECONNECT_ATTEMPTS {
        let base = RECONNECT_INTERVAL + backoff(1);
        Some((base, base + max_jitter * 2))
    } else if attempt < RECONNECT_ATTEMPTS + BACKOFF_ATTEMPTS {
        let base = backoff(attempt - RECONNECT_ATTEMPTS + 1);
        Some((base, base + max_jitter))
    } else {
        None
    }
}

fn backoff(exponent: u32) -> Duration {
    Duration::from_secs(BACKOFF_BASE_SECONDS.saturating_pow(exponent))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn follows_go_schedule_within_jitter() {
        let policy = RedialPolicy::default();
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for attempt in 0..40 {
                let got = redial_delay(attempt, &policy, &mut rng);
                match redial_bounds(attempt) {
                    Some((lo, hi)) => {
                        let d = got.expect("scheduled");
                        assert!(
                            d >= lo && d <= hi,
                            "attempt {attempt}: {d:?} ∉ [{lo:?}, {hi:?}]"
                        );
                    }
                    None => assert_eq!(got, None, "attempt {attempt} gives up"),
                }
            }
        }
    }

    #[test]
    fn exact_intervals() {
        assert_eq!(redial_bounds(1).unwrap().0, Duration::from_secs(5));
        assert_eq!(redial_bounds(19).unwrap().0, Duration::from_secs(5));
        assert_eq!(redial_bounds(20).unwrap().0, Duration::from_secs(8));
        assert_eq!(redial_bounds(21).unwrap().0, Duration::from_secs(9));
        assert_eq!(redial_bounds(29).unwrap().0, Duration::from_secs(59_049));
        assert_eq!(redial_bounds(30), None);
        assert_eq!(redial_bounds(1).unwrap().1, Duration::from_millis(7_999));
    }

    #[test]
    fn jitter_is_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws: Vec<_> = (0..200).map(|_| jitter(&mut rng)).collect();
        assert!(draws.iter().all(|d| *d < Duration::from_secs(3)));
        assert!(draws.iter().any(|d| *d < Duration::from_millis(500)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(2_500)));
    }

    #[test]
    fn cap_and_forever() {
        let cap = Duration::from_secs(60);
        let policy = RedialPolicy {
            max_dial_period: Some(cap),
            forever: true,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for attempt in 0..100 {
            let d = redial_delay(attempt, &policy, &mut rng).expect("forever");
            assert!(d <= cap);
            if attempt >= 24 {
                // 3^5 = 243 s > 60 s
                assert_eq!(d, cap);
            }
        }
        let zero_cap = RedialPolicy {
            max_dial_period: Some(Duration::ZERO),
            forever: false,
        };
        assert!(redial_delay(29, &zero_cap, &mut rng).unwrap() >= Duration::from_secs(59_049));
        assert_eq!(redial_delay(30, &zero_cap, &mut rng), None);
    }
}
