//! The scenarios L1–L8.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mukan_addrbook::AddrBook;
use mukan_mconn::Config as MConfig;
use mukan_reactor_api::{AddressBook, ChannelId, InboxItem, NetAddress, Network as _, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::net::{
    BCAST, DATA_CHANNELS, DATA0, ECHO, Hub, LoadReactor, MIB, RATE, alive_tasks, connect_peer,
    cpu_ns, data_message, key, open_fds, pool, quantile, rss_bytes, runtime, sort, src_ip,
};
use crate::{Opts, Report};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(b: u64) -> f64 {
    b as f64 / MIB
}

// ---------------------------------------------------------------------------------------
// L1

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

fn nzu(v: usize) -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(v).unwrap_or(std::num::NonZeroUsize::MIN)
}

// ---------------------------------------------------------------------------------------
// honest pinging peers (L2)

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

// ---------------------------------------------------------------------------------------
// L2

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

// ---------------------------------------------------------------------------------------
// L3

/// Idle authenticated peers held from a second process.
pub(crate) fn l3(opts: Opts, report: &mut Report) {
    let peers = opts.peers(500, 10_000);
    let hold = opts.secs(10, 600);
    // The full run uses the node's 60 s ping; a short one pings every 3 s to exercise it.
    let (ping, pong) = if hold >= 300 {
        (Duration::from_secs(60), Duration::from_secs(45))
    } else {
        (Duration::from_secs(3), Duration::from_secs(2))
    };
    runtime(2).block_on(async move {
        let mut t = mukan_transport::Config::default();
        t.mconn = MConfig::node_default().with_ping(ping, pong);
        t.handshake_timeout = Duration::from_secs(10);
        t.node_info_timeout = Duration::from_secs(10);
        let hub = Hub::start(peers + 16, t, LoadReactor::default()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss0 = rss_bytes();
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "l3-client",
                &hub.addr.to_string(),
                &hub.id.to_string(),
                &peers.to_string(),
                &(hold + 20).to_string(),
                &ping.as_millis().to_string(),
                &pong.as_millis().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let (line_tx, mut line_rx) = tokio::sync::mpsc::channel::<String>(8);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let connect_budget = Duration::from_secs(60 + peers as u64 / 50);
        let t0 = Instant::now();
        let connected = tokio::time::timeout(connect_budget, line_rx.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let connect_time = t0.elapsed();
        let all_in = hub
            .wait_inbound(Duration::from_secs(30), |k| k >= peers)
            .await;
        report.correct(
            "L3 peers connected (second process)",
            &format!("{peers}"),
            format!(
                "{} on the node ({connected}) in {:.1} s",
                hub.inbound(),
                connect_time.as_secs_f64()
            ),
            all_in && connected.starts_with(&format!("connected {peers} ")),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let removed0 = hub.reactor.removed_total();
        let cpu0 = cpu_ns();
        let rss_held = rss_bytes();
        let h0 = Instant::now();
        let mut min_inbound = hub.inbound();
        while h0.elapsed() < Duration::from_secs(hold) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            min_inbound = min_inbound.min(hub.inbound());
        }
        let wall = h0.elapsed();
        let cpu = cpu_ns() - cpu0;
        let rss1 = rss_bytes();
        let removed = hub.reactor.removed_total() - removed0;
        // Ask the child for its count, then let it go.
        let mut stdin = stdin;
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(b"report\n");
            let _ = s.flush();
        }
        let done = tokio::time::timeout(Duration::from_secs(30), line_rx.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        drop(stdin);
        let child_stopped: Option<u64> = done
            .strip_prefix("done stopped ")
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        report.correct(
            "L3 disconnects during hold (node side, peer side)",
            "0, 0",
            format!(
                "{removed} ({}), {} over {:.0} s; min connected {min_inbound}",
                hub.reactor.removed_summary(),
                child_stopped.map_or_else(|| format!("no report: {done:?}"), |s| s.to_string()),
                wall.as_secs_f64()
            ),
            removed == 0 && child_stopped == Some(0) && min_inbound >= peers,
        );
        let per_peer = rss_held.max(rss1).saturating_sub(rss0) as f64 / peers as f64 / 1024.0;
        report.target(
            "L3 node RSS per idle peer",
            "<= 48 KiB",
            format!(
                "{per_peer:.1} KiB ({:.0} MiB for {peers})",
                mib(rss1.saturating_sub(rss0))
            ),
            per_peer <= 48.0,
        );
        let cpu_pct = cpu as f64 / wall.as_nanos() as f64 * 100.0;
        report.target(
            "L3 node mean CPU while idle",
            "<= 10% of one core",
            format!("{cpu_pct:.2}% (ping {} s)", ping.as_secs()),
            cpu_pct <= 10.0,
        );
        // The child exits when its stdin closes; bounded wait, then kill.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        hub.sw.stop().await;
    });
}

/// The peers of L3, in their own process:
/// `l3-client ADDR ID PEERS SECONDS PING_MS PONG_MS`. Prints `connected N failed F`, then on
/// a `report` line from stdin (or after SECONDS) `done stopped S`; exits when stdin closes
/// or SECONDS pass.
pub(crate) fn l3_client(args: &[String]) -> i32 {
    let [addr, id, peers, secs, ping, pong] = args else {
        return 2;
    };
    let (Ok(addr), Ok(id), Ok(peers), Ok(secs), Ok(ping), Ok(pong)) = (
        addr.parse::<SocketAddr>(),
        id.parse::<NodeId>(),
        peers.parse::<usize>(),
        secs.parse::<u64>(),
        ping.parse::<u64>(),
        pong.parse::<u64>(),
    ) else {
        return 2;
    };
    crate::net::raise_nofile(65_536);
    let budget = secs + 120 + peers as u64 / 50;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(budget));
        std::process::exit(3);
    });
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::channel::<()>(1);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            match line {
                Ok(l) if l.trim() == "report" => {
                    let _ = cmd_tx.blocking_send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // stdin closed: the parent is done (or gone).
        std::process::exit(0);
    });
    let cfg =
        MConfig::node_default().with_ping(Duration::from_millis(ping), Duration::from_millis(pong));
    runtime(2).block_on(async move {
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..peers {
            let sem = sem.clone();
            let cfg = cfg.clone();
            set.spawn(async move {
                let _p = sem.acquire_owned().await;
                connect_peer(
                    src_ip(30 + (i / 62_500) as u8, i % 62_500),
                    addr,
                    id,
                    &key(3_000_000 + i as u32),
                    cfg,
                    Duration::from_secs(60),
                )
                .await
            });
        }
        let mut conns = Vec::with_capacity(peers);
        let mut failed = 0usize;
        let mut first_err = None;
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(c)) => conns.push(c),
                Ok(Err(e)) => {
                    failed += 1;
                    first_err.get_or_insert(e);
                }
                Err(_) => failed += 1,
            }
        }
        println!(
            "connected {} failed {failed} {}",
            conns.len(),
            first_err.unwrap_or_default()
        );
        let _ = std::io::stdout().flush();
        let _ = tokio::time::timeout(Duration::from_secs(secs), cmd_rx.recv()).await;
        let stopped = conns.iter().filter(|(c, _)| !c.is_running()).count();
        println!("done stopped {stopped}");
        let _ = std::io::stdout().flush();
        // Hold until the parent closes stdin (the thread above exits) or time runs out.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    0
}

// ---------------------------------------------------------------------------------------
// L4

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

// ---------------------------------------------------------------------------------------
// L5

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

// ---------------------------------------------------------------------------------------
// L6

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

// ---------------------------------------------------------------------------------------
// L7

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

// ---------------------------------------------------------------------------------------
// L8

fn book_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

/// Address `i` (over ~40,000 /16 groups) and its PEX source (one of 2,000 peers).
fn book_addr(i: usize) -> (NetAddress, NetAddress) {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    id[19] = 1;
    let g = (i * 7919) % 40_000;
    let ip = std::net::Ipv4Addr::new(
        20 + (g / 256 % 100) as u8,
        (g % 256) as u8,
        (i >> 8) as u8,
        i as u8,
    );
    let sg = i % 2_000;
    let mut sid = [0u8; 20];
    sid[..8].copy_from_slice(&(sg as u64).to_be_bytes());
    sid[19] = 2;
    let sip = std::net::Ipv4Addr::new(130 + (sg / 256) as u8, (sg % 256) as u8, 1, 1);
    (
        NetAddress::new(NodeId(id), std::net::IpAddr::V4(ip), 26656),
        NetAddress::new(NodeId(sid), std::net::IpAddr::V4(sip), 26656),
    )
}

/// Address book: PEX-sourced adds, then save and load of a ~20k-entry book.
pub(crate) fn l8(opts: Opts, report: &mut Report) {
    let adds = opts.messages(100_000, 100_000) as usize;
    let mut book = AddrBook::new(
        mukan_addrbook::Config::default(),
        ChaCha8Rng::seed_from_u64(8),
    );
    let addrs: Vec<_> = (0..adds).map(book_addr).collect();
    let mut times = Vec::with_capacity(adds);
    let mut max_size = 0usize;
    for (a, s) in &addrs {
        let t = Instant::now();
        let _ = book.add_address(*a, *s, book_now());
        times.push(t.elapsed().as_secs_f64() * 1e6);
        max_size = max_size.max(book.size());
    }
    sort(&mut times);
    let p99 = quantile(&times, 0.99);
    report.target(
        "L8 add_address p99 (PEX-sourced)",
        "< 50 us",
        format!(
            "{p99:.2} us (p50 {:.2}) over {adds} adds",
            quantile(&times, 0.5)
        ),
        p99 < 50.0,
    );
    report.correct(
        "L8 book size bound",
        "<= 20,480",
        format!("max {max_size}, final {}", book.size()),
        max_size <= 20_480,
    );
    // Fill the old buckets too, then save and load.
    let present: Vec<NodeId> = book.addresses().map(|a| a.id()).collect();
    for id in present.iter().take(4_096) {
        book.mark_good(*id, book_now());
    }
    let entries = book.size();
    let dir = std::env::temp_dir().join(format!("mukan-load-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("addrbook.json");
    let t = Instant::now();
    let saved = book.save(&path);
    let save_t = t.elapsed();
    let mut loaded = AddrBook::new(
        mukan_addrbook::Config::default(),
        ChaCha8Rng::seed_from_u64(9),
    );
    let t = Instant::now();
    let load = loaded.load(&path, book_now());
    let load_t = t.elapsed();
    let file_len = std::fs::metadata(&path).map_or(0, |m| m.len());
    let _ = std::fs::remove_dir_all(&dir);
    report.correct(
        "L8 save and load round trip",
        "same entries",
        format!(
            "saved {entries} ({}), loaded {} ({})",
            if saved.is_ok() { "ok" } else { "error" },
            loaded.size(),
            if load.is_ok() { "ok" } else { "error" }
        ),
        saved.is_ok() && load.is_ok() && loaded.size() == entries && loaded == book,
    );
    let total = save_t + load_t;
    report.target(
        "L8 save + load time",
        "< 1 s",
        format!(
            "{:.0} ms (save {:.0}, load {:.0}; {entries} entries, {:.1} MiB file)",
            ms(total),
            ms(save_t),
            ms(load_t),
            mib(file_len)
        ),
        total < Duration::from_secs(1),
    );
}
