//! The ephemeral-key message decoder and the key checks after it: any input ends in a key or a
//! typed error, never a panic; a decoded key then either derives a session or is rejected as
//! low-order or reflected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mukan_secret_conn::{Error, Handshake, ProtocolViolation, fuzzing};

fuzz_target!(|data: &[u8]| {
    let Ok(Some(key)) = fuzzing::decode_eph_key_msg(data) else {
        return;
    };
    let mut body = vec![0x0a, 0x20];
    body.extend_from_slice(&key);
    let hs = Handshake::from_ephemeral_secret([7; 32]);
    match hs.recv_eph_key(&body) {
        Ok(_)
        | Err(Error::Protocol(
            ProtocolViolation::LowOrderEphKey | ProtocolViolation::ReflectedEphKey,
        )) => {}
        Err(other) => panic!("unexpected error for a 32-byte key: {other:?}"),
    }
});
