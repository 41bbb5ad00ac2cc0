//! The workload shared by the Rust and Go sides of the benchmark suite (`bench-suite/`).
//!
//! Message sizes come from SplitMix64 (Steele, Lea, Flood 2014; the generator of
//! `java.util.SplittableRandom`) seeded with [`SEED`]. The Go programs under `go/src/`
//! implement the same two functions; both sides check the first sizes against the committed
//! list `workload-sizes.txt`, so the sequences are proven identical.

/// The seed of the message-size sequence: the ASCII bytes of `"MUKAN-11"`, big-endian.
pub const SEED: u64 = 0x4d55_4b41_4e2d_3131;

/// Sizes are below `1 << MAX_LOG2` (64 KiB).
pub const MAX_LOG2: u32 = 16;

/// SplitMix64: a 64-bit state advanced by the golden-ratio increment, output mixed by the
/// `mix64` finaliser (variant 13 of Stafford).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The message-size sequence: log-uniform over `0 .. 1 << MAX_LOG2`.
///
/// Each size takes one output `r`: `k = r % (MAX_LOG2 + 1)`, then `size = (r >> 32) % (1 << k)`
/// (so `k = 0` gives an empty message). Half of the messages are under ~256 B, a few near
/// 64 KiB: small consensus votes next to block parts.
#[derive(Clone, Debug)]
pub struct Sizes {
    rng: SplitMix64,
}

impl Sizes {
    /// The sequence from [`SEED`].
    pub const fn new() -> Self {
        Self::with_seed(SEED)
    }

    /// The sequence from another seed.
    pub const fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }
}

impl Default for Sizes {
    fn default() -> Self {
        Self::new()
    }
}

impl Iterator for Sizes {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let r = self.rng.next_u64();
        let k = r % u64::from(MAX_LOG2 + 1);
        let size = (r >> 32) % (1u64 << k);
        Some(usize::try_from(size).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed list both sides check (one size per line, `#` comments).
    const COMMITTED: &str = include_str!("../workload-sizes.txt");

    fn committed() -> Vec<usize> {
        COMMITTED
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.parse().expect("a size per line"))
            .collect()
    }

    #[test]
    fn splitmix64_matches_the_published_reference_outputs() {
        // The reference outputs of SplitMix64 for seed 1234567 (as printed by the authors'
        // C reference implementation, widely used as a test vector).
        let mut g = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| g.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821,
            ]
        );
    }

    #[test]
    fn sizes_match_the_committed_list() {
        let want = committed();
        assert!(
            want.len() >= 64,
            "the committed list has {} sizes",
            want.len()
        );
        let got: Vec<usize> = Sizes::new().take(want.len()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn sizes_stay_below_the_bound_and_cover_the_range() {
        let sizes: Vec<usize> = Sizes::new().take(10_000).collect();
        assert!(sizes.iter().all(|&s| s < 1 << MAX_LOG2));
        assert!(sizes.contains(&0));
        assert!(sizes.iter().any(|&s| s >= 1 << (MAX_LOG2 - 1)));
        let small = sizes.iter().filter(|&&s| s < 1024).count();
        assert!(
            small > 5_000 && small < 8_000,
            "{small} of 10,000 under 1 KiB"
        );
    }
}
