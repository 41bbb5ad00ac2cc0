//! What an idle connection keeps allocated: after a burst of traffic (a large message, then
//! small ones) the read buffer shrinks back and the send queues hold nothing, so a quiet
//! connection costs a few KiB, not a 32 KiB read chunk. One test per binary, so no other
//! test's allocations are counted.
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::alloc::System;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use bytes::Bytes;
use mukan_mconn::{Config, Inbox, MConnection, PlainStream};
use mukan_reactor_api::InboxItem;
use mukan_reactor_api::{ChannelDescriptor, ChannelId};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PAIRS: usize = 50;

fn channels() -> Vec<ChannelDescriptor> {
    (0x40..0x44)
        .map(|id| {
            ChannelDescriptor::new(ChannelId(id), NonZeroU32::new(5).unwrap())
                .with_send_queue_capacity(NonZeroUsize::new(100).unwrap())
                .with_recv_message_capacity(NonZeroUsize::new(1 << 20).unwrap())
        })
        .collect()
}

async fn recv(rx: &mut Inbox) -> Bytes {
    match rx.recv().await {
        Some(InboxItem::Received { message, .. }) => message,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_idle_connection_holds_a_few_kib() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = ChannelId(0x40);
        let big = Bytes::from(vec![7u8; 256 * 1024]);
        let small = Bytes::from(vec![8u8; 1024]);
        let region = Region::new(GLOBAL);
        let mut held = Vec::new();
        for _ in 0..PAIRS {
            let (x, y) = tokio::io::duplex(4 * 1024);
            let (a, _a_rx) =
                MConnection::spawn(PlainStream::new(x), &channels(), Config::node_default())
                    .unwrap();
            let (b, mut b_rx) =
                MConnection::spawn(PlainStream::new(y), &channels(), Config::node_default())
                    .unwrap();
            a.send(ch, big.clone()).await.unwrap();
            assert_eq!(recv(&mut b_rx).await.len(), big.len());
            for _ in 0..3 {
                a.send(ch, small.clone()).await.unwrap();
                assert_eq!(recv(&mut b_rx).await.len(), small.len());
            }
            held.push((a, _a_rx, b, b_rx));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = region.change();
        let net = s.bytes_allocated.saturating_sub(s.bytes_deallocated);
        let per_conn = net / (2 * PAIRS);
        println!("net allocation per idle connection: {per_conn} bytes");
        assert!(
            held.iter()
                .all(|(a, _, b, _)| a.is_running() && b.is_running())
        );
        // Task, handle, channels, state and a 2 KiB read buffer (the duplex pipe's share
        // included); a kept 32 KiB read chunk alone would exceed it.
        assert!(per_conn < 16 * 1024, "per connection {per_conn} bytes");
    });
}
