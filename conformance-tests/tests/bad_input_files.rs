//! Bad-input suite, files (case of conformance-tests/BAD_INPUT.md: F6): an `addrbook.json` of 100 MiB is refused
//! by the size cap of the default configuration before it is read. The file is sparse, so the
//! case costs no disk space; it is moved aside and the book stays empty.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::time::SystemTime;

use mukan_addrbook::{AddrBook, Config, PersistError};
use mukan_reactor_api::AddressBook as _;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn f6_a_100_mib_address_book_is_refused_by_the_default_size_cap_unread() {
    let dir = std::env::temp_dir().join(format!("mukan-bad-input-f6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("addrbook.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 << 20).unwrap();
    drop(file);
    let mut book = AddrBook::new(Config::default(), ChaCha8Rng::seed_from_u64(6));
    let err = book.load(&path, SystemTime::now()).unwrap_err();
    let result = match &err {
        PersistError::TooLarge { size, max, .. } => Some((*size, *max)),
        _ => None,
    };
    let moved = err.moved_aside().cloned();
    // Clean up before asserting, so a failure leaves nothing behind.
    let _ = std::fs::remove_dir_all(&dir);
    let (size, max) = result.unwrap_or_else(|| panic!("not a size-cap refusal: {err}"));
    assert_eq!(size, 100 << 20);
    assert_eq!(max, Config::default().max_file_size);
    assert!(max < size);
    assert!(book.is_empty());
    let moved = moved.expect("the unusable file is moved aside");
    assert_ne!(moved, path);
}
