//! The policy core fed arbitrary messages from one peer (first byte: direction and whether a
//! request is outstanding): never panics, and the address book keeps its invariants.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use mukan_addrbook::{AddrBook, Config};
use mukan_pex::{CoreConfig, PeerInfo, PexCore};
use mukan_reactor_api::{Direction, NetAddress, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut book = AddrBook::new(Config::with_strict(ctl & 4 != 0), ChaCha8Rng::seed_from_u64(1));
    let mut core = PexCore::new(CoreConfig::default(), ChaCha8Rng::seed_from_u64(2));
    let t0 = Instant::now();
    let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let addr = NetAddress::new(NodeId([7; 20]), IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)), 26656);
    let info = PeerInfo {
        id: addr.id(),
        direction: if ctl & 1 != 0 { Direction::Outbound } else { Direction::Inbound },
        socket_addr: addr,
        self_addr: Some(addr),
        persistent: false,
    };
    core.start(&mut book, t0, w0);
    if ctl & 2 != 0 {
        core.peer_added(&mut book, info, t0, w0);
    }
    // Several messages: split on 0xFF 0xFF markers.
    for (i, chunk) in rest.split(|b| *b == 0xff).enumerate() {
        let dt = Duration::from_millis(700 * i as u64);
        core.receive(&mut book, &info, chunk, t0 + dt, w0 + dt);
        core.tick(&mut book, t0 + dt, w0 + dt);
    }
    assert_eq!(book.check_invariants(), Ok(()));
});
