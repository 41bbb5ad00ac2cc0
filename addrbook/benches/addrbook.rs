//! `cargo bench -p mukan-addrbook`: add, pick, selection, mark-good at 1k / 10k / 100k
//! addresses, save + load, and memory per stored address (printed before the benches).

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use mukan_addrbook::{AddrBook, Config};
use mukan_reactor_api::{AddressBook, NetAddress, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

/// Address `i`: spread over ~40,000 /16 groups, sources over 2,000 groups.
fn addr(i: usize) -> (NetAddress, NetAddress) {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    id[19] = 1;
    let g = (i * 7919) % 40_000;
    let ip = Ipv4Addr::new(
        20 + (g / 256 % 100) as u8,
        (g % 256) as u8,
        (i >> 8) as u8,
        i as u8,
    );
    let mut sid = id;
    sid[19] = 2;
    let sg = i % 2_000;
    let sip = Ipv4Addr::new(130 + (sg / 256) as u8, (sg % 256) as u8, 1, 1);
    (
        NetAddress::new(NodeId(id), IpAddr::V4(ip), 26656),
        NetAddress::new(NodeId(sid), IpAddr::V4(sip), 26656),
    )
}

fn filled(n: usize) -> AddrBook {
    let mut b = AddrBook::new(Config::default(), ChaCha8Rng::seed_from_u64(1));
    for i in 0..n {
        let (a, s) = addr(i);
        let _ = b.add_address(a, s, now());
        if i % 5 == 0 {
            b.mark_good(a.id(), now());
        }
    }
    b
}

fn bench_add(c: &mut Criterion) {
    let mut g = c.benchmark_group("add");
    g.sample_size(10);
    for n in SIZES {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bch, &n| {
            bch.iter_batched(
                || AddrBook::new(Config::default(), ChaCha8Rng::seed_from_u64(1)),
                |mut b| {
                    for i in 0..n {
                        let (a, s) = addr(i);
                        let _ = black_box(b.add_address(a, s, now()));
                    }
                    b
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn bench_pick_and_selection(c: &mut Criterion) {
    let mut g = c.benchmark_group("query");
    for n in SIZES {
        let mut b = filled(n);
        g.bench_function(BenchmarkId::new("pick_address", n), |bch| {
            bch.iter(|| black_box(b.pick_address(50)));
        });
        g.bench_function(BenchmarkId::new("selection", n), |bch| {
            bch.iter(|| black_box(b.selection()));
        });
        g.bench_function(BenchmarkId::new("selection_with_bias", n), |bch| {
            bch.iter(|| black_box(b.selection_with_bias(30)));
        });
    }
    g.finish();
}

fn bench_mark_good(c: &mut Criterion) {
    const MARKS: usize = 1_000;
    let mut g = c.benchmark_group("mark_good");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MARKS as u64));
    for n in SIZES {
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bch, &n| {
            bch.iter_batched(
                || {
                    let b = filled(n);
                    let ids: Vec<NodeId> = b
                        .addresses()
                        .filter(|a| !b.is_good(a))
                        .take(MARKS)
                        .map(|a| a.id())
                        .collect();
                    (b, ids)
                },
                |(mut b, ids)| {
                    for id in &ids {
                        b.mark_good(*id, now());
                    }
                    b
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn bench_save_load(c: &mut Criterion) {
    let mut g = c.benchmark_group("persist");
    g.sample_size(10);
    let b = filled(100_000);
    let json = b.to_json();
    g.throughput(Throughput::Elements(b.size() as u64));
    g.bench_function(BenchmarkId::new("to_json", b.size()), |bch| {
        bch.iter(|| black_box(b.to_json()));
    });
    g.bench_function(BenchmarkId::new("load", b.size()), |bch| {
        let mut again = AddrBook::new(Config::default(), ChaCha8Rng::seed_from_u64(2));
        bch.iter(|| {
            again
                .load_from_slice(&json, Path::new("bench"), now())
                .unwrap()
        });
    });
    g.finish();
}

/// Resident set size in bytes (Linux), or 0.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<usize>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn report_memory() {
    let before = rss();
    let b = filled(100_000);
    let after = rss();
    let per = (after.saturating_sub(before)) as f64 / b.size() as f64;
    println!(
        "memory: {} addresses stored ({} new, {} old), RSS +{} KiB = {:.0} B per address",
        b.size(),
        b.new_count(),
        b.old_count(),
        (after.saturating_sub(before)) / 1024,
        per
    );
    println!(
        "memory: addrbook.json is {} B per address",
        b.to_json().len() / b.size()
    );
    black_box(b);
}

criterion_group!(
    benches,
    bench_add,
    bench_pick_and_selection,
    bench_mark_good,
    bench_save_load
);

fn main() {
    report_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
