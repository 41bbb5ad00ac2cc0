//! L3: idle authenticated peers held from a second process (`l3-client`).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mukan_mconn::Config as MConfig;
use mukan_reactor_api::NodeId;

use crate::net::{Hub, LoadReactor, connect_peer, cpu_ns, key, rss_bytes, runtime, src_ip};
use crate::{Opts, Report};

use super::mib;

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
