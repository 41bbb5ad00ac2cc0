//! The map in a real browser (Debian's `chromium`, headless, driven through `chromedriver`
//! with WebDriver): a local network of `MAP_TEST_NODES` nodes (default 500) kept up by
//! `testnet --keep`, crawled three times by `crawl --watch --db`; the watcher's map must load
//! with no console error, show the node count and the version table, and draw as many nodes
//! as the crawl found; the seed's map must show its book. A seed of three chains in one
//! process: its map has a tab per chain, each tab its own chain's nodes. Screenshots are kept
//! under `target/tmp/map/` and their paths printed.
//!
//! Ignored in a plain `cargo test` (it needs the browser and takes minutes): `.ci/run`
//! installs `chromium` and `chromium-driver` and runs it with `--ignored`; run by hand with
//! `cargo test -p mukan-node --test browser -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Testnet, Watch, bin, lines, wait_line};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("map");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `chromedriver` on a free port; killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let exe = [
            "chromedriver",
            "/usr/bin/chromedriver",
            "/usr/lib/chromium/chromedriver",
        ]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromedriver not found: apt-get install chromium chromium-driver");
        let port = free_port();
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw WebDriver call (for chromedriver's browser log, which fantoccini has no method for).
fn webdriver_post(port: u16, path: &str, body: &Value) -> Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then exactly Content-Length bytes (chromedriver keeps connections open).
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let (head_end, length) = loop {
        let n = s.read(&mut byte).unwrap();
        assert!(n > 0, "chromedriver closed the connection early");
        buf.extend_from_slice(&byte[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("no Content-Length from chromedriver");
            break (i + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let n = s.read(&mut byte).unwrap();
        assert!(n > 0, "chromedriver closed the connection early");
        buf.extend_from_slice(&byte[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Console messages of level SEVERE (errors, failed loads) since the last call.
async fn console_errors(c: &Client, port: u16) -> Vec<String> {
    let id = c.session_id().await.unwrap().unwrap();
    let r = webdriver_post(
        port,
        &format!("/session/{id}/se/log"),
        &json!({"type": "browser"}),
    );
    let entries = r["value"]
        .as_array()
        .unwrap_or_else(|| panic!("no browser log from chromedriver: {r}"));
    entries
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].to_string())
        .collect()
}

async fn wait_ready(c: &Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c
            .execute("return document.body.dataset.ready === 'true';", vec![])
            .await
            .unwrap();
        if r == json!(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page never finished loading its data"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.unwrap();
    let path = out_dir().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

/// A new browser session on `driver` (headless, console log kept).
async fn session(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1100"],
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

/// A home of chain `chain` made by `mukan-p2p init`, listening on loopback port 0.
fn loopback_home(dir: &Path, name: &str, chain: &str) -> PathBuf {
    let home = dir.join(name);
    let out = bin()
        .args(["init", "--chain-id", chain, "--moniker", name, "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = home.join("config/config.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("tcp://0.0.0.0:26656", "tcp://127.0.0.1:0")
        .replace("allow_duplicate_ip = false", "allow_duplicate_ip = true")
        .replace("addr_book_strict = true", "addr_book_strict = false");
    std::fs::write(&path, text).unwrap();
    home
}

/// Summary line of `crawl --watch`: (crawl ID, reachable, unreachable, seconds).
fn parse_summary(line: &str) -> (i64, usize, usize, f64) {
    // "crawl 3 of CHAIN: 501 reachable, 0 unreachable, 12345 edges in 7.9 s"
    let (head, after) = line.split_once(": ").unwrap();
    let id = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let w: Vec<&str> = after.split_whitespace().collect();
    let secs = w[w.len() - 2].parse().unwrap();
    (id, w[0].parse().unwrap(), w[2].parse().unwrap(), secs)
}

#[test]
#[ignore = "needs chromium and chromedriver (Debian packages); .ci/run installs them and runs it"]
fn the_map_in_a_real_browser() {
    let nodes: usize = std::env::var("MAP_TEST_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let all = nodes + 1;
    let started = Instant::now();
    let net = Testnet::start(nodes, Duration::from_secs(400));
    eprintln!(
        "testnet of {nodes} nodes up in {:.0} s; seed {} (map {})",
        started.elapsed().as_secs_f64(),
        net.seed,
        net.map
    );

    let db = out_dir().join("crawl.sqlite");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let mut watch = Watch::start(&db, &net.seed);
    let map = watch.map.clone();
    // A crawl samples the books (a PEX answer is a random part of one), so the first crawls
    // may miss a node; once one crawl saw all of them, the watcher looks at every node it
    // reached again, and the crawls after it must see all of them too.
    let mut full = Vec::new();
    for i in 1..=8 {
        let line = watch.wait_line(" reachable, ", Duration::from_secs(300));
        let (id, reachable, unreachable, secs) = parse_summary(&line);
        eprintln!(
            "crawl {i} (#{id}): {reachable} reachable, {unreachable} unreachable in {secs:.1} s"
        );
        if full.is_empty() && reachable < all {
            continue;
        }
        assert_eq!((reachable, unreachable), (all, 0), "{line}");
        full.push(id);
        if full.len() == 3 {
            break;
        }
    }
    assert_eq!(full.len(), 3, "no crawl of the first 6 saw all {all} nodes");
    {
        let c =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let ids = format!("({}, {}, {})", full[0], full[1], full[2]);
        let (n, min, max): (i64, i64, i64) = c
            .query_row(
                &format!(
                    "SELECT COUNT(*), MIN(k), MAX(k) FROM (SELECT COUNT(*) AS k FROM sightings
                     WHERE crawl_id IN {ids} GROUP BY node_id)"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((n, min, max), (all as i64, 3, 3));
        let edges: i64 = c
            .query_row(
                &format!("SELECT COUNT(*) FROM edges WHERE crawl_id IN {ids}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        eprintln!("database after 3 crawls: {n} nodes with 3 sightings each, {edges} edges");
        assert!(edges >= 3 * all as i64);
    }

    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = session(&driver).await;

        // The watcher's map: the latest crawl.
        // No refresh while the test reads the page (the table would be rebuilt under it).
        c.goto(&format!("{map}?refresh=3600")).await.unwrap();
        wait_ready(&c).await;
        assert_eq!(text_of(&c, "#node-count").await, all.to_string());
        assert_eq!(text_of(&c, "#reachable-count").await, all.to_string());
        assert_eq!(text_of(&c, "#unreachable-count").await, "0");
        let circles = c
            .find_all(Locator::Css("svg#graph circle.node"))
            .await
            .unwrap();
        assert_eq!(
            circles.len(),
            all,
            "the graph draws every node the crawl found"
        );
        assert_eq!(
            c.find_all(Locator::Css("svg#graph circle.node.ours"))
                .await
                .unwrap()
                .len(),
            1
        );
        // The version table: a column per crawl (the one running shows what it wrote so far);
        // every reachable node runs our version, and at least three crawls saw all nodes.
        let row = |name: &str| format!("#versions tr[data-row=\"{name}\"] td");
        let mut reachable = Vec::new();
        for cell in c.find_all(Locator::Css(&row("reachable"))).await.unwrap() {
            reachable.push(cell.text().await.unwrap());
        }
        let mut ours = Vec::new();
        let version = format!("version {}", env!("CARGO_PKG_VERSION"));
        for cell in c.find_all(Locator::Css(&row(&version))).await.unwrap() {
            ours.push(cell.text().await.unwrap());
        }
        assert_eq!(reachable, ours, "reachable nodes vs nodes on {version}");
        let whole = reachable.iter().filter(|r| **r == all.to_string()).count();
        assert!(whole >= 3, "crawls that saw all {all} nodes: {reachable:?}");
        let kind = text_of(&c, "#kind").await;
        assert_eq!(kind, "crawl map");
        // Let the layout settle for the picture.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let errors = console_errors(&c, driver.port).await;
        assert!(
            errors.is_empty(),
            "console errors on the crawl map: {errors:#?}"
        );
        screenshot(&c, "crawl-map.png").await;

        // The seed's map: the seed, its book, its health.
        c.goto(&format!("{}?refresh=3600", net.map)).await.unwrap();
        wait_ready(&c).await;
        assert_eq!(text_of(&c, "#kind").await, "seed map");
        let shown: usize = text_of(&c, "#node-count").await.parse().unwrap();
        assert!(shown > 1, "the seed's map shows {shown} nodes");
        let circles = c
            .find_all(Locator::Css("svg#graph circle.node"))
            .await
            .unwrap();
        assert_eq!(circles.len(), shown);
        let book = c.find(Locator::Css("#book")).await.unwrap();
        assert!(
            book.is_displayed().await.unwrap(),
            "no book section on the seed's map"
        );
        for key in ["new", "old"] {
            c.find(Locator::Css(&format!("#book-table tr[data-key=\"{key}\"]")))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let errors = console_errors(&c, driver.port).await;
        assert!(
            errors.is_empty(),
            "console errors on the seed's map: {errors:#?}"
        );
        screenshot(&c, "seed-map.png").await;
        c.close().await.unwrap();
    });

    // Both stop cleanly.
    let ok = Command::new("kill")
        .args(["-TERM", &watch.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = watch.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    net.stop();
    eprintln!(
        "browser test done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "needs chromium and chromedriver (Debian packages); .ci/run installs them and runs it"]
fn a_seed_of_three_chains_has_a_map_tab_per_chain() {
    let dir = tempfile::tempdir().unwrap();
    let chains = ["chain-a", "chain-b", "chain-c"];
    let homes: Vec<PathBuf> = chains
        .iter()
        .map(|c| loopback_home(dir.path(), &format!("seed-{c}"), c))
        .collect();
    let rpc = format!("127.0.0.1:{}", free_port());
    let mut seed = bin();
    seed.arg("seed");
    for h in &homes {
        seed.arg("--home").arg(h);
    }
    let mut seed = seed
        .args(["--rpc.laddr", &format!("tcp://{rpc}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut seed);
    let mut log = Vec::new();
    // "serving chain chain-b: p2p ID@ADDR (home …)"
    let mut addrs = std::collections::HashMap::new();
    for _ in chains {
        let line = wait_line(&rx, "serving chain ", Duration::from_secs(30), &mut log);
        let rest = line.split("serving chain ").nth(1).unwrap();
        let (chain, rest) = rest.split_once(": p2p ").unwrap();
        addrs.insert(
            chain.to_owned(),
            rest.split_whitespace().next().unwrap().to_owned(),
        );
    }
    // Two nodes of chain b keep the seed as a persistent peer: chain b's tab shows three
    // nodes, the others one (the seed itself).
    let mut nodes = Vec::new();
    for i in 0..2 {
        let home = loopback_home(dir.path(), &format!("b{i}"), "chain-b");
        let mut n = bin()
            .arg("start")
            .arg("--home")
            .arg(&home)
            .args([
                "--rpc.laddr",
                "",
                "--p2p.persistent_peers",
                &addrs["chain-b"],
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let nrx = lines(&mut n);
        wait_line(&nrx, "serving:", Duration::from_secs(30), &mut log);
        // Kept: its log is read to the end (a closed pipe would fail its writes).
        nodes.push((n, nrx));
    }
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = session(&driver).await;
        c.goto(&format!("http://{rpc}/?refresh=1")).await.unwrap();
        wait_ready(&c).await;
        assert_eq!(text_of(&c, "#kind").await, "seed map");
        let mut tabs = Vec::new();
        for b in c.find_all(Locator::Css("#chains button")).await.unwrap() {
            tabs.push(b.text().await.unwrap());
        }
        assert_eq!(tabs, chains, "a tab per chain, in the order of the homes");
        for (chain, want) in [
            ("chain-b", 3),
            ("chain-a", 1),
            ("chain-c", 1),
            ("chain-b", 3),
        ] {
            c.find(Locator::Css(&format!(
                "#chains button[data-chain=\"{chain}\"]"
            )))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
            // The tab's data arrive with the next refresh (1 s): wait for its count.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                wait_ready(&c).await;
                let active = text_of(&c, "#chains button.active").await;
                let shown = text_of(&c, "#node-count").await;
                let circles = c
                    .find_all(Locator::Css("svg#graph circle.node"))
                    .await
                    .unwrap();
                if active == chain && shown == want.to_string() && circles.len() == want {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{chain}: tab {active}, {shown} nodes, {} drawn; want {want}",
                    circles.len()
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let errors = console_errors(&c, driver.port).await;
        assert!(
            errors.is_empty(),
            "console errors on the multi-chain map: {errors:#?}"
        );
        screenshot(&c, "multichain-seed-map.png").await;
        c.close().await.unwrap();
    });
    for (mut child, _log) in nodes.into_iter().chain([(seed, rx)]) {
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
}
