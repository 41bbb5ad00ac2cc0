//! L8: the address book, PEX-sourced adds, then save and load of a ~20k-entry book.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mukan_addrbook::AddrBook;
use mukan_reactor_api::{AddressBook, NetAddress, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::net::{quantile, sort};
use crate::{Opts, Report};

use super::{mib, ms};

fn book_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

/// Address `i` (over ~40,000 /16 groups) and its PEX source (one of 2,000 peers).
fn book_addr(i: usize) -> (NetAddress, NetAddress) {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    id[19] = 1;
    let g = (i * 7919) % 40_000;
    let ip = std::net::Ipv4Addr::new(
        20 + (g / 256 % 100) as u8,
        (g % 256) as u8,
        (i >> 8) as u8,
        i as u8,
    );
    let sg = i % 2_000;
    let mut sid = [0u8; 20];
    sid[..8].copy_from_slice(&(sg as u64).to_be_bytes());
    sid[19] = 2;
    let sip = std::net::Ipv4Addr::new(130 + (sg / 256) as u8, (sg % 256) as u8, 1, 1);
    (
        NetAddress::new(NodeId(id), std::net::IpAddr::V4(ip), 26656),
        NetAddress::new(NodeId(sid), std::net::IpAddr::V4(sip), 26656),
    )
}

/// Address book: PEX-sourced adds, then save and load of a ~20k-entry book.
pub(crate) fn l8(opts: Opts, report: &mut Report) {
    let adds = opts.messages(100_000, 100_000) as usize;
    let mut book = AddrBook::new(
        mukan_addrbook::Config::default(),
        ChaCha8Rng::seed_from_u64(8),
    );
    let addrs: Vec<_> = (0..adds).map(book_addr).collect();
    let mut times = Vec::with_capacity(adds);
    let mut max_size = 0usize;
    for (a, s) in &addrs {
        let t = Instant::now();
        let _ = book.add_address(*a, *s, book_now());
        times.push(t.elapsed().as_secs_f64() * 1e6);
        max_size = max_size.max(book.size());
    }
    sort(&mut times);
    let p99 = quantile(&times, 0.99);
    report.target(
        "L8 add_address p99 (PEX-sourced)",
        "< 50 us",
        format!(
            "{p99:.2} us (p50 {:.2}) over {adds} adds",
            quantile(&times, 0.5)
        ),
        p99 < 50.0,
    );
    report.correct(
        "L8 book size bound",
        "<= 20,480",
        format!("max {max_size}, final {}", book.size()),
        max_size <= 20_480,
    );
    // Fill the old buckets too, then save and load.
    let present: Vec<NodeId> = book.addresses().map(|a| a.id()).collect();
    for id in present.iter().take(4_096) {
        book.mark_good(*id, book_now());
    }
    let entries = book.size();
    let dir = std::env::temp_dir().join(format!("mukan-load-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("addrbook.json");
    let t = Instant::now();
    let saved = book.save(&path);
    let save_t = t.elapsed();
    let mut loaded = AddrBook::new(
        mukan_addrbook::Config::default(),
        ChaCha8Rng::seed_from_u64(9),
    );
    let t = Instant::now();
    let load = loaded.load(&path, book_now());
    let load_t = t.elapsed();
    let file_len = std::fs::metadata(&path).map_or(0, |m| m.len());
    let _ = std::fs::remove_dir_all(&dir);
    report.correct(
        "L8 save and load round trip",
        "same entries",
        format!(
            "saved {entries} ({}), loaded {} ({})",
            if saved.is_ok() { "ok" } else { "error" },
            loaded.size(),
            if load.is_ok() { "ok" } else { "error" }
        ),
        saved.is_ok() && load.is_ok() && loaded.size() == entries && loaded == book,
    );
    let total = save_t + load_t;
    report.target(
        "L8 save + load time",
        "< 1 s",
        format!(
            "{:.0} ms (save {:.0}, load {:.0}; {entries} entries, {:.1} MiB file)",
            ms(total),
            ms(save_t),
            ms(load_t),
            mib(file_len)
        ),
        total < Duration::from_secs(1),
    );
}
