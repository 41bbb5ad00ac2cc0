//! Property test over the public API (the class of bug of tendermint-rs #1393): any sequence of
//! writes (0 B to 100 KiB, split at random points, with flushes in between) arrives as exactly
//! the same bytes, whatever the read sizes and the pipe capacity.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::time::Duration;

use mukan_node_key::NodeKey;
use mukan_secret_conn::{Config, Handshake, SecretStream};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

#[derive(Debug, Clone)]
struct Write {
    len: usize,
    /// Sizes of the successive `write` calls the payload is split into (cycled).
    splits: Vec<usize>,
    flush: bool,
}

fn write_strategy() -> impl Strategy<Value = Write> {
    (
        prop_oneof![0usize..=2048, 0usize..=100 * 1024],
        prop::collection::vec(1usize..=5000, 1..6),
        any::<bool>(),
    )
        .prop_map(|(len, splits, flush)| Write { len, splits, flush })
}

async fn run(writes: Vec<Write>, reads: Vec<usize>, pipe: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let total: usize = writes.iter().map(|w| w.len).sum();
    let mut sent = vec![0u8; total];
    rng.fill_bytes(&mut sent);

    let (a, b) = duplex(pipe);
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let cfg = Config::new(Duration::from_secs(30));
    let (ra, rb) = tokio::join!(
        SecretStream::handshake_with(a, &ka, &cfg, Handshake::new(&mut rng.clone())),
        SecretStream::handshake_with(
            b,
            &kb,
            &cfg,
            Handshake::new(&mut ChaCha20Rng::seed_from_u64(!seed))
        ),
    );
    let (mut a, mut b) = (ra.unwrap(), rb.unwrap());

    let data = sent.clone();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for w in writes {
            let mut left = w.len;
            for &split in w.splits.iter().cycle() {
                if left == 0 {
                    break;
                }
                let n = split.min(left);
                a.write_all(&data[at..at + n]).await.unwrap();
                at += n;
                left -= n;
            }
            if w.flush {
                a.flush().await.unwrap();
            }
        }
        a.shutdown().await.unwrap();
        a
    });

    let mut received = Vec::with_capacity(total);
    let mut buf = vec![0u8; 2048];
    for &size in reads.iter().cycle() {
        let n = b.read(&mut buf[..size]).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= size);
        received.extend_from_slice(&buf[..n]);
    }
    drop(writer.await.unwrap());
    (sent, received)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn writes_arrive_byte_exact(
        writes in prop::collection::vec(write_strategy(), 0..6),
        reads in prop::collection::vec(1usize..=2048, 1..8),
        pipe in prop_oneof![Just(1usize), 1usize..=4096, 4096usize..=128 * 1024],
        seed in any::<u64>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (sent, received) = rt.block_on(run(writes, reads, pipe, seed));
        prop_assert_eq!(sent.len(), received.len());
        prop_assert!(sent == received, "stream content differs");
    }
}

/// Every read size from 1 to 2048 against one 8 KiB message, in one session.
#[tokio::test]
async fn every_read_size() {
    let (a, b) = duplex(1 << 16);
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let cfg = Config::default();
    let (ra, rb) = tokio::join!(
        SecretStream::handshake(a, &ka, &cfg),
        SecretStream::handshake(b, &kb, &cfg),
    );
    let (a, mut b) = (ra.unwrap(), rb.unwrap());
    let (_ar, mut aw) = a.split();
    let msg: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    let expected = msg.clone();
    let writer = tokio::spawn(async move {
        for _ in 1..=2048 {
            aw.write_all(&msg).await.unwrap();
            aw.flush().await.unwrap();
        }
        aw
    });
    let mut buf = vec![0u8; 8192];
    for size in 1..=2048usize {
        let mut got = Vec::with_capacity(8192);
        while got.len() < 8192 {
            let want = size.min(8192 - got.len());
            let n = b.read(&mut buf[..want]).await.unwrap();
            assert!(n > 0 && n <= want);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, expected, "read size {size}");
    }
    drop(writer.await.unwrap());
}
