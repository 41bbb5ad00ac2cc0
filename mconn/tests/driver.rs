//! Tests of the tokio driver on paused (virtual) time over `tokio::io::duplex`.
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use bytes::Bytes;
use mukan_mconn::{Config, DecodeError, Error, Event, MConnection};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, SendError, TrySendError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn channels() -> Vec<ChannelDescriptor> {
    vec![
        ChannelDescriptor::new(ChannelId(0x20), NonZeroU32::new(5).unwrap())
            .with_send_queue_capacity(NonZeroUsize::new(8).unwrap()),
        ChannelDescriptor::new(ChannelId(0x30), NonZeroU32::new(1).unwrap()),
    ]
}

async fn next_message(rx: &mut mpsc::Receiver<Event>) -> (ChannelId, Bytes) {
    match rx.recv().await {
        Some(Event::Received { channel, message }) => (channel, message),
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn next_error(rx: &mut mpsc::Receiver<Event>) -> Error {
    loop {
        match rx.recv().await {
            Some(Event::Error(e)) => return e,
            Some(Event::Received { .. }) => {}
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn messages_flow_both_ways_in_order() {
    let (x, y) = tokio::io::duplex(4096);
    let (a, mut a_rx) = MConnection::spawn(x, &channels(), Config::default()).unwrap();
    let (b, mut b_rx) = MConnection::spawn(y, &channels(), Config::default()).unwrap();
    let big = Bytes::from((0..50_000u32).map(|i| i as u8).collect::<Vec<_>>());
    for i in 0..20u8 {
        a.send(ChannelId(0x20), Bytes::from(vec![i; usize::from(i) * 100]))
            .await
            .unwrap();
    }
    a.send(ChannelId(0x30), big.clone()).await.unwrap();
    b.send(ChannelId(0x30), Bytes::from_static(b"back"))
        .await
        .unwrap();
    let mut on_20 = Vec::new();
    let mut on_30 = Vec::new();
    while on_20.len() < 20 || on_30.is_empty() {
        let (ch, m) = next_message(&mut b_rx).await;
        if ch == ChannelId(0x20) {
            on_20.push(m)
        } else {
            on_30.push(m)
        }
    }
    for (i, m) in on_20.iter().enumerate() {
        assert_eq!(m.len(), i * 100);
        assert!(m.iter().all(|&b| usize::from(b) == i));
    }
    assert_eq!(on_30, vec![big]);
    assert_eq!(
        next_message(&mut a_rx).await,
        (ChannelId(0x30), Bytes::from_static(b"back"))
    );
    assert_eq!(
        a.try_send(ChannelId(0x99), Bytes::new()),
        Err(TrySendError::UnknownChannel(ChannelId(0x99)))
    );
}

#[tokio::test(start_paused = true)]
async fn lone_message_does_not_wait_for_the_flush_throttle() {
    let (x, y) = tokio::io::duplex(4096);
    let (a, _a_rx) = MConnection::spawn(x, &channels(), Config::default()).unwrap();
    let (_b, mut b_rx) = MConnection::spawn(y, &channels(), Config::default()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    a.send(ChannelId(0x30), Bytes::from(vec![1u8; 100]))
        .await
        .unwrap();
    let (_, m) = next_message(&mut b_rx).await;
    assert_eq!(m.len(), 100);
    // On the paused clock no time passes unless something sleeps: the message was not held.
    assert!(
        t0.elapsed() < Duration::from_millis(1),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn stalled_peer_keeps_queues_bounded_and_send_times_out() {
    // C11: the peer never reads; our queue stays bounded, try_send says Full, send times out.
    let (x, _y) = tokio::io::duplex(1024);
    let config = Config::default().with_send_timeout(Duration::from_secs(10));
    let (a, _rx) = MConnection::spawn(x, &channels(), config).unwrap();
    let mut accepted = 0;
    loop {
        match a.try_send(ChannelId(0x30), Bytes::from(vec![0u8; 4096])) {
            Ok(()) => accepted += 1,
            Err(TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
        tokio::task::yield_now().await;
        assert!(accepted < 100, "queue not bounded");
    }
    let status = a.status();
    // Capacity 1 in the queue + at most one message in flight.
    assert!(
        status.channels[1].send_queue_size <= 2,
        "{:?}",
        status.channels[1]
    );
    let t0 = Instant::now();
    let r = a.send(ChannelId(0x30), Bytes::from_static(b"x")).await;
    assert_eq!(r, Err(SendError::Timeout));
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    // The other channel's queue is independent.
    assert_eq!(
        a.try_send(ChannelId(0x20), Bytes::from_static(b"y")),
        Ok(())
    );
}

#[tokio::test(start_paused = true)]
async fn flush_stop_delivers_everything_queued() {
    let (x, y) = tokio::io::duplex(2048);
    let (a, _a_rx) = MConnection::spawn(x, &channels(), Config::default()).unwrap();
    let (_b, mut b_rx) = MConnection::spawn(y, &channels(), Config::default()).unwrap();
    for i in 0..8u8 {
        a.try_send(ChannelId(0x20), Bytes::from(vec![i; 3000]))
            .unwrap();
    }
    a.flush_stop().await;
    assert!(!a.is_running());
    assert_eq!(
        a.try_send(ChannelId(0x20), Bytes::new()),
        Err(TrySendError::Closed)
    );
    for i in 0..8u8 {
        let (ch, m) = next_message(&mut b_rx).await;
        assert_eq!((ch, m.len(), m[0]), (ChannelId(0x20), 3000, i));
    }
    assert!(matches!(
        next_error(&mut b_rx).await,
        Error::ConnectionClosed
    ));
}

#[tokio::test(start_paused = true)]
async fn silent_peer_is_disconnected_for_pong_timeout() {
    let (x, mut y) = tokio::io::duplex(4096);
    let config = Config::default();
    let limit = config.ping_interval + config.pong_timeout;
    let t0 = Instant::now();
    let (_a, mut rx) = MConnection::spawn(x, &channels(), config).unwrap();
    // The peer reads (and discards) everything but never answers.
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while y.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    assert!(matches!(next_error(&mut rx).await, Error::PongTimeout));
    assert_eq!(t0.elapsed(), limit);
}

#[tokio::test(start_paused = true)]
async fn answering_peer_stays_up() {
    let (x, y) = tokio::io::duplex(4096);
    let (a, mut a_rx) = MConnection::spawn(x, &channels(), Config::default()).unwrap();
    let (_b, _b_rx) = MConnection::spawn(y, &channels(), Config::default()).unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(a.is_running());
    assert!(a_rx.try_recv().is_err(), "no event expected");
}

#[tokio::test(start_paused = true)]
async fn garbage_from_peer_is_a_typed_error() {
    let (x, mut y) = tokio::io::duplex(4096);
    let (a, mut rx) = MConnection::spawn(x, &channels(), Config::default()).unwrap();
    y.write_all(&[0x01, 0x02, 0x03, 0x04, 0x05]).await.unwrap();
    assert!(matches!(
        next_error(&mut rx).await,
        Error::Decode(DecodeError::Protobuf(_))
    ));
    // The task ended: the stream is closed.
    tokio::task::yield_now().await;
    assert!(!a.is_running());
    assert_eq!(
        a.try_send(ChannelId(0x20), Bytes::new()),
        Err(TrySendError::Closed)
    );
    let mut buf = [0u8; 16];
    assert_eq!(y.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn handler_receives_events_and_status_counts() {
    let (x, y) = tokio::io::duplex(4096);
    let (seen_tx, mut seen_rx) = mpsc::channel(16);
    let _a = MConnection::spawn_with_handler(x, &channels(), Config::default(), move |ev| {
        let _ = seen_tx.try_send(ev);
    })
    .unwrap();
    let (b, _b_rx) = MConnection::spawn(y, &channels(), Config::default()).unwrap();
    b.send(ChannelId(0x20), Bytes::from_static(b"hi"))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut seen_rx).await,
        (ChannelId(0x20), Bytes::from_static(b"hi"))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = b.status();
    assert_eq!(st.channels.len(), 2);
    assert!(st.send.bytes >= 9, "{st:?}");
    assert!(st.channels[0].recently_sent >= 9);
    assert_eq!(st.duration, Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn receive_rate_limit_paces_the_reader() {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let fast = Config::default().with_rates(None, None);
    let rate = 100_000u64;
    let slow = Config::default().with_rates(None, std::num::NonZeroU64::new(rate));
    let (a, _a_rx) = MConnection::spawn(x, &channels(), fast).unwrap();
    let (_b, mut b_rx) = MConnection::spawn(y, &channels(), slow).unwrap();
    let t0 = Instant::now();
    let sender = tokio::spawn(async move {
        for _ in 0..100 {
            a.send(ChannelId(0x20), Bytes::from(vec![0u8; 10_000]))
                .await
                .unwrap();
        }
        a
    });
    let mut got = 0;
    while got < 1_000_000 {
        got += next_message(&mut b_rx).await.1.len();
    }
    let _a = sender.await.unwrap();
    // About 1,010,000 wire bytes at 100,000 B/s: 10 s of virtual time, within 10 %.
    let secs = t0.elapsed().as_secs_f64();
    assert!((9.1..=11.1).contains(&secs), "{secs} s");
}

#[tokio::test(start_paused = true)]
async fn slow_consumer_back_pressures_the_sender() {
    let (x, y) = tokio::io::duplex(4096);
    let mut small = Config::default().with_rates(None, None);
    small.event_capacity = NonZeroUsize::new(1).unwrap();
    let (a, _a_rx) = MConnection::spawn(x, &channels(), Config::default()).unwrap();
    // B's consumer never reads its events.
    let (_b, _b_rx) = MConnection::spawn(y, &channels(), small).unwrap();
    let mut accepted = 0;
    loop {
        match a.try_send(ChannelId(0x20), Bytes::from(vec![0u8; 1000])) {
            Ok(()) => accepted += 1,
            Err(TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(accepted < 200, "no back-pressure after {accepted} messages");
    }
    // 1 event buffered + 1 pending + what fits in the pipe and the queues, nothing unbounded.
    assert!(accepted > 2, "{accepted}");
}

#[tokio::test(start_paused = true)]
async fn peer_that_stops_reading_is_detected_by_the_pong_deadline() {
    // The peer never reads: our write of a large message blocks forever, so the ping that
    // falls due cannot be written. Its pong deadline runs anyway.
    let (x, _y) = tokio::io::duplex(64);
    let config = Config::default();
    let limit = config.ping_interval + config.pong_timeout;
    let t0 = Instant::now();
    let (a, mut rx) = MConnection::spawn(x, &channels(), config).unwrap();
    a.send(ChannelId(0x30), Bytes::from(vec![7u8; 100_000]))
        .await
        .unwrap();
    let error = tokio::time::timeout(limit * 3, next_error(&mut rx))
        .await
        .expect("a peer that never reads is detected");
    assert!(matches!(error, Error::PongTimeout), "{error:?}");
    assert_eq!(t0.elapsed(), limit);
    assert!(!a.is_running());
}

#[tokio::test(start_paused = true)]
async fn flush_stop_returns_within_the_flush_timeout_when_the_peer_does_not_read() {
    let (x, _y) = tokio::io::duplex(64);
    let config = Config::default().with_flush_timeout(Duration::from_secs(5));
    let (a, mut rx) = MConnection::spawn(x, &channels(), config).unwrap();
    a.send(ChannelId(0x30), Bytes::from(vec![7u8; 100_000]))
        .await
        .unwrap();
    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), a.flush_stop())
        .await
        .expect("flush_stop is bounded");
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
    assert!(!a.is_running());
    let error = next_error(&mut rx).await;
    assert!(matches!(error, Error::FlushTimeout), "{error:?}");
    assert!(matches!(
        error.into_stop_reason(),
        mukan_reactor_api::StopReason::Timeout(mukan_reactor_api::TimeoutKind::Flush)
    ));
}

/// Fills channel 0x30 (capacity 1) of `a` over a peer that reads nothing yet.
async fn fill(a: &MConnection) {
    loop {
        match a.try_send(ChannelId(0x30), Bytes::from(vec![0u8; 4096])) {
            Ok(()) => {}
            Err(TrySendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_blocked_send_goes_through_when_the_queue_makes_room() {
    let (x, y) = tokio::io::duplex(1024);
    let config = Config::default().with_send_timeout(Duration::from_secs(10));
    let (a, _a_rx) = MConnection::spawn(x, &channels(), config).unwrap();
    fill(&a).await;
    let a = std::sync::Arc::new(a);
    let sender = tokio::spawn({
        let a = a.clone();
        async move { a.send(ChannelId(0x30), Bytes::from_static(b"last")).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!sender.is_finished(), "the queue was full");
    // The peer starts reading: the queue drains and the waiting send gets in.
    let (_b, mut b_rx) = MConnection::spawn(y, &channels(), Config::default()).unwrap();
    assert_eq!(sender.await.unwrap(), Ok(()));
    loop {
        let (_, m) = next_message(&mut b_rx).await;
        if m.as_ref() == b"last" {
            break;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_blocked_send_ends_when_the_connection_stops() {
    let (x, _y) = tokio::io::duplex(1024);
    let config = Config::default().with_send_timeout(Duration::from_secs(10));
    let (a, _a_rx) = MConnection::spawn(x, &channels(), config).unwrap();
    fill(&a).await;
    let a = std::sync::Arc::new(a);
    let sender = tokio::spawn({
        let a = a.clone();
        async move { a.send(ChannelId(0x30), Bytes::from_static(b"x")).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    a.stop();
    assert_eq!(sender.await.unwrap(), Err(SendError::Closed));
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(!a.can_send(ChannelId(0x20)));
}

/// Three connections of one node draw from a shared budget (sending or receiving, 300 kB/s)
/// while their peers are unlimited: the node moves its 900 kB in about 3 s of virtual time,
/// and the three finish together (each got a third, give or take the initial burst).
#[tokio::test(start_paused = true)]
async fn connections_draw_fairly_from_shared_totals() {
    use mukan_mconn::Budget;
    use std::num::NonZeroU64;
    for sending in [true, false] {
        let t0 = Instant::now();
        let budget = Budget::new(NonZeroU64::new(300_000).unwrap(), t0.into_std());
        let node = if sending {
            Config::default().with_totals(Some(budget.clone()), None)
        } else {
            Config::default().with_totals(None, Some(budget.clone()))
        }
        .with_rates(None, None);
        let peer = Config::default().with_rates(None, None);
        let mut tasks = Vec::new();
        let mut keep = Vec::new();
        for _ in 0..3 {
            let (x, y) = tokio::io::duplex(16 * 1024);
            let (a, a_rx) = MConnection::spawn(x, &channels(), node.clone()).unwrap();
            let (b, b_rx) = MConnection::spawn(y, &channels(), peer.clone()).unwrap();
            let (tx, other, mut rx) = if sending { (a, b, b_rx) } else { (b, a, a_rx) };
            keep.push(std::sync::Arc::new(other));
            let tx = std::sync::Arc::new(tx);
            let sender = tx.clone();
            tokio::spawn(async move {
                for i in 0..10u8 {
                    sender
                        .send(ChannelId(0x30), Bytes::from(vec![i; 30_000]))
                        .await
                        .unwrap();
                }
            });
            keep.push(tx);
            tasks.push(tokio::spawn(async move {
                for i in 0..10u8 {
                    let (_, m) = next_message(&mut rx).await;
                    assert_eq!(m, Bytes::from(vec![i; 30_000]));
                }
                (Instant::now() - t0, rx)
            }));
        }
        let mut done = Vec::new();
        for t in tasks {
            // A connection that is never woken would wait forever (virtual time runs on).
            let r = tokio::time::timeout(Duration::from_secs(30), t).await;
            done.push(r.expect("delivered within 30 s").unwrap().0);
        }
        let (first, last) = (done.iter().min().unwrap(), done.iter().max().unwrap());
        // 900,000 B of payload (~910,000 with packet headers), a 30,000 B burst: ~3 s.
        assert!(
            *last >= Duration::from_millis(2_850) && *last <= Duration::from_millis(3_250),
            "sending {sending}: {done:?}"
        );
        // The one that asked first may have had the initial burst (30 kB, 100 ms) and the
        // credit a member may hold (16 quanta of 1.5 kB, 80 ms) to itself.
        assert!(*last - *first <= Duration::from_millis(350), "{done:?}");
        let stats = budget.stats(Instant::now().into_std());
        assert!(stats.used >= 900_000, "{stats:?}");
        assert!(stats.throttled >= Duration::from_millis(2_500), "{stats:?}");
        assert_eq!(stats.members, 3);
    }
}
