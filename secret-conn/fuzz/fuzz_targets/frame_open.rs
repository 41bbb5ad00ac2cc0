//! Z3: the frame opener on arbitrary input, two ways:
//! - the input as a stream of sealed frames under a fixed key: nothing authenticates, nothing
//!   panics, no payload comes out;
//! - the input as 1028-byte *plaintexts* sealed by the harness (any length prefix): each opens
//!   to exactly its payload, or to `FrameTooLarge` when the prefix exceeds 1024.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mukan_secret_conn::{DATA_MAX_SIZE, Error, FRAME_LEN, SEALED_FRAME_LEN, fuzzing};

const KEY: [u8; 32] = [0x5c; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Start near the end of the counter sometimes, to reach exhaustion.
    let counter = if mode & 0x80 != 0 { u64::MAX - 2 } else { 0 };
    let (mut sealer, mut opener) = fuzzing::frame_pair(&KEY, counter);
    if mode & 1 == 0 {
        for chunk in rest.chunks_exact(SEALED_FRAME_LEN) {
            let mut frame = [0u8; SEALED_FRAME_LEN];
            frame.copy_from_slice(chunk);
            match opener.open(&mut frame) {
                Err(Error::Crypto(_) | Error::NonceExhausted) => return,
                other => panic!("forged frame accepted: {other:?}"),
            }
        }
    } else {
        for chunk in rest.chunks(FRAME_LEN) {
            let mut plain = [0u8; FRAME_LEN];
            plain[..chunk.len()].copy_from_slice(chunk);
            let mut frame = fuzzing::seal_raw(&mut sealer, &plain);
            let len = u32::from_le_bytes([plain[0], plain[1], plain[2], plain[3]]);
            match opener.open(&mut frame) {
                Ok(payload) => {
                    assert!(len as usize <= DATA_MAX_SIZE);
                    assert_eq!(payload, &plain[4..4 + len as usize]);
                }
                Err(Error::FrameTooLarge { len: l }) => assert_eq!(l, len),
                Err(Error::NonceExhausted) => return,
                Err(other) => panic!("honest frame rejected: {other:?}"),
            }
        }
    }
});
