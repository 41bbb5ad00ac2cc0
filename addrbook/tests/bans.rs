//! Bans: bounded, kept apart from the address table, reinstated one at a time, saved and
//! loaded (the legacy `mukan_banned` entries of earlier versions included).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{book, in_group, t0};
use mukan_addrbook::{AddrBook, Config, DEFAULT_MAX_BANS};
use mukan_reactor_api::AddressBook;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const DAY: Duration = Duration::from_secs(24 * 3600);

#[test]
fn an_unknown_id_is_banned_without_entering_the_table() {
    let mut b = book(1);
    let now = t0();
    let a = in_group(1, 1, 1);
    b.mark_bad(&a, DAY, now);
    assert!(b.is_banned(&a, now), "Go ignores it; we ban it");
    assert!(
        !b.has_address(&a) && b.is_empty(),
        "never added to the table"
    );
    assert!(b.add_address(a, in_group(2, 2, 2), now).is_err());
    // When the ban ends it is dropped, not reinstated into the table.
    b.reinstate_bad_peers(now + DAY);
    assert_eq!(b.banned_count(), 0);
    assert!(b.is_empty());
    b.check_invariants().unwrap();
}

#[test]
fn bans_are_capped_and_the_earliest_end_goes_first() {
    let mut b = book(2);
    let now = t0();
    let n = DEFAULT_MAX_BANS as u64 + 500;
    for i in 0..n {
        // Later IDs get later ends.
        b.mark_bad(
            &in_group(i, (i % 5000) as u32, 1),
            DAY + Duration::from_secs(i),
            now,
        );
    }
    assert_eq!(b.banned_count(), DEFAULT_MAX_BANS);
    assert!(b.is_empty());
    // The first 500 (earliest ends) went; the rest hold.
    assert!(!b.is_banned(&in_group(0, 0, 1), now));
    assert!(!b.is_banned(&in_group(499, 499, 1), now));
    assert!(b.is_banned(&in_group(500, 500, 1), now));
    assert!(b.is_banned(&in_group(n - 1, ((n - 1) % 5000) as u32, 1), now));
    // The cap is a setting.
    let mut cfg = Config::default();
    cfg.max_bans = 10;
    let mut small = AddrBook::new(cfg, ChaCha8Rng::seed_from_u64(3));
    for i in 0..100 {
        small.mark_bad(&in_group(i, i as u32, 1), DAY, now);
    }
    assert_eq!(small.banned_count(), 10);
}

#[test]
fn ended_bans_come_back_one_at_a_time() {
    let mut b = book(4);
    let mut now = t0();
    let src = in_group(9_999, 9_999, 1);
    let addrs: Vec<_> = (0..50).map(|i| in_group(i, i as u32 + 10, 1)).collect();
    for a in &addrs {
        b.add_address(*a, src, now).unwrap();
    }
    for a in &addrs {
        b.mark_bad(a, Duration::from_secs(3600), now);
    }
    assert!(b.is_empty());
    now += Duration::from_secs(3600);
    for round in 1..=50 {
        b.reinstate_bad_peers(now);
        assert_eq!(b.size(), round, "one per call");
        b.check_invariants().unwrap();
    }
    assert_eq!(b.banned_count(), 0);
}

#[test]
fn a_flood_of_bans_keeps_the_file_bounded_and_loadable() {
    let mut b = book(5);
    let now = t0();
    for i in 0..200_000u64 {
        b.mark_bad(
            &in_group(i, (i % 50_000) as u32, (i / 50_000) as u16 + 1),
            DAY,
            now,
        );
    }
    assert_eq!(b.banned_count(), DEFAULT_MAX_BANS);
    let json = b.to_json();
    // 10,000 bans at about 450 bytes each.
    assert!(json.len() < 5 << 20, "{} bytes", json.len());
    let mut again = book(6);
    let report = again.load_from_slice(&json, Path::new("mem"), now).unwrap();
    assert_eq!(report.banned, DEFAULT_MAX_BANS);
    assert_eq!(again, b);
}

#[test]
fn a_legacy_file_with_more_bans_than_the_cap_still_loads() {
    // Earlier versions saved every ban; such a file loads, keeping the latest-ending ones.
    let mut entries = Vec::new();
    for i in 0..(DEFAULT_MAX_BANS + 100) {
        let a = in_group(i as u64, (i % 40_000) as u32, 1);
        let (ip, port) = (a.ip(), a.port());
        entries.push(format!(
            r#"{{"addr":{{"id":"{}","ip":"{ip}","port":{port}}},"src":{{"id":"{}","ip":"{ip}","port":{port}}},"buckets":null,"attempts":0,"bucket_type":1,"last_attempt":"2024-05-01T12:00:00Z","last_success":"0001-01-01T00:00:00Z","last_ban_time":"2024-05-02T{:02}:{:02}:{:02}Z"}}"#,
            a.id(),
            a.id(),
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60
        ));
    }
    let file = format!(
        r#"{{"key":"0123456789abcdef01234567","addrs":[],"mukan_banned":[{}]}}"#,
        entries.join(",")
    );
    let mut b = book(7);
    let report = b
        .load_from_slice(file.as_bytes(), Path::new("legacy"), t0())
        .unwrap();
    assert_eq!(report.banned, DEFAULT_MAX_BANS);
    // Legacy entries were in the table when banned: they come back when the ban ends.
    b.reinstate_bad_peers(t0() + 10 * DAY);
    assert_eq!(b.size(), 1);
}
