//! B7 and C10 of the bad-input catalogue (`conformance-tests/BAD_INPUT.md`), as figures: an
//! evil peer ([`crate::evil`]) on its own thread floods the node (empty secret-connection
//! frames; pings), and the node's CPU is the process's minus that thread's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mukan_mconn::{Config as MConfig, Packet};
use mukan_secret_conn::SEALED_FRAME_LEN;
use tokio::sync::{oneshot, watch};

use crate::evil::{
    EvilWriter, PeerThread, ReadStats, current_tid, message_packets, pings_due, read_loop,
    seal_into, thread_cpu_ns, upgrade,
};
use crate::net::{DATA0, Hub, LoadReactor, MIB, RATE, STREAM, key, pool, src_ip, stream_message};
use crate::{Opts, Report};

/// The judgement of B7's CPU figure: the node's CPU for a flood of empty frames against its
/// CPU for the same number of frames carrying data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CpuBound {
    /// Node CPU per frame, empty frames, ns.
    pub(crate) empty_ns: f64,
    /// Node CPU per frame, full frames of data, ns.
    pub(crate) data_ns: f64,
}

impl CpuBound {
    /// At most twice the per-frame cost of real data (see load/README.md for why).
    pub(crate) const FACTOR: f64 = 2.0;

    pub(crate) fn ratio(&self) -> f64 {
        self.empty_ns / self.data_ns
    }
    /// Within the bound (a missing reference is a miss, not a pass).
    pub(crate) fn ok(&self) -> bool {
        self.data_ns > 0.0 && self.empty_ns.is_finite() && self.ratio() <= Self::FACTOR
    }
}

/// C10's throughput judgement: the data rate under the flood against the baseline.
pub(crate) fn keeps_throughput(baseline: f64, flood: f64) -> bool {
    baseline > 0.0 && flood >= 0.95 * baseline
}

/// Polls `cond` every 2 ms until it holds or `limit` passes; true if it held.
async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits (on the peer's runtime) until the driver moves `phase` to at least `want`; false if
/// the driver is gone.
async fn until_phase(rx: &mut watch::Receiver<u8>, want: u8) -> bool {
    rx.wait_for(|&p| p >= want).await.is_ok()
}

/// Single-threaded cost of opening one sealed frame, ns (the floor of any per-frame work).
fn open_floor_ns() -> f64 {
    let (mut sealer, mut opener) = crate::evil::frame_pair();
    const N: usize = 20_000;
    let mut wire = Vec::with_capacity(N * SEALED_FRAME_LEN);
    seal_into(&mut sealer, &vec![0x11u8; N * 1024], &mut wire);
    let me = current_tid().unwrap_or(0);
    let c0 = thread_cpu_ns(me);
    let mut frame = [0u8; SEALED_FRAME_LEN];
    for c in wire.chunks_exact(SEALED_FRAME_LEN) {
        frame.copy_from_slice(c);
        let _ = std::hint::black_box(opener.open(&mut frame).map(<[u8]>::len));
    }
    (thread_cpu_ns(me) - c0) as f64 / N as f64
}

// ---------------------------------------------------------------------------------------
// B7

/// A flood of valid zero-length secret-connection chunks, then one real message.
pub(crate) fn b7(opts: Opts, report: &mut Report) {
    // 1028 bytes on the wire per frame: 10,200 frames ~ 10 MiB, 102,000 ~ 100 MiB.
    let frames = opts.messages(10_200, 102_000) as usize;
    let floor_ns = open_floor_ns();
    let rt = crate::net::runtime(2);
    let peer = rt.block_on(async move {
        // Rates off: the reference (the same frames carrying data) runs at CPU speed, as
        // the flood does anyway (empty frames carry no packet bytes for the limiter).
        let mut t = mukan_transport::Config::default();
        t.mconn = MConfig::node_default().with_rates(None, None);
        let hub = Hub::start(4, t, LoadReactor::default()).await;
        let (addr, id) = (hub.addr, hub.id);
        let (phase_tx, mut phase_rx) = watch::channel(0u8);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let stats = Arc::new(ReadStats::default());
        let ref_payload = Arc::new(AtomicU64::new(0));
        let ref_frames = Arc::new(AtomicU64::new(0));
        let peer = {
            let (stats, ref_payload, ref_frames) =
                (stats.clone(), ref_payload.clone(), ref_frames.clone());
            PeerThread::spawn(move || async move {
                let k = key(8_000_000);
                let (mut w, reader, rd) =
                    match upgrade(src_ip(80, 0), addr, id, &k, Duration::from_secs(10)).await {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                let reading = tokio::spawn(read_loop(rd, reader, stats));
                let _ = ready_tx.send(Ok(()));
                if until_phase(&mut phase_rx, 1).await {
                    let _ = b7_reference(&mut w, frames, &ref_payload, &ref_frames).await;
                }
                if until_phase(&mut phase_rx, 2).await {
                    let _ = b7_flood(&mut w, frames).await;
                }
                let _ = until_phase(&mut phase_rx, 3).await;
                w.shutdown().await;
                let _ = tokio::time::timeout(Duration::from_secs(5), reading).await;
                // Stay alive (our CPU is subtracted) until the driver is done.
                let _ = until_phase(&mut phase_rx, 4).await;
            })
        };
        match tokio::time::timeout(Duration::from_secs(15), ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            other => {
                report.correct(
                    "B7 evil peer connected (handshake, node ID, NodeInfo)",
                    "yes",
                    format!("{other:?}"),
                    false,
                );
                let _ = phase_tx.send(4);
                hub.sw.stop().await;
                return peer;
            }
        }
        let _ = hub.wait_inbound(Duration::from_secs(5), |k| k >= 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Reference: the same number of frames, full of MConnection packets (64 KiB messages
        // on RATE, counted by the reactor).
        let (c0, t0) = (peer.node_cpu_ns(), Instant::now());
        let _ = phase_tx.send(1);
        let ref_done = wait_for(Duration::from_secs(120), || {
            let want = ref_payload.load(Ordering::Relaxed);
            want > 0 && hub.reactor.rate_bytes.load(Ordering::Relaxed) >= want
        })
        .await;
        let (c1, t1) = (peer.node_cpu_ns(), Instant::now());
        let nref = ref_frames.load(Ordering::Relaxed).max(1);
        let data_ns = (c1 - c0) as f64 / nref as f64;

        // The flood, then one message on DATA0 (the reactor's verifier checks it).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (c2, t2) = (peer.node_cpu_ns(), Instant::now());
        let _ = phase_tx.send(2);
        let verifier_next = || {
            hub.reactor
                .verifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .next[0]
        };
        let arrived = wait_for(Duration::from_secs(120), || {
            verifier_next() >= 1
                || hub.reactor.removed_total() > 0
                || stats.closed.load(Ordering::Relaxed)
        })
        .await
            && verifier_next() >= 1;
        let (c3, t3) = (peer.node_cpu_ns(), Instant::now());
        let removed_before = hub.reactor.removed_total();
        let closed_before = stats.closed.load(Ordering::Relaxed);
        let (ok, corrupted) = {
            let v = hub
                .reactor
                .verifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (v.ok, v.corrupted)
        };
        // Idle after the flood: a busy loop would show here.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let (c4, t4) = (peer.node_cpu_ns(), Instant::now());

        let flood_s = (t3 - t2).as_secs_f64();
        let flood_mib = (frames * SEALED_FRAME_LEN) as f64 / MIB;
        let empty_ns = (c3 - c2) as f64 / frames as f64;
        report.correct(
            "B7 message after the flood delivered; peer not disconnected before it",
            "yes",
            format!(
                "{}; intact {ok}, corrupted {corrupted}; removed {removed_before}, peer saw close: {closed_before}",
                if arrived { "delivered" } else { "not delivered" }
            ),
            arrived && ok == 1 && corrupted == 0 && removed_before == 0 && !closed_before,
        );
        report.info(
            "B7 flood of empty frames",
            format!(
                "{frames} frames, {flood_mib:.1} MiB in {flood_s:.2} s ({:.0} MiB/s)",
                flood_mib / flood_s
            ),
        );
        let bound = CpuBound { empty_ns, data_ns };
        report.target(
            "B7 node CPU per empty frame vs per frame of data",
            "<= 2x",
            format!(
                "{:.2}x: {empty_ns:.0} ns/frame = {:.1} ms/MiB empty; {data_ns:.0} ns/frame = {:.1} ms/MiB data ({nref} frames, {:.2} s{})",
                bound.ratio(),
                empty_ns * MIB / SEALED_FRAME_LEN as f64 / 1e6,
                data_ns * MIB / SEALED_FRAME_LEN as f64 / 1e6,
                (t1 - t0).as_secs_f64(),
                if ref_done { "" } else { ", cut short" }
            ),
            ref_done && bound.ok(),
        );
        report.info(
            "B7 floor: one thread opening a sealed frame",
            format!(
                "{floor_ns:.0} ns/frame; node per empty frame = {:.1}x that",
                empty_ns / floor_ns
            ),
        );
        let idle = (c4 - c3) as f64 / (t4 - t3).as_nanos() as f64;
        report.target(
            "B7 node CPU in the 1 s after the flood (no busy loop)",
            "< 5% of a core",
            format!("{:.2}%", idle * 100.0),
            idle < 0.05,
        );
        let _ = phase_tx.send(3);
        let _ = hub.wait_inbound(Duration::from_secs(5), |k| k == 0).await;
        report.info(
            "B7 removal after the peer closed",
            hub.reactor.removed_summary(),
        );
        let _ = phase_tx.send(4);
        hub.sw.stop().await;
        peer
    });
    drop(rt);
    let _ = peer.handle.join();
}

/// Writes at least `frames` full frames of 64 KiB messages on `RATE`; publishes the payload
/// total (before writing) and the frame count.
async fn b7_reference(
    w: &mut EvilWriter,
    frames: usize,
    payload: &AtomicU64,
    written: &AtomicU64,
) -> Result<(), String> {
    let msg = Bytes::from(vec![0x5au8; 64 * 1024]);
    let mut one = BytesMut::new();
    message_packets(RATE, &msg, &mut one);
    // Whole messages, enough for `frames` frames of 1024 bytes.
    let n = (frames * 1024).div_ceil(one.len());
    payload.store((n * msg.len()) as u64, Ordering::Relaxed);
    let mut plain = Vec::with_capacity(n * one.len());
    for _ in 0..n {
        plain.extend_from_slice(&one);
    }
    written.store(plain.len().div_ceil(1024) as u64, Ordering::Relaxed);
    for batch in plain.chunks(256 * 1024) {
        w.push_plain(batch);
        w.flush().await?;
    }
    Ok(())
}

/// Writes `frames` empty frames, then one message on `DATA0`.
async fn b7_flood(w: &mut EvilWriter, frames: usize) -> Result<(), String> {
    let mut left = frames;
    while left > 0 {
        let n = left.min(256);
        w.push_empty(n);
        w.flush().await?;
        left -= n;
    }
    let mut plain = BytesMut::new();
    message_packets(
        mukan_reactor_api::ChannelId(DATA0),
        &crate::net::data_message(&pool(), 0, 0),
        &mut plain,
    );
    w.push_plain(&plain);
    w.flush().await
}

// ---------------------------------------------------------------------------------------
// C10

/// What the C10 peer's writer did.
#[derive(Debug, Default)]
struct C10Sent {
    /// `STREAM` messages written.
    messages: AtomicU64,
    pings: AtomicU64,
    pongs: AtomicU64,
    /// The writer stopped (`messages` is final).
    done: std::sync::atomic::AtomicBool,
}

/// A steady data stream, then the same stream and a ping flood.
pub(crate) fn c10(opts: Opts, report: &mut Report) {
    let flood_secs = opts.secs(5, 30);
    let base_secs = if opts.full { 15 } else { 3 };
    let rate = opts.rate(10_000, 10_000);
    let rt = crate::net::runtime(2);
    let peer = rt.block_on(async move {
        // Node defaults: recv_rate 5,120,000 B/s sets the stream's steady rate.
        let hub = Hub::start(4, mukan_transport::Config::default(), LoadReactor::default()).await;
        let (addr, id) = (hub.addr, hub.id);
        let (phase_tx, mut phase_rx) = watch::channel(0u8);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let stats = Arc::new(ReadStats::default());
        let sent = Arc::new(C10Sent::default());
        let peer = {
            let (stats, sent) = (stats.clone(), sent.clone());
            PeerThread::spawn(move || async move {
                let k = key(8_100_000);
                let (mut w, reader, rd) =
                    match upgrade(src_ip(81, 0), addr, id, &k, Duration::from_secs(10)).await {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                let reading = tokio::spawn(read_loop(rd, reader, stats.clone()));
                let _ = ready_tx.send(Ok(()));
                if until_phase(&mut phase_rx, 1).await {
                    let _ = c10_write(&mut w, &phase_rx, rate, &stats, &sent).await;
                    sent.done.store(true, Ordering::Relaxed);
                }
                let _ = until_phase(&mut phase_rx, 4).await;
                w.shutdown().await;
                let _ = tokio::time::timeout(Duration::from_secs(5), reading).await;
                let _ = until_phase(&mut phase_rx, 5).await;
            })
        };
        match tokio::time::timeout(Duration::from_secs(15), ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            other => {
                report.correct(
                    "C10 evil peer connected (handshake, node ID, NodeInfo)",
                    "yes",
                    format!("{other:?}"),
                    false,
                );
                let _ = phase_tx.send(5);
                hub.sw.stop().await;
                return peer;
            }
        }
        let _ = hub.wait_inbound(Duration::from_secs(5), |k| k >= 1).await;
        let snap = |peer: &PeerThread| (hub.reactor.stream().bytes, peer.node_cpu_ns(), Instant::now());
        // Stream only: 2 s for the limiter's initial allowance, then the baseline.
        let _ = phase_tx.send(1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (b0, c0, t0) = snap(&peer);
        tokio::time::sleep(Duration::from_secs(base_secs)).await;
        let (b1, c1, t1) = snap(&peer);
        // The flood; the first second skipped (pings queue behind the stream's backlog).
        let _ = phase_tx.send(2);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (b2, c2, t2) = snap(&peer);
        let p0 = sent.pings.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(flood_secs)).await;
        let (b3, c3, t3) = snap(&peer);
        // Written in the measured window (the writer publishes its count once per write).
        let pings = sent.pings.load(Ordering::Relaxed) - p0;
        let ping_secs = (t3 - t2).as_secs_f64();
        let _ = phase_tx.send(3);
        // Everything written arrives, in order.
        let all = wait_for(Duration::from_secs(30), || {
            let s = sent.messages.load(Ordering::Relaxed);
            sent.done.load(Ordering::Relaxed) && hub.reactor.stream().next >= s
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let check = hub.reactor.stream();
        let total = sent.messages.load(Ordering::Relaxed);
        let removed = hub.reactor.removed_total();
        let closed = stats.closed.load(Ordering::Relaxed);
        let inbound = hub.inbound();

        let base_rate = (b1 - b0) as f64 / (t1 - t0).as_secs_f64();
        let flood_rate = (b3 - b2) as f64 / (t3 - t2).as_secs_f64();
        let base_cpu = (c1 - c0) as f64 / (t1 - t0).as_nanos() as f64;
        let flood_cpu = (c3 - c2) as f64 / (t3 - t2).as_nanos() as f64;
        report.correct(
            "C10 connection up through the flood",
            "no removal",
            format!(
                "removed: {}; peer saw close: {closed}; inbound {inbound}",
                hub.reactor.removed_summary()
            ),
            removed == 0 && !closed && inbound == 1 && !stats.bad.load(Ordering::Relaxed),
        );
        report.correct(
            "C10 stream messages delivered in order, intact",
            "all",
            format!(
                "{} of {total}; lost {}, dup/reordered {}, corrupted {}{}",
                check.next,
                check.lost,
                check.dup_or_reordered,
                check.corrupted,
                if all { "" } else { " (not all arrived)" }
            ),
            all && check.all_of(total),
        );
        let achieved = pings as f64 / ping_secs;
        report.target(
            "C10 ping flood achieved (one ping per sealed frame)",
            &format!(">= 95% of {rate}/s"),
            format!(
                "{achieved:.0}/s ({pings} in {ping_secs:.1} s); pongs back {}, node pings answered {}",
                stats.pongs.load(Ordering::Relaxed),
                sent.pongs.load(Ordering::Relaxed)
            ),
            achieved >= 0.95 * rate as f64,
        );
        report.target(
            "C10 stream throughput under the flood vs baseline",
            ">= 95%",
            format!(
                "{:.1}%: {:.0} vs {:.0} B/s ({:.0} s vs {:.0} s; node recv_rate 5,120,000 B/s)",
                flood_rate / base_rate * 100.0,
                flood_rate,
                base_rate,
                (t3 - t2).as_secs_f64(),
                (t1 - t0).as_secs_f64()
            ),
            keeps_throughput(base_rate, flood_rate),
        );
        report.target(
            "C10 node CPU during the flood",
            "< 1 core",
            format!(
                "{flood_cpu:.3} cores ({:.3} before it)",
                base_cpu
            ),
            flood_cpu < 1.0,
        );
        let _ = phase_tx.send(4);
        let _ = hub.wait_inbound(Duration::from_secs(5), |k| k == 0).await;
        let _ = phase_tx.send(5);
        hub.sw.stop().await;
        peer
    });
    drop(rt);
    let _ = peer.handle.join();
}

/// The C10 writer: `STREAM` messages as fast as the node takes them (phase 1), plus `rate`
/// pings per second, each in a sealed frame of its own (phase 2), until phase 3. Answers the
/// node's own pings.
async fn c10_write(
    w: &mut EvilWriter,
    phase: &watch::Receiver<u8>,
    rate: u64,
    stats: &ReadStats,
    sent: &C10Sent,
) -> Result<(), String> {
    let pool = pool();
    let mut seq = 0u64;
    let mut plain = BytesMut::new();
    let mut flood_start = None;
    let mut pings = 0u64;
    loop {
        let p = *phase.borrow();
        if p >= 3 {
            return Ok(());
        }
        if p == 2 {
            let start = *flood_start.get_or_insert_with(Instant::now);
            let due = pings_due(rate, start.elapsed());
            while pings < due {
                w.push_packet(&Packet::Ping);
                pings += 1;
            }
            sent.pings.store(pings, Ordering::Relaxed);
        }
        if stats.pong_owed.swap(false, Ordering::Relaxed) {
            w.push_packet(&Packet::Pong);
            sent.pongs.fetch_add(1, Ordering::Relaxed);
        }
        // 16 messages (16 KiB) per write: about 3 ms at the node's 5,120,000 B/s.
        plain.clear();
        for _ in 0..16 {
            message_packets(STREAM, &stream_message(&pool, seq), &mut plain);
            seq += 1;
        }
        w.push_plain(&plain);
        w.flush().await?;
        sent.messages.store(seq, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_bound_is_twice_the_data_cost_and_a_missing_reference_misses() {
        let ok = CpuBound {
            empty_ns: 1_900.0,
            data_ns: 1_000.0,
        };
        assert!(ok.ok());
        let busy = CpuBound {
            empty_ns: 2_100.0,
            data_ns: 1_000.0,
        };
        assert!(!busy.ok());
        let no_ref = CpuBound {
            empty_ns: 10.0,
            data_ns: 0.0,
        };
        assert!(!no_ref.ok());
    }

    #[test]
    fn throughput_is_kept_at_95_percent_of_a_nonzero_baseline() {
        assert!(keeps_throughput(5_000_000.0, 4_750_000.0));
        assert!(keeps_throughput(5_000_000.0, 5_100_000.0));
        assert!(!keeps_throughput(5_000_000.0, 4_749_000.0));
        assert!(!keeps_throughput(0.0, 0.0));
    }
}
