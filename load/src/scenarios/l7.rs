//! L7: soak, peers connected, one disconnects and reconnects every second.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mukan_mconn::Config as MConfig;
use mukan_reactor_api::InboxItem;

use crate::net::{
    Hub, LoadReactor, alive_tasks, connect_peer, key, open_fds, rss_bytes, runtime, src_ip,
};
use crate::{Opts, Report};

use super::mib;

/// A peer held by a task that drains its events; stopping it closes the connection.
struct Held {
    conn: Arc<mukan_mconn::MConnection>,
    drain: tokio::task::JoinHandle<()>,
}

async fn hold(hub: &Hub, i: usize, errors: Arc<AtomicUsize>) -> Result<Held, String> {
    let (conn, mut rx) = connect_peer(
        src_ip(70, i),
        hub.addr,
        hub.id,
        &key(7_000_000 + i as u32),
        MConfig::node_default(),
        Duration::from_secs(10),
    )
    .await?;
    let conn = Arc::new(conn);
    let drain = tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            if let InboxItem::Stopped(_) = item {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Ok(Held { conn, drain })
}

/// Soak: peers connected, one disconnects and reconnects every second.
pub(crate) fn l7(opts: Opts, report: &mut Report) {
    let peers = opts.peers(20, 50);
    let secs = opts.secs(20, 600);
    runtime(2).block_on(async move {
        let hub = Hub::start(
            peers + 16,
            mukan_transport::Config::default(),
            LoadReactor::default(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let fd0 = open_fds();
        let tasks0 = alive_tasks();
        let errors = Arc::new(AtomicUsize::new(0));
        let mut held = Vec::new();
        for i in 0..peers {
            held.push(Some(hold(&hub, i, errors.clone()).await.unwrap()));
        }
        assert!(
            hub.wait_inbound(Duration::from_secs(10), |k| k >= peers)
                .await
        );
        let start = Instant::now();
        let mut samples: VecDeque<(f64, f64)> = VecDeque::new();
        let mut cycles = 0u64;
        let mut failed = 0u64;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        while start.elapsed() < Duration::from_secs(secs) {
            tick.tick().await;
            let i = (cycles as usize) % peers;
            cycles += 1;
            if let Some(h) = held[i].take() {
                h.conn.stop();
                h.drain.abort();
            }
            let gone = hub
                .wait_inbound(Duration::from_secs(5), |k| k < peers)
                .await;
            let mut ok = false;
            if gone {
                for _ in 0..3 {
                    if let Ok(h) = hold(&hub, i, errors.clone()).await {
                        held[i] = Some(h);
                        ok = hub
                            .wait_inbound(Duration::from_secs(5), |k| k >= peers)
                            .await;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            if !ok {
                failed += 1;
            }
            samples.push_back((start.elapsed().as_secs_f64() / 3600.0, mib(rss_bytes())));
        }
        let removed = hub.reactor.removed_total();
        let summary = hub.reactor.removed_summary();
        let errs = errors.load(Ordering::Relaxed);
        // Slope of RSS over the second half of the run (least squares), MiB/h.
        let tail: Vec<(f64, f64)> = samples.iter().skip(samples.len() / 2).copied().collect();
        let n = tail.len() as f64;
        let (sx, sy) = tail.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
        let (mx, my) = (sx / n, sy / n);
        let (num, den) = tail.iter().fold((0.0, 0.0), |a, p| {
            (a.0 + (p.0 - mx) * (p.1 - my), a.1 + (p.0 - mx) * (p.0 - mx))
        });
        let slope = if den > 0.0 { num / den } else { 0.0 };
        report.correct(
            "L7 reconnect cycles completed",
            "all",
            format!("{} of {cycles} in {secs} s", cycles - failed),
            failed == 0,
        );
        report.correct(
            "L7 unexpected disconnects (node stops beyond the cycles; peer errors)",
            "0",
            format!("{} ({summary}); {errs}", removed.saturating_sub(cycles)),
            removed == cycles && errs == 0,
        );
        report.target(
            "L7 RSS slope (second half of the run)",
            "< 1 MiB/h (after the first hour)",
            format!(
                "{slope:+.1} MiB/h; RSS {:.1} -> {:.1} MiB",
                samples.front().map_or(0.0, |s| s.1),
                samples.back().map_or(0.0, |s| s.1)
            ),
            slope < 1.0,
        );
        for h in held.iter_mut().filter_map(Option::take) {
            h.conn.stop();
            h.drain.abort();
        }
        let t = Instant::now();
        let mut back = false;
        while t.elapsed() < Duration::from_secs(5) {
            if hub.inbound() == 0 && open_fds() <= fd0 + 5 && alive_tasks() <= tasks0 {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        report.correct(
            "L7 fds and tasks back to baseline after close",
            "fds +-5, tasks <= baseline, within 5 s",
            format!(
                "fds {} (baseline {fd0}), tasks {} (baseline {tasks0})",
                open_fds(),
                alive_tasks()
            ),
            back,
        );
        hub.sw.stop().await;
    });
}
