//! Tests of the tokio driver on paused (virtual) time over `tokio::io::duplex`.
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use bytes::Bytes;
use mukan_mconn::{Config, Inbox, MConnection, PlainStream};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, InboxItem, SendError, StopReason, TimeoutKind, TrySendError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

fn channels() -> Vec<ChannelDescriptor> {
    vec![
        ChannelDescriptor::new(ChannelId(0x20), NonZeroU32::new(5).unwrap())
            .with_send_queue_capacity(NonZeroUsize::new(8).unwrap()),
        ChannelDescriptor::new(ChannelId(0x30), NonZeroU32::new(1).unwrap()),
    ]
}

fn spawn(io: DuplexStream, config: Config) -> (MConnection, Inbox) {
    MConnection::spawn(PlainStream::new(io), &channels(), config).unwrap()
}

async fn next_message(rx: &mut Inbox) -> (ChannelId, Bytes) {
    match rx.recv().await {
        Some(InboxItem::Received {
            channel, message, ..
        }) => (channel, message),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Why the connection ended (the messages before are dropped).
async fn next_error(rx: &mut Inbox) -> StopReason {
    loop {
        match rx.recv().await {
            Some(InboxItem::Stopped(reason)) => return reason,
            Some(InboxItem::Received { .. }) => {}
            other => panic!("expected the stop, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn messages_flow_both_ways_in_order() {
    let (x, y) = tokio::io::duplex(4096);
    let (a, mut a_rx) = spawn(x, Config::default());
    let (b, mut b_rx) = spawn(y, Config::default());
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
    let (a, _a_rx) = spawn(x, Config::default());
    let (_b, mut b_rx) = spawn(y, Config::default());
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
    let (a, _rx) = spawn(x, config);
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
    let (a, _a_rx) = spawn(x, Config::default());
    let (_b, mut b_rx) = spawn(y, Config::default());
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
        StopReason::ClosedByPeer
    ));
}

#[tokio::test(start_paused = true)]
async fn silent_peer_is_disconnected_for_pong_timeout() {
    let (x, mut y) = tokio::io::duplex(4096);
    let config = Config::default();
    let limit = config.ping_interval + config.pong_timeout;
    let t0 = Instant::now();
    let (_a, mut rx) = spawn(x, config);
    // The peer reads (and discards) everything but never answers.
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while y.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    assert!(matches!(
        next_error(&mut rx).await,
        StopReason::Timeout(TimeoutKind::Pong)
    ));
    assert_eq!(t0.elapsed(), limit);
}

#[tokio::test(start_paused = true)]
async fn answering_peer_stays_up() {
    let (x, y) = tokio::io::duplex(4096);
    let (a, mut a_rx) = spawn(x, Config::default());
    let (_b, _b_rx) = spawn(y, Config::default());
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(a.is_running());
    assert!(a_rx.try_recv().is_none(), "no item expected");
}

#[tokio::test(start_paused = true)]
async fn garbage_from_peer_is_a_typed_error() {
    let (x, mut y) = tokio::io::duplex(4096);
    let (a, mut rx) = spawn(x, Config::default());
    y.write_all(&[0x01, 0x02, 0x03, 0x04, 0x05]).await.unwrap();
    assert!(matches!(next_error(&mut rx).await, StopReason::Protocol(_)));
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
async fn status_counts_what_was_sent() {
    let (x, y) = tokio::io::duplex(4096);
    let (_a, mut a_rx) = spawn(x, Config::default());
    let (b, _b_rx) = spawn(y, Config::default());
    b.send(ChannelId(0x20), Bytes::from_static(b"hi"))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut a_rx).await,
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
    let (a, _a_rx) = spawn(x, fast);
    let (_b, mut b_rx) = spawn(y, slow);
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
    let (a, _a_rx) = spawn(x, Config::default());
    // B's consumer never takes its messages, and its budget is 4 KiB per channel.
    let small: Vec<_> = channels()
        .into_iter()
        .map(|d| d.with_recv_message_capacity(NonZeroUsize::new(4096).unwrap()))
        .collect();
    let (_b, _b_rx) = MConnection::spawn(PlainStream::new(y), &small, Config::default()).unwrap();
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
    // 3 messages in the budget + 1 held + what fits in the pipe and the queues, nothing more.
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
    let (a, mut rx) = spawn(x, config);
    a.send(ChannelId(0x30), Bytes::from(vec![7u8; 100_000]))
        .await
        .unwrap();
    let error = tokio::time::timeout(limit * 3, next_error(&mut rx))
        .await
        .expect("a peer that never reads is detected");
    assert!(
        matches!(error, StopReason::Timeout(TimeoutKind::Pong)),
        "{error:?}"
    );
    assert_eq!(t0.elapsed(), limit);
    assert!(!a.is_running());
}

#[tokio::test(start_paused = true)]
async fn flush_stop_returns_within_the_flush_timeout_when_the_peer_does_not_read() {
    let (x, _y) = tokio::io::duplex(64);
    let config = Config::default().with_flush_timeout(Duration::from_secs(5));
    let (a, mut rx) = spawn(x, config);
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
    assert!(
        matches!(error, StopReason::Timeout(TimeoutKind::Flush)),
        "{error:?}"
    );
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
    let (a, _a_rx) = spawn(x, config);
    fill(&a).await;
    let a = std::sync::Arc::new(a);
    let sender = tokio::spawn({
        let a = a.clone();
        async move { a.send(ChannelId(0x30), Bytes::from_static(b"last")).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!sender.is_finished(), "the queue was full");
    // The peer starts reading: the queue drains and the waiting send gets in.
    let (_b, mut b_rx) = spawn(y, Config::default());
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
    let (a, _a_rx) = spawn(x, config);
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

/// What the owner keeps alive for the connection (a transport's slot) goes as soon as the
/// connection ends, though nobody reads the inbox.
#[tokio::test(start_paused = true)]
async fn the_on_close_value_is_dropped_when_the_connection_ends() {
    struct Slot(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Slot {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let freed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (x, y) = tokio::io::duplex(4096);
    let (a, _inbox) = MConnection::spawn_with(
        PlainStream::new(x),
        &channels(),
        Config::default(),
        Slot(freed.clone()),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!freed.load(std::sync::atomic::Ordering::SeqCst));
    drop(y); // the peer goes away
    a.closed().await;
    assert!(freed.load(std::sync::atomic::Ordering::SeqCst));
}

/// Bytes the stream received before the connection started (read together with the NodeInfo
/// exchange, say, and left in the secret stream's buffer) are delivered at once, not when
/// the next bytes arrive.
#[tokio::test]
async fn bytes_buffered_before_the_start_are_delivered() {
    use mukan_node_key::NodeKey;
    use mukan_secret_conn::SecretStream;

    let (a, b) = tokio::io::duplex(1 << 16);
    let sc = mukan_secret_conn::Config::default();
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let (sa, sb) = tokio::join!(
        SecretStream::handshake(a, &ka, &sc),
        SecretStream::handshake(b, &kb, &sc)
    );
    let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());
    // One write: a 5-byte preamble, then a packet on channel 0x20.
    let mut wire = bytes::BytesMut::from(&b"hello"[..]);
    mukan_mconn::Packet::Msg(mukan_mconn::PacketMsg {
        channel: ChannelId(0x20),
        eof: true,
        data: Bytes::from_static(b"hi"),
    })
    .encode(&mut wire);
    sa.write_all(&wire).await.unwrap();
    sa.flush().await.unwrap();
    let mut preamble = [0u8; 5];
    sb.read_exact(&mut preamble).await.unwrap();
    assert_eq!(&preamble, b"hello");
    // The packet is in `sb`'s buffer now, and nothing more is coming.
    let (_conn, mut rx) = MConnection::spawn(sb, &channels(), Config::default()).unwrap();
    let (channel, message) = tokio::time::timeout(Duration::from_secs(10), next_message(&mut rx))
        .await
        .expect("the buffered packet is delivered without more bytes arriving");
    assert_eq!(channel, ChannelId(0x20));
    assert_eq!(message, Bytes::from_static(b"hi"));
    drop(sa);
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
            let (a, a_rx) =
                MConnection::spawn(PlainStream::new(x), &channels(), node.clone()).unwrap();
            let (b, b_rx) =
                MConnection::spawn(PlainStream::new(y), &channels(), peer.clone()).unwrap();
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
