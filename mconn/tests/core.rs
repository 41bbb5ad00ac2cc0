//! Tests of the sans-IO core on a virtual clock: two `MConnState`s back to back.
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mukan_mconn::{Config, DecodeError, Error, MConnState, Packet, PacketMsg};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, InboxItem, TrySendError};
use proptest::prelude::*;

fn desc(id: u8, priority: u32) -> ChannelDescriptor {
    ChannelDescriptor::new(ChannelId(id), NonZeroU32::new(priority).unwrap())
}

fn unlimited() -> Config {
    Config::default().with_rates(None, None)
}

/// Collects everything `s` wants to write right now.
fn drain(s: &mut MConnState, now: Instant) -> BytesMut {
    let mut out = BytesMut::new();
    while s.poll_transmit(now, &mut out) {}
    out
}

/// The messages delivered so far (their leases released at once).
fn received(s: &mut MConnState) -> Vec<(ChannelId, Bytes)> {
    let mut v = Vec::new();
    while let Some(item) = s.poll_event() {
        match item {
            InboxItem::Received {
                channel, message, ..
            } => v.push((channel, message)),
            other => panic!("unexpected item {other:?}"),
        }
    }
    v
}

fn msg_packet(channel: u8, eof: bool, data: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    Packet::Msg(PacketMsg {
        channel: ChannelId(channel),
        eof,
        data: Bytes::copy_from_slice(data),
    })
    .encode(&mut b);
    b
}

// ---------------------------------------------------------------------------------------------
// Negative cases: each a typed error (the driver then closes the connection).

fn receiver(channels: &[ChannelDescriptor]) -> (MConnState, Instant) {
    let now = Instant::now();
    (MConnState::new(channels, unlimited(), now).unwrap(), now)
}

#[test]
fn unknown_channel_is_an_error() {
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    let r = s.handle_read(&msg_packet(0x21, true, b"x"), now);
    assert!(
        matches!(r, Err(Error::UnknownChannel(ChannelId(0x21)))),
        "{r:?}"
    );
    assert!(s.poll_event().is_none());
}

#[test]
fn message_over_channel_capacity_is_an_error() {
    let d = desc(0x20, 1).with_recv_message_capacity(NonZeroUsize::new(2000).unwrap());
    let (mut s, now) = receiver(&[d]);
    // 1024 + 976 = 2000: exactly at capacity is fine.
    s.handle_read(&msg_packet(0x20, false, &[1; 1024]), now)
        .unwrap();
    s.handle_read(&msg_packet(0x20, true, &[2; 976]), now)
        .unwrap();
    assert_eq!(received(&mut s)[0].1.len(), 2000);
    // 1024 + 977 = 2001: over, before EOF.
    s.handle_read(&msg_packet(0x20, false, &[1; 1024]), now)
        .unwrap();
    let r = s.handle_read(&msg_packet(0x20, false, &[2; 977]), now);
    assert!(
        matches!(
            r,
            Err(Error::MessageTooLarge {
                channel: ChannelId(0x20),
                len: 2001,
                max: 2000
            })
        ),
        "{r:?}"
    );
}

/// A channel ID of 0x80 or more takes two varint bytes, so a full chunk on it is one byte over
/// Go's packet limit (a full chunk on channel 1). We accept such chunks from a Go sender (it
/// sends them), and chunk our own one byte shorter on those channels so a Go receiver
/// (limit 1034 for a 1024-byte payload) accepts every packet we send.
#[test]
fn channel_ids_from_0x80_interoperate_both_ways() {
    let (mut s, now) = receiver(&[desc(0x20, 1), desc(0xd0, 1)]);
    // Go's chunking: 1024 bytes on 0xd0, a 1035-byte body.
    let full = msg_packet(0xd0, true, &[7; 1024]);
    assert_eq!(full.len(), 1035 + 2);
    s.handle_read(&full, now).unwrap();
    assert_eq!(
        received(&mut s),
        vec![(ChannelId(0xd0), Bytes::from(vec![7; 1024]))]
    );
    // One byte more is still refused.
    let r = s.handle_read(&msg_packet(0xd0, true, &[7; 1025]), now);
    assert!(
        matches!(
            r,
            Err(Error::PacketTooLarge {
                len: 1036,
                max: 1035
            })
        ),
        "{r:?}"
    );

    // Our side: a 3000-byte message on 0xd0 goes out in chunks whose bodies fit Go's limit.
    let now = Instant::now();
    let mut tx = MConnState::new(&[desc(0xd0, 1)], unlimited(), now).unwrap();
    let message = Bytes::from((0..3000u32).map(|i| i as u8).collect::<Vec<_>>());
    tx.send(ChannelId(0xd0), message.clone()).unwrap();
    let mut wire = drain(&mut tx, now);
    let mut go_limit = mukan_mconn::PacketDecoder::new(mukan_mconn::max_packet_size(1024));
    let mut got = Vec::new();
    while let Some(p) = go_limit.decode(&mut wire).unwrap() {
        let Packet::Msg(m) = p else { panic!("{p:?}") };
        assert_eq!(m.channel, ChannelId(0xd0));
        assert!(m.data.len() <= 1023, "{}", m.data.len());
        got.extend_from_slice(&m.data);
    }
    assert!(wire.is_empty());
    assert_eq!(got, message);
}

#[test]
fn packet_over_size_limit_is_an_error() {
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    // C5: payload = max_packet_msg_payload_size is delivered ...
    s.handle_read(&msg_packet(0x20, true, &[7; 1024]), now)
        .unwrap();
    assert_eq!(received(&mut s)[0].1.len(), 1024);
    // ... payload + 1 is not.
    let r = s.handle_read(&msg_packet(0x20, true, &[7; 1025]), now);
    assert!(
        matches!(
            r,
            Err(Error::PacketTooLarge {
                len: 1035,
                max: 1034
            })
        ),
        "{r:?}"
    );
}

#[test]
fn packet_with_no_oneof_is_an_error() {
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    let r = s.handle_read(&[0x00], now);
    assert!(
        matches!(r, Err(Error::Decode(DecodeError::EmptyPacket))),
        "{r:?}"
    );
}

#[test]
fn garbage_varint_is_an_error() {
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    let r = s.handle_read(&[0xff; 11], now);
    assert!(
        matches!(r, Err(Error::Decode(DecodeError::Varint))),
        "{r:?}"
    );
}

#[test]
fn garbage_bytes_are_an_error() {
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    let r = s.handle_read(&[0x01, 0x02, 0x03, 0x04, 0x05], now);
    assert!(
        matches!(r, Err(Error::Decode(DecodeError::Protobuf(_)))),
        "{r:?}"
    );
}

#[test]
fn eof_mid_packet_and_mid_message_are_errors() {
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    let p = msg_packet(0x20, true, b"hello");
    s.handle_read(&p[..4], now).unwrap();
    assert!(matches!(s.handle_eof(0), Error::UnexpectedEof));

    // C12: EOF between the packets of a multi-packet message; nothing delivered.
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    s.handle_read(&msg_packet(0x20, false, &[1; 1024]), now)
        .unwrap();
    assert!(matches!(s.handle_eof(0), Error::UnexpectedEof));
    assert!(s.poll_event().is_none());

    // Clean EOF between messages.
    let (mut s, _) = receiver(&[desc(0x20, 1)]);
    assert!(matches!(s.handle_eof(0), Error::ConnectionClosed));
}

#[test]
fn empty_message_is_delivered() {
    // C13: PacketMsg{eof: true} with no data is a 0-byte message.
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    s.handle_read(&msg_packet(0x20, true, b""), now).unwrap();
    assert_eq!(received(&mut s), vec![(ChannelId(0x20), Bytes::new())]);
}

#[test]
fn unsolicited_pongs_are_harmless_and_pings_are_answered_once() {
    let (mut s, now) = receiver(&[desc(0x20, 1)]);
    for _ in 0..3 {
        s.handle_read(&[0x02, 0x12, 0x00], now).unwrap();
    }
    assert!(drain(&mut s, now).is_empty());
    // A burst of pings is answered by one pong (Go's pong channel has capacity 1).
    for _ in 0..5 {
        s.handle_read(&[0x02, 0x0a, 0x00], now).unwrap();
    }
    assert_eq!(&drain(&mut s, now)[..], &[0x02, 0x12, 0x00]);
}

#[test]
fn the_lowest_ping_round_trip_is_in_the_status() {
    let config = unlimited().with_ping(Duration::from_secs(10), Duration::from_secs(5));
    let t0 = Instant::now();
    let mut s = MConnState::new(&[desc(1, 1)], config, t0).unwrap();
    // An unsolicited pong measures nothing.
    s.handle_read(&[0x02, 0x12, 0x00], t0).unwrap();
    assert_eq!(s.status(t0).min_ping, None);
    let mut at = t0;
    for rtt_ms in [300, 80, 200] {
        at += Duration::from_secs(10);
        s.handle_timeout(at).unwrap();
        assert_eq!(&drain(&mut s, at)[..], &[0x02, 0x0a, 0x00], "a ping");
        s.handle_read(&[0x02, 0x12, 0x00], at + Duration::from_millis(rtt_ms))
            .unwrap();
    }
    assert_eq!(s.status(at).min_ping, Some(Duration::from_millis(80)));
}

#[test]
fn local_send_errors() {
    let now = Instant::now();
    let d = desc(0x20, 1).with_send_queue_capacity(NonZeroUsize::new(2).unwrap());
    let mut s = MConnState::new(&[d], unlimited(), now).unwrap();
    assert_eq!(
        s.send(ChannelId(0x21), Bytes::new()),
        Err(TrySendError::UnknownChannel(ChannelId(0x21)))
    );
    s.send(ChannelId(0x20), Bytes::new()).unwrap();
    s.send(ChannelId(0x20), Bytes::new()).unwrap();
    assert!(!s.can_send(ChannelId(0x20)));
    assert_eq!(
        s.send(ChannelId(0x20), Bytes::new()),
        Err(TrySendError::Full)
    );
}

#[test]
fn config_errors() {
    let now = Instant::now();
    let bad = Config::default().with_ping(Duration::from_secs(10), Duration::from_secs(10));
    assert!(matches!(
        MConnState::new(&[desc(1, 1)], bad, now),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        MConnState::new(&[], Config::default(), now),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        MConnState::new(&[desc(1, 1), desc(1, 2)], Config::default(), now),
        Err(Error::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Chunking and reassembly: random messages on up to 8 channels, random read sizes.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_messages_arrive_intact_and_in_order(
        msgs in prop::collection::vec((0u8..8, prop::collection::vec(any::<u8>(), 0..5000)), 1..40),
        nchan in 1usize..=8,
        reads in prop::collection::vec(1usize..3000, 1..20),
    ) {
        let now = Instant::now();
        let cap = NonZeroUsize::new(5000).unwrap();
        let channels: Vec<_> = (0..nchan as u8)
            .map(|i| desc(0x20 + i, u32::from(i) + 1)
                .with_send_queue_capacity(NonZeroUsize::new(64).unwrap())
                .with_recv_message_capacity(cap))
            .collect();
        let mut a = MConnState::new(&channels, unlimited(), now).unwrap();
        let mut b = MConnState::new(&channels, unlimited(), now).unwrap();
        let mut expected: Vec<Vec<Bytes>> = vec![Vec::new(); nchan];
        for (ch, data) in &msgs {
            let i = usize::from(*ch) % nchan;
            let m = Bytes::from(data.clone());
            a.send(ChannelId(0x20 + i as u8), m.clone()).unwrap();
            expected[i].push(m);
        }
        let wire = drain(&mut a, now);
        let mut got: Vec<Vec<Bytes>> = vec![Vec::new(); nchan];
        let mut pos = 0;
        let mut k = 0;
        while pos < wire.len() {
            let n = reads[k % reads.len()].min(wire.len() - pos);
            b.handle_read(&wire[pos..pos + n], now).unwrap();
            pos += n;
            k += 1;
            for (ch, m) in received(&mut b) {
                got[usize::from(ch.0 - 0x20)].push(m);
            }
        }
        // A message held for room in its budget goes once the leases above are released.
        loop {
            b.handle_read(&[], now).unwrap();
            let more = received(&mut b);
            if more.is_empty() {
                break;
            }
            for (ch, m) in more {
                got[usize::from(ch.0 - 0x20)].push(m);
            }
        }
        prop_assert_eq!(got, expected);
        prop_assert!(matches!(b.handle_eof(0), Error::ConnectionClosed));
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduler fairness: priorities 1 and 5, both saturated.

#[test]
fn bytes_sent_follow_priorities() {
    let t0 = Instant::now();
    let channels = [desc(0x01, 1), desc(0x05, 5)];
    let config = Config::default().with_rates(NonZeroU64::new(500_000), None);
    let mut a = MConnState::new(&channels, config, t0).unwrap();
    let mut b = MConnState::new(&channels, unlimited(), t0).unwrap();
    let msg = Bytes::from(vec![0xab; 1000]);
    let mut now = t0;
    let mut per_channel = [0usize; 2];
    let mut out = BytesMut::new();
    while now < t0 + Duration::from_secs(20) {
        for ch in [0x01, 0x05] {
            while a.can_send(ChannelId(ch)) {
                a.send(ChannelId(ch), msg.clone()).unwrap();
            }
        }
        a.handle_timeout(now).unwrap();
        if a.poll_transmit(now, &mut out) {
            b.handle_read(&out.split(), now).unwrap();
            for (ch, m) in received(&mut b) {
                per_channel[usize::from(ch.0 == 0x05)] += m.len();
            }
        } else {
            now = a
                .poll_timeout()
                .unwrap()
                .max(now + Duration::from_millis(1));
        }
    }
    let ratio = per_channel[1] as f64 / per_channel[0] as f64;
    assert!(per_channel[0] > 0, "{per_channel:?}");
    assert!(
        (ratio - 5.0).abs() <= 1.0,
        "ratio {ratio} from {per_channel:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rate limit: bytes over 10 s of virtual time are within 10% of 10·R.

#[test]
fn send_rate_is_respected() {
    for rate in [50_000u64, 512_000, 5_120_000] {
        let t0 = Instant::now();
        let config = Config::default().with_rates(NonZeroU64::new(rate), None);
        let d = desc(0x40, 1).with_send_queue_capacity(NonZeroUsize::new(4).unwrap());
        let mut a = MConnState::new(&[d], config, t0).unwrap();
        let msg = Bytes::from(vec![1u8; 10_000]);
        let mut now = t0;
        let mut sent = 0usize;
        let end = t0 + Duration::from_secs(10);
        let mut out = BytesMut::new();
        while now < end {
            while a.can_send(ChannelId(0x40)) {
                a.send(ChannelId(0x40), msg.clone()).unwrap();
            }
            a.handle_timeout(now).unwrap();
            if a.poll_transmit(now, &mut out) {
                sent += out.split().len();
            } else {
                now = a
                    .poll_timeout()
                    .unwrap()
                    .max(now + Duration::from_micros(1));
            }
        }
        let target = 10 * rate as usize;
        let err = (sent as f64 - target as f64).abs() / target as f64;
        assert!(err <= 0.10, "rate {rate}: sent {sent} vs {target}");
    }
}

// ---------------------------------------------------------------------------------------------
// Ping / pong on a virtual clock.

#[test]
fn silent_peer_is_disconnected_within_ping_interval_plus_pong_timeout() {
    let t0 = Instant::now();
    let config = Config::default();
    let limit = t0 + config.ping_interval + config.pong_timeout;
    let mut a = MConnState::new(&[desc(1, 1)], config, t0).unwrap();
    let mut now = t0;
    let mut pings = 0;
    let err = loop {
        if let Err(e) = a.handle_timeout(now) {
            break (e, now);
        }
        let out = drain(&mut a, now);
        if out[..] == [0x02, 0x0a, 0x00] {
            pings += 1;
        }
        now = a.poll_timeout().unwrap();
        assert!(now <= limit, "still alive at {:?}", now - t0);
    };
    assert!(matches!(err.0, Error::PongTimeout));
    assert_eq!(err.1, limit);
    assert_eq!(pings, 1);
}

#[test]
fn answering_peer_stays_connected() {
    let t0 = Instant::now();
    let mut a = MConnState::new(&[desc(1, 1)], Config::default(), t0).unwrap();
    let mut b = MConnState::new(&[desc(1, 1)], Config::default(), t0).unwrap();
    let mut now = t0;
    let mut pongs = 0;
    while now < t0 + Duration::from_secs(600) {
        a.handle_timeout(now).unwrap();
        b.handle_timeout(now).unwrap();
        let ab = drain(&mut a, now);
        b.handle_read(&ab, now).unwrap();
        let ba = drain(&mut b, now);
        pongs += ba.windows(3).filter(|w| *w == [0x02, 0x12, 0x00]).count();
        a.handle_read(&ba, now).unwrap();
        let ab = drain(&mut a, now);
        b.handle_read(&ab, now).unwrap();
        now = a.poll_timeout().unwrap().min(b.poll_timeout().unwrap());
    }
    // Each side pings every 60 s and the other answers.
    assert!(pongs >= 9, "{pongs} pongs");
}

// ---------------------------------------------------------------------------------------------
// Flush policy.

#[test]
fn lone_message_is_flushed_at_once() {
    let t0 = Instant::now();
    let mut a = MConnState::new(&[desc(0x30, 1)], Config::default(), t0).unwrap();
    a.send(ChannelId(0x30), Bytes::from(vec![9u8; 100]))
        .unwrap();
    let mut out = BytesMut::new();
    assert!(
        a.poll_transmit(t0, &mut out),
        "a lone message must not wait"
    );
    // 1 (prefix) + 2 (field 3 key+len) + 6 (channel, eof, data key+len) + 100
    assert_eq!(out.len(), 109);
}

#[test]
fn backlog_is_batched_and_flushed_within_the_throttle() {
    let t0 = Instant::now();
    // Rate-limited with a backlog: packets are held to be written together, but never longer
    // than flush_throttle.
    let config = Config::default().with_rates(NonZeroU64::new(100_000), None);
    let throttle = config.flush_throttle;
    let d = desc(0x30, 1).with_send_queue_capacity(NonZeroUsize::new(100).unwrap());
    let mut a = MConnState::new(&[d], config, t0).unwrap();
    for _ in 0..100 {
        a.send(ChannelId(0x30), Bytes::from(vec![1u8; 1000]))
            .unwrap();
    }
    let mut now = t0;
    let mut first_unflushed: Option<Instant> = None;
    let mut writes = Vec::new();
    let mut flushed = 0u64;
    let mut out = BytesMut::new();
    while now < t0 + Duration::from_secs(2) {
        a.handle_timeout(now).unwrap();
        match a.poll_transmit(now, &mut out) {
            true => {
                let n = out.split().len();
                let since = first_unflushed.take().unwrap_or(now);
                assert!(now - since <= throttle, "held {:?}", now - since);
                writes.push(n);
                flushed += n as u64;
            }
            false => {
                // Bytes produced (counted by the meter) but not handed out yet.
                if first_unflushed.is_none() && a.status(now).send.bytes > flushed {
                    first_unflushed = Some(now);
                }
                now = a
                    .poll_timeout()
                    .unwrap()
                    .max(now + Duration::from_micros(1));
            }
        }
    }
    // Batches of about 100 ms of traffic (10 KB), not one write per packet.
    let big = writes.iter().filter(|&&n| n >= 5_000).count();
    assert!(big * 2 >= writes.len(), "writes {writes:?}");
}

#[test]
fn status_reports_queues_and_decay() {
    let t0 = Instant::now();
    let d = desc(0x30, 3).with_send_queue_capacity(NonZeroUsize::new(5).unwrap());
    let mut a = MConnState::new(&[d], unlimited(), t0).unwrap();
    a.send(ChannelId(0x30), Bytes::from(vec![0u8; 1000]))
        .unwrap();
    a.send(ChannelId(0x30), Bytes::from(vec![0u8; 1000]))
        .unwrap();
    let st = a.status(t0);
    assert_eq!(st.channels[0].send_queue_size, 2);
    assert_eq!(st.channels[0].send_queue_capacity, 5);
    assert_eq!(st.channels[0].priority, 3);
    let n = drain(&mut a, t0).len() as u64;
    assert_eq!(a.status(t0).channels[0].recently_sent, n);
    a.handle_timeout(t0 + Duration::from_secs(2)).unwrap();
    assert_eq!(a.status(t0).channels[0].recently_sent, n * 4 / 5);
    assert_eq!(a.status(t0 + Duration::from_secs(2)).send.bytes, n);
}

#[test]
fn recv_rate_limit_pauses_reading() {
    let t0 = Instant::now();
    let config = Config::default().with_rates(None, NonZeroU64::new(10_000));
    let mut b = MConnState::new(&[desc(0x20, 1)], config, t0).unwrap();
    assert!(b.read_ready(t0));
    let mut wire = BytesMut::new();
    for _ in 0..20 {
        wire.extend_from_slice(&msg_packet(0x20, true, &[0; 988]));
    }
    assert_eq!(wire.len(), 20_000);
    b.handle_read(&wire, t0).unwrap();
    assert_eq!(received(&mut b).len(), 20);
    // 20000 bytes against a burst of one packet (1036) at 10000 B/s: 1.8964 s of debt.
    assert!(!b.read_ready(t0));
    let ready = b.poll_timeout().unwrap();
    assert_eq!(ready, t0 + Duration::from_micros(1_896_400));
    assert!(!b.read_ready(ready - Duration::from_millis(1)));
    assert!(b.read_ready(ready));
}

#[test]
fn a_due_ping_arms_the_pong_deadline_even_if_never_written() {
    let config = unlimited().with_ping(Duration::from_secs(10), Duration::from_secs(5));
    let t0 = Instant::now();
    let mut s = MConnState::new(&[desc(1, 1)], config, t0).unwrap();
    // The ping falls due; the driver never gets to write it (the peer does not read).
    s.handle_timeout(t0 + Duration::from_secs(10)).unwrap();
    // The deadline is a wake-up: the driver will not sleep past it.
    assert!(s.poll_timeout().unwrap() <= t0 + Duration::from_secs(15));
    assert!(s.handle_timeout(t0 + Duration::from_secs(14)).is_ok());
    assert!(matches!(
        s.handle_timeout(t0 + Duration::from_secs(15)),
        Err(Error::PongTimeout)
    ));
}

// ---------------------------------------------------------------------------------------------
// Receive budgets: lease-gated delivery, the stall deadline, and the graceful stop's deadline.

/// A channel whose budget is `budget` bytes (each message costs its length + 64).
fn budgeted(id: u8, budget: usize) -> ChannelDescriptor {
    desc(id, 1).with_recv_message_capacity(NonZeroUsize::new(budget).unwrap())
}

fn take(s: &mut MConnState) -> Option<(ChannelId, Bytes, mukan_reactor_api::RecvLease)> {
    match s.poll_event()? {
        InboxItem::Received {
            channel,
            message,
            lease,
        } => Some((channel, message, lease)),
        other => panic!("unexpected item {other:?}"),
    }
}

#[test]
fn a_full_budget_holds_the_next_message_and_pauses_reading() {
    let (mut s, now) = receiver(&[budgeted(1, 200)]);
    let mut wire = msg_packet(1, true, &[b'a'; 50]);
    wire.extend_from_slice(&msg_packet(1, true, &[b'b'; 50]));
    wire.extend_from_slice(&msg_packet(1, true, &[b'c'; 50]));
    s.handle_read(&wire, now).unwrap();
    // a (114 bytes of budget) fits; b would make 228 > 200: held, c not even decoded.
    let (_, a, lease_a) = take(&mut s).unwrap();
    assert_eq!(a, Bytes::from(vec![b'a'; 50]));
    assert_eq!(lease_a.bytes(), 114);
    assert!(s.poll_event().is_none());
    let (budget, len) = s.held().unwrap();
    assert_eq!(
        (budget.channel(), budget.used(), len),
        (ChannelId(1), 114, 50)
    );
    assert!(!s.read_ready(now), "reading pauses while a message is held");
    // Still no room: nothing moves.
    s.handle_read(&[], now).unwrap();
    assert!(s.poll_event().is_none());
    // The lease goes back: b is delivered, then c is held in its turn.
    drop(lease_a);
    s.handle_read(&[], now).unwrap();
    let (_, b, lease_b) = take(&mut s).unwrap();
    assert_eq!(b, Bytes::from(vec![b'b'; 50]));
    assert!(s.poll_event().is_none());
    assert!(s.held().is_some());
    drop(lease_b);
    s.handle_read(&[], now).unwrap();
    let (_, c, _lease_c) = take(&mut s).unwrap();
    assert_eq!(c, Bytes::from(vec![b'c'; 50]));
    assert!(s.held().is_none());
    assert!(s.read_ready(now));
}

#[test]
fn a_message_larger_than_the_whole_budget_passes_alone() {
    let (mut s, now) = receiver(&[budgeted(1, 2000)]);
    let mut wire = msg_packet(1, false, &[1; 1024]);
    wire.extend_from_slice(&msg_packet(1, true, &[1; 976]));
    s.handle_read(&wire, now).unwrap();
    let (_, m, lease) = take(&mut s).unwrap();
    assert_eq!((m.len(), lease.bytes()), (2000, 2064));
}

#[test]
fn a_message_held_for_the_stall_timeout_is_a_slow_receiver() {
    let t0 = Instant::now();
    let config = unlimited().with_recv_stall_timeout(Duration::from_secs(10));
    let mut s = MConnState::new(&[budgeted(7, 100)], config, t0).unwrap();
    let mut wire = msg_packet(7, true, b"first");
    wire.extend_from_slice(&msg_packet(7, true, b"second"));
    s.handle_read(&wire, t0).unwrap();
    let _kept = take(&mut s).unwrap();
    assert!(s.held().is_some());
    // The stall deadline is a wake-up, and it fails the connection exactly then.
    assert!(s.poll_timeout().unwrap() <= t0 + Duration::from_secs(10));
    assert!(
        s.handle_timeout(t0 + Duration::from_secs(10) - Duration::from_nanos(1))
            .is_ok()
    );
    assert!(matches!(
        s.handle_timeout(t0 + Duration::from_secs(10)),
        Err(Error::SlowReceiver {
            channel: ChannelId(7)
        })
    ));
}

#[test]
fn a_message_delivered_before_the_stall_timeout_resets_it() {
    let t0 = Instant::now();
    let config = unlimited().with_recv_stall_timeout(Duration::from_secs(10));
    let mut s = MConnState::new(&[budgeted(7, 100)], config, t0).unwrap();
    let mut wire = msg_packet(7, true, b"first");
    wire.extend_from_slice(&msg_packet(7, true, b"second"));
    s.handle_read(&wire, t0).unwrap();
    let kept = take(&mut s).unwrap();
    drop(kept);
    let later = t0 + Duration::from_secs(9);
    s.handle_read(&[], later).unwrap();
    assert!(take(&mut s).is_some());
    assert!(s.handle_timeout(t0 + Duration::from_secs(30)).is_ok());
}

#[test]
fn the_last_held_message_goes_only_if_it_fits() {
    let (mut s, now) = receiver(&[budgeted(1, 100)]);
    let mut wire = msg_packet(1, true, b"one");
    wire.extend_from_slice(&msg_packet(1, true, b"two"));
    s.handle_read(&wire, now).unwrap();
    let first = take(&mut s).unwrap();
    assert!(s.take_held().is_none(), "no room: dropped");
    assert!(s.held().is_none());
    drop(first);

    let (mut s, now) = receiver(&[budgeted(1, 100)]);
    s.handle_read(&wire, now).unwrap();
    let first = take(&mut s).unwrap();
    drop(first);
    match s.take_held() {
        Some(InboxItem::Received { message, .. }) => assert_eq!(&message[..], b"two"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_graceful_stop_has_the_flush_timeout_to_finish() {
    let config = unlimited().with_flush_timeout(Duration::from_secs(3));
    let t0 = Instant::now();
    let mut s = MConnState::new(&[desc(1, 1)], config, t0).unwrap();
    assert!(!s.is_closing());
    s.close(t0);
    assert!(s.is_closing());
    assert!(s.poll_timeout().unwrap() <= t0 + Duration::from_secs(3));
    assert!(s.poll_timeout_while_writing().unwrap() <= t0 + Duration::from_secs(3));
    // A second close does not move the deadline.
    s.close(t0 + Duration::from_secs(2));
    assert!(s.handle_timeout(t0 + Duration::from_secs(2)).is_ok());
    assert!(matches!(
        s.handle_timeout(t0 + Duration::from_secs(3)),
        Err(Error::FlushTimeout)
    ));
}

#[test]
fn the_pong_deadline_does_not_run_while_reading_is_paused() {
    let config = unlimited().with_ping(Duration::from_secs(10), Duration::from_secs(5));
    let t0 = Instant::now();
    let mut s = MConnState::new(&[budgeted(1, 100)], config, t0).unwrap();
    let at = |secs| t0 + Duration::from_secs(secs);
    s.handle_timeout(at(10)).unwrap();
    let _ = drain(&mut s, at(10)); // the ping is written; deadline 15 s
    // At 12 s a message is held for room: reading pauses.
    let mut wire = msg_packet(1, true, b"kept");
    wire.extend_from_slice(&msg_packet(1, true, b"held"));
    s.handle_read(&wire, at(12)).unwrap();
    let kept = take(&mut s).unwrap();
    assert!(!s.read_ready(at(12)));
    // Paused for 8 s past the deadline: the pong may be waiting unread; no timeout, and the
    // deadline is not a wake-up while paused.
    assert!(s.handle_timeout(at(20)).is_ok());
    assert!(s.poll_timeout().unwrap() > at(15));
    // Resumed at 20 s: the 3 s that were left (12 → 15) run from now.
    drop(kept);
    s.handle_read(&[], at(20)).unwrap();
    assert!(s.read_ready(at(20)));
    assert!(s.handle_timeout(at(22)).is_ok());
    assert!(matches!(s.handle_timeout(at(23)), Err(Error::PongTimeout)));
}
