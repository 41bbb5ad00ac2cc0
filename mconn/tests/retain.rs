//! Small received messages do not pin the connection's 32 KiB read buffer: a consumer that
//! keeps many tiny messages holds about their size, not a read chunk each. One test per
//! binary, so no other test's allocations are counted.
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::alloc::System;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use mukan_mconn::{Config, MConnection, PlainStream};
use mukan_reactor_api::InboxItem;
use mukan_reactor_api::{ChannelDescriptor, ChannelId};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 200;

#[test]
fn kept_tiny_messages_do_not_pin_read_chunks() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let channels = [ChannelDescriptor::new(ChannelId(1), NonZeroU32::MIN)];
        let (x, y) = tokio::io::duplex(4096);
        let (a, _a_rx) =
            MConnection::spawn(PlainStream::new(x), &channels, Config::default()).unwrap();
        let (_b, mut b_rx) =
            MConnection::spawn(PlainStream::new(y), &channels, Config::default()).unwrap();
        // Warm up: both sides' buffers exist before counting.
        a.send(ChannelId(1), Bytes::from_static(b"warm"))
            .await
            .unwrap();
        let _ = b_rx.recv().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let region = Region::new(GLOBAL);
        let mut kept = Vec::with_capacity(N);
        for i in 0..N {
            // One message per read, so that each lands in a fresh read chunk.
            a.send(ChannelId(1), Bytes::from(vec![i as u8; 8]))
                .await
                .unwrap();
            match b_rx.recv().await {
                Some(InboxItem::Received { message, .. }) => kept.push(message),
                other => panic!("{other:?}"),
            }
        }
        let stats = region.change();
        let held = stats
            .bytes_allocated
            .saturating_sub(stats.bytes_deallocated)
            .saturating_add(stats.bytes_reallocated.max(0) as usize);
        assert_eq!(kept.len(), N);
        assert!(kept.iter().enumerate().all(|(i, m)| m[..] == [i as u8; 8]));
        // 200 × 32 KiB = 6.5 MB if each message pinned its read chunk.
        assert!(
            held < 256 * 1024,
            "{N} kept 8-byte messages hold {held} bytes"
        );
    });
}
