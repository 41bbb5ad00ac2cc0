//! `attacker`: what the attack tests of `conformance-tests/netns/` (A-scenarios) run against a
//! real `mukan-p2p start`: slow HTTP clients and the honest probe whose latency they must not
//! move; honest p2p dials, sybils that keep trying, idle and half-handshake sockets, and
//! quick reconnects. Every client binds one of the given source addresses before connecting, so one
//! process stands in for many hosts.
//!
//! ```text
//! attacker dial       --target IP:PORT --sources IP[,…] --count N --chain ID
//!                     [--interval-ms 0] [--settle-ms 1000] [--timeout-ms 10000] [--hold-secs 0]
//! attacker sybil      --target IP:PORT --sources IP[,…] --chain ID [--duration-secs 30]
//! attacker idle-tcp   --target IP:PORT --sources IP[,…] --count N [--hold-secs 30]
//!                     [--send-bytes 0]
//! attacker reconnect  --target IP:PORT --source IP --count N --chain ID
//!                     --mode clean|handshake|same-port|nodeinfo [--settle-ms 200]
//! attacker ban-flood  --target IP:PORT --sources IP[,…] --count N --chain ID
//!                     [--concurrency 16] [--timeout-ms 10000] [--close-ms 5000]
//! attacker slow-http  --target IP:PORT --sources IP[,IP…] --clients N
//!                     [--drip-secs 5] [--duration-secs 40] [--path /]
//! attacker http-probe --target IP:PORT --source IP --count N [--interval-ms 250]
//!                     [--path /health] [--timeout-ms 5000]
//! ```
//!
//! `slow-http`: N clients (sources round-robin) each send the headers of a `POST` with a
//! 10,000-byte body (under the servers' 64 KiB limit), then one body byte every `--drip-secs`; it records, per client, the time from
//! its headers to the server closing the connection (or an answer, whichever first), and
//! prints one JSON line: `{"clients":N,"connected":…,"dropped":…,"max_drop_ms":…,
//! "statuses":{"408":…},"open_at_end":…}`.
//!
//! `ban-flood`: `--count` peers, each with a fresh key, from the sources round-robin (at most
//! `--concurrency` at a time, never two at once from one source): handshake, `NodeInfo` (its
//! listen address is the source's IP), then one unsolicited `PexAddrs` on the PEX channel (an
//! offence the node bans for), then wait up to `--close-ms` for the node to close; prints
//! `{"count":…,"outcomes":{"Closed":…,"NotClosed":…,"NoHandshake":…,"NoConnect":…},
//! "elapsed_ms":…}`.
//!
//! `http-probe`: `--count` `GET`s, each on a fresh connection, one started every
//! `--interval-ms` (whether or not the previous one finished);
//! prints `{"count":…,"ok":…,"failed":…,"p50_ms":…,"p99_ms":…,"max_ms":…}` (latency =
//! connect start to the whole answer; a failure or a timeout counts as `--timeout-ms`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test tool: a broken setup should abort loudly"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "milliseconds of a test run fit in u64"
)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn usage() -> ExitCode {
    eprintln!(
        "usage: attacker slow-http --target IP:PORT --sources IP[,IP...] --clients N \
         [--drip-secs S] [--duration-secs S] [--path P]\n       \
         attacker http-probe --target IP:PORT --source IP --count N [--interval-ms MS] \
         [--path P] [--timeout-ms MS]"
    );
    ExitCode::from(2)
}

/// `--key value` pairs.
fn flags(args: &[String]) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let k = k.strip_prefix("--")?;
        out.insert(k.to_owned(), it.next()?.clone());
    }
    Some(out)
}

fn get<T: std::str::FromStr>(f: &BTreeMap<String, String>, key: &str, default: Option<T>) -> T {
    match f.get(key) {
        Some(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("--{key}: cannot parse {v:?}")),
        None => default.unwrap_or_else(|| panic!("--{key} is required")),
    }
}

async fn connect_from(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    connect_bound(SocketAddr::new(source, 0), target).await
}

/// Connects to `target` from `bind` (port 0: any; a given port is bound with `SO_REUSEADDR`).
async fn connect_bound(bind: SocketAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = if bind.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if bind.port() != 0 {
        sock.set_reuseaddr(true)?;
    }
    sock.bind(bind)?;
    sock.connect(target).await
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        return usage();
    };
    let Some(f) = flags(rest) else {
        return usage();
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match cmd.as_str() {
        "slow-http" => rt.block_on(slow_http(&f)),
        "http-probe" => rt.block_on(http_probe(&f)),
        "dial" => rt.block_on(dial_cmd(&f)),
        "sybil" => rt.block_on(sybil_cmd(&f)),
        "idle-tcp" => rt.block_on(idle_tcp_cmd(&f)),
        "reconnect" => rt.block_on(reconnect_cmd(&f)),
        "ban-flood" => rt.block_on(ban_flood_cmd(&f)),
        "http-get" => rt.block_on(http_get_cmd(&f)),
        _ => return usage(),
    }
    ExitCode::SUCCESS
}

/// What became of one slow client.
enum Fate {
    /// Could not connect.
    NoConnect,
    /// The server answered (status) or closed (None) this long after the headers.
    Dropped(Option<u16>, Duration),
    /// Still open when the run ended.
    Open,
}

async fn slow_client(
    source: IpAddr,
    target: SocketAddr,
    path: String,
    drip: Duration,
    until: Instant,
) -> Fate {
    let Ok(stream) = connect_from(source, target).await else {
        return Fate::NoConnect;
    };
    let (mut r, mut w) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{{"
    );
    if w.write_all(head.as_bytes()).await.is_err() {
        return Fate::Dropped(None, Duration::ZERO);
    }
    let sent = Instant::now();
    let dripper = tokio::spawn(async move {
        loop {
            tokio::time::sleep(drip).await;
            if w.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let left = until.saturating_duration_since(Instant::now());
    let fate = tokio::time::timeout(left, async {
        loop {
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
    })
    .await;
    dripper.abort();
    match fate {
        Err(_) => Fate::Open,
        Ok(()) => {
            let status = String::from_utf8_lossy(&buf)
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok());
            Fate::Dropped(status, sent.elapsed())
        }
    }
}

async fn slow_http(f: &BTreeMap<String, String>) {
    let target: SocketAddr = get(f, "target", None);
    let sources: Vec<IpAddr> = get::<String>(f, "sources", None)
        .split(',')
        .map(|s| s.parse().expect("--sources: IP list"))
        .collect();
    let clients: usize = get(f, "clients", None);
    let drip = Duration::from_secs(get(f, "drip-secs", Some(5)));
    let duration = Duration::from_secs(get(f, "duration-secs", Some(40)));
    let path: String = get(f, "path", Some("/".to_owned()));
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let source = *sources.get(i % sources.len()).expect("--sources: empty");
        tasks.push(tokio::spawn(slow_client(
            source,
            target,
            path.clone(),
            drip,
            until,
        )));
    }
    let (mut connected, mut dropped, mut open) = (0usize, 0usize, 0usize);
    let mut max_drop = Duration::ZERO;
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        match t.await.unwrap_or(Fate::NoConnect) {
            Fate::NoConnect => {}
            Fate::Dropped(status, after) => {
                connected += 1;
                dropped += 1;
                max_drop = max_drop.max(after);
                let key = status.map_or_else(|| "close".to_owned(), |s| s.to_string());
                *statuses.entry(key).or_default() += 1;
            }
            Fate::Open => {
                connected += 1;
                open += 1;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "clients": clients,
            "connected": connected,
            "dropped": dropped,
            "max_drop_ms": max_drop.as_millis() as u64,
            "statuses": statuses,
            "open_at_end": open,
        })
    );
}

/// One `GET` on a fresh connection: the latency to the whole answer and its status.
async fn probe_once(
    source: IpAddr,
    target: SocketAddr,
    path: &str,
) -> std::io::Result<(Duration, u16)> {
    let start = Instant::now();
    let mut s = connect_from(source, target).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let status = String::from_utf8_lossy(&buf)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((start.elapsed(), status))
}

async fn http_probe(f: &BTreeMap<String, String>) {
    let target: SocketAddr = get(f, "target", None);
    let source: IpAddr = get(f, "source", None);
    let count: usize = get(f, "count", None);
    let interval = Duration::from_millis(get(f, "interval-ms", Some(250)));
    let timeout = Duration::from_millis(get(f, "timeout-ms", Some(5000)));
    let path: String = get(f, "path", Some("/health".to_owned()));
    // Each probe starts on its own schedule (a slow one does not delay the next).
    let mut tick = tokio::time::interval(interval);
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        tick.tick().await;
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::timeout(timeout, probe_once(source, target, &path)).await
        }));
    }
    let mut lat = Vec::with_capacity(count);
    let (mut ok, mut failed) = (0usize, 0usize);
    for t in tasks {
        match t.await {
            Ok(Ok(Ok((d, 200)))) => {
                ok += 1;
                lat.push(d);
            }
            _ => {
                failed += 1;
                lat.push(timeout);
            }
        }
    }
    lat.sort_unstable();
    let pct = |p: usize| {
        let i = (lat.len() * p).div_ceil(100).saturating_sub(1);
        lat.get(i).map_or(0, |d| d.as_millis() as u64)
    };
    println!(
        "{}",
        serde_json::json!({
            "count": count,
            "ok": ok,
            "failed": failed,
            "p50_ms": pct(50),
            "p99_ms": pct(99),
            "max_ms": lat.last().map_or(0, |d| d.as_millis() as u64),
        })
    );
}

// ---------------------------------------------------------------------------------------
// p2p: honest dials, sybils, idle sockets, slowloris, quick reconnects

/// How one p2p dial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dial {
    /// TCP connect failed (refused, unreachable) or timed out.
    NoConnect,
    /// Connected, but the handshake or the `NodeInfo` exchange did not complete (reset,
    /// closed, timed out).
    NoHandshake,
    /// Handshake and `NodeInfo` exchange done, then the node closed within the settle time
    /// (the switch refused us).
    Refused,
    /// Handshake done and still connected after the settle time.
    Admitted,
}

/// Our `NodeInfo` on `chain` (channel 0x00, PEX, like the node's), or a foreign chain's.
fn p2p_info(key: &mukan_node_key::NodeKey, chain: &str) -> mukan_reactor_api::NodeInfo {
    mukan_reactor_api::NodeInfo {
        protocol_version: mukan_reactor_api::ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        id: key.node_id().to_string(),
        listen_addr: "tcp://0.0.0.0:26656".into(),
        network: chain.into(),
        version: "0.38.25".into(),
        channels: vec![mukan_reactor_api::ChannelId(0x00)],
        moniker: "attacker".into(),
        other: mukan_reactor_api::Other {
            tx_index: "off".into(),
            rpc_address: String::new(),
        },
    }
}

type Secret = mukan_secret_conn::SecretStream<TcpStream>;

/// Handshake and `NodeInfo` exchange on `stream`; the stream, ready for MConnection bytes.
async fn upgrade(
    stream: TcpStream,
    key: &mukan_node_key::NodeKey,
    chain: &str,
) -> Result<Secret, String> {
    let sc = mukan_secret_conn::Config::new(Duration::from_secs(10));
    let mut s = mukan_secret_conn::SecretStream::handshake(stream, key, &sc)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let ours = p2p_info(key, chain).encode_length_delimited_to_vec();
    s.write_all(&ours).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    read_node_info(&mut s).await?;
    Ok(s)
}

/// Reads (and drops) what the node sends until it closes or `limit` passes; `true` if it
/// closed.
async fn closes_within(s: &mut Secret, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// One honest dial from `source`: the outcome, the time from connect start to the end of the
/// `NodeInfo` exchange, and the stream if admitted.
async fn dial_once(
    source: IpAddr,
    target: SocketAddr,
    chain: &str,
    settle: Duration,
    limit: Duration,
) -> (Dial, Duration, Option<Secret>) {
    let key = mukan_node_key::NodeKey::generate(&mut rand::rngs::OsRng);
    dial_as(&key, source, target, chain, settle, limit).await
}

/// [`dial_once`] as the peer `key`.
async fn dial_as(
    key: &mukan_node_key::NodeKey,
    source: IpAddr,
    target: SocketAddr,
    chain: &str,
    settle: Duration,
    limit: Duration,
) -> (Dial, Duration, Option<Secret>) {
    let bind = SocketAddr::new(source, 0);
    let (outcome, took, s, _) = dial_why(key, bind, target, chain, settle, limit).await;
    (outcome, took, s)
}

/// [`dial_as`], also saying why a dial that was not admitted failed (and from which local
/// port it came).
async fn dial_why(
    key: &mukan_node_key::NodeKey,
    bind: SocketAddr,
    target: SocketAddr,
    chain: &str,
    settle: Duration,
    limit: Duration,
) -> (Dial, Duration, Option<Secret>, String) {
    let start = Instant::now();
    let stream = match tokio::time::timeout(limit, connect_bound(bind, target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return (
                Dial::NoConnect,
                start.elapsed(),
                None,
                format!("connect: {e}"),
            );
        }
        Err(_) => {
            return (
                Dial::NoConnect,
                start.elapsed(),
                None,
                "connect: timed out".into(),
            );
        }
    };
    let port = stream.local_addr().map_or(0, |a| a.port());
    let left = limit.saturating_sub(start.elapsed());
    let mut s = match tokio::time::timeout(left, upgrade(stream, key, chain)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let why = format!("port {port}: {e}");
            return (Dial::NoHandshake, start.elapsed(), None, why);
        }
        Err(_) => {
            let why = format!("port {port}: timed out");
            return (Dial::NoHandshake, start.elapsed(), None, why);
        }
    };
    let took = start.elapsed();
    if closes_within(&mut s, settle).await {
        (
            Dial::Refused,
            took,
            None,
            format!("port {port}: closed after the handshake"),
        )
    } else {
        (Dial::Admitted, took, Some(s), String::new())
    }
}

fn sources_of(f: &BTreeMap<String, String>, key: &str) -> Vec<IpAddr> {
    get::<String>(f, key, None)
        .split(',')
        .map(|s| s.parse().expect("an IP list"))
        .collect()
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// `dial`: `--count` honest peers, one per source (round-robin), `--concurrency` at a time;
/// admitted ones stay connected until the end (`--hold-secs` after the last dial).
async fn dial_cmd(f: &BTreeMap<String, String>) {
    let target: SocketAddr = get(f, "target", None);
    let sources = sources_of(f, "sources");
    let count: usize = get(f, "count", None);
    let chain: String = get(f, "chain", None);
    let gap = Duration::from_millis(get(f, "interval-ms", Some(0)));
    let settle = Duration::from_millis(get(f, "settle-ms", Some(1000)));
    let limit = Duration::from_millis(get(f, "timeout-ms", Some(10_000)));
    let hold = Duration::from_secs(get(f, "hold-secs", Some(0)));
    let mut tasks = Vec::new();
    for i in 0..count {
        let source = *sources.get(i % sources.len()).expect("no sources");
        let chain = chain.clone();
        tasks.push(tokio::spawn(async move {
            let (outcome, took, stream) = dial_once(source, target, &chain, settle, limit).await;
            // Without a hold, each connection closes right after its handshake (not when the
            // run ends), as one honest dial after another would.
            (outcome, took, if hold.is_zero() { None } else { stream })
        }));
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
    let mut held = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut hs: Vec<Duration> = Vec::new();
    let mut fast = 0usize;
    for t in tasks {
        let (outcome, took, stream) = t.await.unwrap_or((Dial::NoConnect, limit, None));
        *outcomes.entry(format!("{outcome:?}")).or_default() += 1;
        if matches!(outcome, Dial::Admitted | Dial::Refused) {
            hs.push(took);
            if took < Duration::from_secs(1) {
                fast += 1;
            }
        }
        if !hold.is_zero() {
            held.extend(stream);
        }
    }
    hs.sort_unstable();
    let pct = |p: usize| {
        let i = (hs.len() * p).div_ceil(100).saturating_sub(1);
        hs.get(i).map_or(0, |d| ms(*d))
    };
    // Admitted peers still connected after the hold.
    tokio::time::sleep(hold).await;
    let mut kept = 0usize;
    for mut s in held {
        if !closes_within(&mut s, Duration::from_millis(1)).await {
            kept += 1;
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "count": count,
            "outcomes": outcomes,
            "handshake_under_1s": fast,
            "handshake_p50_ms": pct(50),
            "handshake_p99_ms": pct(99),
            "kept_after_hold": kept,
        })
    );
}

/// `sybil`: one tireless peer per source: dial; when admitted, hold until the node drops it;
/// when refused or failed, wait `--retry-ms` and dial again; for `--duration-secs`. Prints
/// how many were connected at the end and how many dials were made.
async fn sybil_cmd(f: &BTreeMap<String, String>) {
    let target: SocketAddr = get(f, "target", None);
    let sources = sources_of(f, "sources");
    let chain: String = get(f, "chain", None);
    let retry = Duration::from_millis(get(f, "retry-ms", Some(200)));
    let duration = Duration::from_secs(get(f, "duration-secs", Some(30)));
    let until = Instant::now() + duration;
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let dials = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for source in sources {
        let (chain, connected, dials) = (chain.clone(), connected.clone(), dials.clone());
        tasks.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            while Instant::now() < until {
                dials.fetch_add(1, Relaxed);
                let settle = Duration::from_millis(300);
                let (_, _, s) =
                    dial_once(source, target, &chain, settle, Duration::from_secs(10)).await;
                if let Some(mut s) = s {
                    connected.fetch_add(1, Relaxed);
                    let left = until.saturating_duration_since(Instant::now());
                    let closed = closes_within(&mut s, left).await;
                    if !closed {
                        // Still connected at the end: counted as connected.
                        return;
                    }
                    connected.fetch_sub(1, Relaxed);
                }
                tokio::time::sleep(retry).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "{}",
        serde_json::json!({
            "connected_at_end": connected.load(std::sync::atomic::Ordering::Relaxed),
            "dials": dials.load(std::sync::atomic::Ordering::Relaxed),
        })
    );
}

/// `idle-tcp`: `--count` TCP connections (sources round-robin) that never send a byte, held
/// `--hold-secs`; a closed one is reopened at once (`--reopen true`). Prints how many were
/// open at the end.
async fn idle_tcp_cmd(f: &BTreeMap<String, String>) {
    let target: SocketAddr = get(f, "target", None);
    let sources = sources_of(f, "sources");
    let count: usize = get(f, "count", None);
    let hold = Duration::from_secs(get(f, "hold-secs", Some(30)));
    let partial: usize = get(f, "send-bytes", Some(0));
    let until = Instant::now() + hold;
    let mut tasks = Vec::new();
    for i in 0..count {
        let source = *sources.get(i % sources.len()).expect("no sources");
        tasks.push(tokio::spawn(async move {
            let mut opened = 0usize;
            let mut open_at_end = false;
            while Instant::now() < until {
                let Ok(Ok(mut s)) =
                    tokio::time::timeout(Duration::from_secs(3), connect_from(source, target))
                        .await
                else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                opened += 1;
                if partial > 0 {
                    // The start of a secret-connection handshake, never finished.
                    let _ = s.write_all(&vec![0x22u8; partial]).await;
                }
                let mut buf = [0u8; 1024];
                let left = until.saturating_duration_since(Instant::now());
                let closed = tokio::time::timeout(left, async {
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                })
                .await
                .is_ok();
                if !closed {
                    open_at_end = true;
                    break;
                }
            }
            (opened, open_at_end)
        }));
    }
    let (mut opened, mut open) = (0usize, 0usize);
    for t in tasks {
        if let Ok((o, end)) = t.await {
            opened += o;
            open += usize::from(end);
        }
    }
    println!(
        "{}",
        serde_json::json!({"count": count, "opened": opened, "open_at_end": open})
    );
}

/// `reconnect`: `--count` cycles from one `--source`: a first connection that ends as
/// `--mode` says (`clean`: full handshake, admitted, then closed; `handshake`: closed in the
/// middle of the secret-connection handshake; `same-port`: reset in the middle of the
/// handshake, and the valid connection comes from the same port; `nodeinfo`: a `NodeInfo` of
/// another chain, which the node refuses), then at once a valid one. Counts the second dials
/// that did not get a full handshake and admission, and prints why the first ten failed
/// (`"failures"`).
async fn reconnect_cmd(f: &BTreeMap<String, String>) {
    let target: SocketAddr = get(f, "target", None);
    let source: IpAddr = get(f, "source", None);
    let count: usize = get(f, "count", None);
    let chain: String = get(f, "chain", None);
    let mode: String = get(f, "mode", None);
    let settle = Duration::from_millis(get(f, "settle-ms", Some(200)));
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = 0usize;
    let mut details: Vec<String> = Vec::new();
    for cycle in 0..count {
        let mut first_port = 0u16;
        // One node, reconnecting: the same key for both connections.
        let key = mukan_node_key::NodeKey::generate(&mut rand::rngs::OsRng);
        match mode.as_str() {
            "clean" => {
                let limit = Duration::from_secs(5);
                let (_, _, s) = dial_as(&key, source, target, &chain, settle, limit).await;
                drop(s);
            }
            "handshake" => {
                if let Ok(mut s) = connect_from(source, target).await {
                    first_port = s.local_addr().map_or(0, |a| a.port());
                    let _ = s.write_all(&[0x22, 0x0a, 0x20, 1, 2, 3]).await;
                    let _ = s.shutdown().await;
                }
            }
            "same-port" => {
                // The handshake cut by a reset (no TIME_WAIT keeps the port), then the
                // reconnect from that same port, as a client that aborts and retries may.
                if let Ok(mut s) = connect_from(source, target).await {
                    first_port = s.local_addr().map_or(0, |a| a.port());
                    let _ = s.write_all(&[0x22, 0x0a, 0x20, 1, 2, 3]).await;
                    let _ = s.set_zero_linger();
                }
            }
            "nodeinfo" => {
                if let Ok(stream) = connect_from(source, target).await {
                    if let Ok(mut s) = upgrade(stream, &key, "another-chain").await {
                        let _ = closes_within(&mut s, Duration::from_secs(2)).await;
                    }
                }
            }
            _ => panic!("--mode: clean, handshake, same-port or nodeinfo"),
        }
        let limit = Duration::from_secs(5);
        let port = if mode == "same-port" { first_port } else { 0 };
        let bind = SocketAddr::new(source, port);
        let (outcome, took, s, why) = dial_why(&key, bind, target, &chain, settle, limit).await;
        *outcomes.entry(format!("{outcome:?}")).or_default() += 1;
        if outcome != Dial::Admitted {
            failures += 1;
            if details.len() < 10 {
                details.push(format!(
                    "cycle {cycle}: {outcome:?} after {} ms ({why}; first connection's port {first_port})",
                    ms(took)
                ));
            }
        }
        drop(s);
    }
    println!(
        "{}",
        serde_json::json!({"mode": mode, "count": count, "outcomes": outcomes, "failed": failures,
            "failures": details})
    );
}

/// How one `ban-flood` peer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Flood {
    /// TCP connect failed or timed out.
    NoConnect,
    /// The handshake or the `NodeInfo` exchange did not complete (or the node closed before
    /// the message could be written).
    NoHandshake,
    /// The node closed the connection after the unsolicited `PexAddrs` (it stopped the peer).
    Closed,
    /// Still open after `--close-ms`.
    NotClosed,
}

/// One `ban-flood` peer: a fresh key from `source`.
async fn flood_once(
    source: IpAddr,
    target: SocketAddr,
    chain: &str,
    limit: Duration,
    close: Duration,
) -> Flood {
    let key = mukan_node_key::NodeKey::generate(&mut rand::rngs::OsRng);
    let Ok(Ok(stream)) = tokio::time::timeout(limit, connect_from(source, target)).await else {
        return Flood::NoConnect;
    };
    let mut info = p2p_info(&key, chain);
    info.listen_addr = SocketAddr::new(source, 26656).to_string();
    let ours = info.encode_length_delimited_to_vec();
    let upgraded = tokio::time::timeout(limit, async {
        let sc = mukan_secret_conn::Config::new(Duration::from_secs(10));
        let mut s = mukan_secret_conn::SecretStream::handshake(stream, &key, &sc)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(&ours).await.map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())?;
        read_node_info(&mut s).await?;
        Ok::<_, String>(s)
    })
    .await;
    let Ok(Ok(mut s)) = upgraded else {
        return Flood::NoHandshake;
    };
    // One address, routable, of another fresh ID: what the node did not ask for.
    let other = mukan_node_key::NodeKey::generate(&mut rand::rngs::OsRng).node_id();
    let addrs = vec![mukan_reactor_api::NetAddress::new(
        other,
        IpAddr::from([93, 184, 216, 34]),
        26656,
    )];
    let packet = mukan_mconn::Packet::Msg(mukan_mconn::PacketMsg {
        channel: mukan_pex::msg::PEX_CHANNEL,
        eof: true,
        data: bytes::Bytes::from(mukan_pex::PexMessage::Addrs(addrs).encode()),
    });
    let mut buf = bytes::BytesMut::new();
    packet.encode(&mut buf);
    if s.write_all(&buf).await.is_err() || s.flush().await.is_err() {
        return Flood::NoHandshake;
    }
    if closes_within(&mut s, close).await {
        Flood::Closed
    } else {
        Flood::NotClosed
    }
}

/// Reads the node's length-delimited `NodeInfo` from `s` (and checks that it decodes).
async fn read_node_info(s: &mut Secret) -> Result<(), String> {
    let mut len = 0usize;
    for shift in (0..35).step_by(7) {
        let b = s.read_u8().await.map_err(|e| e.to_string())?;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    if len > mukan_reactor_api::NodeInfo::MAX_SIZE {
        return Err("node info too large".into());
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    mukan_reactor_api::NodeInfo::decode(&body).map_err(|e| e.to_string())?;
    Ok(())
}

/// `ban-flood`: see the module docs. One worker per source slot: `--concurrency` workers, each
/// owning the sources `i, i + concurrency, …`, so that one source never has two connections
/// at once (the node refuses a second connection from an IP it already has).
async fn ban_flood_cmd(f: &BTreeMap<String, String>) {
    let target: SocketAddr = get(f, "target", None);
    let sources = sources_of(f, "sources");
    let count: usize = get(f, "count", None);
    let chain: String = get(f, "chain", None);
    let concurrency: usize = get::<usize>(f, "concurrency", Some(16)).clamp(1, sources.len());
    let limit = Duration::from_millis(get(f, "timeout-ms", Some(10_000)));
    let close = Duration::from_millis(get(f, "close-ms", Some(5_000)));
    let start = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sources = std::sync::Arc::new(sources);
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (next, sources, chain) = (next.clone(), sources.clone(), chain.clone());
        workers.push(tokio::spawn(async move {
            let mut outcomes: BTreeMap<Flood, usize> = BTreeMap::new();
            let mine: Vec<IpAddr> = sources
                .iter()
                .skip(w)
                .step_by(concurrency)
                .copied()
                .collect();
            let mut k = 0usize;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let source = *mine.get(k % mine.len()).expect("a worker has sources");
                k += 1;
                let outcome = flood_once(source, target, &chain, limit, close).await;
                *outcomes.entry(outcome).or_default() += 1;
            }
            outcomes
        }));
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for w in workers {
        for (k, n) in w.await.unwrap_or_default() {
            *outcomes.entry(format!("{k:?}")).or_default() += n;
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "count": count,
            "outcomes": outcomes,
            "elapsed_ms": ms(start.elapsed()),
        })
    );
}

/// `http-get`: one `GET --path` from the default source; prints the body.
async fn http_get_cmd(f: &BTreeMap<String, String>) {
    let target: SocketAddr = get(f, "target", None);
    let path: String = get(f, "path", Some("/".to_owned()));
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target)).await
    else {
        return;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    if let Some((_, body)) = text.split_once("\r\n\r\n") {
        // A reader that stops early (`head`, `awk … exit`) is not an error.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{body}\n").as_bytes());
    }
}
