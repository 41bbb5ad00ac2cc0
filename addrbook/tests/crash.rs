//! Crash safety: a child process saving in a loop is killed at random points; the file
//! always loads.
//!
//! This test binary has no libtest harness (`harness = false` in `Cargo.toml`): `main` is
//! the parent test, unless `MUKAN_ADDRBOOK_CRASH_CHILD` is set, in which case the process
//! is the child: it saves a growing book forever to that path and prints one line per
//! completed save. The parent re-invokes this binary as the child, reads a random number
//! of lines, then kills the child mid-work, and checks the file each time.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{book, in_group, t0};
use mukan_reactor_api::AddressBook;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_ENV: &str = "MUKAN_ADDRBOOK_CRASH_CHILD";

fn main() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child_saver(&PathBuf::from(path));
    }
    // `cargo test` may pass libtest options: `--list` (test discovery) and name filters are
    // honoured for the one test of this binary, other options are ignored.
    const NAME: &str = "killed_while_saving_never_leaves_an_unloadable_file";
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        println!("running 0 tests (filtered out)");
        return;
    }
    killed_while_saving_never_leaves_an_unloadable_file();
    println!("test {NAME} ... ok");
}

/// The child: never returns; the parent kills it.
fn child_saver(path: &Path) -> ! {
    let mut b = book(1);
    let mut now = t0();
    let mut i = 0u64;
    loop {
        for _ in 0..200 {
            let a = in_group(i, (i % 40_000) as u32, (i / 40_000) as u16 + 1);
            let _ = b.add_address(a, in_group(10_000_000 + i, (i % 500) as u32, 1), now);
            if i % 7 == 0 {
                b.mark_good(a.id(), now);
            }
            i += 1;
            now += Duration::from_millis(3);
        }
        b.save(path).unwrap();
        println!("saved {}", b.size());
    }
}

fn killed_while_saving_never_leaves_an_unloadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let exe = std::env::current_exe().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut last_size = 0;
    for round in 0..12 {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let wait_for = rng.gen_range(1..12);
        let mut seen = 0;
        while seen < wait_for {
            let line = lines.next().expect("child ended early").unwrap();
            if line.starts_with("saved ") {
                seen += 1;
            }
        }
        // Kill it in the middle of whatever it is doing (usually the next save).
        child.kill().unwrap();
        child.wait().unwrap();

        let mut b = book(round);
        let report = b
            .load(&path, t0())
            .unwrap_or_else(|e| panic!("round {round}: file does not load after kill: {e}"));
        assert!(report.found && report.loaded > 0, "round {round}");
        b.check_invariants().unwrap();
        last_size = report.loaded;
        // Only the book file (and possibly a stale temporary one) is in the directory;
        // never a `.corrupt-` copy.
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains("corrupt"), "round {round}: {name}");
        }
    }
    assert!(last_size > 0);
}
