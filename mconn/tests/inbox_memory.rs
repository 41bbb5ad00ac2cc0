//! A peer flooding one channel whose consumer keeps everything: the receiving side holds its
//! channel budget plus fixed buffers, not what the peer sends. One test per binary, so no
//! other test's allocations are counted.
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::alloc::System;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use bytes::Bytes;
use mukan_mconn::{Config, MConnection, PlainStream};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, InboxItem, StopReason};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const A: ChannelId = ChannelId(1);
const BUDGET: usize = 64 * 1024;
const FLOOD: usize = 8 * 1024 * 1024;

#[test]
fn a_flooded_channel_holds_its_budget_not_the_flood() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let channels = [ChannelDescriptor::new(A, NonZeroU32::MIN)
            .with_recv_message_capacity(NonZeroUsize::new(BUDGET).unwrap())];
        let config = Config::default()
            .with_rates(None, None)
            .with_recv_stall_timeout(Duration::from_secs(5));
        let (x, y) = tokio::io::duplex(16 * 1024);
        let region = Region::new(GLOBAL);
        let (tx, _tx_rx) =
            MConnection::spawn(PlainStream::new(x), &channels, config.clone()).unwrap();
        let (_rx, mut inbox) = MConnection::spawn(PlainStream::new(y), &channels, config).unwrap();
        let flood = tokio::spawn(async move {
            let msg = Bytes::from(vec![5u8; 1024]);
            for _ in 0..FLOOD / 1024 {
                if tx.send(A, msg.clone()).await.is_err() {
                    break;
                }
            }
        });
        let mut held = Vec::new();
        let mut peak = 0usize;
        let reason = loop {
            match inbox.recv().await {
                Some(InboxItem::Received { message, lease, .. }) => held.push((message, lease)),
                Some(InboxItem::Stopped(r)) => break r,
                other => panic!("unexpected {other:?}"),
            }
            let s = region.change();
            peak = peak.max(s.bytes_allocated.saturating_sub(s.bytes_deallocated));
        };
        let s = region.change();
        peak = peak.max(s.bytes_allocated.saturating_sub(s.bytes_deallocated));
        assert!(matches!(reason, StopReason::SlowReceiver { channel } if channel == A));
        println!(
            "held {} messages, peak net allocation {peak} bytes",
            held.len()
        );
        let kept: usize = held.iter().map(|(m, _)| m.len()).sum();
        assert!(kept <= BUDGET, "kept {kept}");
        // Budget + read chunk + the sender's queue, batch and pipe; far below the flood.
        assert!(peak < BUDGET + 512 * 1024, "peak {peak} bytes");
        flood.abort();
    });
}
