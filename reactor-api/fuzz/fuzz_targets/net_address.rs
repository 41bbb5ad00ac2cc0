//! NetAddress / ParsedAddress text parsing: never panics, and a parsed address round-trips
//! through its text form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mukan_reactor_api::{NetAddress, ParsedAddress};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ParsedAddress::Resolved(addr)) = text.parse::<ParsedAddress>() {
        let _ = addr.valid();
        let _ = addr.routable();
        let again: NetAddress = addr.to_string().parse().expect("Display output parses");
        assert_eq!(again, addr);
    }
});
