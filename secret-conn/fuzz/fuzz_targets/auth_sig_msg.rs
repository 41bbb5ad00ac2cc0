//! The `AuthSigMessage` decoder and verifier: arbitrary bodies after a fixed key exchange never
//! panic and never authenticate (the fuzzer cannot forge an ed25519 signature over the
//! challenge).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mukan_secret_conn::{Handshake, MAX_AUTH_SIG_MSG_LEN, fuzzing};

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::decode_auth_sig_msg(data);
    if data.len() > MAX_AUTH_SIG_MSG_LEN {
        return;
    }
    let a = Handshake::from_ephemeral_secret([1; 32]);
    let b = Handshake::from_ephemeral_secret([2; 32]);
    let Ok((a, _, _)) = a.recv_eph_key(&b.eph_key_message()[1..]) else {
        panic!("fixed key exchange failed");
    };
    assert!(
        a.recv_auth_sig(data).is_err(),
        "forged AuthSigMessage accepted"
    );
});
