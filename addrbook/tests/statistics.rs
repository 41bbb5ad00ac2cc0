//! `pick_address(bias)` and `selection_with_bias` against the formulas of Go's
//! `PickAddress` and `GetSelectionWithBias` (deterministic seeds).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{book, in_group, t0};
use mukan_addrbook::AddrBook;
use mukan_reactor_api::AddressBook;

/// A book with about `new` new and `old` old addresses from many groups.
fn filled(seed: u64, new: u64, old: u64) -> AddrBook {
    let mut b = book(seed);
    let mut now = t0();
    for i in 0..new + old {
        let a = in_group(i, (i % 9000) as u32, (i / 9000) as u16 + 1);
        let src = in_group(1_000_000 + i, (i % 7000) as u32 + 20_000, 1);
        b.add_address(a, src, now).unwrap();
        if i < old {
            b.mark_good(a.id(), now);
        }
        now += Duration::from_millis(1);
    }
    b.check_invariants().unwrap();
    b
}

fn expected_new_share(n_new: usize, n_old: usize, bias: u8) -> f64 {
    let bias = f64::from(bias.min(100));
    let old_c = (n_old as f64).sqrt() * (100.0 - bias);
    let new_c = (n_new as f64).sqrt() * bias;
    new_c / (old_c + new_c)
}

#[test]
fn pick_address_follows_the_bias_formula() {
    const DRAWS: usize = 100_000;
    let mut b = filled(42, 3000, 500);
    let (n_new, n_old) = (b.new_count(), b.old_count());
    assert!(n_new > 2500 && n_old > 400, "{n_new} new, {n_old} old");
    for bias in [0u8, 10, 30, 50, 70, 90, 100, 200] {
        let mut new = 0usize;
        for _ in 0..DRAWS {
            let a = b
                .pick_address(bias)
                .expect("a non-empty book always answers");
            if !b.is_good(&a) {
                new += 1;
            }
        }
        let got = new as f64 / DRAWS as f64;
        let want = expected_new_share(n_new, n_old, bias);
        assert!(
            (got - want).abs() <= 0.02,
            "bias {bias}: new share {got:.4}, formula {want:.4}"
        );
    }
}

#[test]
fn pick_address_on_one_sided_books() {
    let mut empty = book(1);
    assert_eq!(empty.pick_address(50), None);
    let mut only_new = filled(2, 100, 0);
    // Go: with both weights 0 (no old, bias 0) the comparison `x < 0` fails → new side.
    assert!(only_new.pick_address(0).is_some());
    assert!(only_new.pick_address(100).is_some());
    let mut only_old = filled(3, 0, 100);
    // Bias 100 with no new addresses: both weights 0 → new side, which is empty.
    assert_eq!(only_old.pick_address(100), None);
    assert!(only_old.pick_address(99).is_some());
    assert!(only_old.pick_address(0).is_some());
}

#[test]
fn selection_with_bias_30_is_at_least_70_percent_old() {
    let mut b = filled(5, 2000, 1000);
    assert!(b.old_count() >= 900);
    for _ in 0..20 {
        let sel = b.selection_with_bias(30);
        assert_eq!(sel.len(), 250);
        let old = sel.iter().filter(|a| b.is_good(a)).count();
        assert!(old * 100 >= 70 * sel.len(), "{old} old of {}", sel.len());
        // New ones come first, as Go orders them.
        assert!(sel[..75].iter().all(|a| !b.is_good(a)));
    }
}

#[test]
fn selection_sizes() {
    // n = min(250, max(min(32, size), size * 23 / 100))
    for (size, want) in [
        (0usize, 0usize),
        (1, 1),
        (31, 31),
        (32, 32),
        (100, 32),
        (139, 32),
        (140, 32),
        (200, 46),
        (1086, 249),
        (1087, 250),
        (3000, 250),
    ] {
        let mut b = filled(9, size as u64, 0);
        assert_eq!(b.size(), size);
        assert_eq!(b.selection().len(), want, "size {size}");
        assert_eq!(b.selection_with_bias(50).len(), want, "size {size}");
    }
}

#[test]
fn selection_with_bias_tops_up_with_new_when_old_run_out() {
    let mut b = filled(6, 1000, 10);
    let sel = b.selection_with_bias(0);
    let n = 1010 * 23 / 100;
    assert_eq!(sel.len(), n);
    assert_eq!(sel.iter().filter(|a| b.is_good(a)).count(), b.old_count());
}
