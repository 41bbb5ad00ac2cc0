//! L5: rate-limit accuracy both ways at the node default (5,120,000 B/s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_mconn::Config as MConfig;
use mukan_reactor_api::InboxItem;

use crate::net::{Hub, LoadReactor, RATE, connect_peer, key, runtime, src_ip};
use crate::{Opts, Report};

/// Rate-limit accuracy both ways at the node default (5,120,000 B/s).
pub(crate) fn l5(opts: Opts, report: &mut Report) {
    let secs = opts.secs(6, 30);
    let want = 5_120_000f64;
    runtime(2).block_on(async move {
        let t = mukan_transport::Config::default();
        let reactor = LoadReactor::default();
        reactor.stream_to_peers.store(true, Ordering::Relaxed);
        let stream_stop = reactor.stream_stop.clone();
        let hub = Hub::start(4, t, reactor).await;
        let (conn, mut rx) = connect_peer(
            src_ip(50, 0),
            hub.addr,
            hub.id,
            &key(5_000_000),
            MConfig::node_default(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let conn = Arc::new(conn);
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (conn, stop) = (conn.clone(), stop.clone());
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![0xa5u8; 64 * 1024]);
                while !stop.load(Ordering::Relaxed) {
                    if conn.send(RATE, chunk.clone()).await.is_err() {
                        break;
                    }
                }
            })
        };
        let got = Arc::new(AtomicU64::new(0));
        let receiver = {
            let got = got.clone();
            tokio::spawn(async move {
                while let Some(item) = rx.recv().await {
                    if let InboxItem::Received { message, .. } = item {
                        got.fetch_add(message.len() as u64, Ordering::Relaxed);
                    }
                }
            })
        };
        // Skip the first 2 s (the limiter's initial allowance), then measure.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (in0, out0, t0) = (
            hub.reactor.rate_bytes.load(Ordering::Relaxed),
            got.load(Ordering::Relaxed),
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_secs(secs.saturating_sub(2).max(1))).await;
        let dt = t0.elapsed().as_secs_f64();
        let inbound = (hub.reactor.rate_bytes.load(Ordering::Relaxed) - in0) as f64 / dt;
        let outbound = (got.load(Ordering::Relaxed) - out0) as f64 / dt;
        stop.store(true, Ordering::Relaxed);
        stream_stop.store(true, Ordering::Relaxed);
        for (fig, r) in [
            ("L5 peer -> node payload rate", inbound),
            ("L5 node -> peer payload rate", outbound),
        ] {
            report.target(
                fig,
                "5,120,000 B/s +-10%",
                format!(
                    "{r:.0} B/s ({:+.1}%) over {dt:.0} s",
                    (r / want - 1.0) * 100.0
                ),
                (r / want - 1.0).abs() <= 0.1,
            );
        }
        conn.stop();
        let _ = tokio::time::timeout(Duration::from_secs(5), sender).await;
        receiver.abort();
        hub.sw.stop().await;
    });
}
