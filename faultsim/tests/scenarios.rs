//! The fault scenarios F1–F14 of RELIABILITY.md, each over `SEEDS` seeds (default 100;
//! `SEED=x` replays one). See the crate's README for the model and the scaled timeouts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests"
)]

use std::time::Duration;

use mukan_faultsim::*;
#[allow(unused_imports, reason = "used by some scenarios")]
use mukan_reactor_api::{AddressBook as _, Switch as _};

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// Ping 90 ms, pong 45 ms (as Go's tests scale them).
#[allow(dead_code, reason = "used by later scenarios")]
fn fast_ping() -> SimConfig {
    SimConfig {
        ping: 90 * MS,
        pong: 45 * MS,
        ..SimConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// F1: 10 nodes with a seed and PEX, from empty books.

async fn f1(sim: Sim) -> Result<(), String> {
    let cfg = SimConfig::default();
    let mut sspec = NodeSpec::pex(100, ip(0, 100), &cfg);
    sspec.seed_mode = true;
    let seed = sim.node(sspec).await;
    let seed_addr = seed.addr().to_string();
    let mut nodes = Vec::new();
    for i in 0..10u16 {
        let mut spec = NodeSpec::pex(u64::from(i), ip(0, i + 1), &cfg);
        spec.seeds = vec![seed_addr.clone()];
        nodes.push(sim.node(spec).await);
        // Nodes come up over a second.
        sleep(sim.rand_duration(Duration::ZERO, 100 * MS)).await;
    }
    let want = cfg.max_outbound.min(9);
    let ids: Vec<_> = nodes.iter().map(Node::id).collect();
    let full = |nodes: &[Node]| {
        nodes
            .iter()
            .all(|n| n.peer_ids().iter().filter(|p| ids.contains(p)).count() >= want)
    };
    let took = sim.wait_until(60 * S, || full(&nodes)).await;
    let counts: Vec<(usize, usize)> = nodes
        .iter()
        .map(|n| (n.peer_ids().len(), n.book.lock().size()))
        .collect();
    sim.note(format_args!("f1 counts {counts:?} took {took:?}"));
    if std::env::var("TRACE").is_ok() {
        eprintln!(
            "seed book {} peers {}",
            seed.book.lock().size(),
            seed.peer_ids().len()
        );
        for l in sim.trace() {
            eprintln!("{l}");
        }
    }
    check!(
        took.is_some(),
        "not every node reached {want} peers in 60 s: {counts:?}"
    );
    check!(connected(&nodes), "peer graph not connected: {counts:?}");
    Ok(())
}

#[test]
fn f1_bootstrap_from_seed() {
    run_seeds("f1", f1);
}

#[test]
fn replay_gives_the_same_trace_hash() {
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let (a, ra) = run_one(seed, &f1);
    let (b, rb) = run_one(seed, &f1);
    assert_eq!(ra, rb);
    assert_eq!(a, b, "two runs of seed {seed} gave different trace hashes");
    let (c, _) = run_one(seed + 1, &f1);
    assert_ne!(a, c, "different seeds should give different traces");
}
