//! The two reactors stay small: each is under 400 lines of our own code (lines that are
//! neither blank nor comments; the wire types of `src/proto.rs`, derives over CometBFT's
//! protobuf definitions, are not counted).

use std::path::Path;

const LIMIT: usize = 400;

/// Lines that are neither blank nor comments (`//`, `///`, `//!`).
fn code_lines(path: &str) -> usize {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(!text.is_empty(), "{} is missing or empty", file.display());
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn each_reactor_is_under_400_lines_of_our_own_code() {
    for (reactor, path) in [
        ("tx-relay", "src/tx_relay.rs"),
        ("consensus-watch", "src/consensus_watch.rs"),
    ] {
        let n = code_lines(path);
        println!("{reactor}: {n} lines of code ({path})");
        assert!(
            n < LIMIT,
            "{reactor}: {n} lines of code in {path}, limit {LIMIT}"
        );
    }
}
