//! Eclipse resistance: one attacker group reaches few buckets and
//! cannot evict addresses placed elsewhere.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::{book, in_group, t0};
use mukan_addrbook::BucketKind;
use mukan_reactor_api::{AddressBook, NetAddress, NodeId};

const ATTACKER_SRC_GROUP: u32 = 30_000;
const ATTACKER_ADDR_GROUP: u32 = 30_001;

fn buckets_used(b: &mukan_addrbook::AddrBook, ids: &[NodeId], kind: BucketKind) -> BTreeSet<u16> {
    ids.iter()
        .filter_map(|id| b.buckets_of(id))
        .filter(|(k, _)| *k == kind)
        .flat_map(|(_, v)| v)
        .collect()
}

#[test]
fn ten_thousand_addresses_from_one_source_group_use_at_most_32_new_buckets() {
    let mut b = book(1);
    let now = t0();
    let mut ids = Vec::new();
    for i in 0..10_000u64 {
        // Addresses all over the IPv4 space, sources all in one /16.
        let a = in_group(i, (i * 7919 % 30_000) as u32, i as u16);
        let src = in_group(500_000 + i, ATTACKER_SRC_GROUP, i as u16);
        b.add_address(a, src, now).unwrap();
        ids.push(a.id());
    }
    let used = buckets_used(&b, &ids, BucketKind::New);
    assert!(
        !used.is_empty() && used.len() <= 32,
        "{} new buckets",
        used.len()
    );
    assert!(b.size() <= 32 * 64);
    b.check_invariants().unwrap();
}

#[test]
fn ten_thousand_addresses_from_one_ipv6_source_group_use_at_most_32_new_buckets() {
    let mut b = book(2);
    let now = t0();
    let mut ids = Vec::new();
    for i in 0..10_000u64 {
        let a = in_group(i, (i % 30_000) as u32, 1);
        let src: NetAddress = format!(
            "{}@[2a01:4f8:{:x}::{:x}]:1",
            common::id(900_000 + i),
            i % 65_536,
            i
        )
        .parse()
        .unwrap();
        b.add_address(a, src, now).unwrap();
        ids.push(a.id());
    }
    let used = buckets_used(&b, &ids, BucketKind::New);
    assert!(used.len() <= 32, "{} new buckets", used.len());
}

#[test]
fn ten_thousand_good_addresses_from_one_group_use_at_most_4_old_buckets() {
    let mut b = book(3);
    let mut now = t0();
    let mut ids = Vec::new();
    for i in 0..10_000u64 {
        let a = in_group(i, ATTACKER_ADDR_GROUP, i as u16);
        b.add_address(a, a, now).unwrap();
        b.mark_good(a.id(), now);
        ids.push(a.id());
        now += Duration::from_millis(1);
    }
    let used = buckets_used(&b, &ids, BucketKind::Old);
    assert!(
        !used.is_empty() && used.len() <= 4,
        "{} old buckets",
        used.len()
    );
    assert!(b.old_count() <= 4 * 64);
    b.check_invariants().unwrap();
}

#[test]
fn attacker_floods_do_not_evict_addresses_in_other_buckets() {
    let mut b = book(4);
    let mut now = t0();
    // Honest book: 600 addresses from 600 groups and 300 source groups, 200 of them good.
    let mut honest = Vec::new();
    for i in 0..600u64 {
        let a = in_group(i, i as u32 * 3, 7);
        let src = in_group(10_000 + i, 2_000 + (i as u32 % 300), 1);
        b.add_address(a, src, now).unwrap();
        if i < 200 {
            b.mark_good(a.id(), now);
        }
        honest.push(a);
        now += Duration::from_secs(1);
    }
    let before: HashMap<NodeId, (BucketKind, Vec<u16>)> = honest
        .iter()
        .filter_map(|a| b.buckets_of(&a.id()).map(|x| (a.id(), x)))
        .collect();
    assert_eq!(before.len(), 600);

    // Attacker: 10,000 new addresses through sources of one /16, then 10,000 good
    // addresses of one /16 (their own sources).
    let mut attacker = Vec::new();
    for i in 0..10_000u64 {
        let a = in_group(100_000 + i, 29_000 + (i % 1000) as u32, i as u16);
        let src = in_group(200_000 + i, ATTACKER_SRC_GROUP, i as u16);
        b.add_address(a, src, now).unwrap();
        attacker.push(a.id());
    }
    for i in 0..10_000u64 {
        let a = in_group(300_000 + i, ATTACKER_ADDR_GROUP, i as u16);
        b.add_address(a, a, now).unwrap();
        b.mark_good(a.id(), now);
        attacker.push(a.id());
        now += Duration::from_millis(1);
    }
    b.check_invariants().unwrap();
    let attacked_new = buckets_used(&b, &attacker, BucketKind::New);
    let attacked_old = buckets_used(&b, &attacker, BucketKind::Old);
    assert!(
        attacked_new.len() <= 64,
        "{} new buckets",
        attacked_new.len()
    );
    assert!(
        attacked_old.len() <= 4,
        "{} old buckets",
        attacked_old.len()
    );

    let mut untouched = 0;
    for (id, (kind, buckets)) in &before {
        let exposed = match kind {
            BucketKind::New => buckets.iter().all(|x| attacked_new.contains(x)),
            BucketKind::Old => attacked_old.contains(&buckets[0]),
        };
        if exposed {
            continue;
        }
        untouched += 1;
        let now_in = b.buckets_of(id);
        assert!(
            now_in.is_some(),
            "honest {id} outside the attacked buckets was evicted"
        );
        if *kind == BucketKind::Old {
            assert_eq!(
                now_in.map(|x| x.0),
                Some(BucketKind::Old),
                "honest good {id} demoted"
            );
        }
    }
    assert!(
        untouched > 450,
        "only {untouched} honest entries were outside attacked buckets"
    );
    // Good honest entries in an attacked old bucket were demoted, not dropped, unless their
    // new bucket was attacked too.
    let survivors = honest.iter().filter(|a| b.has_address(a)).count();
    assert!(survivors >= untouched);
}
