//! The receive budget enforced by the tokio driver ([`MConnection::spawn`]), on paused
//! (virtual) time over `tokio::io::duplex`.
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::collections::VecDeque;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use bytes::Bytes;
use mukan_mconn::{Config, Inbox, MConnection, PlainStream};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, InboxItem, RecvBudget, RecvLease, StopReason, TimeoutKind,
};
use tokio::time::{Instant, timeout};

const A: ChannelId = ChannelId(0x20);
const B: ChannelId = ChannelId(0x30);
/// Size of each A message, and how many of them A's budget holds.
const A_LEN: usize = 200;
const A_FITS: usize = 3;

fn a_budget() -> usize {
    RecvBudget::cost(A_LEN) * A_FITS + RecvBudget::cost(A_LEN) / 2
}

fn channels() -> Vec<ChannelDescriptor> {
    vec![
        ChannelDescriptor::new(A, NonZeroU32::new(1).unwrap())
            .with_send_queue_capacity(NonZeroUsize::new(1).unwrap())
            .with_recv_message_capacity(NonZeroUsize::new(a_budget()).unwrap()),
        ChannelDescriptor::new(B, NonZeroU32::new(1).unwrap()),
    ]
}

enum Got {
    Msg(ChannelId, Bytes, RecvLease),
    Stopped(StopReason),
    End,
}

async fn next(rx: &mut Inbox) -> Got {
    match rx.recv().await {
        Some(InboxItem::Received {
            channel,
            message,
            lease,
        }) => Got::Msg(channel, message, lease),
        Some(InboxItem::Stopped(r)) => Got::Stopped(r),
        Some(other) => panic!("unexpected item {other:?}"),
        None => Got::End,
    }
}

async fn next_msg(rx: &mut Inbox) -> (ChannelId, Bytes, RecvLease) {
    match next(rx).await {
        Got::Msg(c, m, l) => (c, m, l),
        Got::Stopped(r) => panic!("stopped: {r}"),
        Got::End => panic!("inbox ended"),
    }
}

#[tokio::test(start_paused = true)]
async fn full_budget_holds_one_message_pauses_reading_and_resumes_on_release() {
    let (x, y) = tokio::io::duplex(4096);
    let (tx, _tx_rx) =
        MConnection::spawn(PlainStream::new(x), &channels(), Config::default()).unwrap();
    let (rx, mut inbox) =
        MConnection::spawn(PlainStream::new(y), &channels(), Config::default()).unwrap();
    let budget = rx.recv_budget(A).unwrap().clone();
    assert_eq!(budget.capacity(), a_budget());
    let sender = tokio::spawn(async move {
        for i in 0..8u8 {
            tx.send(A, Bytes::from(vec![i; A_LEN])).await.unwrap();
            tx.send(B, Bytes::from(vec![i; 10])).await.unwrap();
        }
        tx
    });
    // While A has room, A and B both arrive; the consumer keeps every A lease.
    let mut held = VecDeque::new();
    let mut a_seen = Vec::new();
    let mut b_seen = Vec::new();
    while held.len() < A_FITS {
        let (c, m, lease) = next_msg(&mut inbox).await;
        if c == A {
            assert_eq!(lease.channel(), Some(A));
            a_seen.push(m[0]);
            held.push_back(lease);
        } else {
            b_seen.push(m[0]);
        }
        assert!(budget.used() <= budget.capacity());
    }
    // A is full: the next A message is held back, and so is everything behind it.
    while let Ok(Some(item)) = timeout(Duration::from_secs(5), inbox.recv()).await {
        match item {
            InboxItem::Received {
                channel, message, ..
            } if channel == B => b_seen.push(message[0]),
            other => panic!("only B may arrive while A is full, got {other:?}"),
        }
    }
    assert!(b_seen.len() >= 2, "B arrived while A had room: {b_seen:?}");
    assert!(b_seen.len() < 8, "reading paused: {b_seen:?}");
    assert_eq!(a_seen, [0, 1, 2]);
    assert_eq!(budget.used(), RecvBudget::cost(A_LEN) * A_FITS);
    // Releasing one lease lets exactly the held A message through first.
    held.pop_front();
    let (c, m, lease) = next_msg(&mut inbox).await;
    assert_eq!((c, m[0]), (A, 3));
    held.push_back(lease);
    while let Ok(Some(item)) = timeout(Duration::from_secs(5), inbox.recv()).await {
        match item {
            InboxItem::Received {
                channel, message, ..
            } if channel == B => b_seen.push(message[0]),
            other => panic!("only B may arrive while A is full, got {other:?}"),
        }
    }
    assert!(budget.used() <= budget.capacity());
    // Release everything: the rest flows, in order per channel.
    held.clear();
    while a_seen.len() < 7 || b_seen.len() < 8 {
        let (c, m, _lease) = next_msg(&mut inbox).await;
        if c == A {
            a_seen.push(m[0]);
        } else {
            b_seen.push(m[0]);
        }
    }
    a_seen.insert(3, 3);
    assert_eq!(a_seen, (0..8).collect::<Vec<u8>>());
    assert_eq!(b_seen, (0..8).collect::<Vec<u8>>());
    let _tx = sender.await.unwrap();
    assert!(rx.is_running());
}

#[tokio::test(start_paused = true)]
async fn budget_full_past_stall_timeout_stops_with_slow_receiver() {
    let stall = Duration::from_secs(3);
    let (x, y) = tokio::io::duplex(4096);
    let (tx, _tx_rx) =
        MConnection::spawn(PlainStream::new(x), &channels(), Config::default()).unwrap();
    let config = Config::default().with_recv_stall_timeout(stall);
    let (rx, mut inbox) = MConnection::spawn(PlainStream::new(y), &channels(), config).unwrap();
    let budget = rx.recv_budget(A).unwrap().clone();
    let sender = tokio::spawn(async move {
        for i in 0..10u8 {
            if tx.send(A, Bytes::from(vec![i; A_LEN])).await.is_err() {
                break;
            }
        }
        tx
    });
    let mut held = Vec::new();
    let start = Instant::now();
    let reason = loop {
        match next(&mut inbox).await {
            Got::Msg(c, _, lease) => {
                assert_eq!(c, A);
                held.push(lease);
                assert!(budget.used() <= budget.capacity());
            }
            Got::Stopped(r) => break r,
            Got::End => panic!("inbox ended without a reason"),
        }
    };
    assert!(
        matches!(reason, StopReason::SlowReceiver { channel } if channel == A),
        "{reason:?}"
    );
    assert!(!reason.is_misbehaviour());
    assert_eq!(held.len(), A_FITS);
    assert!(start.elapsed() >= stall);
    assert!(matches!(next(&mut inbox).await, Got::End));
    assert!(!rx.is_running());
    let _ = sender.await;
}

/// A consumer that is slow on A but drains it: reading pauses whenever A is full, our pings
/// and pongs keep both sides up across many pong timeouts, and B keeps arriving.
#[tokio::test(start_paused = true)]
async fn slow_draining_consumer_stays_up_across_pong_timeouts() {
    let pong = Duration::from_secs(2);
    let config = Config::default()
        .with_ping(Duration::from_secs(3), pong)
        .with_recv_stall_timeout(Duration::from_secs(1));
    let (x, y) = tokio::io::duplex(1024);
    let (tx, mut tx_events) =
        MConnection::spawn(PlainStream::new(x), &channels(), config.clone()).unwrap();
    let (rx, mut inbox) = MConnection::spawn(PlainStream::new(y), &channels(), config).unwrap();
    let budget = rx.recv_budget(A).unwrap().clone();
    let tx = std::sync::Arc::new(tx);
    let flood = {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut i = 0u8;
            while tx.send(A, Bytes::from(vec![i; A_LEN])).await.is_ok() {
                i = i.wrapping_add(1);
            }
        })
    };
    let trickle = {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tx.send(B, Bytes::from_static(b"b")).await.is_err() {
                    break;
                }
            }
        })
    };
    let run_for = pong * 5;
    let end = Instant::now() + run_for;
    let mut held: VecDeque<RecvLease> = VecDeque::new();
    let (mut a_count, mut b_count, mut full_seen) = (0usize, 0usize, 0usize);
    let mut release = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < end {
        tokio::select! {
            got = next(&mut inbox) => match got {
                Got::Msg(c, _, lease) => {
                    if c == A {
                        a_count += 1;
                        held.push_back(lease);
                    } else {
                        b_count += 1;
                    }
                    assert!(budget.used() <= budget.capacity());
                }
                Got::Stopped(r) => panic!("stopped: {r}"),
                Got::End => panic!("inbox ended"),
            },
            _ = release.tick() => {
                if held.len() == A_FITS {
                    full_seen += 1;
                }
                held.pop_front();
            }
        }
    }
    assert!(
        full_seen > 10,
        "A's budget was full most of the time ({full_seen})"
    );
    assert!(a_count > 20, "A drained at the consumer's pace ({a_count})");
    assert!(b_count > 10, "B kept arriving ({b_count})");
    assert!(rx.is_running() && tx.is_running());
    assert!(tx_events.try_recv().is_none(), "the sender saw no error");
    assert!(rx.status().recv.bytes > 0);
    let _ = TimeoutKind::Pong;
    tx.stop();
    flood.abort();
    trickle.abort();
}
