//! The PEX decoder on arbitrary bytes: never panics, and every accepted message re-encodes
//! to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mukan_pex::PexMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = PexMessage::decode(data) {
        let wire = msg.encode();
        assert_eq!(PexMessage::decode(&wire).as_ref(), Ok(&msg));
    }
});
