//! L1: 1,000 concurrent inbound handshakes from 1,000 distinct source addresses.

use std::time::{Duration, Instant};

use mukan_mconn::Config as MConfig;

use crate::net::{
    Hub, LoadReactor, connect_peer, key, open_fds, quantile, rss_bytes, runtime, sort, src_ip,
};
use crate::{Opts, Report};

use super::{mib, ms, nzu};

/// 1,000 concurrent inbound handshakes from 1,000 distinct source addresses.
pub(crate) fn l1(opts: Opts, report: &mut Report) {
    let n = opts.peers(250, 1000);
    runtime(2).block_on(async move {
        let mut t = mukan_transport::Config::default();
        t.max_pending_upgrades = nzu(n + 16);
        t.accept_queue = nzu(n + 16);
        t.handshake_timeout = Duration::from_secs(10);
        t.node_info_timeout = Duration::from_secs(10);
        let keys: Vec<_> = (0..n).map(|i| key(1_000_000 + i as u32)).collect();
        let hub = Hub::start(n + 16, t, LoadReactor::default()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fd0 = open_fds();
        let rss0 = rss_bytes();
        let (addr, id) = (hub.addr, hub.id);
        let overflows0 = crate::net::listen_overflows();
        let mut set = tokio::task::JoinSet::new();
        for (i, k) in keys.into_iter().enumerate() {
            set.spawn(async move {
                let t0 = Instant::now();
                let r = connect_peer(
                    src_ip(10, i),
                    addr,
                    id,
                    &k,
                    MConfig::node_default(),
                    Duration::from_secs(30),
                )
                .await;
                (k.node_id(), t0, r)
            });
        }
        let mut conns = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n);
        let mut errors = Vec::new();
        while let Some(done) = set.join_next().await {
            let (id, t0, r) = done.unwrap();
            match r {
                Ok(c) => {
                    conns.push(c);
                    starts.push((id, t0));
                }
                Err(e) => errors.push(e),
            }
        }
        // The switch counts a peer as inbound before its reactors' `add_peer` runs (in the
        // peer's task): wait for the reactor's record of each, not only for the count.
        let mut all_added = hub
            .wait_inbound(Duration::from_secs(30), |k| k >= starts.len())
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while all_added
            && starts
                .iter()
                .any(|(id, _)| hub.reactor.added_at(id).is_none())
        {
            if Instant::now() >= deadline {
                all_added = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut lat: Vec<f64> = starts
            .iter()
            .filter_map(|(id, t0)| hub.reactor.added_at(id).map(|a| ms(a - *t0)))
            .collect();
        sort(&mut lat);
        if std::env::var_os("MUKAN_LOAD_DEBUG").is_some() {
            for q in [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0] {
                eprintln!("  q{q}: {:.1} ms", quantile(&lat, q));
            }
        }
        let rss1 = rss_bytes();
        report.info(
            "L1 kernel listen-queue overflows during the run",
            format!(
                "{} (each costs the dialer a 1 s SYN retry; counter is namespace-wide)",
                crate::net::listen_overflows() - overflows0
            ),
        );
        if let Some(e) = errors.first() {
            eprintln!("  first handshake error: {e} ({} errors)", errors.len());
        }
        report.correct(
            "L1 handshakes completed (peer added)",
            "100%",
            format!("{}/{n} added", lat.len()),
            errors.is_empty() && all_added && lat.len() == n,
        );
        let p50 = quantile(&lat, 0.5);
        let p99 = quantile(&lat, 0.99);
        report.target(
            "L1 connect -> peer added p50",
            "< 200 ms",
            format!("{p50:.1} ms"),
            p50 < 200.0,
        );
        report.target(
            "L1 connect -> peer added p99",
            "< 1 s",
            format!("{p99:.1} ms"),
            p99 < 1000.0,
        );
        let delta = mib(rss1.saturating_sub(rss0));
        report.target(
            "L1 RSS delta (node and peers, one process)",
            "< 200 MiB",
            format!("{delta:.1} MiB"),
            delta < 200.0,
        );
        // Close every peer; the node's fds must come back.
        for (c, _) in &conns {
            c.stop();
        }
        let closed = Instant::now();
        drop(conns);
        let mut back = None;
        while closed.elapsed() < Duration::from_secs(10) {
            if hub.inbound() == 0 && open_fds().abs_diff(fd0) <= 5 {
                back = Some(closed.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        report.correct(
            "L1 fds back to baseline +-5 after close",
            "within 5 s",
            back.map_or_else(
                || format!("not after 10 s ({} vs {fd0})", open_fds()),
                |d| format!("{:.0} ms", ms(d)),
            ),
            back.is_some_and(|d| d <= Duration::from_secs(5)),
        );
        hub.sw.stop().await;
    });
}
