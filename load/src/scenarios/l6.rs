//! L6: broadcast fan-out with one stalled peer in the second half.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_mconn::Config as MConfig;
use mukan_reactor_api::{InboxItem, Network as _};

use crate::net::{
    BCAST, Hub, LoadReactor, connect_peer, cpu_ns, key, quantile, runtime, sort, src_ip,
};
use crate::{Opts, Report};

#[derive(Debug, Default)]
struct Delivery {
    /// (seq, latency ms) of every message received.
    lat: Vec<(u64, f64)>,
    lost: u64,
    dup_or_reordered: u64,
    next: u64,
}

/// Broadcast fan-out with one stalled peer in the second half.
pub(crate) fn l6(opts: Opts, report: &mut Report) {
    let peers = opts.peers(20, 200);
    let rate = opts.rate(200, 1000);
    let secs = opts.secs(6, 300);
    runtime(2).block_on(async move {
        let hub = Hub::start(peers + 16, mukan_transport::Config::default(), LoadReactor::default())
            .await;
        let base = Instant::now();
        let total = rate * secs;
        let half = total / 2;
        let mut readers = Vec::new();
        let mut conns = Vec::new();
        for i in 0..peers {
            // The stalled peer (0) waits for room in its inbox longer than the run lasts.
            let config = if i == 0 {
                MConfig::node_default()
                    .with_recv_stall_timeout(Duration::from_secs(secs + 60))
            } else {
                MConfig::node_default()
            };
            let (conn, mut rx) = connect_peer(
                src_ip(60, i),
                hub.addr,
                hub.id,
                &key(6_000_000 + i as u32),
                config,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            conns.push(conn);
            let stalled = i == 0;
            readers.push(tokio::spawn(async move {
                let mut d = Delivery::default();
                // Ends at the last message, or after 5 s without one (the broadcast sends
                // continuously, so silence means it ended or this peer lost the tail).
                while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                    let InboxItem::Received {
                        channel, message, ..
                    } = item
                    else {
                        break;
                    };
                    if channel != BCAST || message.len() < 16 {
                        continue;
                    }
                    let now = base.elapsed().as_nanos() as u64;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&message[..8]);
                    let seq = u64::from_le_bytes(b);
                    b.copy_from_slice(&message[8..16]);
                    let sent = u64::from_le_bytes(b);
                    d.lat.push((seq, now.saturating_sub(sent) as f64 / 1e6));
                    if seq == d.next {
                        d.next += 1;
                    } else if seq > d.next {
                        d.lost += seq - d.next;
                        d.next = seq + 1;
                    } else {
                        d.dup_or_reordered += 1;
                    }
                    if seq + 1 == total {
                        break;
                    }
                    if stalled && seq >= half {
                        // Stop reading: the inbox fills the channel's receive budget, then
                        // the connection stops reading the socket (this peer's stall timeout
                        // is longer than the run, so it never gives up by itself).
                        tokio::time::sleep(Duration::from_secs(secs + 30)).await;
                        break;
                    }
                }
                (d, rx)
            }));
        }
        assert!(hub.wait_inbound(Duration::from_secs(10), |k| k >= peers).await);
        let removed0 = hub.reactor.removed_total();
        let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut full = 0usize;
        let mut body = vec![0u8; 1024];
        let cpu0 = cpu_ns();
        let t0 = Instant::now();
        for seq in 0..total {
            tick.tick().await;
            body[..8].copy_from_slice(&seq.to_le_bytes());
            body[8..16].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_le_bytes());
            let r = hub.sw.broadcast(BCAST, Bytes::copy_from_slice(&body));
            full += r.count(mukan_reactor_api::BroadcastOutcome::Full);
        }
        let send_time = t0.elapsed();
        let cpu = cpu_ns() - cpu0;
        // Deliveries: every reader but the stalled one ends at the last message.
        let mut ds = Vec::new();
        let collect_by = tokio::time::Instant::now() + Duration::from_secs(30);
        for (i, r) in readers.into_iter().enumerate() {
            if i == 0 {
                r.abort();
                continue;
            }
            match tokio::time::timeout_at(collect_by, r).await {
                Ok(Ok((d, _rx))) => ds.push(d),
                _ => ds.push(Delivery {
                    lost: total,
                    ..Delivery::default()
                }),
            }
        }
        let removed = hub.reactor.removed_total() - removed0;
        let lost: u64 = ds
            .iter()
            .map(|d| d.lost + total.saturating_sub(d.next))
            .sum();
        let dup: u64 = ds.iter().map(|d| d.dup_or_reordered).sum();
        let others = peers - 1;
        report.info(
            "L6 broadcast rate achieved",
            format!(
                "{:.0} msg/s asked {rate}/s to {peers} peers for {secs} s; node CPU {:.0}% of one core (node and peers, one process); {full} Full outcomes",
                total as f64 / send_time.as_secs_f64(),
                cpu as f64 / send_time.as_nanos() as f64 * 100.0
            ),
        );
        report.correct(
            "L6 lost / dup-or-reordered at the healthy peers",
            "0 / 0",
            format!("{lost} / {dup} over {others} peers x {total} msgs"),
            lost == 0 && dup == 0,
        );
        report.correct(
            "L6 healthy peers disconnected",
            "0",
            format!(
                "{} (node stops {removed}: {})",
                conns[1..].iter().filter(|c| !c.is_running()).count(),
                hub.reactor.removed_summary()
            ),
            conns[1..].iter().all(mukan_mconn::MConnection::is_running),
        );
        let mut all: Vec<f64> = ds.iter().flat_map(|d| d.lat.iter().map(|x| x.1)).collect();
        sort(&mut all);
        let p99 = quantile(&all, 0.99);
        report.target(
            "L6 delivery latency p99",
            "< 50 ms",
            format!("{p99:.2} ms (p50 {:.2})", quantile(&all, 0.5)),
            p99 < 50.0,
        );
        let phase = |first: bool| {
            let mut v: Vec<f64> = ds
                .iter()
                .flat_map(|d| d.lat.iter())
                .filter(|(s, _)| (*s < half) == first)
                .map(|x| x.1)
                .collect();
            sort(&mut v);
            v
        };
        let (a, b) = (phase(true), phase(false));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let cost = (mean(&b) / mean(&a) - 1.0) * 100.0;
        report.target(
            "L6 cost of one stalled peer to the others",
            "< 5% (mean latency)",
            format!(
                "{cost:+.1}% (mean {:.2} -> {:.2} ms; p99 {:.2} -> {:.2} ms)",
                mean(&a),
                mean(&b),
                quantile(&a, 0.99),
                quantile(&b, 0.99)
            ),
            cost < 5.0,
        );
        for c in &conns {
            c.stop();
        }
        hub.sw.stop().await;
    });
}
