//! L9 and L10: the node-wide bandwidth budget (`[p2p] max_recv_rate_total` /
//! `max_send_rate_total`, `mukan_mconn::Budget`) under load. Many peers push (L9) or are
//! pushed to (L10) as fast as TCP lets them through a total budget; the node must hold the
//! budget, share it equally, lose nothing, disconnect nobody, and (L10) let a lone urgent
//! message through within a round.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_mconn::{Budget, BudgetStats, Config as MConfig, Inbox, MConnection};
use mukan_reactor_api::{ChannelId, InboxItem, Network as _, NodeId, SendError};

use crate::net::{
    BCAST, FLOW, Hub, LoadReactor, URGENT, connect_peer, key, quantile, runtime, sort, src_ip,
};
use crate::{Opts, Report};

/// The sizes of a run.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    peers: usize,
    /// The budget, bytes per second.
    budget: u64,
    /// The whole measured run.
    secs: u64,
    /// The accuracy and fairness window: the first `window` s of the run.
    window: u64,
    ping: Duration,
    pong: Duration,
}

/// Before measuring: the peers connect, the first burst goes, the queues fill.
const WARMUP: Duration = Duration::from_secs(2);

fn sizes(opts: Opts) -> Sizes {
    let secs = opts.secs(8, 300);
    // CI sizes ping every 4 s (pong timeout 3 s), so that a short run sees pings held up
    // behind the budget too; `--full` runs CometBFT's 60 s / 45 s for five minutes.
    let (ping, pong) = if opts.full { (60, 45) } else { (4, 3) };
    Sizes {
        peers: opts.peers(50, 50),
        budget: opts.rate(10_000_000, 10_000_000),
        secs,
        window: secs.min(30),
        ping: Duration::from_secs(ping),
        pong: Duration::from_secs(pong),
    }
}

fn budget(rate: u64) -> Budget {
    Budget::new(
        std::num::NonZeroU64::new(rate).unwrap_or(std::num::NonZeroU64::MIN),
        Instant::now(),
    )
}

/// Bytes per peer at one moment, the budget's counters, and when.
#[derive(Clone, Debug)]
struct Snap {
    at: Instant,
    bytes: Vec<u64>,
    stats: BudgetStats,
}

/// What a period between two snapshots shows.
struct Period {
    secs: f64,
    /// Payload bytes per second, all peers.
    aggregate: f64,
    /// Each peer's bytes over the fair share (aggregate / peers).
    shares: Vec<f64>,
    /// Packet bytes per second the budget counted.
    counted: f64,
    throttled: f64,
}

fn period(a: &Snap, b: &Snap) -> Period {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let per: Vec<f64> = a
        .bytes
        .iter()
        .zip(&b.bytes)
        .map(|(x, y)| (y - x) as f64)
        .collect();
    let total: f64 = per.iter().sum();
    let fair = total / per.len().max(1) as f64;
    Period {
        secs,
        aggregate: total / secs,
        shares: per.iter().map(|p| p / fair).collect(),
        counted: b.stats.used.saturating_sub(a.stats.used) as f64 / secs,
        throttled: b
            .stats
            .throttled
            .saturating_sub(a.stats.throttled)
            .as_secs_f64()
            / secs,
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// The accuracy and fairness rows of a period (correctness rows: they gate CI).
fn judge(report: &mut Report, id: &str, dir: &str, z: Sizes, p: &Period) {
    let want = z.budget as f64;
    let off = p.aggregate / want - 1.0;
    report.correct(
        &format!("{id} aggregate {dir} rate, {:.0} s (payload)", p.secs),
        &format!("{} B/s +-5%", z.budget),
        format!(
            "{:.0} B/s ({:+.1}%); packet bytes counted by the budget {:.0} B/s ({:+.1}%); throttled {:.0}% of the time",
            p.aggregate,
            off * 100.0,
            p.counted,
            (p.counted / want - 1.0) * 100.0,
            p.throttled * 100.0
        ),
        off.abs() <= 0.05,
    );
    let (lo, hi) = min_max(&p.shares);
    report.correct(
        &format!("{id} each peer's share of the fair share, {:.0} s", p.secs),
        "0.75 - 1.25",
        format!(
            "min {lo:.3} / max {hi:.3} over {} peers (fair share {:.0} B/s)",
            p.shares.len(),
            p.aggregate / p.shares.len().max(1) as f64
        ),
        lo >= 0.75 && hi <= 1.25,
    );
}

/// A peer's `FLOW` message `seq`: `[seq u64 LE][body]`, 4 KiB.
fn flow_message(seq: u64) -> Bytes {
    let mut m = vec![0x5au8; 4096];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    Bytes::from(m)
}

/// Counts the errors a peer's connection reports (the last item, if any); hands every
/// message to `on_message` (channel, bytes).
fn watch_errors(
    mut rx: Inbox,
    errors: Arc<Mutex<Vec<String>>>,
    mut on_message: impl FnMut(ChannelId, Bytes) + Send + 'static,
) {
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            match item {
                InboxItem::Stopped(reason) => errors
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(reason.to_string()),
                InboxItem::Received {
                    channel, message, ..
                } => on_message(channel, message),
                _ => {}
            }
        }
    });
}

fn disconnect_row(
    report: &mut Report,
    id: &str,
    z: Sizes,
    hub: &Hub,
    removed0: u64,
    errors: &Mutex<Vec<String>>,
) {
    let removed = hub.reactor.removed_total() - removed0;
    let errors = errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    report.correct(
        &format!("{id} peers disconnected (ping timeouts included)"),
        "0",
        format!(
            "node stops {removed} ({}), peer errors {} {:?}; {} s with pings every {} s, pong timeout {} s",
            hub.reactor.removed_summary(),
            errors.len(),
            errors.iter().take(3).collect::<Vec<_>>(),
            z.secs + WARMUP.as_secs(),
            z.ping.as_secs(),
            z.pong.as_secs()
        ),
        removed == 0 && errors.is_empty(),
    );
}

/// Takes the accuracy window's and the whole run's snapshots.
async fn measure(z: Sizes, snap: impl Fn() -> Snap) -> (Snap, Snap, Snap) {
    tokio::time::sleep(WARMUP).await;
    let s0 = snap();
    tokio::time::sleep(Duration::from_secs(z.window)).await;
    let s1 = snap();
    if z.secs > z.window {
        tokio::time::sleep(Duration::from_secs(z.secs - z.window)).await;
    }
    let s2 = snap();
    (s0, s1, s2)
}

// ---------------------------------------------------------------------------------------
// L9

/// N peers each push their `FLOW` as fast as they can into a node with a total receive
/// budget.
pub(crate) fn l9(opts: Opts, report: &mut Report) {
    let z = sizes(opts);
    runtime(2).block_on(async move {
        let total = budget(z.budget);
        let mut t = mukan_transport::Config::default();
        t.mconn = MConfig::node_default()
            .with_ping(z.ping, z.pong)
            .with_totals(None, Some(total.clone()));
        let hub = Hub::start(z.peers + 16, t, LoadReactor::default()).await;
        let peer_config = MConfig::node_default()
            .with_rates(None, None)
            .with_ping(z.ping, z.pong);
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut ids: Vec<NodeId> = Vec::new();
        let mut sent: Vec<Arc<AtomicU64>> = Vec::new();
        let mut conns: Vec<Arc<MConnection>> = Vec::new();
        let mut senders = Vec::new();
        for i in 0..z.peers {
            let k = key(9_000_000 + i as u32);
            let (conn, rx) = connect_peer(
                src_ip(90, i),
                hub.addr,
                hub.id,
                &k,
                peer_config.clone(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            let conn = Arc::new(conn);
            let count = Arc::new(AtomicU64::new(0));
            watch_errors(rx, errors.clone(), |_, _| {});
            let (c, n, stop) = (conn.clone(), count.clone(), stop.clone());
            senders.push(tokio::spawn(async move {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match c.send(FLOW, flow_message(seq)).await {
                        Ok(()) => {
                            seq += 1;
                            n.store(seq, Ordering::Relaxed);
                        }
                        Err(SendError::Timeout) => {}
                        Err(_) => break,
                    }
                }
            }));
            ids.push(k.node_id());
            sent.push(count);
            conns.push(conn);
        }
        assert!(
            hub.wait_inbound(Duration::from_secs(30), |k| k >= z.peers)
                .await
        );
        let removed0 = hub.reactor.removed_total();
        let snap = || {
            let flows = hub.reactor.flows();
            Snap {
                at: Instant::now(),
                bytes: ids
                    .iter()
                    .map(|id| flows.get(id).map_or(0, |f| f.bytes))
                    .collect(),
                stats: total.stats(Instant::now()),
            }
        };
        let (s0, s1, s2) = measure(z, snap).await;
        stop.store(true, Ordering::Relaxed);
        for s in senders {
            let _ = tokio::time::timeout(Duration::from_secs(15), s).await;
        }
        // Everything the peers queued arrives: the budget holds messages back, never drops.
        let sent: Vec<u64> = sent.iter().map(|n| n.load(Ordering::Relaxed)).collect();
        // What the kernel buffers hold (megabytes per peer) drains at the budget's rate: wait
        // while it does, until 5 s pass without a byte.
        let drain_start = Instant::now();
        let (mut last_bytes, mut last_progress) = (0u64, Instant::now());
        let drained = loop {
            let flows = hub.reactor.flows();
            let done = ids
                .iter()
                .zip(&sent)
                .all(|(id, &n)| flows.get(id).is_some_and(|f| f.next >= n));
            let bytes: u64 = flows.values().map(|f| f.bytes).sum();
            if bytes != last_bytes {
                (last_bytes, last_progress) = (bytes, Instant::now());
            }
            if done || last_progress.elapsed() >= Duration::from_secs(5) {
                break flows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let drain = drain_start.elapsed();

        judge(report, "L9", "receive", z, &period(&s0, &s1));
        if z.secs > z.window {
            let p = period(&s0, &s2);
            let (lo, hi) = min_max(&p.shares);
            report.info(
                &format!("L9 whole run, {:.0} s", p.secs),
                format!(
                    "{:.0} B/s ({:+.1}%), shares {lo:.3} - {hi:.3}",
                    p.aggregate,
                    (p.aggregate / z.budget as f64 - 1.0) * 100.0
                ),
            );
        }
        let (mut lost, mut dup, mut missing) = (0, 0, 0);
        for (id, &n) in ids.iter().zip(&sent) {
            let f = drained.get(id).copied().unwrap_or_default();
            lost += f.lost;
            dup += f.dup_or_reordered;
            missing += n.saturating_sub(f.next);
        }
        report.correct(
            "L9 messages lost / dup-or-reordered / not delivered after the senders stop",
            "0 / 0 / 0",
            format!(
                "{lost} / {dup} / {missing} of {} messages (4 KiB); the backlog took {:.1} s to drain",
                sent.iter().sum::<u64>(),
                drain.as_secs_f64()
            ),
            lost == 0 && dup == 0 && missing == 0,
        );
        disconnect_row(report, "L9", z, &hub, removed0, &errors);
        let st = total.stats(Instant::now());
        report.info(
            "L9 budget counters at the end",
            format!(
                "rate {} B/s, used {} B, throttled {:.1} s, {} members",
                st.rate,
                st.used,
                st.throttled.as_secs_f64(),
                st.members
            ),
        );
        for c in &conns {
            c.stop();
        }
        hub.sw.stop().await;
    });
}

// ---------------------------------------------------------------------------------------
// L10

/// The node broadcasts 1 KiB messages to N peers at twice what a total send budget allows
/// (every peer's queue stays full); a lone 100-byte message on the highest-priority channel
/// goes to one peer or another every 10 ms.
pub(crate) fn l10(opts: Opts, report: &mut Report) {
    let z = sizes(opts);
    runtime(2).block_on(async move {
        let total = budget(z.budget);
        let mut t = mukan_transport::Config::default();
        t.mconn = MConfig::node_default()
            .with_ping(z.ping, z.pong)
            .with_totals(Some(total.clone()), None);
        let hub = Hub::start(z.peers + 16, t, LoadReactor::default()).await;
        let peer_config = MConfig::node_default()
            .with_rates(None, None)
            .with_ping(z.ping, z.pong);
        let base = Instant::now();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let recording = Arc::new(AtomicBool::new(false));
        let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
        let urgent_got = Arc::new(AtomicUsize::new(0));
        let mut got: Vec<Arc<AtomicU64>> = Vec::new();
        let mut conns = Vec::new();
        let mut ids = Vec::new();
        for i in 0..z.peers {
            let k = key(10_000_000 + i as u32);
            let (conn, rx) = connect_peer(
                src_ip(100, i),
                hub.addr,
                hub.id,
                &k,
                peer_config.clone(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            let bytes = Arc::new(AtomicU64::new(0));
            let (b, rec, lat, ug) = (
                bytes.clone(),
                recording.clone(),
                latencies.clone(),
                urgent_got.clone(),
            );
            watch_errors(rx, errors.clone(), move |channel, message| {
                b.fetch_add(message.len() as u64, Ordering::Relaxed);
                if channel == URGENT && message.len() >= 8 {
                    let mut ts = [0u8; 8];
                    ts.copy_from_slice(&message[..8]);
                    let sent = u64::from_le_bytes(ts);
                    let now = base.elapsed().as_nanos() as u64;
                    ug.fetch_add(1, Ordering::Relaxed);
                    if rec.load(Ordering::Relaxed) {
                        lat.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(now.saturating_sub(sent) as f64 / 1e6);
                    }
                }
            });
            got.push(bytes);
            conns.push(conn);
            ids.push(k.node_id());
        }
        assert!(
            hub.wait_inbound(Duration::from_secs(30), |k| k >= z.peers)
                .await
        );
        let removed0 = hub.reactor.removed_total();
        let stop = Arc::new(AtomicBool::new(false));
        // The broadcast: twice the budget, 1 KiB messages.
        let per_sec = (2 * z.budget / (z.peers as u64 * 1024)).max(1);
        let full = Arc::new(AtomicU64::new(0));
        let broadcaster = {
            let (sw, stop, full) = (hub.sw.clone(), stop.clone(), full.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_sec));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let body = Bytes::from(vec![0xb0u8; 1024]);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let r = sw.broadcast(BCAST, body.clone());
                    full.fetch_add(
                        r.count(mukan_reactor_api::BroadcastOutcome::Full) as u64,
                        Ordering::Relaxed,
                    );
                }
            })
        };
        // The urgent messages: one every 10 ms, to each peer in turn.
        let urgent_sent = Arc::new(AtomicUsize::new(0));
        let prober = {
            let (sw, stop, sent) = (hub.sw.clone(), stop.clone(), urgent_sent.clone());
            let ids = ids.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut j = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let Some(peer) = sw.peer(&ids[j % ids.len()]) else {
                        continue;
                    };
                    j += 1;
                    let mut m = vec![0u8; 100];
                    m[..8].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_le_bytes());
                    if peer.try_send(URGENT, Bytes::from(m)).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let snap = || Snap {
            at: Instant::now(),
            bytes: got.iter().map(|g| g.load(Ordering::Relaxed)).collect(),
            stats: total.stats(Instant::now()),
        };
        let rec = recording.clone();
        let (s0, s1, s2) = measure(z, || {
            rec.store(true, Ordering::Relaxed);
            snap()
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        recording.store(false, Ordering::Relaxed);
        let _ = broadcaster.await;
        let _ = prober.await;
        // The urgent messages already queued arrive within a round or so.
        tokio::time::sleep(Duration::from_millis(500)).await;

        judge(report, "L10", "send", z, &period(&s0, &s1));
        if z.secs > z.window {
            let p = period(&s0, &s2);
            let (lo, hi) = min_max(&p.shares);
            report.info(
                &format!("L10 whole run, {:.0} s", p.secs),
                format!(
                    "{:.0} B/s ({:+.1}%), shares {lo:.3} - {hi:.3}",
                    p.aggregate,
                    (p.aggregate / z.budget as f64 - 1.0) * 100.0
                ),
            );
        }
        report.info(
            "L10 broadcast",
            format!(
                "{per_sec} x 1 KiB to {} peers a second (twice the budget); {} Full outcomes",
                z.peers,
                full.load(Ordering::Relaxed)
            ),
        );
        let mut lat = latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        sort(&mut lat);
        let p99 = quantile(&lat, 0.99);
        report.target(
            "L10 lone 100 B urgent message through the saturated budget, p99",
            "<= 10 ms",
            format!(
                "{p99:.2} ms (p50 {:.2}, max {:.2}; {} samples)",
                quantile(&lat, 0.5),
                lat.last().copied().unwrap_or(f64::NAN),
                lat.len()
            ),
            p99 <= 10.0,
        );
        let (s, g) = (
            urgent_sent.load(Ordering::Relaxed),
            urgent_got.load(Ordering::Relaxed),
        );
        report.correct(
            "L10 urgent messages delivered",
            "all",
            format!("{g} of {s}"),
            g == s,
        );
        disconnect_row(report, "L10", z, &hub, removed0, &errors);
        let st = total.stats(Instant::now());
        report.info(
            "L10 budget counters at the end",
            format!(
                "rate {} B/s, used {} B, throttled {:.1} s, {} members",
                st.rate,
                st.used,
                st.throttled.as_secs_f64(),
                st.members
            ),
        );
        for c in &conns {
            c.stop();
        }
        hub.sw.stop().await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(at: Instant, bytes: Vec<u64>, used: u64) -> Snap {
        let mut stats = BudgetStats::default();
        stats.used = used;
        Snap { at, bytes, stats }
    }

    fn sizes() -> Sizes {
        Sizes {
            peers: 4,
            budget: 1_000_000,
            secs: 10,
            window: 10,
            ping: Duration::from_secs(4),
            pong: Duration::from_secs(3),
        }
    }

    #[test]
    fn accuracy_and_fairness_rows_fail_outside_their_bounds() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        let a = snap(t0, vec![0; 4], 0);
        // 10 MB in 10 s, equal shares: both pass.
        let mut r = Report::default();
        judge(
            &mut r,
            "T",
            "x",
            sizes(),
            &period(&a, &snap(t1, vec![2_500_000; 4], 0)),
        );
        assert!(!r.failed());
        // 6% short.
        let mut r = Report::default();
        judge(
            &mut r,
            "T",
            "x",
            sizes(),
            &period(&a, &snap(t1, vec![2_350_000; 4], 0)),
        );
        assert!(r.failed());
        // On the budget, but one peer at 0.7 of its share.
        let mut r = Report::default();
        let b = snap(t1, vec![1_750_000, 2_750_000, 2_750_000, 2_750_000], 0);
        judge(&mut r, "T", "x", sizes(), &period(&a, &b));
        assert!(r.failed());
        assert!(r.rows[0].ok && !r.rows[1].ok);
    }
}
