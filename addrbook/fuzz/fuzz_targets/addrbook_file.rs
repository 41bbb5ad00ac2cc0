//! Arbitrary bytes as `addrbook.json`: `Ok` or a typed error, never a
//! panic; an accepted file gives a consistent book that saves and reloads to an equal one.
#![no_main]

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use mukan_addrbook::{AddrBook, Config};
use rand::rngs::mock::StepRng;

fuzz_target!(|data: &[u8]| {
    let now = UNIX_EPOCH + Duration::from_secs(1_714_564_800);
    let mut config = Config::default();
    config.skip_invalid_entries = data.first().is_some_and(|b| b & 1 == 1);
    let mut book = AddrBook::new(config.clone(), StepRng::new(1, 7));
    if book.load_from_slice(data, Path::new("fuzz"), now).is_ok() {
        book.check_invariants()
            .expect("a loaded book is consistent");
        let json = book.to_json();
        let mut again = AddrBook::new(config, StepRng::new(2, 3));
        again
            .load_from_slice(&json, Path::new("again"), now)
            .expect("our output loads");
        assert_eq!(again, book);
    }
});
