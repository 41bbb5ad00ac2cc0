//! Simulation wall time per simulated minute, at 200 and 1,000 nodes (one seed, every node
//! knows only the seed; measured after 5 bootstrap minutes, and over the first minute).
#![allow(missing_docs)]

#[path = "../tests/common/sim.rs"]
mod sim;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mukan_pex::CoreConfig;
use sim::{Behaviour, Sim, SimConfig};

fn network(n: usize) -> Sim {
    let mut sim = Sim::new(SimConfig::default());
    let mut sc = CoreConfig::default();
    sc.seed_mode = true;
    let s = sim.add_node(sc, Behaviour::Honest);
    let seed = sim.nodes[s].addr;
    for _ in 0..n {
        let mut c = CoreConfig::default();
        c.seeds = vec![seed];
        sim.add_node(c, Behaviour::Honest);
    }
    sim
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pex_sim_minute");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for n in [200usize, 1000] {
        g.bench_function(BenchmarkId::new("steady", n), |b| {
            let mut sim = network(n);
            sim.run_for(Duration::from_secs(300));
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    sim.run_for(Duration::from_secs(60));
                }
                start.elapsed()
            });
        });
        g.bench_function(BenchmarkId::new("bootstrap_first_minute", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut sim = network(n);
                    let start = Instant::now();
                    sim.run_for(Duration::from_secs(60));
                    total += start.elapsed();
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
