//! 200,000 fresh-key peers each get themselves banned (one unsolicited `PexAddrs` apiece)
//! through the real `PexCore` and address book: no address enters the table, the bans stay
//! bounded, the saved `addrbook.json` stays under its bound and loads, and the book's memory
//! stays under 16 MiB. One test per binary, so that no other test's allocations are counted.
#![allow(clippy::unwrap_used, reason = "test")]

use std::alloc::System;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use mukan_addrbook::{AddrBook, Config, DEFAULT_MAX_BANS};
use mukan_pex::{Action, CoreConfig, PeerInfo, PexCore, PexError, PexMessage};
use mukan_reactor_api::{AddressBook, Direction, NetAddress, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PEERS: u32 = 200_000;
/// The bound the addrbook crate states for a file of bans alone (10,000 bans).
const FILE_BOUND: usize = 5 << 20;
const MEMORY_BOUND: usize = 16 << 20;

fn addr(n: u32, ip: [u8; 4]) -> NetAddress {
    let mut b = [0u8; 20];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[19] = 0x42;
    NetAddress::new(NodeId(b), IpAddr::V4(Ipv4Addr::from(ip)), 26656)
}

#[test]
fn a_flood_of_bans_stays_bounded_on_disk_and_in_memory() {
    let t0 = Instant::now();
    let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let region = Region::new(GLOBAL);
    let mut book = AddrBook::new(Config::with_strict(true), ChaCha8Rng::seed_from_u64(1));
    let mut core = PexCore::new(CoreConfig::default(), ChaCha8Rng::seed_from_u64(2));
    core.start(&mut book, t0, w0);
    let unsolicited = PexMessage::Addrs(vec![addr(u32::MAX, [80, 1, 2, 3])]).encode();
    let mut banned = 0u32;
    for i in 0..PEERS {
        let [_, a, b, c] = i.to_be_bytes();
        // Each a fresh key, from its own routable address, claiming a routable listen
        // address: the old code added that address to the table first so the ban held.
        let sock = addr(i, [45, a, b, c.max(1)]);
        let info = PeerInfo {
            id: sock.id(),
            direction: Direction::Inbound,
            socket_addr: NetAddress::new(sock.id(), sock.ip(), 40_000),
            self_addr: Some(addr(i, [90 + a % 100, b, c, 9])),
            persistent: false,
        };
        let at = Duration::from_millis(u64::from(i));
        let (t, w) = (t0 + at, w0 + at);
        core.peer_added(&mut book, info, t, w);
        let acts = core.receive(&mut book, &info, &unsolicited, t, w);
        if acts.iter().any(|a| {
            matches!(
                a,
                Action::StopPeer {
                    reason: PexError::Unsolicited,
                    banned: true,
                    ..
                }
            )
        }) {
            banned += 1;
        }
        core.peer_removed(&info.id);
    }
    assert_eq!(banned, PEERS, "every sender is stopped and banned");
    let now = w0 + Duration::from_millis(u64::from(PEERS));
    assert_eq!(book.banned_count(), DEFAULT_MAX_BANS);
    // The latest bans hold; what entered the table are the inbound self-adverts the shared
    // bucket let through, never a banned ID.
    let last = PEERS - 1;
    let [_, a, b, c] = last.to_be_bytes();
    assert!(book.is_banned(&addr(last, [45, a, b, c.max(1)]), now));
    assert!(book.size() < 200, "{} addresses in the table", book.size());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("addrbook.json");
    book.save(&path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len() as usize;
    println!(
        "ban flood: {PEERS} bans through PexCore: {} kept, {} in the table, addrbook.json {size} bytes",
        book.banned_count(),
        book.size()
    );
    assert!(size < FILE_BOUND, "addrbook.json is {size} bytes");
    let mut again = AddrBook::new(Config::with_strict(true), ChaCha8Rng::seed_from_u64(3));
    let report = again.load(&path, now).unwrap();
    assert_eq!(report.banned, DEFAULT_MAX_BANS);
    drop(again);

    // The book's memory: what dropping it gives back.
    let total = region.change();
    let dropped = Region::new(GLOBAL);
    drop(book);
    let book_bytes = dropped.change().bytes_deallocated;
    println!(
        "ban flood: the book held {book_bytes} bytes ({:.1} MiB); book + core net {} bytes",
        book_bytes as f64 / f64::from(1 << 20),
        total.bytes_allocated as i64 - total.bytes_deallocated as i64
    );
    assert!(
        book_bytes < MEMORY_BOUND,
        "the book holds {book_bytes} bytes"
    );
    drop(core);
}
