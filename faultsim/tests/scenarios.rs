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

// ---------------------------------------------------------------------------------------
// Two nodes: A keeps B as a persistent peer.

async fn pair(sim: &Sim, cfg: &SimConfig) -> Result<(Node, Node), String> {
    let b = sim.node(NodeSpec::plain(2, ip(0, 2), cfg)).await;
    let mut spec = NodeSpec::plain(1, ip(0, 1), cfg);
    spec.persistent = vec![b.addr().to_string()];
    let a = sim.node(spec).await;
    let (ida, idb) = (a.id(), b.id());
    let ok = sim
        .wait_until(5 * S, || a.has_peer(&idb) && b.has_peer(&ida))
        .await;
    check!(ok.is_some(), "A and B never connected");
    // Let a random part of a ping period pass, so faults start at any phase.
    sleep(sim.rand_duration(Duration::ZERO, 2 * cfg.ping)).await;
    Ok((a, b))
}

/// Waits until A and B are connected again (one connection, both sides agree).
async fn reconnected(sim: &Sim, a: &Node, b: &Node, limit: Duration) -> Option<Duration> {
    let (ida, idb) = (a.id(), b.id());
    sim.wait_until(limit, || {
        a.has_peer(&idb) && b.has_peer(&ida) && sim.net().connections_between(a.ip, b.ip) == 1
    })
    .await
}

/// The bound on a persistent peer's reconnection: `reconnect_interval` × 2 + jitter (the
/// redial in flight may have just missed), plus one dial timeout.
fn reconnect_bound(cfg: &SimConfig) -> Duration {
    mukan_switch::RECONNECT_INTERVAL * 2
        + Duration::from_millis(mukan_switch::DIAL_RANDOMIZER_MS)
        + cfg.dial_timeout
}

/// Both sides removed each other within `limit` of `t0`.
fn both_removed(
    a: &Node,
    b: &Node,
    t0: tokio::time::Instant,
) -> (Option<Duration>, Option<Duration>) {
    (
        a.app.removed_since(&b.id(), t0).map(|t| t - t0),
        b.app.removed_since(&a.id(), t0).map(|t| t - t0),
    )
}

// F3: one-way partition A→B.
async fn f3(sim: Sim) -> Result<(), String> {
    let cfg = fast_ping();
    let (a, b) = pair(&sim, &cfg).await?;
    let t0 = tokio::time::Instant::now();
    sim.net().partition_one_way(&[a.ip], &[b.ip]);
    sim.note("one-way partition A->B");
    let limit = cfg.ping + cfg.pong;
    sleep(limit + 20 * MS).await;
    let (ra, rb) = both_removed(&a, &b, t0);
    sim.note(format_args!("removed A:{ra:?} B:{rb:?}"));
    // B's pong timeout fires within ping + pong (+ one flush-throttle tick of slack).
    let slack = 10 * MS;
    check!(
        rb.is_some_and(|d| d <= limit + slack),
        "B did not time out within {limit:?}: {rb:?}"
    );
    check!(
        ra.is_some_and(|d| d <= limit + slack),
        "A did not close within {limit:?}: {ra:?}"
    );
    sleep(sim.rand_duration(S, 3 * S)).await;
    sim.net().heal();
    sim.note("heal");
    let r = reconnected(&sim, &a, &b, reconnect_bound(&cfg)).await;
    check!(
        r.is_some(),
        "not reconnected within {:?} of heal",
        reconnect_bound(&cfg)
    );
    Ok(())
}

#[test]
fn f3_one_way_partition() {
    run_seeds("f3", f3);
}

// F4: silent blackhole of an established link.
async fn f4(sim: Sim) -> Result<(), String> {
    let cfg = fast_ping();
    let (a, b) = pair(&sim, &cfg).await?;
    let t0 = tokio::time::Instant::now();
    sim.net().partition(&[a.ip], &[b.ip]);
    sim.note("blackhole A<->B");
    let limit = (cfg.ping + cfg.pong).mul_f64(1.1);
    sleep(limit + 20 * MS).await;
    let (ra, rb) = both_removed(&a, &b, t0);
    sim.note(format_args!("removed A:{ra:?} B:{rb:?}"));
    check!(
        ra.is_some_and(|d| d <= limit),
        "A did not detect within {limit:?}: {ra:?}"
    );
    check!(
        rb.is_some_and(|d| d <= limit),
        "B did not detect within {limit:?}: {rb:?}"
    );
    Ok(())
}

#[test]
fn f4_silent_blackhole() {
    run_seeds("f4", f4);
}

// F6: kill -9 a peer, restart it after 5 s with the same key.
async fn f6(sim: Sim) -> Result<(), String> {
    let cfg = fast_ping();
    let (a, b) = pair(&sim, &cfg).await?;
    let t0 = tokio::time::Instant::now();
    sim.crash(&b);
    sleep(S).await;
    let removed = a.app.removed_since(&b.id(), t0).map(|t| t - t0);
    check!(
        removed.is_some_and(|d| d <= S),
        "A did not remove the dead peer within 1 s: {removed:?}"
    );
    sleep(4 * S).await;
    let b2 = sim.node(NodeSpec::plain(2, b.ip, &cfg)).await;
    sim.note("restart B");
    let r = reconnected(&sim, &a, &b2, 10 * S).await;
    sim.note(format_args!("reconnected after {r:?}"));
    check!(
        r.is_some(),
        "persistent peer not reconnected within 10 s of restart"
    );
    Ok(())
}

#[test]
fn f6_kill_and_restart_same_key() {
    run_seeds("f6", f6);
}

// F7: SIGSTOP a peer past the pong timeout, then SIGCONT.
async fn f7(sim: Sim) -> Result<(), String> {
    let cfg = fast_ping();
    let (a, b) = pair(&sim, &cfg).await?;
    let t0 = tokio::time::Instant::now();
    sim.net().set_frozen(b.ip, true);
    // 2 × pong_timeout after the first ping that goes unanswered (a freeze shorter than
    // ping + pong may fall between two pings and rightly go unnoticed).
    let freeze = cfg.ping + 2 * cfg.pong;
    sleep(freeze).await;
    let removed = a.app.removed_since(&b.id(), t0).map(|t| t - t0);
    check!(
        removed.is_some_and(|d| d <= cfg.ping + cfg.pong + 10 * MS),
        "A did not drop the frozen peer after the pong timeout: {removed:?}"
    );
    sim.net().set_frozen(b.ip, false);
    sim.note("thaw");
    let r = reconnected(&sim, &a, &b, reconnect_bound(&cfg)).await;
    check!(r.is_some(), "not reconnected after thaw");
    // No half-open leftovers: a while later still exactly one connection, both sides agree.
    sleep(2 * S).await;
    let n = sim.net().connections_between(a.ip, b.ip);
    check!(n == 1, "{n} connections between A and B after settling");
    check!(
        a.peer_ids().len() == 1 && b.peer_ids().len() == 1,
        "peer lists {:?} {:?}",
        a.peer_ids(),
        b.peer_ids()
    );
    Ok(())
}

#[test]
fn f7_freeze_and_thaw() {
    run_seeds("f7", f7);
}
