//! The tried (old) table without consensus: test-before-evict on old-bucket collisions, and
//! unverified self-reported addresses that are never served.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{book, in_group, t0};
use mukan_addrbook::{AddrBook, MAX_TRIED_COLLISIONS, REPLACEMENT_WINDOW, TEST_WINDOW};
use mukan_reactor_api::{AddressBook, NetAddress};

/// A book whose old buckets for group 77 are full (4 buckets × 64) of entries marked good
/// at `t0`, and a new candidate of the same group, with the time after setup.
fn full_group(seed: u64) -> (AddrBook, NetAddress, SystemTime) {
    let mut b = book(seed);
    let mut now = t0();
    let mut i = 0u64;
    while b.old_count() < 256 {
        let a = in_group(i, 77, i as u16);
        b.add_address(a, in_group(100_000 + i, 1000 + (i % 500) as u32, 1), now)
            .unwrap();
        b.mark_good(a.id(), now);
        i += 1;
        assert!(i < 5000, "the group's 4 old buckets never filled");
    }
    // Promotions that collided while filling: the residents are fresh, so they stay.
    b.resolve_collisions(now);
    assert_eq!(b.pending_collisions(), 0);
    now += REPLACEMENT_WINDOW + Duration::from_secs(1);
    let cand = in_group(50_000, 77, 60_000);
    b.add_address(cand, in_group(200_000, 3000, 1), now)
        .unwrap();
    (b, cand, now)
}

#[test]
fn a_colliding_promotion_waits_for_a_test_of_the_resident() {
    let (mut b, cand, now) = full_group(1);
    b.mark_good(cand.id(), now);
    assert!(!b.is_good(&cand), "no eviction without a test");
    assert_eq!(b.pending_collisions(), 1);
    let resident = b.tried_collision().unwrap();
    assert!(b.is_good(&resident));
    b.check_invariants().unwrap();
    // Not yet tested: nothing changes.
    b.resolve_collisions(now + Duration::from_secs(30));
    assert_eq!(b.pending_collisions(), 1);
}

#[test]
fn a_live_resident_is_kept() {
    let (mut b, cand, now) = full_group(2);
    b.mark_good(cand.id(), now);
    let resident = b.tried_collision().unwrap();
    // The test reached it.
    let later = now + Duration::from_secs(5);
    b.mark_good(resident.id(), later);
    b.resolve_collisions(later);
    assert_eq!(b.pending_collisions(), 0);
    assert!(b.is_good(&resident));
    assert!(
        !b.is_good(&cand) && b.has_address(&cand),
        "the newcomer stays new"
    );
    b.check_invariants().unwrap();
}

#[test]
fn a_dead_resident_is_replaced() {
    let (mut b, cand, now) = full_group(3);
    b.mark_good(cand.id(), now);
    let resident = b.tried_collision().unwrap();
    let tested = now + Duration::from_secs(5);
    b.mark_attempt(&resident, tested);
    // The test gets a minute to finish.
    b.resolve_collisions(tested + Duration::from_secs(30));
    assert_eq!(b.pending_collisions(), 1);
    b.resolve_collisions(tested + Duration::from_secs(61));
    assert_eq!(b.pending_collisions(), 0);
    assert!(b.is_good(&cand), "the newcomer took the slot");
    assert!(!b.is_good(&resident), "the dead resident is demoted");
    assert!(b.has_address(&resident), "demoted to new, not dropped");
    b.check_invariants().unwrap();
}

#[test]
fn an_untested_collision_is_settled_for_the_newcomer_after_the_test_window() {
    let (mut b, cand, now) = full_group(4);
    b.mark_good(cand.id(), now);
    b.resolve_collisions(now + TEST_WINDOW);
    assert_eq!(b.pending_collisions(), 1);
    b.resolve_collisions(now + TEST_WINDOW + Duration::from_secs(1));
    assert!(b.is_good(&cand));
    assert_eq!(b.old_count(), 256);
    b.check_invariants().unwrap();
}

#[test]
fn a_recently_good_resident_is_never_evicted() {
    let mut b = book(5);
    let now = t0();
    let mut i = 0u64;
    while b.old_count() < 256 {
        let a = in_group(i, 77, i as u16);
        b.add_address(a, in_group(100_000 + i, 1000 + (i % 500) as u32, 1), now)
            .unwrap();
        b.mark_good(a.id(), now);
        i += 1;
    }
    let cand = in_group(50_000, 77, 60_000);
    b.add_address(cand, in_group(200_000, 3000, 1), now)
        .unwrap();
    b.mark_good(cand.id(), now + Duration::from_secs(60));
    b.resolve_collisions(now + TEST_WINDOW * 2);
    assert_eq!(b.pending_collisions(), 0);
    assert!(!b.is_good(&cand), "residents good within 4 h stay");
}

#[test]
fn collisions_are_bounded() {
    let (mut b, _, now) = full_group(6);
    for j in 0..(MAX_TRIED_COLLISIONS as u64 + 20) {
        let c = in_group(60_000 + j, 77, 50_000 + j as u16);
        b.add_address(c, in_group(300_000 + j, 4000, 1), now)
            .unwrap();
        b.mark_good(c.id(), now);
    }
    assert_eq!(b.pending_collisions(), MAX_TRIED_COLLISIONS);
    b.check_invariants().unwrap();
}

#[test]
fn unverified_addresses_are_dialable_but_never_served_until_reached() {
    let mut b = book(7);
    let now = t0();
    for i in 0..40 {
        b.add_address(in_group(i, i as u32, 1), in_group(1000, 999, 1), now)
            .unwrap();
    }
    let claimed = in_group(500, 500, 1);
    b.add_unverified_address(claimed, in_group(501, 501, 1), now)
        .unwrap();
    assert!(b.has_address(&claimed) && b.is_unverified(&claimed.id()));
    for _ in 0..50 {
        assert!(!b.selection().contains(&claimed));
        assert!(!b.selection_with_bias(100).contains(&claimed));
    }
    // Pickable for dialing.
    let picked = (0..5000).any(|_| b.pick_address(100) == Some(claimed));
    assert!(picked, "an unverified address must be dialable");
    // Saved and loaded with its mark.
    let json = b.to_json();
    assert!(String::from_utf8_lossy(&json).contains("\"mukan_unverified\": true"));
    let mut again = book(8);
    again.load_from_slice(&json, Path::new("mem"), now).unwrap();
    assert!(again.is_unverified(&claimed.id()));
    // Reached: verified and served.
    again.mark_good(claimed.id(), now);
    assert!(!again.is_unverified(&claimed.id()));
    let served = (0..50).any(|_| again.selection().contains(&claimed));
    assert!(served);
    // A known ID is left as it is.
    let known = in_group(1, 1, 1);
    b.add_unverified_address(known, in_group(2, 2, 2), now)
        .unwrap();
    assert!(!b.is_unverified(&known.id()));
}
