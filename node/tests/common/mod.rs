//! Helpers shared by the tests that run `mukan-p2p` processes: a local network kept up by
//! `testnet --keep`, a crawl watcher, a tiny HTTP GET.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mukan-p2p"));
    c.env_remove("CMTHOME");
    c
}

/// Lines of a child's stdout and stderr, read by threads.
pub(crate) fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Starts `cmd` with its stdout and stderr read line by line.
pub(crate) fn spawn_piped(mut cmd: Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    (child, rx)
}

/// Waits for a line containing `what`; returns it (panics after `limit`, with what was read).
pub(crate) fn wait_line(
    rx: &mpsc::Receiver<String>,
    what: &str,
    limit: Duration,
    log: &mut Vec<String>,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(what) => {
                log.push(l.clone());
                return l;
            }
            Ok(l) => log.push(l),
            Err(e) => panic!(
                "no line with {what:?} within {limit:?} ({e}):\n{}",
                log.join("\n")
            ),
        }
    }
}

/// `crawl --watch --interval 1s --db DB --seeds SEED` with its map on a free port, started
/// and waited for until it prints the map's address.
pub(crate) struct Watch {
    pub(crate) child: Child,
    pub(crate) rx: mpsc::Receiver<String>,
    /// Every line read so far (shown when a wait fails).
    pub(crate) log: Vec<String>,
    /// `http://127.0.0.1:PORT` of the map.
    pub(crate) map: String,
}

impl Watch {
    pub(crate) fn start(db: &std::path::Path, seed: &str) -> Self {
        let mut cmd = bin();
        cmd.args([
            "crawl",
            "--watch",
            "--interval",
            "1s",
            "--rpc.laddr",
            "tcp://127.0.0.1:0",
        ])
        .arg("--db")
        .arg(db)
        .args(["--seeds", seed]);
        let (child, rx) = spawn_piped(cmd);
        let mut log = Vec::new();
        let line = wait_line(&rx, "map on http://", Duration::from_secs(30), &mut log);
        let map = line
            .trim_start_matches("map on ")
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        Self {
            child,
            rx,
            log,
            map,
        }
    }

    /// The next line containing `what` (panics after `limit`).
    pub(crate) fn wait_line(&mut self, what: &str, limit: Duration) -> String {
        wait_line(&self.rx, what, limit, &mut self.log)
    }
}

/// A `testnet --keep` process: its seed and the map's address. Killed on drop.
pub(crate) struct Testnet {
    pub(crate) child: Child,
    pub(crate) seed: String,
    pub(crate) chain: String,
    pub(crate) map: String,
    pub(crate) rx: mpsc::Receiver<String>,
    pub(crate) log: Vec<String>,
}

impl Testnet {
    /// Starts `testnet --nodes N --keep` and waits until it converged.
    pub(crate) fn start(nodes: usize, timeout: Duration) -> Self {
        let mut cmd = bin();
        cmd.args([
            "testnet",
            "--keep",
            "--nodes",
            &nodes.to_string(),
            "--timeout",
        ])
        .arg(format!("{}s", timeout.as_secs()));
        let (child, rx) = spawn_piped(cmd);
        let mut log = Vec::new();
        let limit = timeout + Duration::from_secs(60);
        let map = wait_line(&rx, "map on http://", limit, &mut log);
        let map = map.trim_start_matches("map on ").trim().to_owned();
        let seed_line = wait_line(
            &rx,
            "the network stays up",
            Duration::from_secs(10),
            &mut log,
        );
        // "seed ID@HOST:PORT on chain CHAIN; the network stays up until Ctrl-C"
        let mut words = seed_line.split_whitespace();
        let seed = words.nth(1).unwrap().to_owned();
        let chain = words.nth(2).unwrap().trim_end_matches(';').to_owned();
        Self {
            child,
            seed,
            chain,
            map,
            rx,
            log,
        }
    }

    /// SIGTERM, then the exit code must be 0.
    pub(crate) fn stop(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert_eq!(s.code(), Some(0), "testnet exited with {s}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "testnet did not stop within 120 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `base` ("http://127.0.0.1:PORT/") → (status, body).
pub(crate) fn http_get(base: &str, path: &str) -> (u16, String) {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}
