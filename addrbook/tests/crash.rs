//! Crash safety: a child process saving in a loop is killed at random points; the file
//! always loads (RELIABILITY.md F-cases; issue 5 acceptance).
//!
//! The child is this test binary re-invoked with `MUKAN_ADDRBOOK_CRASH_CHILD` set: it runs
//! `child_saver`, which saves a growing book forever and prints one line per completed
//! save. The parent reads a random number of lines, then kills the child mid-work.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{book, in_group, t0};
use mukan_reactor_api::AddressBook;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_ENV: &str = "MUKAN_ADDRBOOK_CRASH_CHILD";

#[test]
fn child_saver() {
    let Some(path) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return; // Only does something when run as the child.
    };
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
        b.save(&path).unwrap();
        println!("saved {}", b.size());
    }
}

#[test]
fn killed_while_saving_never_leaves_an_unloadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let exe = std::env::current_exe().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut last_size = 0;
    for round in 0..12 {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_saver", "--nocapture", "--test-threads=1"])
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
