//! The eclipse simulation (`mukan_faultsim::eclipse`): our policy beside Go v0.38.25's rules,
//! three attacks, 24 simulated hours per seed. `ECLIPSE_SEEDS=N` seeds per scenario and policy
//! (default 5 here; the table in README.md is `ECLIPSE_SEEDS=100`), `SEED=x` one seed.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "tests"
)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use mukan_faultsim::eclipse::{Outcome, Policy, Row, Scenario, run};

fn seed_list() -> Vec<u64> {
    if let Some(s) = std::env::var("SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![s];
    }
    let n = std::env::var("ECLIPSE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    (0..n).collect()
}

/// Every (scenario, policy, seed), on all cores.
fn run_all(scenarios: &[Scenario], seeds: &[u64]) -> Vec<(Scenario, Policy, u64, Outcome)> {
    let mut jobs = Vec::new();
    for &s in scenarios {
        for p in [Policy::Ours, Policy::Go] {
            for &seed in seeds {
                jobs.push((s, p, seed));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(s, p, seed)) = jobs.get(i) else {
                        break;
                    };
                    let o = run(s, p, seed);
                    if seeds.len() == 1 {
                        eprintln!("{s:?} {p:?} seed {seed}: {o:?}");
                    }
                    out.lock().unwrap().push((s, p, seed, o));
                }
            });
        }
    });
    let mut v = out.into_inner().unwrap();
    v.sort_by_key(|(s, p, seed, _)| (*s as u8, *p as u8, *seed));
    v
}

fn row(all: &[(Scenario, Policy, u64, Outcome)], s: Scenario, p: Policy) -> Row {
    let o: Vec<Outcome> = all
        .iter()
        .filter(|(a, b, _, _)| *a == s && *b == p)
        .map(|(_, _, _, o)| o.clone())
        .collect();
    Row::of(&o)
}

#[test]
fn eclipse_ours_beside_go_rules() {
    let seeds = seed_list();
    let all = run_all(&Scenario::ALL, &seeds);
    println!(
        "| scenario | policy | attacker's outbound peers of 10 at 24 h: median | worst seed | seeds with 0 honest outbound at some time | book at 24 h: attacker's share of new entries | old entries (attacker's share) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for s in Scenario::ALL {
        let ours = row(&all, s, Policy::Ours);
        let go = row(&all, s, Policy::Go);
        for (name, r) in [("ours", &ours), ("Go v0.38.25 rules", &go)] {
            println!(
                "| {} | {name} | {:.1} | {} | {} of {} | {:.0}% | {:.0} ({:.0}%) |",
                s.label(),
                r.median_attacker,
                r.worst_attacker,
                r.seeds_zero_honest,
                r.seeds,
                r.mean_book.0 * 100.0,
                r.mean_book.1,
                r.mean_book.2 * 100.0
            );
        }
        match s {
            Scenario::OneGroup | Scenario::BotnetRestart if ours.seeds_zero_honest > 0 => {
                let bad: Vec<u64> = all
                    .iter()
                    .filter(|(a, p, _, o)| *a == s && *p == Policy::Ours && o.ever_zero_honest)
                    .map(|(_, _, seed, _)| *seed)
                    .collect();
                failures.push(format!("{s:?}: 0 honest outbound in seeds {bad:?}"));
            }
            Scenario::Botnet if ours.median_attacker * 2.0 > go.median_attacker => {
                failures.push(format!(
                    "{s:?}: attacker's median share {} is more than half of Go's {}",
                    ours.median_attacker, go.median_attacker
                ));
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_seed_replays_to_the_same_outcome() {
    for p in [Policy::Ours, Policy::Go] {
        let a = run(Scenario::OneGroup, p, 3);
        let b = run(Scenario::OneGroup, p, 3);
        assert_eq!(a, b, "{p:?}");
    }
}
