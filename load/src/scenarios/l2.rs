//! L2: a handshake flood (half idle, half garbage connections) from many addresses while honest peers ping the node.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_mconn::Config as MConfig;
use mukan_reactor_api::InboxItem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::net::{
    ECHO, Hub, LoadReactor, connect_peer, key, quantile, rss_bytes, runtime, sort, src_ip,
};
use crate::{Opts, Report};

use super::{mib, ms};

#[derive(Debug, Default)]
struct PingStats {
    rtts_ms: Mutex<Vec<f64>>,
    lost: AtomicU64,
    disconnects: AtomicU64,
}

/// Pings the node every `every` on `ECHO` (one ping in flight) until `stop`.
async fn pinger(
    (conn, mut rx): crate::net::Conn,
    every: Duration,
    stop: Arc<AtomicBool>,
    stats: Arc<PingStats>,
) {
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        seq += 1;
        let t0 = Instant::now();
        if conn
            .send(ECHO, Bytes::copy_from_slice(&seq.to_le_bytes()))
            .await
            .is_err()
        {
            stats.disconnects.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match rx.recv().await {
                    Some(InboxItem::Received {
                        channel, message, ..
                    }) if channel == ECHO && message[..] == seq.to_le_bytes() => {
                        return true;
                    }
                    Some(InboxItem::Received { .. }) => {}
                    _ => return false,
                }
            }
        })
        .await;
        match got {
            Ok(true) => stats
                .rtts_ms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(ms(t0.elapsed())),
            Ok(false) => {
                stats.disconnects.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(_) => {
                stats.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if !conn.is_running() {
        stats.disconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// A handshake flood (half idle, half garbage connections) from many addresses while honest
/// peers ping the node.
pub(crate) fn l2(opts: Opts, report: &mut Report) {
    let secs = opts.secs(10, 60);
    let rate = opts.rate(500, 2000);
    let ips = opts.peers(100, 500);
    let honest = 20usize;
    runtime(2).block_on(async move {
        // The node as configured by default (transport defaults: 256 pending upgrades,
        // 3 s handshake timeout; 40 inbound peers).
        let t = mukan_transport::Config::default();
        let hs_timeout = t.handshake_timeout;
        let hub = Arc::new(Hub::start(40, t, LoadReactor::default()).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss0 = rss_bytes();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(PingStats::default());
        let mut pingers = Vec::new();
        for i in 0..honest {
            let c = connect_peer(
                src_ip(20, i),
                hub.addr,
                hub.id,
                &key(2_000_000 + i as u32),
                MConfig::node_default(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            pingers.push(tokio::spawn(pinger(
                c,
                Duration::from_millis(100),
                stop.clone(),
                stats.clone(),
            )));
        }
        assert!(
            hub.wait_inbound(Duration::from_secs(5), |k| k >= honest)
                .await
        );
        // Warm-up RTTs before the flood.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before: Vec<f64> = std::mem::take(
            &mut *stats
                .rtts_ms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let opened = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let skipped = Arc::new(AtomicU64::new(0));
        let inflight = Arc::new(tokio::sync::Semaphore::new(12_000));
        let flood_stop = Arc::new(AtomicBool::new(false));
        let flood = {
            let (opened, refused, skipped, inflight, flood_stop) = (
                opened.clone(),
                refused.clone(),
                skipped.clone(),
                inflight.clone(),
                flood_stop.clone(),
            );
            let addr = hub.addr;
            tokio::spawn(async move {
                let per_tick = (rate / 100).max(1);
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let end = Instant::now() + Duration::from_secs(secs);
                let mut n = 0u64;
                while Instant::now() < end && !flood_stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    for _ in 0..per_tick {
                        n += 1;
                        let Ok(permit) = inflight.clone().try_acquire_owned() else {
                            skipped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let src = src_ip(21, (n % ips as u64) as usize);
                        let garbage = n % 2 == 0;
                        let (opened, refused) = (opened.clone(), refused.clone());
                        tokio::spawn(async move {
                            let _permit = permit;
                            let r = tokio::time::timeout(Duration::from_secs(8), async {
                                let sock = TcpSocket::new_v4().ok()?;
                                sock.bind(SocketAddr::new(src, 0)).ok()?;
                                let mut s = sock.connect(addr).await.ok()?;
                                opened.fetch_add(1, Ordering::Relaxed);
                                if garbage {
                                    let junk: Vec<u8> =
                                        (0..64u64).map(|i| crate::net::mix(n ^ i) as u8).collect();
                                    let _ = s.write_all(&junk).await;
                                }
                                let mut buf = [0u8; 256];
                                while matches!(s.read(&mut buf).await, Ok(k) if k > 0) {}
                                Some(())
                            })
                            .await;
                            if !matches!(r, Ok(Some(()))) {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                }
            })
        };
        // Mid-flood: a new honest peer.
        let mut rss_max = rss_bytes();
        let started = Instant::now();
        let mut newcomer: Option<Result<Duration, String>> = None;
        while started.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_max = rss_max.max(rss_bytes());
            if newcomer.is_none() && started.elapsed() >= Duration::from_secs(secs / 2) {
                let k = key(2_100_000);
                let t0 = Instant::now();
                let r = connect_peer(
                    src_ip(22, 0),
                    hub.addr,
                    hub.id,
                    &k,
                    MConfig::node_default(),
                    Duration::from_secs(20),
                )
                .await;
                newcomer = Some(match r {
                    Ok(c) => {
                        let ok = hub
                            .wait_inbound(Duration::from_secs(10), |k| k > honest)
                            .await;
                        let r = hub
                            .reactor
                            .added_at(&k.node_id())
                            .filter(|_| ok)
                            .map(|a| a - t0)
                            .ok_or_else(|| "not added".to_owned());
                        drop(c);
                        r
                    }
                    Err(e) => Err(e),
                });
            }
        }
        flood_stop.store(true, Ordering::Relaxed);
        let _ = flood.await;
        let achieved = opened.load(Ordering::Relaxed) as f64 / secs as f64;
        // Let the idle connections time out, then stop the honest peers.
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        for p in pingers {
            let _ = p.await;
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(15),
            inflight.acquire_many(12_000),
        )
        .await;
        let mut rtts = std::mem::take(
            &mut *stats
                .rtts_ms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        sort(&mut rtts);
        let mut before = before;
        sort(&mut before);
        report.info(
            "L2 flood connections opened",
            format!(
                "{} in {secs} s ({achieved:.0}/s asked {rate}/s) from {ips} IPs; {} refused or reset; {} skipped (12,000 in flight)",
                opened.load(Ordering::Relaxed),
                refused.load(Ordering::Relaxed),
                skipped.load(Ordering::Relaxed)
            ),
        );
        let p99 = quantile(&rtts, 0.99);
        report.target(
            "L2 honest peers' echo RTT p99 under flood",
            "< 50 ms",
            format!(
                "{p99:.1} ms (p50 {:.1}; before flood p99 {:.1}; {} samples)",
                quantile(&rtts, 0.5),
                quantile(&before, 0.99),
                rtts.len()
            ),
            p99 < 50.0,
        );
        let lost = stats.lost.load(Ordering::Relaxed);
        let disc = stats.disconnects.load(Ordering::Relaxed);
        report.correct(
            "L2 honest peers: disconnects, lost echoes",
            "0, 0",
            format!("{disc}, {lost}"),
            disc == 0 && lost == 0,
        );
        let (text, ok) = match &newcomer {
            Some(Ok(d)) => (format!("{:.0} ms", ms(*d)), *d <= hs_timeout),
            Some(Err(e)) => (format!("failed: {e}"), false),
            None => ("not tried".into(), false),
        };
        report.target(
            "L2 new honest peer accepted during flood",
            &format!("< handshake_timeout ({} s)", hs_timeout.as_secs()),
            text,
            ok,
        );
        let growth = mib(rss_max.saturating_sub(rss0));
        report.target(
            "L2 RSS growth (node and flooders, one process)",
            "< 256 MiB",
            format!("{growth:.1} MiB"),
            growth < 256.0,
        );
        hub.sw.stop().await;
    });
}
