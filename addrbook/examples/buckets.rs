//! Load an `addrbook.json` written by a CometBFT v0.38 node and print its buckets, with
//! `mukan-addrbook` alone.
//!
//! ```text
//! cargo run -p mukan-addrbook --example buckets [-- path/to/addrbook.json]
//! ```
//!
//! Without a path it reads `examples/addrbook-go.json`, a book saved by CometBFT v0.38.25's
//! own `p2p/pex` address book (seven addresses added from two sources, two of them marked
//! good, one attempted, then `Save`). The file is only read: a book loaded with
//! `AddrBook::load` would move an unusable file aside, which an example must not do to your
//! node's file.

use std::error::Error;
use std::path::PathBuf;
use std::time::SystemTime;

use mukan_addrbook::{AddrBook, BucketKind, Config, NEW_BUCKET_COUNT, OLD_BUCKET_COUNT};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/addrbook-go.json"),
        PathBuf::from,
    );
    let bytes = std::fs::read(&path)?;
    let mut book = AddrBook::new(Config::default(), StdRng::from_entropy());
    // The book takes the time from its caller (it never reads a clock); here, the wall clock.
    #[allow(
        clippy::disallowed_methods,
        reason = "a program's edge may read the clock"
    )]
    let now = SystemTime::now();
    let report = book.load_from_slice(&bytes, &path, now)?;
    println!(
        "{}: key {}, {} addresses ({} new, {} old), {} banned, {} skipped",
        path.display(),
        book.key(),
        report.loaded,
        book.new_count(),
        book.old_count(),
        report.banned,
        report.skipped,
    );
    for (kind, count) in [
        (BucketKind::New, NEW_BUCKET_COUNT),
        (BucketKind::Old, OLD_BUCKET_COUNT),
    ] {
        for idx in 0..count {
            let ids = book.bucket(kind, idx);
            if ids.is_empty() {
                continue;
            }
            println!("{kind:?} bucket {idx}:");
            for id in ids {
                match book.address(id) {
                    Some(addr) => println!("  {addr}"),
                    None => println!("  {id}"),
                }
            }
        }
    }
    book.check_invariants()?;
    Ok(())
}
