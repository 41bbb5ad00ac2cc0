//! A byte string drives a sequence of operations on a book with a mock clock (Bitcoin
//! `addrman` style); the full consistency check runs after each one.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use mukan_addrbook::{AddrBook, Config};
use mukan_reactor_api::{AddressBook, NetAddress, NodeId};
use rand::rngs::mock::StepRng;

fn addr(b: &[u8]) -> NetAddress {
    let id = NodeId([b[0] % 32; 20]);
    let ip = if b[1] & 0x80 == 0 {
        IpAddr::V4(Ipv4Addr::new(b[1] % 4 + 1, b[2] % 8, b[3], 1))
    } else {
        IpAddr::V6(Ipv6Addr::new(
            0x2a01,
            u16::from(b[2] % 8),
            0,
            0,
            0,
            0,
            0,
            u16::from(b[3]),
        ))
    };
    NetAddress::new(id, ip, 26656)
}

fuzz_target!(|data: &[u8]| {
    let mut now = UNIX_EPOCH + Duration::from_secs(1_714_564_800);
    let strict = data.first().is_some_and(|b| b & 1 == 0);
    let mut book = AddrBook::new(Config::with_strict(strict), StepRng::new(3, 0x9e37_79b9));
    for op in data.chunks_exact(8) {
        let (a, src) = (addr(&op[1..5]), addr(&op[4..8]));
        match op[0] % 11 {
            0..=2 => {
                let _ = book.add_address(a, src, now);
            }
            3 => book.mark_good(a.id(), now),
            4 => book.mark_attempt(&a, now),
            5 => book.mark_bad(&a, Duration::from_secs(u64::from(op[5]) * 60), now),
            6 => book.reinstate_bad_peers(now),
            7 => book.remove_address(&a),
            8 => {
                if let Some(p) = book.pick_address(op[5]) {
                    assert!(book.has_address(&p) && !book.is_banned(&p, now));
                }
            }
            9 => {
                let sel = if op[5] & 1 == 0 {
                    book.selection()
                } else {
                    book.selection_with_bias(op[6])
                };
                assert!(sel.len() <= 250);
            }
            _ => now += Duration::from_secs(u64::from(op[5]) * 600),
        }
        book.check_invariants()
            .expect("consistent after every operation");
    }
});
