//! The hot path does not allocate per frame: each direction allocates its buffer at most once
//! per burst (a write + flush, or a read that drains the transport), so moving thousands of
//! frames through a `SecretStream` pair costs a few allocations per burst and none per frame.
//! One test per binary, so no other test's allocations are counted.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::alloc::System;

use mukan_node_key::NodeKey;
use mukan_secret_conn::{Config, SecretStream};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const MSG: usize = 32 * 1024;
const ROUNDS: usize = 64;

async fn round(
    a: &mut SecretStream<DuplexStream>,
    b: &mut SecretStream<DuplexStream>,
    data: &[u8],
    buf: &mut [u8],
) {
    let (w, r) = tokio::join!(
        async {
            a.write_all(data).await?;
            a.flush().await
        },
        b.read_exact(buf)
    );
    w.unwrap();
    r.unwrap();
}

#[test]
fn steady_state_does_not_allocate_per_frame() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (x, y) = duplex(128 * 1024);
        let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
        let cfg = Config::default();
        let (a, b) = tokio::join!(
            SecretStream::handshake(x, &ka, &cfg),
            SecretStream::handshake(y, &kb, &cfg)
        );
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        let data: Vec<u8> = (0..MSG).map(|i| i as u8).collect();
        let mut buf = vec![0u8; MSG];
        // Warm-up: allocates the stream buffers and the pipe's buffer once.
        round(&mut a, &mut b, &data, &mut buf).await;
        round(&mut b, &mut a, &data, &mut buf).await;

        let region = Region::new(GLOBAL);
        for _ in 0..ROUNDS {
            round(&mut a, &mut b, &data, &mut buf).await;
            round(&mut b, &mut a, &data, &mut buf).await;
        }
        let stats = region.change();
        assert_eq!(buf, data);
        let frames = 2 * ROUNDS * MSG / 1024;
        let bursts = 2 * ROUNDS;
        // At most one send buffer and one receive buffer per burst (buffers are released when
        // idle); a per-frame allocation would show up as >= 4,096.
        assert!(
            stats.allocations + stats.reallocations <= 2 * bursts + 8,
            "{frames} frames in {bursts} bursts cost {stats:?}"
        );
    });
}
