//! The `mukan-p2p` binary as an operator runs it: homes made by real `cometbft init`
//! (v0.34 … v1.0, copied into tests/data), bad configurations, signals.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const VERSIONS: &[&str] = &["v0.34.35", "v0.37.18", "v0.38.25", "v0.40.0", "v1.0.1"];

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mukan-p2p"));
    c.env_remove("CMTHOME");
    c
}

/// A home with the files `cometbft init` of `version` wrote.
fn cometbft_home(dir: &Path, version: &str) -> PathBuf {
    let home = dir.join(version);
    let config = home.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(version);
    for f in ["config.toml", "genesis.json", "node_key.json"] {
        std::fs::copy(data.join(f), config.join(f)).unwrap();
    }
    home
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Loopback listeners so that tests never bind a public interface or a fixed port.
const LOOPBACK: &[&str] = &[
    "--p2p.laddr",
    "tcp://127.0.0.1:0",
    "--rpc.laddr",
    "tcp://127.0.0.1:0",
];

fn run_start(home: &Path, extra: &[&str]) -> (ExitStatus, String) {
    let mut child = bin()
        .arg("start")
        .arg("--home")
        .arg(home)
        .args(LOOPBACK)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

#[test]
fn each_bad_configuration_fails_with_one_line_exit_1_and_changes_nothing() {
    type Mutate = fn(&Path);
    let cases: Vec<(&str, Mutate, &[&str], &[&str])> = vec![
        (
            "unknown key in [p2p]",
            |h| append_to_section(h, "[p2p]", "max_num_inbund_peers = 3"),
            &[],
            &["config.toml", "[p2p] max_num_inbund_peers", "unknown key"],
        ),
        (
            "bad address in the file",
            |h| {
                replace(
                    h,
                    "external_address = \"\"",
                    "external_address = \"1.2.3.4\"",
                )
            },
            &[],
            &[
                "config.toml",
                "[p2p] external_address",
                "expected host:port",
            ],
        ),
        (
            "bad address in a flag",
            |_| {},
            &["--p2p.external-address", "tcp://1.2.3.4:99999"],
            &["command line", "--p2p.external-address", "invalid port"],
        ),
        (
            "bad persistent peer in the file",
            |h| {
                replace(
                    h,
                    "persistent_peers = \"\"",
                    "persistent_peers = \"nobody@1.2.3.4:26656\"",
                )
            },
            &[],
            &["config.toml", "[p2p] persistent_peers", "bad address"],
        ),
        (
            "wrong type",
            |h| replace(h, "pex = true", "pex = \"yes\""),
            &[],
            &["config.toml", "[p2p] pex", "expected true or false"],
        ),
        (
            "wrong type of a number",
            |h| {
                replace(
                    h,
                    "max_num_outbound_peers = 10",
                    "max_num_outbound_peers = \"ten\"",
                )
            },
            &[],
            &[
                "config.toml",
                "[p2p] max_num_outbound_peers",
                "expected an integer",
            ],
        ),
        (
            "invalid TOML",
            |h| append_to_section(h, "[p2p]", "seeds = \"unterminated"),
            &[],
            &["config.toml", "line", "invalid TOML"],
        ),
        (
            "missing genesis",
            |h| std::fs::remove_file(h.join("config/genesis.json")).unwrap(),
            &[],
            &["genesis.json", "cannot read"],
        ),
        (
            "genesis without chain_id",
            |h| std::fs::write(h.join("config/genesis.json"), "{\"genesis_time\":\"x\"}").unwrap(),
            &[],
            &["genesis.json", "chain_id", "missing"],
        ),
        (
            "missing node key",
            |h| std::fs::remove_file(h.join("config/node_key.json")).unwrap(),
            &[],
            &["node_key.json", "no node key file"],
        ),
        (
            "corrupt node key",
            |h| std::fs::write(h.join("config/node_key.json"), "{\"priv_key\":1}").unwrap(),
            &[],
            &["node_key.json", "invalid JSON"],
        ),
        (
            "bad flag value",
            |_| {},
            &["--p2p.unconditional_peer_ids", "zz"],
            &[
                "command line",
                "--p2p.unconditional_peer_ids",
                "bad node ID",
            ],
        ),
        (
            "seed mode without PEX",
            |h| replace(h, "pex = true", "pex = false"),
            &["--p2p.seed_mode"],
            &["command line", "--p2p.seed_mode", "a seed needs pex = true"],
        ),
        (
            "bad log level",
            |_| {},
            &["--log_level", "p2p:loud"],
            &["command line", "--log_level", "unknown log level"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, mutate, flags, needles)) in cases.into_iter().enumerate() {
        let home = cometbft_home(&dir.path().join(i.to_string()), "v0.38.25");
        mutate(&home);
        let before = snapshot(&home);
        let (status, err) = run_start(&home, flags);
        assert_eq!(status.code(), Some(1), "{name}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: not one line: {err}"
        );
        for n in needles {
            assert!(err.contains(n), "{name}: {n:?} not in {err:?}");
        }
        assert_eq!(snapshot(&home), before, "{name}: a file changed");
    }
}

fn replace(home: &Path, from: &str, to: &str) {
    let p = home.join("config/config.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

fn append_to_section(home: &Path, section: &str, line: &str) {
    replace(
        home,
        &format!("{section}\n"),
        &format!("{section}\n{line}\n"),
    );
}

/// Starts `mukan-p2p start` and returns once it logged that it is serving.
fn start_and_wait(home: &Path, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let (child, rx, _) = start_and_wait_logged(home, extra);
    (child, rx)
}

/// [`start_and_wait`], also returning the lines logged up to the "serving" line.
fn start_and_wait_logged(
    home: &Path,
    extra: &[&str],
) -> (Child, mpsc::Receiver<String>, Vec<String>) {
    let mut child = bin()
        .arg("start")
        .arg("--home")
        .arg(home)
        .args(LOOPBACK)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("serving:") => {
                before.push(line);
                return (child, rx, before);
            }
            Ok(line) => before.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no 'serving' line: {e}");
            }
        }
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn start_runs_on_every_cometbft_init_home_and_sigterm_exits_0_with_the_book_saved() {
    let dir = tempfile::tempdir().unwrap();
    for v in VERSIONS {
        let home = cometbft_home(dir.path(), v);
        let config_before = snapshot(&home.join("config"));
        let (mut child, rx) = start_and_wait(&home, &[]);
        sigterm(&child);
        let status = wait_with_timeout(&mut child, Duration::from_secs(30));
        let log: Vec<String> = rx.try_iter().collect();
        assert_eq!(status.code(), Some(0), "{v}: {log:?}");
        let book = std::fs::read_to_string(home.join("config/addrbook.json"))
            .unwrap_or_else(|e| panic!("{v}: no address book: {e}; {log:?}"));
        let parsed: serde_json::Value = serde_json::from_str(&book).unwrap();
        assert!(parsed["addrs"].is_array(), "{v}: {book}");
        // Only the address book was added.
        let mut after = snapshot(&home.join("config"));
        after.remove(&home.join("config/addrbook.json"));
        assert_eq!(after, config_before, "{v}");
    }
}

#[test]
fn init_then_show_node_id_and_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let out = bin()
        .args(["init", "--chain-id", "test-1", "--moniker", "m"])
        .arg("--home")
        .arg(&home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let before = snapshot(&home);
    let id = bin()
        .arg("show-node-id")
        .arg("--home")
        .arg(&home)
        .output()
        .unwrap();
    assert!(id.status.success());
    let id = String::from_utf8(id.stdout).unwrap();
    assert_eq!(id.trim().len(), 40, "{id}");
    let again = bin()
        .args(["init", "--chain-id", "other"])
        .arg("--home")
        .arg(&home)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(snapshot(&home), before);
    // CMTHOME is the default home.
    let id2 = Command::new(env!("CARGO_BIN_EXE_mukan-p2p"))
        .arg("show-node-id")
        .env("CMTHOME", &home)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(id2.stdout).unwrap(), id);
}

#[test]
fn version_prints_the_package_version() {
    let out = bin().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn testnet_of_20_nodes_converges_and_exits_0() {
    let mut child = bin()
        .args(["testnet", "--nodes", "20", "--timeout", "90s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(180));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("converged in"), "{out}");
    assert!(out.contains("addresses discovered 380/380"), "{out}");
    assert_eq!(out.matches("  node").count(), 20, "{out}");
    // The temporary homes are gone.
    let dir = err
        .split("temporary homes in ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap();
    assert!(!Path::new(dir).exists(), "{dir} left behind");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = cometbft_home(dir.path(), "v0.38.25");
    let (mut child, rx) = start_and_wait(
        &home,
        &["--log_format", "json", "--log_level", "main:info,*:error"],
    );
    sigterm(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let lines: Vec<String> = rx.try_iter().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string(), "{line}");
    }
}

#[test]
fn a_p2p_port_in_use_is_one_line_naming_the_key_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let home = cometbft_home(dir.path(), "v0.38.25");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let laddr = format!("tcp://{}", taken.local_addr().unwrap());
    let before = snapshot(&home);
    let mut child = bin()
        .args([
            "start",
            "--p2p.laddr",
            &laddr,
            "--rpc.laddr",
            "tcp://127.0.0.1:0",
            "--home",
        ])
        .arg(&home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.trim_end().lines().last().unwrap();
    assert!(last.starts_with("mukan-p2p: "), "{err}");
    assert!(
        last.contains("config.toml: [p2p] laddr: cannot listen on"),
        "{err}"
    );
    assert_eq!(snapshot(&home), before);
}

#[test]
fn seed_runs_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let home = cometbft_home(dir.path(), "v0.38.25");
    let mut child = bin()
        .arg("seed")
        .arg("--home")
        .arg(&home)
        .args(LOOPBACK)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    assert!(lines.any(|l| l.contains("serving:")));
    sigterm(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    assert!(home.join("config/addrbook.json").exists());
}

/// The files under `config/` whose name starts with `addrbook.json.corrupt-`.
fn moved_aside(home: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(home.join("config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("addrbook.json.corrupt-"))
        })
        .collect();
    out.sort();
    out
}

/// An address book written by a Go v0.38 node loads (its addresses survive a start and a
/// stop), and an unusable one (cut short mid-write, empty, garbage) neither stops the node
/// nor is lost: the node warns, starts with an empty book, keeps the bad file intact beside
/// the new one, and saves a valid book on SIGTERM.
#[test]
fn start_loads_a_go_address_book_and_survives_an_unusable_one() {
    // The Go file's dialable addresses moved to loopback, so that the node's PEX dials
    // stay on this machine (its source addresses are never dialed).
    let go_book = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/addrbook-go-v0.38.json"),
    )
    .unwrap()
    .replace("\"1.2.3.4\"", "\"127.0.0.2\"")
    .replace("\"9.9.9.9\"", "\"127.0.0.3\"")
    .replace("\"2a01:4f8::1\"", "\"::1\"")
    .into_bytes();
    let go_addrs = serde_json::from_slice::<serde_json::Value>(&go_book).unwrap()["addrs"]
        .as_array()
        .unwrap()
        .len();
    assert!(go_addrs > 0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("go-v0.38", go_book.clone()),
        ("truncated", go_book[..go_book.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"\x00\xffnot json at all\n".to_vec()),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in cases {
        let home = cometbft_home(&dir.path().join(name), "v0.38.25");
        std::fs::write(home.join("config/addrbook.json"), &bytes).unwrap();
        // Strict mode off, so that the loopback addresses stay in the book.
        replace(&home, "addr_book_strict = true", "addr_book_strict = false");
        let (mut child, rx, mut log) = start_and_wait_logged(&home, &[]);
        sigterm(&child);
        let status = wait_with_timeout(&mut child, Duration::from_secs(30));
        log.extend(rx.try_iter());
        assert_eq!(status.code(), Some(0), "{name}: {log:?}");
        let saved = std::fs::read_to_string(home.join("config/addrbook.json"))
            .unwrap_or_else(|e| panic!("{name}: no address book: {e}"));
        let saved: serde_json::Value =
            serde_json::from_str(&saved).unwrap_or_else(|e| panic!("{name}: {e}: {saved}"));
        let kept = saved["addrs"].as_array().map_or(0, Vec::len);
        let aside = moved_aside(&home);
        if name == "go-v0.38" {
            assert_eq!(
                kept, go_addrs,
                "{name}: the Go book's addresses were not kept"
            );
            assert!(aside.is_empty(), "{name}: {aside:?}");
        } else {
            assert_eq!(kept, 0, "{name}: {saved}");
            assert_eq!(
                aside.len(),
                1,
                "{name}: the unusable file was not kept: {log:?}"
            );
            let kept_as = aside[0].display().to_string();
            assert!(
                log.iter()
                    .any(|l| l.contains("WARN") && l.contains(&kept_as)),
                "{name}: no warning naming {kept_as}: {log:?}"
            );
            assert_eq!(std::fs::read(&aside[0]).unwrap(), bytes, "{name}: changed");
        }
    }
}

/// A cometbft-init home (v0.38.25) of chain `chain` in `dir/name`, listening on loopback
/// port 0 (set in its config.toml: with several homes the listen flags are refused).
fn chain_home(dir: &Path, name: &str, chain: &str) -> PathBuf {
    let home = cometbft_home(&dir.join(name), "v0.38.25");
    replace(&home, "tcp://0.0.0.0:26656", "tcp://127.0.0.1:0");
    let genesis = home.join("config/genesis.json");
    let text = std::fs::read_to_string(&genesis).unwrap();
    std::fs::write(&genesis, text.replace("test-chain-eTE4V4", chain)).unwrap();
    home
}

/// `mukan-p2p seed` (or `start`) on several homes, stderr piped.
fn spawn_homes(command: &str, homes: &[&Path], extra: &[&str]) -> Child {
    let mut c = bin();
    c.arg(command);
    for h in homes {
        c.arg("--home").arg(h);
    }
    c.args(["--rpc.laddr", "tcp://127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the exit of a start that must fail; returns its stderr.
fn failed_start(mut child: Child) -> String {
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    err
}

#[test]
fn a_seed_of_three_homes_serves_three_chains_and_sigterm_saves_every_book() {
    let dir = tempfile::tempdir().unwrap();
    let homes: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|c| chain_home(dir.path(), c, &format!("chain-{c}")))
        .collect();
    let refs: Vec<&Path> = homes.iter().map(PathBuf::as_path).collect();
    let mut child = spawn_homes("seed", &refs, &[]);
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let mut chains = Vec::new();
    for line in lines.by_ref() {
        if let Some(rest) = line.split("serving chain ").nth(1) {
            chains.push(rest.split(':').next().unwrap().to_owned());
        }
        if line.contains("serving: p2p") {
            break;
        }
    }
    assert_eq!(chains, ["chain-a", "chain-b", "chain-c"]);
    sigterm(&child);
    let rest: Vec<String> = lines.collect();
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{rest:?}");
    for h in &homes {
        let book = std::fs::read_to_string(h.join("config/addrbook.json"))
            .unwrap_or_else(|e| panic!("{}: no book: {e}; {rest:?}", h.display()));
        assert!(book.contains("\"addrs\""), "{book}");
    }
}

#[test]
fn a_bad_home_among_several_is_one_line_naming_it_and_nothing_starts_or_is_written() {
    let dir = tempfile::tempdir().unwrap();
    type Mutate = fn(&Path);
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "unknown key",
            |h| append_to_section(h, "[p2p]", "max_num_inbund_peers = 3"),
            "[p2p] max_num_inbund_peers",
        ),
        (
            "no genesis",
            |h| std::fs::remove_file(h.join("config/genesis.json")).unwrap(),
            "genesis.json",
        ),
        (
            "the chain of another home",
            |h| {
                let g = h.join("config/genesis.json");
                let text = std::fs::read_to_string(&g).unwrap();
                std::fs::write(&g, text.replace("chain-bad", "chain-good")).unwrap();
            },
            "already served by the home",
        ),
    ];
    for (i, (name, mutate, want)) in cases.into_iter().enumerate() {
        let good = chain_home(&dir.path().join(i.to_string()), "good", "chain-good");
        let other = chain_home(&dir.path().join(i.to_string()), "other", "chain-other");
        let bad = chain_home(&dir.path().join(i.to_string()), "bad", "chain-bad");
        mutate(&bad);
        let before: Vec<_> = [&good, &other, &bad].map(|h| snapshot(h)).into();
        let err = failed_start(spawn_homes("seed", &[&good, &other, &bad], &[]));
        // The error is the last line, one line (logs may come before it).
        let line = err.trim_end().lines().last().unwrap();
        assert!(line.starts_with("mukan-p2p: "), "{name}: {err}");
        assert!(line.contains(&bad.display().to_string()), "{name}: {err}");
        assert!(line.contains(want), "{name}: {err}");
        let after: Vec<_> = [&good, &other, &bad].map(|h| snapshot(h)).into();
        assert_eq!(after, before, "{name}: a file changed");
    }
}

#[test]
fn a_port_in_use_in_the_last_home_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = chain_home(dir.path(), "a", "chain-a");
    let b = chain_home(dir.path(), "b", "chain-b");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let laddr = format!("tcp://{}", taken.local_addr().unwrap());
    replace(&b, "tcp://127.0.0.1:0", &laddr);
    let before = [&a, &b].map(|h| snapshot(h));
    let err = failed_start(spawn_homes("start", &[&a, &b], &[]));
    let last = err.trim_end().lines().last().unwrap();
    assert!(
        last.contains(&format!(
            "{}: [p2p] laddr: cannot listen on",
            b.join("config/config.toml").display()
        )) && last.starts_with("mukan-p2p: "),
        "{err}"
    );
    // Nothing ran: no book was written (a node that ran saves its book when it stops).
    assert_eq!([&a, &b].map(|h| snapshot(h)), before);
}

#[test]
fn per_chain_flags_are_refused_with_several_homes() {
    let dir = tempfile::tempdir().unwrap();
    let a = chain_home(dir.path(), "a", "chain-a");
    let b = chain_home(dir.path(), "b", "chain-b");
    let err = failed_start(spawn_homes(
        "start",
        &[&a, &b],
        &["--p2p.seeds", "x", "--p2p.laddr", "tcp://127.0.0.1:0"],
    ));
    assert!(
        err.contains("--p2p.laddr, --p2p.seeds: with several --home"),
        "{err}"
    );
    // init and show-node-id take one home.
    let out = bin()
        .arg("show-node-id")
        .arg("--home")
        .arg(&a)
        .arg("--home")
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("takes one home"));
}

/// The resident set (KiB) of process `pid`.
#[cfg(target_os = "linux")]
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 23's bound: each extra chain of a seed costs at most 5 MiB resident, idle. A seed
/// on one home and a seed on three, side by side, once serving and settled (the figure for
/// a release build is in node/README.md: node/scripts/rss-per-chain.sh).
#[cfg(target_os = "linux")]
#[test]
fn an_extra_chain_costs_at_most_5_mib_resident_idle() {
    let dir = tempfile::tempdir().unwrap();
    let single = chain_home(dir.path(), "single", "chain-a");
    let homes: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|c| chain_home(dir.path(), c, &format!("chain-{c}")))
        .collect();
    let refs: Vec<&Path> = homes.iter().map(PathBuf::as_path).collect();
    let mut seeds = [
        spawn_homes("seed", &[&single], &[]),
        spawn_homes("seed", &refs, &[]),
    ];
    for child in &mut seeds {
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
        assert!(lines.any(|l| l.contains("serving: p2p")));
        // Keep reading so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
    }
    std::thread::sleep(Duration::from_secs(3));
    let [one, three] = [&seeds[0], &seeds[1]].map(|c| vm_rss_kib(c.id()));
    for child in &mut seeds {
        sigterm(child);
        assert_eq!(
            wait_with_timeout(child, Duration::from_secs(30)).code(),
            Some(0)
        );
    }
    let per_chain = three.saturating_sub(one) / 2;
    eprintln!("VmRSS: 1 home {one} KiB, 3 homes {three} KiB: {per_chain} KiB per extra chain");
    assert!(
        per_chain <= 5 * 1024,
        "an extra chain costs {per_chain} KiB (1 home {one} KiB, 3 homes {three} KiB)"
    );
}

/// The line of `log` (read before) or of `rx` (waiting up to 30 s) containing every one of
/// `what`; panics with what was read.
fn wait_for(rx: &mpsc::Receiver<String>, what: &[&str], log: &mut Vec<String>) -> String {
    if let Some(l) = log.iter().find(|l| what.iter().all(|w| l.contains(w))) {
        return l.clone();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                log.push(l.clone());
                if what.iter().all(|w| l.contains(w)) {
                    return l;
                }
            }
            Err(e) => panic!("no line with {what:?} ({e}):\n{}", log.join("\n")),
        }
    }
}

/// With `--log_level p2p:debug` the node says what happened to each connection, with the
/// typed reason: a dial (succeeded, or failed with its outcome), a connection accepted, an
/// inbound connection refused during the upgrade, a peer stopped, one DEBUG line each; a
/// persistent peer lost is an INFO line.
#[test]
fn p2p_debug_logs_each_dial_accept_refusal_and_stop_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let init = |name: &str| {
        let home = dir.path().join(name);
        let out = bin()
            .args(["init", "--chain-id", "log-test", "--moniker", name])
            .arg("--home")
            .arg(&home)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        home
    };
    let (a_home, b_home) = (init("a"), init("b"));
    let debug = ["--log_level", "p2p:debug,*:error"];
    let (mut b, b_rx, mut b_log) = start_and_wait_logged(&b_home, &debug);
    let serving = b_log.last().unwrap();
    let b_addr = serving
        .split("serving: p2p ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .to_owned();
    let b_id = b_addr.split('@').next().unwrap().to_owned();
    let mut args = debug.to_vec();
    args.extend(["--p2p.persistent_peers", &b_addr]);
    let (mut a, rx, mut log) = start_and_wait_logged(&a_home, &args);
    let a_addr = log
        .last()
        .unwrap()
        .split("serving: p2p ")
        .nth(1)
        .unwrap()
        .to_owned();
    let a_sock = a_addr.split(',').next().unwrap().split('@').nth(1).unwrap();
    let a_sock: std::net::SocketAddr = a_sock.parse().unwrap();

    // A dials B: the dial and the connection are one line each; B logs the accepted one.
    wait_for(&rx, &["DEBUG", "dialed", &b_id], &mut log);
    wait_for(
        &rx,
        &["DEBUG", "peer connected", &b_id, "Outbound"],
        &mut log,
    );
    let a_id = a_addr.split('@').next().unwrap().to_owned();
    wait_for(
        &b_rx,
        &["DEBUG", "peer connected", &a_id, "Inbound"],
        &mut b_log,
    );

    // Bytes that are not a handshake: refused during the upgrade, with the reason.
    {
        use std::io::Write as _;
        let mut s = std::net::TcpStream::connect(a_sock).unwrap();
        s.write_all(&[0xAB; 64]).unwrap();
    }
    wait_for(
        &rx,
        &["DEBUG", "inbound connection refused", "reason="],
        &mut log,
    );

    // B goes away: A loses a persistent peer (INFO, with the stop reason), then its redial
    // fails (DEBUG, with the typed outcome).
    b.kill().unwrap();
    b.wait().unwrap();
    let lost = wait_for(&rx, &["INFO", "persistent peer lost", &b_id], &mut log);
    assert!(lost.contains("reason="), "{lost}");
    let failed = wait_for(&rx, &["DEBUG", "dial failed", &b_id], &mut log);
    assert!(failed.contains("outcome="), "{failed}");

    sigterm(&a);
    let status = wait_with_timeout(&mut a, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{log:?}");
}

/// A node started by [`start_node`]: the process, its log after the "serving" line, the lines
/// before it, its `id@ip:port` and its RPC address.
type Started = (Child, mpsc::Receiver<String>, Vec<String>, String, String);

/// Starts `mukan-p2p start` on loopback with `extra` flags (the p2p address among them) and
/// returns once it logged that it is serving.
fn start_node(home: &Path, extra: &[&str]) -> Started {
    let mut child = bin()
        .arg("start")
        .arg("--home")
        .arg(home)
        .args(["--rpc.laddr", "tcp://127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("serving: p2p ") => {
                let rest = line.split("serving: p2p ").nth(1).unwrap();
                let p2p = rest.split(',').next().unwrap().trim().to_owned();
                let rpc = rest.split("rpc ").nth(1).unwrap();
                let rpc = rpc.split(',').next().unwrap().trim().to_owned();
                return (child, rx, before, p2p, rpc);
            }
            Ok(line) => before.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no 'serving' line: {e}");
            }
        }
    }
}

/// The outbound peers' IDs in `/net_info` of the RPC server at `rpc`.
fn outbound_ids(rpc: &str) -> Vec<String> {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(rpc) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET /net_info HTTP/1.1\r\nHost: {rpc}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return Vec::new();
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let Some(body) = resp.split("\r\n\r\n").nth(1) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["result"]["peers"]
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .filter(|p| p["is_outbound"] == true)
                .filter_map(|p| p["node_info"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn outbound_peers_fill_the_old_buckets_and_a_clean_stop_leaves_anchors() {
    // A local network on loopback: hub A, two nodes C and D (no PEX of their own) that keep
    // A as a persistent peer, and B, whose only seed is A. B learns C and D from A and dials them; an outbound
    // handshake marks an address good, so B's saved book has old-bucket entries (Go and
    // the code before only did that on consensus: none). The shipped configuration, except
    // what loopback needs: every node on 127.0.0.1 (duplicate IPs allowed) and the book not
    // strict (loopback is not routable).
    let dir = tempfile::tempdir().unwrap();
    let home = |name: &str| {
        let h = cometbft_home(&dir.path().join(name), "v0.38.25");
        // A key of its own (the copied homes share one).
        std::fs::remove_file(h.join("config/node_key.json")).unwrap();
        let init = bin().arg("init").arg("--home").arg(&h).output().unwrap();
        assert!(init.status.success(), "{init:?}");
        replace(&h, "addr_book_strict = true", "addr_book_strict = false");
        replace(
            &h,
            "allow_duplicate_ip = false",
            "allow_duplicate_ip = true",
        );
        h
    };
    // A listen address is sent as it is written (as Go does): each node gets a real port.
    let laddr = || {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        ["--p2p.laddr".to_owned(), format!("tcp://127.0.0.1:{port}")]
    };
    let a_laddr = laddr();
    let a_flags: Vec<&str> = a_laddr.iter().map(String::as_str).collect();
    let (mut a, _, _, a_addr, _) = start_node(&home("a"), &a_flags);
    let mut others = Vec::new();
    for name in ["c", "d"] {
        let l = laddr();
        // Without PEX of their own, so that they do not dial B first.
        let flags = [
            l[0].as_str(),
            &l[1],
            "--p2p.persistent_peers",
            &a_addr,
            "--p2p.pex=false",
        ];
        let (child, _, _, addr, _) = start_node(&home(name), &flags);
        others.push((child, addr));
    }
    let want: Vec<String> = others
        .iter()
        .map(|(_, addr)| addr.split('@').next().unwrap().to_owned())
        .collect();
    let b_home = home("b");
    let b_laddr = laddr();
    let b_flags = [b_laddr[0].as_str(), &b_laddr[1], "--p2p.seeds", &a_addr];
    let (mut b, b_log, _, _, b_rpc) = start_node(&b_home, &b_flags);
    // Bounded wait (the seed answer, then one ensure-peers run of 30 s at most).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        out = outbound_ids(&b_rpc);
        if want.iter().all(|id| out.contains(id)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    sigterm(&b);
    let status = wait_with_timeout(&mut b, Duration::from_secs(30));
    let log: Vec<String> = b_log.try_iter().collect();
    for child in [&mut a]
        .into_iter()
        .chain(others.iter_mut().map(|(c, _)| c))
    {
        sigterm(child);
        wait_with_timeout(child, Duration::from_secs(30));
    }
    assert_eq!(status.code(), Some(0), "{log:?}");
    assert!(
        want.iter().all(|id| out.contains(id)),
        "B never dialed C and D: outbound {out:?}"
    );
    let book: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(b_home.join("config/addrbook.json")).unwrap(),
    )
    .unwrap();
    let old: Vec<&str> = book["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["bucket_type"] == 2)
        .filter_map(|e| e["addr"]["id"].as_str())
        .collect();
    assert!(
        want.iter().all(|id| old.contains(&id.as_str())),
        "old-bucket entries {old:?}, want {want:?}"
    );
    // The two outbound peers connected longest (C and D; the seed A is none) are the
    // anchors, saved beside the book; the next start reads and deletes them.
    let anchors_path = b_home.join("config/anchors.json");
    let anchors: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&anchors_path).unwrap()).unwrap();
    assert_eq!(anchors.len(), 2, "{anchors:?}");
    assert!(
        anchors
            .iter()
            .all(|a| want.iter().any(|id| a.starts_with(id.as_str()))),
        "{anchors:?}"
    );
    let (mut again, _, log, _, _) = start_node(&b_home, &[b_laddr[0].as_str(), &b_laddr[1]]);
    assert!(!anchors_path.exists(), "anchors.json is deleted once read");
    sigterm(&again);
    wait_with_timeout(&mut again, Duration::from_secs(30));
    assert!(
        log.iter().any(|l| l.contains("dialing 2 anchors first")),
        "{log:?}"
    );
}
