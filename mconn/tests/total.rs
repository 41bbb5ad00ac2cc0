//! Connections drawing from node-wide budgets (`Config::send_total` / `recv_total`), through
//! the sans-IO core on a virtual clock: fair shares, per-connection limits on top, channel
//! priorities within a connection, an urgent message through a saturated budget, and liveness
//! (pings and pongs pass an exhausted budget; held reading freezes the pong deadline and sends
//! keep-alive pongs).
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mukan_mconn::{Budget, Config, Error, MConnState, Packet, PacketMsg};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, InboxItem};

const BULK: ChannelId = ChannelId(0x30);
const URGENT: ChannelId = ChannelId(0x31);

fn channels() -> [ChannelDescriptor; 2] {
    [
        ChannelDescriptor::new(BULK, NonZeroU32::new(1).unwrap())
            .with_send_queue_capacity(NonZeroUsize::new(16).unwrap()),
        ChannelDescriptor::new(URGENT, NonZeroU32::new(10).unwrap()),
    ]
}

fn nz(v: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(v)
}

/// A node's connections sharing `send` / `recv` budgets, per-connection rates off.
fn node(n: usize, send: Option<u64>, recv: Option<u64>, t0: Instant) -> Vec<MConnState> {
    let send = send.map(|r| Budget::new(nz(r).unwrap(), t0));
    let recv = recv.map(|r| Budget::new(nz(r).unwrap(), t0));
    let config = Config::default()
        .with_rates(None, None)
        .with_totals(send, recv);
    (0..n)
        .map(|_| MConnState::new(&channels(), config.clone(), t0).unwrap())
        .collect()
}

fn fill(s: &mut MConnState, ch: ChannelId, msg: &Bytes) {
    while s.can_send(ch) {
        s.send(ch, msg.clone()).unwrap();
    }
}

/// Runs the connections' send sides until `end`, keeping every `BULK` queue full, and counts
/// the bytes each writes. `on_write(i, now, bytes)` sees every write.
fn run_senders(
    conns: &mut [MConnState],
    now: &mut Instant,
    end: Instant,
    mut on_write: impl FnMut(usize, Instant, &[u8]),
) -> Vec<u64> {
    let bulk = Bytes::from(vec![0x11; 4000]);
    let mut sent = vec![0u64; conns.len()];
    // Packets are written into a connection's buffer as they are made, and counted when the
    // core says to flush them.
    let mut outs: Vec<BytesMut> = conns.iter().map(|_| BytesMut::new()).collect();
    while *now < end {
        for ((i, c), out) in conns.iter_mut().enumerate().zip(&mut outs) {
            fill(c, BULK, &bulk);
            c.handle_timeout(*now).unwrap();
            while c.poll_transmit(*now, out) {
                sent[i] += out.len() as u64;
                on_write(i, *now, out);
                out.clear();
            }
        }
        let next = conns
            .iter()
            .filter_map(MConnState::poll_timeout)
            .min()
            .unwrap();
        *now = next.clamp(
            *now + Duration::from_micros(1),
            *now + Duration::from_millis(1),
        );
    }
    sent
}

fn within(got: u64, want: f64, tol: f64) -> bool {
    (got as f64 / want - 1.0).abs() <= tol
}

#[test]
fn connections_share_the_send_total_fairly() {
    let t0 = Instant::now();
    let mut conns = node(5, Some(1_000_000), None, t0);
    let mut now = t0;
    run_senders(
        &mut conns,
        &mut now,
        t0 + Duration::from_secs(1),
        |_, _, _| {},
    );
    let sent = run_senders(
        &mut conns,
        &mut now,
        t0 + Duration::from_secs(11),
        |_, _, _| {},
    );
    let total: u64 = sent.iter().sum();
    assert!(within(total, 10_000_000.0, 0.01), "{sent:?}");
    for s in &sent {
        assert!(within(*s, 2_000_000.0, 0.02), "{sent:?}");
    }
}

#[test]
fn a_connections_own_rate_applies_on_top_of_the_total() {
    let t0 = Instant::now();
    let total = Budget::new(nz(1_000_000).unwrap(), t0);
    let shared = Config::default().with_totals(Some(total), None);
    let slow = shared.clone().with_rates(nz(100_000), None);
    let fast = shared.with_rates(None, None);
    let mut conns = vec![
        MConnState::new(&channels(), slow, t0).unwrap(),
        MConnState::new(&channels(), fast, t0).unwrap(),
    ];
    let mut now = t0;
    run_senders(
        &mut conns,
        &mut now,
        t0 + Duration::from_secs(1),
        |_, _, _| {},
    );
    let sent = run_senders(
        &mut conns,
        &mut now,
        t0 + Duration::from_secs(11),
        |_, _, _| {},
    );
    assert!(within(sent[0], 1_000_000.0, 0.03), "{sent:?}");
    assert!(within(sent[1], 9_000_000.0, 0.03), "{sent:?}");
}

#[test]
fn channel_priorities_hold_within_a_connection_under_the_total() {
    let t0 = Instant::now();
    let mut conns = node(2, Some(500_000), None, t0);
    let urgent_bulk = Bytes::from(vec![0x22; 4000]);
    let mut now = t0;
    let end = t0 + Duration::from_secs(10);
    let mut per_channel = [0u64; 2];
    let mut decoder = mukan_mconn::PacketDecoder::new(2000);
    let mut outs = [BytesMut::new(), BytesMut::new()];
    while now < end {
        for ((i, c), out) in conns.iter_mut().enumerate().zip(&mut outs) {
            fill(c, BULK, &urgent_bulk);
            if i == 0 {
                fill(c, URGENT, &urgent_bulk);
            }
            c.handle_timeout(now).unwrap();
            while c.poll_transmit(now, out) {
                if i == 0 {
                    while let Some(Packet::Msg(m)) = decoder.decode(out).unwrap() {
                        per_channel[usize::from(m.channel == URGENT)] += m.data.len() as u64;
                    }
                }
                out.clear();
            }
        }
        let next = conns
            .iter()
            .filter_map(MConnState::poll_timeout)
            .min()
            .unwrap();
        now = next.clamp(
            now + Duration::from_micros(1),
            now + Duration::from_millis(1),
        );
    }
    // Priority 10 against 1; the connection gets half of the total.
    let ratio = per_channel[1] as f64 / per_channel[0] as f64;
    assert!((ratio - 10.0).abs() <= 1.5, "{per_channel:?}");
    let total: u64 = per_channel.iter().sum();
    assert!(within(total, 2_500_000.0, 0.05), "{per_channel:?}");
}

#[test]
fn an_urgent_message_goes_out_within_a_round_of_a_saturated_total() {
    // 20 connections saturate 2 MB/s with bulk traffic; a 100-byte message on the urgent
    // channel of one of them is written within about a round (20 grants of one packet,
    // 11 ms), not after a flush throttle (100 ms) or behind the backlog.
    let t0 = Instant::now();
    let mut conns = node(20, Some(2_000_000), None, t0);
    let mut now = t0;
    run_senders(
        &mut conns,
        &mut now,
        t0 + Duration::from_secs(1),
        |_, _, _| {},
    );
    let mut worst = Duration::ZERO;
    for k in 0..50u32 {
        let i = (k as usize * 7) % 20;
        let queued_at = now;
        conns[i].send(URGENT, Bytes::from(vec![0x77; 100])).unwrap();
        let mut arrived = None;
        let mut decoder = mukan_mconn::PacketDecoder::new(2000);
        let end = now + Duration::from_millis(200);
        run_senders(&mut conns, &mut now, end, |w, t, bytes| {
            if w != i || arrived.is_some() {
                return;
            }
            let mut b = BytesMut::from(bytes);
            while let Ok(Some(p)) = decoder.decode(&mut b) {
                if matches!(
                    p,
                    Packet::Msg(PacketMsg {
                        channel: URGENT,
                        ..
                    })
                ) {
                    arrived = Some(t);
                }
            }
        });
        let waited = arrived.expect("the urgent message was written") - queued_at;
        worst = worst.max(waited);
    }
    assert!(worst <= Duration::from_millis(15), "worst {worst:?}");
}

#[test]
fn pings_and_pongs_pass_an_exhausted_send_total() {
    let t0 = Instant::now();
    let mut conns = node(2, Some(100_000), None, t0);
    let mut now = t0;
    // Connection 0 exhausts the budget; connection 1 must wait for data...
    run_senders(
        &mut conns[..1],
        &mut now,
        t0 + Duration::from_secs(2),
        |_, _, _| {},
    );
    conns[1].send(BULK, Bytes::from(vec![1; 2000])).unwrap();
    let mut out = BytesMut::new();
    let mut wrote = 0;
    while conns[1].poll_transmit(now, &mut out) {
        wrote += out.len();
        out.clear();
    }
    let before = conns[1].status(now).send.bytes;
    // ...but a ping from its peer is answered at once.
    let mut ping = BytesMut::new();
    Packet::Ping.encode(&mut ping);
    conns[1].handle_read(&ping, now).unwrap();
    let mut out = BytesMut::new();
    assert!(conns[1].poll_transmit(now, &mut out));
    assert!(out.ends_with(&[0x02, 0x12, 0x00]), "{out:?} after {wrote}");
    assert_eq!(conns[1].status(now).send.bytes - before, out.len() as u64);
}

/// A stream of full packets on `BULK`, `n` bytes of it.
fn wire(n: usize) -> Bytes {
    let mut w = BytesMut::new();
    while w.len() < n {
        Packet::Msg(PacketMsg {
            channel: BULK,
            eof: true,
            data: Bytes::from(vec![0x33; 1024]),
        })
        .encode(&mut w);
    }
    w.freeze()
}

/// Endless streams of full packets, one per connection.
struct Streams {
    stream: Bytes,
    pos: Vec<usize>,
}

impl Streams {
    fn new(n: usize) -> Self {
        Self {
            stream: wire(1 << 20),
            pos: vec![0; n],
        }
    }

    /// Reads for every connection whenever the budgets allow, at most `chunk` bytes a read,
    /// until `end`; bytes read by each.
    fn run(
        &mut self,
        conns: &mut [MConnState],
        now: &mut Instant,
        end: Instant,
        chunk: usize,
    ) -> Vec<u64> {
        let len = self.stream.len();
        let mut read = vec![0u64; conns.len()];
        while *now < end {
            for (i, c) in conns.iter_mut().enumerate() {
                c.handle_timeout(*now).unwrap();
                let mut n = 0;
                while c.read_ready(*now) && n < 100 {
                    let cap = c.read_allowance().unwrap().min(chunk);
                    let start = self.pos[i] % len;
                    let take = cap.min(len - start);
                    c.handle_read(&self.stream[start..start + take], *now)
                        .unwrap();
                    while let Some(ev) = c.poll_event() {
                        assert!(matches!(ev, InboxItem::Received { .. }));
                    }
                    self.pos[i] += take;
                    read[i] += take as u64;
                    n += 1;
                }
                let mut out = BytesMut::new();
                while c.poll_transmit(*now, &mut out) {
                    out.clear();
                }
            }
            let next = conns
                .iter()
                .filter_map(MConnState::poll_timeout)
                .min()
                .unwrap();
            *now = next.clamp(
                *now + Duration::from_micros(1),
                *now + Duration::from_millis(1),
            );
        }
        read
    }
}

#[test]
fn connections_share_the_receive_total_fairly() {
    let t0 = Instant::now();
    let mut conns = node(5, None, Some(1_000_000), t0);
    let mut now = t0;
    let mut streams = Streams::new(conns.len());
    streams.run(&mut conns, &mut now, t0 + Duration::from_secs(1), 32 * 1024);
    let read = streams.run(
        &mut conns,
        &mut now,
        t0 + Duration::from_secs(11),
        32 * 1024,
    );
    let total: u64 = read.iter().sum();
    assert!(within(total, 10_000_000.0, 0.01), "{read:?}");
    for r in &read {
        assert!(within(*r, 2_000_000.0, 0.02), "{read:?}");
    }
}

#[test]
fn held_reading_freezes_the_pong_deadline_and_sends_keepalive_pongs() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let budget = Budget::new(nz(100_000).unwrap(), t0);
    let config = Config::default()
        .with_rates(None, None)
        .with_ping(Duration::from_secs(10), Duration::from_secs(6))
        .with_totals(None, Some(budget));
    let mut s = MConnState::new(&channels(), config, t0).unwrap();
    // 3 MB arrive at once against 100 kB/s: reading is held back for about 30 s.
    assert!(s.read_ready(t0));
    s.handle_read(&wire(3_000_000), t0).unwrap();
    while s.poll_event().is_some() {}
    let mut now = t0;
    let mut pongs = Vec::new();
    let mut pings = 0;
    while now < at(25_000) {
        assert!(!s.read_ready(now), "held at {:?}", now - t0);
        s.handle_timeout(now)
            .unwrap_or_else(|e| panic!("{e} at {:?}", now - t0));
        let mut out = BytesMut::new();
        while s.poll_transmit(now, &mut out) {}
        pings += out.windows(3).filter(|w| *w == [0x02, 0x0a, 0x00]).count();
        if out.windows(3).any(|w| w == [0x02, 0x12, 0x00]) {
            pongs.push(now - t0);
        }
        now = s
            .poll_timeout()
            .unwrap()
            .max(now + Duration::from_micros(1));
    }
    // Our pings went out (10 s, 20 s); their pongs are stuck behind the unread data, and the
    // deadline does not run meanwhile.
    assert_eq!(pings, 2);
    // A keep-alive pong every pong_timeout / 3 (2 s) for the peer's sake.
    assert!(pongs.len() >= 12, "{pongs:?}");
    for w in pongs.windows(2) {
        assert!(w[1] - w[0] <= Duration::from_millis(2001), "{pongs:?}");
    }
    // Once reading resumes, the deadline runs again: with no pong, the connection fails.
    let resumed = at(31_000);
    assert!(s.read_ready(resumed));
    let mut failed = None;
    let mut now = resumed;
    while now < resumed + Duration::from_secs(30) {
        if let Err(e) = s.handle_timeout(now) {
            failed = Some((e, now));
            break;
        }
        let _ = s.read_ready(now);
        now = s
            .poll_timeout()
            .unwrap()
            .max(now + Duration::from_micros(1));
    }
    let (e, when) = failed.expect("a silent peer still times out");
    assert!(matches!(e, Error::PongTimeout));
    assert!(
        when - resumed <= Duration::from_secs(6),
        "{:?}",
        when - resumed
    );
}
