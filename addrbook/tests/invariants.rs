//! Random operation sequences with deterministic seeds; every invariant is checked after
//! every operation (Bitcoin Core `addrman` style).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::{book, in_group, t0};
use mukan_reactor_api::{AddressBook, NetAddress};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEEDS: u64 = 8;
const OPS: usize = 2000;

fn pool(rng: &mut ChaCha8Rng, n: u64, groups: u32) -> Vec<NetAddress> {
    (0..n)
        .map(|i| in_group(i, rng.gen_range(0..groups), rng.r#gen()))
        .collect()
}

#[test]
fn random_operations_keep_every_invariant() {
    for seed in 0..SEEDS {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut b = book(seed);
        // Few groups so that buckets fill up and evictions happen.
        let addrs = pool(&mut rng, 6000, 12);
        let srcs = pool(&mut rng, 40, 3);
        let mut now = t0();
        for op in 0..OPS {
            let a = addrs[rng.gen_range(0..addrs.len())];
            match rng.gen_range(0..100) {
                0..=49 => {
                    let src = srcs[rng.gen_range(0..srcs.len())];
                    let r = b.add_address(a, src, now);
                    if b.is_banned(&a, now) {
                        assert!(r.is_err(), "seed {seed} op {op}: banned {a} added");
                    }
                }
                50..=64 => b.mark_good(a.id(), now),
                65..=74 => b.mark_attempt(&a, now),
                75..=79 => {
                    let ban = Duration::from_secs(rng.gen_range(0..7200));
                    b.mark_bad(&a, ban, now);
                    assert!(!b.has_address(&a));
                }
                80..=82 => b.reinstate_bad_peers(now),
                83..=85 => b.remove_address(&a),
                86..=91 => {
                    if let Some(p) = b.pick_address(rng.gen_range(0..=100)) {
                        assert!(b.has_address(&p), "seed {seed} op {op}: picked unknown {p}");
                        assert!(
                            !b.is_banned(&p, now),
                            "seed {seed} op {op}: picked banned {p}"
                        );
                    }
                }
                92..=95 => {
                    let sel = if rng.r#gen() {
                        b.selection()
                    } else {
                        b.selection_with_bias(rng.gen_range(0..=100))
                    };
                    assert!(sel.len() <= 250);
                    let distinct: HashSet<_> = sel.iter().map(|a| a.id()).collect();
                    assert_eq!(distinct.len(), sel.len(), "seed {seed} op {op}: duplicates");
                    for s in &sel {
                        assert!(b.has_address(s) && !b.is_banned(s, now));
                    }
                }
                96..=98 => now += Duration::from_secs(rng.gen_range(0..1800)),
                _ => {
                    // Save → load round trip keeps the book equal.
                    let json = b.to_json();
                    let mut again = book(seed + 1000);
                    again.load_from_slice(&json, Path::new("mem"), now).unwrap();
                    if again != b {
                        let x = String::from_utf8(again.to_json()).unwrap();
                        let y = String::from_utf8(json).unwrap();
                        for (l, r) in x.lines().zip(y.lines()) {
                            if l != r {
                                eprintln!("{l} != {r}");
                            }
                        }
                        panic!("seed {seed} op {op}: round trip differs");
                    }
                    again.check_invariants().unwrap();
                }
            }
            if let Err(e) = b.check_invariants() {
                panic!("seed {seed} op {op}: {e}");
            }
            assert_eq!(b.size(), b.new_count() + b.old_count());
            assert_eq!(b.addresses().count(), b.size());
        }
        assert!(
            b.size() > 0,
            "seed {seed}: the sequence should leave addresses"
        );
    }
}

#[test]
fn buckets_fill_to_exactly_64_and_no_more() {
    let mut b = book(7);
    // One address group and one source group: everything lands in a few buckets.
    let src = in_group(999_999, 5, 1);
    let mut now = t0();
    for i in 0..5000u64 {
        b.add_address(in_group(i, 6, i as u16), src, now).unwrap();
        now += Duration::from_millis(10);
    }
    b.check_invariants().unwrap();
    let used: Vec<usize> = (0..256)
        .map(|i| b.bucket(mukan_addrbook::BucketKind::New, i).len())
        .collect();
    assert!(used.iter().all(|&n| n <= 64));
    assert!(used.contains(&64), "some bucket must be full: {used:?}");
    assert_eq!(b.size(), used.iter().sum::<usize>());
}

#[test]
fn old_bucket_overflow_demotes_instead_of_dropping() {
    let mut b = book(11);
    let mut now = t0();
    // 2000 good addresses of one /16: at most 4 old buckets (256 slots).
    for i in 0..2000u64 {
        let a = in_group(i, 77, i as u16);
        b.add_address(a, in_group(100_000 + i, (i % 500) as u32 + 1000, 1), now)
            .unwrap();
        b.mark_good(a.id(), now);
        now += Duration::from_secs(1);
        b.check_invariants().unwrap();
    }
    assert!(b.old_count() <= 4 * 64);
    // The demoted ones are still in the book, as new.
    assert!(
        b.new_count() > 0,
        "evicted old addresses must be demoted to new"
    );
    assert_eq!(b.size(), b.old_count() + b.new_count());
}

#[test]
fn known_id_keeps_its_first_address_and_at_most_4_buckets() {
    let mut b = book(3);
    let now = t0();
    let first = in_group(1, 1, 1);
    b.add_address(first, in_group(50, 2, 1), now).unwrap();
    for s in 0..2000u32 {
        let moved = in_group(1, 3 + s, 9);
        b.add_address(moved, in_group(60 + u64::from(s), 500 + s, 1), now)
            .unwrap();
    }
    assert_eq!(b.address(&first.id()), Some(first));
    let (_, buckets) = b.buckets_of(&first.id()).unwrap();
    assert!((2..=4).contains(&buckets.len()), "{buckets:?}");
    // A good ID ignores further adds.
    b.mark_good(first.id(), now);
    b.add_address(in_group(1, 9, 9), in_group(70, 9, 1), now)
        .unwrap();
    assert!(b.is_good(&first));
    b.check_invariants().unwrap();
}

#[test]
fn bans_refuse_then_expire() {
    use mukan_reactor_api::AddAddressError;
    let mut b = book(5);
    let now = t0();
    let a = in_group(1, 1, 1);
    let src = in_group(2, 2, 2);
    b.add_address(a, src, now).unwrap();
    b.mark_good(a.id(), now);
    b.mark_bad(&a, Duration::from_secs(3600), now);
    assert!(!b.has_address(&a) && b.is_banned(&a, now));
    assert_eq!(b.add_address(a, src, now), Err(AddAddressError::Banned(a)));
    let later = now + Duration::from_secs(3599);
    b.reinstate_bad_peers(later);
    assert!(b.is_banned(&a, later) && !b.has_address(&a));
    let after = now + Duration::from_secs(3600);
    assert!(!b.is_banned(&a, after));
    b.reinstate_bad_peers(after);
    // A formerly good address comes back as new (Go loses it).
    assert!(b.has_address(&a) && !b.is_good(&a));
    assert_eq!(b.banned_count(), 0);
    // An ended ban is lifted by add_address itself.
    b.mark_bad(&a, Duration::from_secs(10), after);
    assert!(
        b.add_address(a, src, after + Duration::from_secs(10))
            .is_ok()
    );
    assert!(b.has_address(&a));
    b.check_invariants().unwrap();
}

#[test]
fn add_rules_in_go_order() {
    use mukan_reactor_api::AddAddressError as E;
    let mut b = book(1);
    let now = t0();
    let src = in_group(2, 2, 2);
    let zero: NetAddress = format!("{}@0.0.0.0:1", common::id(9)).parse().unwrap();
    assert!(matches!(
        b.add_address(zero, src, now),
        Err(E::Invalid { .. })
    ));
    let private = in_group(3, 3, 3);
    b.add_private_ids(&[private.id()]);
    assert_eq!(b.add_address(private, src, now), Err(E::Private(private)));
    assert_eq!(
        b.add_address(src, private, now),
        Err(E::PrivateSource(private))
    );
    let ours = in_group(4, 4, 4);
    b.add_our_address(ours);
    assert!(b.our_address(&ours));
    assert_eq!(b.add_address(ours, src, now), Err(E::OwnAddress(ours)));
    let lan: NetAddress = format!("{}@192.168.1.1:1", common::id(5)).parse().unwrap();
    assert_eq!(b.add_address(lan, src, now), Err(E::NonRoutable(lan)));
    let mut lax = mukan_addrbook::AddrBook::new(
        mukan_addrbook::Config::with_strict(false),
        ChaCha8Rng::seed_from_u64(1),
    );
    assert!(lax.add_address(lan, src, now).is_ok());
    assert!(b.is_empty() && b.need_more_addrs());
}
