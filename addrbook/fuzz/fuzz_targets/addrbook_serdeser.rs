//! Z11 (Bitcoin `addrman_serdeser`): a byte string fills a book through a sequence of
//! operations with a mock clock (as `addrbook_ops`); the book is saved and loaded into a fresh
//! one, which must be equal (buckets, attempts, ban times) and consistent, and save again to
//! the same bytes.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use mukan_addrbook::{AddrBook, Config};
use mukan_reactor_api::{AddressBook, NetAddress, NodeId};
use rand::rngs::mock::StepRng;

fn addr(b: &[u8; 4]) -> NetAddress {
    let id = NodeId([b[0] % 64; 20]);
    let ip = if b[1] & 0x80 == 0 {
        IpAddr::V4(Ipv4Addr::new(b[1] % 8 + 1, b[2], b[3], 1))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2a01, u16::from(b[2]), 0, 0, 0, 0, 0, u16::from(b[3])))
    };
    NetAddress::new(id, ip, 26656)
}

fuzz_target!(|data: &[u8]| {
    let mut now = UNIX_EPOCH + Duration::from_secs(1_714_564_800);
    let strict = data.first().is_some_and(|b| b & 1 == 0);
    let config = Config::with_strict(strict);
    let mut book = AddrBook::new(config.clone(), StepRng::new(3, 0x9e37_79b9));
    for op in data.chunks_exact(8) {
        let [kind, a0, a1, a2, a3, a4, a5, a6] = *op else {
            continue;
        };
        let (a, src) = (addr(&[a0, a1, a2, a3]), addr(&[a3, a4, a5, a6]));
        match kind % 6 {
            0..=2 => {
                let _ = book.add_address(a, src, now);
            }
            3 => book.mark_good(a.id(), now),
            4 => book.mark_attempt(&a, now),
            _ => book.mark_bad(&a, Duration::from_secs(u64::from(a4) * 60), now),
        }
        now += Duration::from_secs(u64::from(a5));
    }
    book.check_invariants()
        .expect("consistent before saving");
    let json = book.to_json();
    let mut loaded = AddrBook::new(config, StepRng::new(5, 11));
    loaded
        .load_from_slice(&json, Path::new("fuzz"), now)
        .expect("our own output loads");
    loaded
        .check_invariants()
        .expect("consistent after loading");
    assert_eq!(loaded, book, "save then load changed the book");
    assert_eq!(loaded.to_json(), json, "a second save differs");
});
