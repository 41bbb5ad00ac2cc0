//! `addrbook.json`: Go-format fixtures, round trips, bad files.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{book, in_group, t0};
use mukan_addrbook::{AddrBook, BucketKind, Config, EntryError, PersistError};
use mukan_reactor_api::{AddressBook, NetAddress};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn parse(s: &str) -> NetAddress {
    s.parse().unwrap()
}

#[test]
fn go_written_file_loads() {
    let mut b = book(1);
    let report = b.load(&data("addrbook-go-v0.38.json"), t0()).unwrap();
    assert_eq!((report.loaded, report.banned, report.skipped), (3, 0, 0));
    assert_eq!(b.key(), "3b8f0c5a9d2e7f1a4c6b8d0e");
    assert_eq!((b.new_count(), b.old_count()), (2, 1));
    let first = parse("34750f98bd59fcfc946da45aaabe933be154a4b5@1.2.3.4:26656");
    assert!(b.has_address(&first) && !b.is_good(&first));
    assert_eq!(
        b.buckets_of(&first.id()),
        Some((BucketKind::New, vec![17, 200]))
    );
    let v6 = parse("aa00bb11cc22dd33ee44ff5566778899aabbccdd@[2a01:4f8::1]:26656");
    assert!(b.is_good(&v6));
    assert_eq!(b.buckets_of(&v6.id()), Some((BucketKind::Old, vec![5])));
    // `null` buckets: placed where the hash puts it.
    let third = parse("0123456789abcdef0123456789abcdef01234567@9.9.9.9:26657");
    let (kind, buckets) = b.buckets_of(&third.id()).unwrap();
    assert_eq!((kind, buckets.len()), (BucketKind::New, 1));
    b.check_invariants().unwrap();
    // Offsets are read (+02:00 and -07:00) and written back in UTC.
    let json = String::from_utf8(b.to_json()).unwrap();
    assert!(json.contains("\"last_attempt\": \"2024-05-01T10:00:00.123456789Z\""));
    assert!(json.contains("\"last_success\": \"2024-04-30T15:15:00.5Z\""));
}

#[test]
fn canonical_file_round_trips_byte_for_byte() {
    for name in ["addrbook-canonical.json", "addrbook-empty.json"] {
        let bytes = fs::read(data(name)).unwrap();
        let mut b = book(2);
        b.load(&data(name), t0()).unwrap();
        assert_eq!(
            String::from_utf8(b.to_json()).unwrap(),
            String::from_utf8(bytes).unwrap()
        );
    }
}

#[test]
fn tolerant_of_what_go_may_write() {
    // Unknown fields, `null` addrs, missing optional fields, lowercase offsets absent.
    let cases = [
        r#"{"key":"abc","addrs":null}"#,
        r#"{"addrs":[]}"#,
        r#"{"key":"abc","addrs":[],"future_field":{"x":[1,2]}}"#,
        r#"{"key":"abc","addrs":[{"addr":{"id":"34750f98bd59fcfc946da45aaabe933be154a4b5","ip":"1.2.3.4","port":1},"src":{"id":"34750f98bd59fcfc946da45aaabe933be154a4b5","ip":"1.2.3.4","port":1},"bucket_type":1,"extra":true}]}"#,
        r#"{"key":"abc","addrs":[{"addr":{"id":"34750f98bd59fcfc946da45aaabe933be154a4b5","ip":"::ffff:1.2.3.4","port":1},"src":{"id":"34750f98bd59fcfc946da45aaabe933be154a4b5","ip":"0.0.0.0","port":0},"buckets":[],"attempts":0,"bucket_type":2,"last_attempt":null,"last_success":"2024-01-01T00:00:00+14:00","last_ban_time":"0001-01-01T00:00:00Z"}]}"#,
    ];
    for (i, c) in cases.iter().enumerate() {
        let mut b = book(3);
        let r = b.load_from_slice(c.as_bytes(), Path::new("mem"), t0());
        assert!(r.is_ok(), "case {i}: {r:?}");
        b.check_invariants().unwrap();
    }
}

fn rich_book(seed: u64, n: u64) -> AddrBook {
    let mut b = book(seed);
    let mut now = t0();
    for i in 0..n {
        let a = in_group(i, (i % 20_000) as u32, (i / 20_000) as u16 + 1);
        let src = in_group(1_000_000 + i, (i % 300) as u32 + 30_000, 1);
        b.add_address(a, src, now).unwrap();
        // A second reference from another source for some.
        b.add_address(a, in_group(2_000_000 + i, (i % 77) as u32 + 40_000, 1), now)
            .unwrap();
        match i % 10 {
            0 => b.mark_good(a.id(), now),
            1 => b.mark_attempt(&a, now + Duration::from_nanos(i)),
            2 if i % 100 == 2 => b.mark_bad(&a, Duration::from_secs(3600 + i), now),
            _ => {}
        }
        now += Duration::from_micros(1234);
    }
    b
}

#[test]
fn five_thousand_addresses_save_and_load_to_an_equal_book() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let b = rich_book(4, 5000);
    assert!(b.size() > 4500 && b.old_count() > 400 && b.banned_count() > 40);
    b.save(&path).unwrap();
    let mut again = AddrBook::new(Config::default(), ChaCha8Rng::seed_from_u64(99));
    let report = again.load(&path, t0()).unwrap();
    assert_eq!(report.loaded, b.size());
    assert_eq!(report.banned, b.banned_count());
    assert_eq!(again, b);
    again.check_invariants().unwrap();
    // And the file we write again is identical.
    assert_eq!(again.to_json(), fs::read(&path).unwrap());
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A book behind a lock, saved through `save_snapshot` (lock held only to serialize): the
/// file loads back to an equal book, and is the snapshot's bytes.
#[test]
fn save_snapshot_writes_a_file_that_loads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let shared = std::sync::Mutex::new(rich_book(7, 800));
    let mut taken = None;
    AddrBook::save_snapshot(&path, || {
        let snapshot = shared.lock().unwrap().snapshot();
        taken = Some(snapshot.clone());
        snapshot
    })
    .unwrap();
    assert_eq!(taken.unwrap().as_bytes(), fs::read(&path).unwrap());
    let mut again = AddrBook::new(Config::default(), ChaCha8Rng::seed_from_u64(99));
    let report = again.load(&path, t0()).unwrap();
    let original = shared.lock().unwrap();
    assert_eq!(report.loaded, original.size());
    assert_eq!(again, *original);
    again.check_invariants().unwrap();
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary left"
    );
}

/// Snapshots saved from several threads: each save is whole and the last one taken is the
/// one on disk.
#[test]
fn concurrent_snapshot_saves_leave_the_last_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let shared = std::sync::Mutex::new(rich_book(0, 300));
    let last = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (path, shared, last) = (&path, &shared, &last);
            s.spawn(move || {
                for i in 0..5 {
                    AddrBook::save_snapshot(path, || {
                        let mut b = shared.lock().unwrap();
                        let a = in_group(50_000 + t * 10 + i, 40_000 + t as u32, 1);
                        let _ = b.add_address(a, in_group(60_000, 41_000, 1), t0());
                        let snapshot = b.snapshot();
                        *last.lock().unwrap() = snapshot.as_bytes().to_vec();
                        snapshot
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(fs::read(&path).unwrap(), *last.lock().unwrap());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn bans_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let mut b = book(5);
    let now = t0();
    let a = in_group(1, 1, 1);
    b.add_address(a, in_group(2, 2, 2), now).unwrap();
    b.mark_bad(&a, Duration::from_secs(24 * 3600), now);
    b.save(&path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"mukan_banned\": ["));
    let mut again = book(6);
    again.load(&path, now).unwrap();
    assert!(again.is_banned(&a, now + Duration::from_secs(3600)));
    assert!(again.add_address(a, in_group(2, 2, 2), now).is_err());
    again.reinstate_bad_peers(now + Duration::from_secs(24 * 3600));
    assert!(again.has_address(&a));
    // Without bans the extra field is absent (the file is exactly Go's shape).
    assert!(
        !String::from_utf8(again.to_json())
            .unwrap()
            .contains("mukan_banned")
    );
}

#[test]
fn missing_file_is_an_empty_book() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = book(7);
    let report = b.load(&dir.path().join("nope.json"), t0()).unwrap();
    assert!(!report.found && b.is_empty());
}

/// Writes `content`, loads it, checks the error, that the book is empty, and that the
/// original bytes were moved aside intact.
fn bad_file(content: &[u8], config: Config) -> PersistError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    fs::write(&path, content).unwrap();
    let mut b = AddrBook::new(config, ChaCha8Rng::seed_from_u64(8));
    // Something in the book before the load must be gone after it.
    b.add_address(in_group(1, 1, 1), in_group(2, 2, 2), t0())
        .unwrap();
    let err = b.load(&path, t0()).unwrap_err();
    assert!(b.is_empty(), "{err}");
    assert!(
        !path.exists(),
        "the unusable file must not stay in place: {err}"
    );
    let moved = err.moved_aside().expect("moved aside").clone();
    assert!(
        moved
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("addrbook.json.corrupt-")
    );
    assert_eq!(
        fs::read(&moved).unwrap(),
        content,
        "the original must be kept intact"
    );
    // A second failure in the same instant does not overwrite the first copy.
    fs::write(&path, content).unwrap();
    let err2 = b.load(&path, t0()).unwrap_err();
    assert_ne!(err2.moved_aside(), Some(&moved));
    err
}

fn entry(addr_id: &str, ip: &str, buckets: &str, bucket_type: u8, time: &str) -> String {
    let id = "34750f98bd59fcfc946da45aaabe933be154a4b5";
    format!(
        r#"{{"key":"k","addrs":[{{"addr":{{"id":"{addr_id}","ip":"{ip}","port":1}},"src":{{"id":"{id}","ip":"1.2.3.4","port":1}},"buckets":{buckets},"attempts":0,"bucket_type":{bucket_type},"last_attempt":"{time}","last_success":"0001-01-01T00:00:00Z","last_ban_time":"0001-01-01T00:00:00Z"}}]}}"#
    )
}

#[test]
fn bad_files_are_typed_errors_and_kept() {
    let id = "34750f98bd59fcfc946da45aaabe933be154a4b5";
    let t = "2024-05-01T10:00:00Z";
    let good = fs::read(data("addrbook-go-v0.38.json")).unwrap();
    let d = Config::default;

    assert!(matches!(bad_file(b"", d()), PersistError::Empty { .. }));
    assert!(matches!(
        bad_file(b" \n\t", d()),
        PersistError::Empty { .. }
    ));
    for cut in [1, 10, good.len() / 2, good.len() - 1] {
        let e = bad_file(&good[..cut], d());
        assert!(
            matches!(e, PersistError::Truncated { .. }),
            "cut {cut}: {e}"
        );
    }
    assert!(matches!(
        bad_file(b"{\"key\": nope}", d()),
        PersistError::Syntax { .. }
    ));
    assert!(matches!(
        bad_file(b"\x00\x01garbage", d()),
        PersistError::Syntax { .. }
    ));
    assert!(matches!(
        bad_file(b"{} trailing", d()),
        PersistError::Syntax { .. }
    ));
    // Wrong types.
    let port_string = entry(id, "1.2.3.4", "[1]", 1, t).replace("\"port\":1", "\"port\":\"1\"");
    assert!(matches!(
        bad_file(port_string.as_bytes(), d()),
        PersistError::WrongShape { .. }
    ));
    assert!(matches!(
        bad_file(b"[]", d()),
        PersistError::WrongShape { .. }
    ));
    assert!(matches!(
        bad_file(b"{\"addrs\": 5}", d()),
        PersistError::WrongShape { .. }
    ));
    let big_port = entry(id, "1.2.3.4", "[1]", 1, t).replace("\"port\":1", "\"port\":65536");
    assert!(matches!(
        bad_file(big_port.as_bytes(), d()),
        PersistError::WrongShape { .. }
    ));
    let no_addr = r#"{"key":"k","addrs":[{"bucket_type":1}]}"#;
    assert!(matches!(
        bad_file(no_addr.as_bytes(), d()),
        PersistError::WrongShape { .. }
    ));

    let entry_err = |content: String| match bad_file(content.as_bytes(), Config::default()) {
        PersistError::InvalidEntry {
            index: 0, reason, ..
        } => reason,
        other => panic!("{other}"),
    };
    // Bucket indexes: both sides of each boundary.
    assert!(matches!(
        entry_err(entry(id, "1.2.3.4", "[256]", 1, t)),
        EntryError::BucketIndex {
            kind: "new",
            index: 256
        }
    ));
    assert!(matches!(
        entry_err(entry(id, "1.2.3.4", "[-1]", 1, t)),
        EntryError::BucketIndex { index: -1, .. }
    ));
    assert!(matches!(
        entry_err(entry(id, "1.2.3.4", "[64]", 2, t)),
        EntryError::BucketIndex {
            kind: "old",
            index: 64
        }
    ));
    let mut ok = book(1);
    for (b, ty) in [("[255]", 1), ("[0]", 1), ("[63]", 2)] {
        let text = entry(id, "1.2.3.4", b, ty, t);
        assert!(
            ok.load_from_slice(text.as_bytes(), Path::new("m"), t0())
                .is_ok(),
            "{b}"
        );
    }
    assert_eq!(
        entry_err(entry(id, "1.2.3.4", "[1]", 3, t)),
        EntryError::BucketType(3)
    );
    assert_eq!(
        entry_err(entry(id, "1.2.3.4", "[1]", 0, t)),
        EntryError::BucketType(0)
    );
    assert!(matches!(
        entry_err(entry(id, "1.2.3.4", "[1,2]", 2, t)),
        EntryError::TooManyBuckets { count: 2, max: 1 }
    ));
    assert!(matches!(
        entry_err(entry(id, "1.2.3.4", "[1,2,3,4,5]", 1, t)),
        EntryError::TooManyBuckets { count: 5, max: 4 }
    ));
    // IDs, IPs (a host name: the celestia-app #2623 case), times.
    assert!(matches!(
        entry_err(entry("abc", "1.2.3.4", "[1]", 1, t)),
        EntryError::InvalidId { .. }
    ));
    assert!(matches!(
        entry_err(entry("", "1.2.3.4", "[1]", 1, t)),
        EntryError::InvalidId { .. }
    ));
    assert_eq!(
        entry_err(entry(id, "seed.example.com", "[1]", 1, t)),
        EntryError::InvalidIp("seed.example.com".into())
    );
    assert_eq!(
        entry_err(entry(id, "", "[1]", 1, t)),
        EntryError::InvalidIp(String::new())
    );
    assert!(matches!(
        entry_err(entry(id, "1.2.3.4", "[1]", 1, "yesterday")),
        EntryError::InvalidTime(_)
    ));
    // Duplicate IDs.
    let one = entry(id, "1.2.3.4", "[1]", 1, t);
    let inner = &one[one.find('[').unwrap() + 1..one.rfind(']').unwrap()];
    let dup = format!(r#"{{"key":"k","addrs":[{inner},{inner}]}}"#);
    match bad_file(dup.as_bytes(), d()) {
        PersistError::InvalidEntry {
            index: 1,
            reason: EntryError::DuplicateId(_),
            ..
        } => {}
        other => panic!("{other}"),
    }
    // Size cap: the file is not read.
    let mut small = Config::default();
    small.max_file_size = 100;
    assert!(matches!(
        bad_file(&good, small),
        PersistError::TooLarge { max: 100, .. }
    ));
}

#[test]
fn lenient_mode_skips_bad_entries() {
    let id = "34750f98bd59fcfc946da45aaabe933be154a4b5";
    let t = "2024-05-01T10:00:00Z";
    let good = entry(id, "1.2.3.4", "[1]", 1, t);
    let bad = entry(
        "0123456789abcdef0123456789abcdef01234567",
        "host.name",
        "[1]",
        1,
        t,
    );
    let g = &good[good.find('[').unwrap() + 1..good.rfind(']').unwrap()];
    let b = &bad[bad.find('[').unwrap() + 1..bad.rfind(']').unwrap()];
    let text = format!(r#"{{"key":"k","addrs":[{b},{g},{g}]}}"#);
    let mut lax = AddrBook::new(
        {
            let mut c = Config::default();
            c.skip_invalid_entries = true;
            c
        },
        ChaCha8Rng::seed_from_u64(1),
    );
    let report = lax
        .load_from_slice(text.as_bytes(), Path::new("m"), t0())
        .unwrap();
    assert_eq!((report.loaded, report.skipped), (1, 2));
    lax.check_invariants().unwrap();
}

#[test]
fn save_fails_cleanly_into_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/addrbook.json");
    assert!(matches!(book(1).save(&path), Err(PersistError::Io { .. })));
}

/// Books saved from several threads of one process into one path: every save has its own
/// temporary file, so the result is one whole book and nothing is left beside it.
#[test]
fn concurrent_saves_in_one_process_do_not_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    let sizes = [300, 600, 300, 600];
    std::thread::scope(|s| {
        for (seed, n) in sizes.into_iter().enumerate() {
            let path = &path;
            s.spawn(move || {
                let b = rich_book(seed as u64 % 2, n);
                for _ in 0..10 {
                    b.save(path).unwrap();
                }
            });
        }
    });
    let saved = fs::read(&path).unwrap();
    assert!(
        [rich_book(0, 300), rich_book(1, 600)]
            .iter()
            .any(|b| b.to_json() == saved),
        "the file is one of the books, whole"
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// The example's fixture, saved by CometBFT v0.38.25's own `p2p/pex` address book: it loads
/// with Go's bucket placement kept, and we write it back byte for byte.
#[test]
fn file_saved_by_go_loads_and_is_rewritten_byte_exact() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/addrbook-go.json");
    let bytes = fs::read(&path).unwrap();
    let mut b = book(3);
    let report = b.load_from_slice(&bytes, &path, t0()).unwrap();
    assert_eq!(report.loaded, 7);
    assert_eq!((b.new_count(), b.old_count()), (5, 2));
    let id = |s: &str| s.parse().unwrap();
    assert_eq!(
        b.buckets_of(&id("7a6a21a0f2cb66c044edd946fcca9cb3b7207fa2")),
        Some((BucketKind::Old, vec![48]))
    );
    assert_eq!(
        b.buckets_of(&id("b47efad99d18bf0debde8b981acb21fbe95a610f")),
        Some((BucketKind::New, vec![51]))
    );
    b.check_invariants().unwrap();
    assert_eq!(
        String::from_utf8(b.to_json()).unwrap(),
        String::from_utf8(bytes).unwrap()
    );
}
