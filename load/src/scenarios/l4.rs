//! L4: sustained throughput over 10 prioritised channels with every message checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_mconn::Config as MConfig;
use mukan_reactor_api::ChannelId;

use crate::net::{
    DATA_CHANNELS, DATA0, Hub, LoadReactor, connect_peer, data_message, key, pool, runtime, src_ip,
};
use crate::{Opts, Report};

use super::mib;

/// Sustained throughput over 10 prioritised channels with every message checked.
pub(crate) fn l4(opts: Opts, report: &mut Report) {
    let messages = opts.messages(1_000_000, 10_000_000);
    let per_channel = messages / DATA_CHANNELS as u64;
    runtime(2).block_on(async move {
        let unlimited = MConfig::node_default().with_rates(None, None);
        let mut t = mukan_transport::Config::default();
        t.mconn = unlimited.clone();
        let reactor = LoadReactor::default();
        reactor
            .verifier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .expected_per_channel = per_channel;
        let hub = Hub::start(4, t, reactor).await;
        let (conn, rx) = connect_peer(
            src_ip(40, 0),
            hub.addr,
            hub.id,
            &key(4_000_000),
            unlimited,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(hub.wait_inbound(Duration::from_secs(5), |k| k >= 1).await);
        let conn = Arc::new(conn);
        // Saturation first, on the fresh connection (the scheduler's history decays slowly:
        // 0.8 every 2 s): every channel's queue kept full with one 16 KiB message (no cost
        // to produce), bytes per channel counted at the node between 1 s and 4 s.
        let vlock = || {
            hub.reactor
                .verifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        vlock().share_only = true;
        let stop = Arc::new(AtomicBool::new(false));
        let mut fillers = Vec::new();
        for ch in 0..DATA_CHANNELS {
            let (conn, stop) = (conn.clone(), stop.clone());
            fillers.push(tokio::spawn(async move {
                let m = Bytes::from(vec![0x33u8; 16 * 1024]);
                let id = ChannelId(DATA0 + ch as u8);
                while !stop.load(Ordering::Relaxed) {
                    if conn.send(id, m.clone()).await.is_err() {
                        break;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let b0 = vlock().bytes;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let b1 = vlock().bytes;
        stop.store(true, Ordering::Relaxed);
        for f in fillers {
            let _ = tokio::time::timeout(Duration::from_secs(5), f).await;
        }
        // Let the queued filler messages arrive before the checked run starts.
        let mut last = vlock().bytes;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = vlock().bytes;
            if now == last {
                break;
            }
            last = now;
        }
        {
            let mut v = vlock();
            v.share_only = false;
            v.bytes = [0; DATA_CHANNELS];
        }
        let snap: Vec<u64> = b1.iter().zip(b0.iter()).map(|(a, b)| a - b).collect();
        let total: u64 = snap.iter().sum();
        let weights: u64 = (1..=DATA_CHANNELS as u64).sum();
        let mut worst = 0f64;
        let mut shares = Vec::new();
        for (i, &b) in snap.iter().enumerate() {
            let share = b as f64 / total.max(1) as f64;
            let want = (i as f64 + 1.0) / weights as f64;
            worst = worst.max((share / want - 1.0).abs());
            shares.push(format!("{:.1}", share * 100.0));
        }
        report.target(
            "L4 per-channel share vs priority 1..10 (saturated, 16 KiB msgs)",
            "within +-20%",
            format!(
                "worst {:.1}% off; shares % {} ({:.0} MiB/s)",
                worst * 100.0,
                shares.join(" "),
                mib(total) / 3.0
            ),
            worst <= 0.2,
        );
        let pool = pool();
        let sent_bytes = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut senders = Vec::new();
        for ch in 0..DATA_CHANNELS {
            let (conn, pool, sent_bytes) = (conn.clone(), pool.clone(), sent_bytes.clone());
            senders.push(tokio::spawn(async move {
                let id = ChannelId(DATA0 + ch as u8);
                for seq in 0..per_channel {
                    let m = data_message(&pool, ch, seq);
                    sent_bytes.fetch_add(m.len() as u64, Ordering::Relaxed);
                    if conn.send(id, m).await.is_err() {
                        return seq;
                    }
                }
                per_channel
            }));
        }
        let budget = Duration::from_secs(60 + messages / 5_000);
        let mut progress = Instant::now();
        let finished = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let v = hub
                .reactor
                .verifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .next;
            if v.iter().all(|&n| n >= per_channel) {
                break true;
            }
            if t0.elapsed() > budget || !conn.is_running() {
                break false;
            }
            if progress.elapsed() > Duration::from_secs(30) {
                progress = Instant::now();
                eprintln!(
                    "  L4: {} of {messages} received after {:.0} s",
                    v.iter().sum::<u64>(),
                    t0.elapsed().as_secs_f64()
                );
            }
        };
        let mut sent = 0u64;
        for s in senders {
            sent += s.await.unwrap_or(0);
        }
        let v = std::mem::take(
            &mut *hub
                .reactor
                .verifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let tail_missing: u64 = v.next.iter().map(|&n| per_channel.saturating_sub(n)).sum();
        let elapsed = v.last.map_or(t0.elapsed(), |l| l - t0);
        let bytes: u64 = v.bytes.iter().sum();
        report.correct(
            "L4 messages received in order, intact",
            &format!("{messages}"),
            format!(
                "{} of {sent} sent{}",
                v.ok,
                if finished { "" } else { " (run cut short)" }
            ),
            finished && v.ok == messages && sent == messages,
        );
        report.correct(
            "L4 lost / duplicated-or-reordered / corrupted",
            "0 / 0 / 0",
            format!(
                "{} / {} / {}",
                v.lost + tail_missing,
                v.dup_or_reordered,
                v.corrupted
            ),
            v.lost + tail_missing == 0 && v.dup_or_reordered == 0 && v.corrupted == 0,
        );
        let rate = mib(bytes) / elapsed.as_secs_f64();
        report.target(
            "L4 payload throughput (1 B-1 MiB mix, mean ~0.9 KiB)",
            ">= 100 MiB/s",
            format!(
                "{rate:.1} MiB/s, {:.0} msg/s, {:.0} MiB in {:.1} s",
                v.ok as f64 / elapsed.as_secs_f64(),
                mib(bytes),
                elapsed.as_secs_f64()
            ),
            rate >= 100.0,
        );
        drop(rx);
        conn.stop();
        hub.sw.stop().await;
    });
}
