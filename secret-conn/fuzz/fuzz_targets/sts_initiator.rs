//! Z2 (with `sts_stream` as Z1): the dialler's side of the handshake against an *honest*
//! remote whose identity, and the tampering of its `AuthSigMessage`, come from the input; we
//! expect no ID, the remote's ID, or an arbitrary one. After the handshake the remote sends the
//! rest of the input as sealed data.
//!
//! Input: `[key seed, expectation, tamper position, tamper xor, (20-byte ID if expectation is
//! 2), data...]`.
//!
//! Invariants: no panic; the handshake succeeds when the transcript is untampered and the
//! expected ID (if any) is the remote's, and fails when the signed key or signature was
//! tampered with or the ID is not the expected one; a wrong ID is `PeerIdMismatch` naming both IDs;
//! after success the peer's ID is the remote key's, and the data read is the data sent.
#![no_main]

mod common;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mukan_node_key::{NodeId, NodeKey};
use mukan_secret_conn::{Config, DATA_MAX_SIZE, Error, Handshake, SEALED_FRAME_LEN, SecretStream};
use tokio::io::AsyncReadExt;

use common::{Script, runtime};

const OUR_EPH: [u8; 32] = [0x31; 32];

fuzz_target!(|input: &[u8]| {
    let [key_seed, expect, tamper_at, tamper_xor, rest @ ..] = input else {
        return;
    };
    let remote_key = NodeKey::from_seed([*key_seed; 32]);
    let remote_id = remote_key.node_id();
    let (expected, data) = match expect % 3 {
        0 => (None, rest),
        1 => (Some(remote_id), rest),
        _ => {
            if rest.len() < 20 {
                return;
            }
            let (id, data) = rest.split_at(20);
            (Some(NodeId(id.try_into().expect("20 bytes"))), data)
        }
    };

    // The honest remote's side of the transcript.
    let ours = Handshake::from_ephemeral_secret(OUR_EPH).eph_key_message();
    // Any ephemeral secret but ours (the same key back is a reflection, refused).
    let eph = if *key_seed == OUR_EPH[0] {
        0x32
    } else {
        *key_seed
    };
    let theirs = Handshake::from_ephemeral_secret([eph; 32]);
    let mut wire = theirs.eph_key_message().to_vec();
    let Ok((theirs, mut sealer, _)) = theirs.recv_eph_key(&ours[1..]) else {
        panic!("honest key exchange failed");
    };
    let mut auth = theirs.auth_sig_message(&remote_key);
    // Tampering with the signed content (the key's 32 bytes at 5.., the signature's 64 at
    // 39..) must fail the handshake. Tampering anywhere (the length prefix, the field tags)
    // may not: a longer prefix that takes bytes of the next frame as an unknown protobuf field
    // still carries a valid signature, and Go accepts it too; only success must be honest.
    let (tampered, content_tampered) = match (*tamper_xor, tamper_at & 0x80 != 0) {
        (0, _) => (false, false),
        (x, true) => {
            auth[usize::from(tamper_at & 0x7f) % auth.len()] ^= x;
            (true, false)
        }
        (x, false) => {
            let i = usize::from(*tamper_at) % 96;
            auth[if i < 32 { 5 + i } else { 39 + i - 32 }] ^= x;
            (true, true)
        }
    };
    // The AuthSigMessage, then the data, each in its own frames (as the Go side writes them).
    for chunk in auth.chunks(DATA_MAX_SIZE).chain(data.chunks(DATA_MAX_SIZE)) {
        let mut frame = [0u8; SEALED_FRAME_LEN];
        sealer.seal(chunk, &mut frame).expect("seal");
        wire.extend_from_slice(&frame);
    }

    let mut config = Config::new(Duration::from_secs(5));
    if let Some(id) = expected {
        config = config.expect_peer(id);
    }
    let key = NodeKey::from_seed([0x99; 32]);
    runtime().block_on(async {
        let io = Script { data: wire, pos: 0 };
        let hs = Handshake::from_ephemeral_secret(OUR_EPH);
        let result = SecretStream::handshake_with(io, &key, &config, hs).await;
        let id_ok = expected.is_none_or(|id| id == remote_id);
        match result {
            Ok(mut s) => {
                assert!(
                    !content_tampered,
                    "a tampered key or signature was accepted"
                );
                assert!(id_ok, "handshake accepted an unexpected peer");
                assert_eq!(s.remote_node_id(), remote_id);
                if tampered {
                    // The framing changed: the data may be cut; only no panic is asked.
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    return;
                }
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while got.len() < data.len() {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                assert_eq!(got, data, "data altered after the handshake");
            }
            Err(Error::PeerIdMismatch { expected: e, got }) => {
                assert!(!content_tampered && !id_ok, "spurious ID mismatch");
                assert_eq!(Some(e), expected);
                assert_eq!(got, remote_id);
            }
            Err(e) => {
                assert!(tampered, "honest handshake failed: {e:?}");
            }
        }
    });
});
