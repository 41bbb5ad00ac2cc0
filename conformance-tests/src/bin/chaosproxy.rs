//! `chaosproxy`: a small TCP proxy that delays every byte it forwards, for the network-
//! namespace fault tests (`conformance-tests/netns/`). The kernel here has no `netem`, so
//! latency and jitter are added in user space: the proxy runs in a middle namespace, and one
//! peer dials the proxy instead of the other peer.
//!
//! ```text
//! chaosproxy --listen 10.0.0.1:7000 --upstream 10.0.1.2:26656 \
//!            --delay-ms 200 --jitter-ms 50 --seed 7 --exit-after 90s
//! ```
//!
//! Each chunk read from one side is written to the other side `delay ± jitter` ms after it
//! was read (uniform, seeded), never before the chunk read before it: the byte stream keeps
//! its order, as TCP does. Per direction at most `--max-buffer` bytes wait (then reading
//! stops, and TCP pushes back). At most `--max-conns` connections at once. The proxy ends
//! after `--exit-after` (default 10 min). Events are JSON lines on stdout, like `rustpeer`'s.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;

#[derive(Clone, Debug)]
struct Cfg {
    listen: SocketAddr,
    upstream: SocketAddr,
    delay: Duration,
    jitter: Duration,
    seed: u64,
    exit_after: Duration,
    max_buffer: usize,
    max_conns: usize,
    connect_timeout: Duration,
}

fn parse(args: &[String]) -> Result<Cfg, String> {
    let mut listen = None;
    let mut upstream = None;
    let mut cfg = Cfg {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        upstream: SocketAddr::from(([127, 0, 0, 1], 0)),
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        seed: 1,
        exit_after: Duration::from_secs(600),
        max_buffer: 4 << 20,
        max_conns: 64,
        connect_timeout: Duration::from_secs(3),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        let addr = |v: &str| {
            v.parse::<SocketAddr>()
                .map_err(|e| format!("{flag} {v:?}: {e}"))
        };
        match flag.trim_start_matches('-') {
            "listen" => listen = Some(addr(value)?),
            "upstream" => upstream = Some(addr(value)?),
            "delay-ms" => cfg.delay = Duration::from_millis(num(value)?),
            "jitter-ms" => cfg.jitter = Duration::from_millis(num(value)?),
            "seed" => cfg.seed = num(value)?,
            "exit-after" => {
                let secs = value.trim_end_matches('s');
                cfg.exit_after = Duration::from_secs(num(secs)?);
            }
            "max-buffer" => cfg.max_buffer = num(value)? as usize,
            "max-conns" => cfg.max_conns = num(value)?.max(1) as usize,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if cfg.jitter > cfg.delay {
        return Err("--jitter-ms must not exceed --delay-ms".into());
    }
    cfg.listen = listen.ok_or("--listen is required")?;
    cfg.upstream = upstream.ok_or("--upstream is required")?;
    Ok(cfg)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaosproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaosproxy: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        match tokio::time::timeout(cfg.exit_after, serve(cfg.clone())).await {
            Ok(Err(e)) => {
                emit(&format!("{{\"event\":\"error\",\"error\":{:?}}}", e));
                ExitCode::from(1)
            }
            _ => {
                emit("{\"event\":\"stopped\"}");
                ExitCode::SUCCESS
            }
        }
    })
}

fn emit(line: &str) {
    println!("{line}");
}

async fn serve(cfg: Cfg) -> Result<(), String> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", cfg.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    emit(&format!(
        "{{\"event\":\"listening\",\"addr\":\"{local}\",\"upstream\":\"{}\",\"delay_ms\":{},\"jitter_ms\":{}}}",
        cfg.upstream,
        cfg.delay.as_millis(),
        cfg.jitter.as_millis()
    ));
    let rng = Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(cfg.seed)));
    let slots = Arc::new(Semaphore::new(cfg.max_conns));
    let conn_ids = AtomicU64::new(0);
    loop {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (down, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                emit(&format!(
                    "{{\"event\":\"accept_error\",\"error\":{:?}}}",
                    e.to_string()
                ));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = conn_ids.fetch_add(1, Ordering::Relaxed);
        let cfg = cfg.clone();
        let rng = rng.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let up =
                match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(cfg.upstream))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        emit(&format!(
                            "{{\"event\":\"upstream_failed\",\"conn\":{id},\"error\":{:?}}}",
                            e.to_string()
                        ));
                        return;
                    }
                    Err(_) => {
                        emit(&format!(
                            "{{\"event\":\"upstream_failed\",\"conn\":{id},\"error\":\"timeout\"}}"
                        ));
                        return;
                    }
                };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            emit(&format!(
                "{{\"event\":\"conn_open\",\"conn\":{id},\"from\":\"{from}\"}}"
            ));
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            let mut a = tokio::spawn(pump(dr, uw, cfg.clone(), rng.clone()));
            let mut b = tokio::spawn(pump(ur, dw, cfg.clone(), rng));
            // A clean EOF one way leaves the other way open (half-close, as TCP); an error
            // either way tears both down.
            let ok = |r: Result<Result<u64, u64>, tokio::task::JoinError>| matches!(r, Ok(Ok(_)));
            let clean = tokio::select! {
                r = &mut a => ok(r) && ok((&mut b).await),
                r = &mut b => ok(r) && ok((&mut a).await),
            };
            a.abort();
            b.abort();
            emit(&format!(
                "{{\"event\":\"conn_closed\",\"conn\":{id},\"clean\":{clean}}}"
            ));
        });
    }
}

/// Forwards `r` to `w` with the delay; returns the bytes forwarded, `Err` on an I/O error.
/// On a clean EOF the write side is shut down after the queued bytes are written.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    cfg: Cfg,
    rng: Arc<Mutex<ChaCha8Rng>>,
) -> Result<u64, u64> {
    let depth = (cfg.max_buffer / CHUNK).max(1);
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(depth);
    let reader = async move {
        let mut last = Instant::now();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match r.read(&mut buf).await {
                Ok(0) => return true,
                Ok(n) => n,
                Err(_) => return false,
            };
            buf.truncate(n);
            let offset = if cfg.jitter.is_zero() {
                cfg.delay
            } else {
                let j = cfg.jitter.as_micros() as i64;
                let d = rng.lock().gen_range(-j..=j);
                let base = cfg.delay.as_micros() as i64;
                Duration::from_micros((base + d).max(0) as u64)
            };
            let release = (Instant::now() + offset).max(last);
            last = release;
            if tx.send((release, buf)).await.is_err() {
                return false;
            }
        }
    };
    let writer = async move {
        let mut total = 0u64;
        while let Some((release, buf)) = rx.recv().await {
            tokio::time::sleep_until(release.into()).await;
            if w.write_all(&buf).await.is_err() {
                return Err(total);
            }
            total += buf.len() as u64;
        }
        let _ = w.shutdown().await;
        Ok(total)
    };
    // The writer ends when the reader has (cleanly: queue drained) or on a write error;
    // a write error ends the reader too (it is dropped here).
    tokio::pin!(reader, writer);
    let mut clean_read = None;
    loop {
        tokio::select! {
            c = &mut reader, if clean_read.is_none() => clean_read = Some(c),
            w = &mut writer => {
                return match (w, clean_read) {
                    (Ok(n), Some(true)) => Ok(n),
                    (Ok(n) | Err(n), _) => Err(n),
                };
            }
        }
    }
}
