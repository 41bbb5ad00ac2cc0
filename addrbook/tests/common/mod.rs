//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mukan_addrbook::{AddrBook, Config};
use mukan_reactor_api::{NetAddress, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A fixed start time: 2024-05-01T12:00:00Z.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

pub fn book(seed: u64) -> AddrBook {
    AddrBook::new(Config::default(), ChaCha8Rng::seed_from_u64(seed))
}

/// A distinct node ID for each `n`.
pub fn id(n: u64) -> NodeId {
    let mut b = [0u8; 20];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[19] = 0xa5;
    NodeId(b)
}

pub fn v4(id_n: u64, o: [u8; 4], port: u16) -> NetAddress {
    NetAddress::new(id(id_n), IpAddr::V4(Ipv4Addr::from(o)), port)
}

/// First octets of unicast IPv4 ranges with no special /16 inside.
fn first_octets() -> Vec<u8> {
    (20..=126)
        .chain(128..=168)
        .chain(170..=171)
        .chain(173..=191)
        .chain(193..=223)
        .collect()
}

/// A routable IPv4 address in /16 group number `g` (0..51_200), host `h`.
pub fn in_group(id_n: u64, g: u32, h: u16) -> NetAddress {
    let firsts = first_octets();
    let a = firsts[(g / 256) as usize % firsts.len()];
    let b = (g % 256) as u8;
    v4(id_n, [a, b, (h >> 8) as u8, h as u8], 26656)
}
