//! Z1 (and Z2 against forged peers; `sts_initiator` is Z2 against an honest one): the whole
//! handshake driver against an arbitrary remote stream. Our side has a fixed node key and
//! ephemeral secret. The first input byte picks:
//! - bit 0 clear: the rest is the remote's raw byte stream;
//! - bit 0 set: the remote sends an honest ephemeral key, then the rest of the input as sealed
//!   plaintext (its AuthSigMessage and whatever follows), so the fuzzer reaches the decoder and
//!   the stream reader behind the encryption;
//! - bit 1 set: we dial with an expected peer ID.
//! Invariant: no panic, and no forged session succeeds.
#![no_main]

mod common;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mukan_node_key::{NodeId, NodeKey};
use mukan_secret_conn::{Config, DATA_MAX_SIZE, Handshake, SEALED_FRAME_LEN, SecretStream};
use tokio::io::AsyncReadExt;

use common::{Script, runtime};

const OUR_EPH: [u8; 32] = [0x31; 32];
const THEIR_EPH: [u8; 32] = [0x32; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let stream = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let ours = Handshake::from_ephemeral_secret(OUR_EPH).eph_key_message();
        let theirs = Handshake::from_ephemeral_secret(THEIR_EPH);
        let mut wire = theirs.eph_key_message().to_vec();
        let Ok((_, mut sealer, _)) = theirs.recv_eph_key(&ours[1..]) else {
            panic!("fixed key exchange failed");
        };
        for chunk in rest.chunks(DATA_MAX_SIZE) {
            let mut frame = [0u8; SEALED_FRAME_LEN];
            if sealer.seal(chunk, &mut frame).is_err() {
                break;
            }
            wire.extend_from_slice(&frame);
        }
        wire
    };
    let mut config = Config::new(Duration::from_secs(5));
    if mode & 2 != 0 {
        config = config.expect_peer(NodeId([0xab; 20]));
    }
    let key = NodeKey::from_seed([0x99; 32]);
    runtime().block_on(async {
        let io = Script {
            data: stream,
            pos: 0,
        };
        let hs = Handshake::from_ephemeral_secret(OUR_EPH);
        if let Ok(mut s) = SecretStream::handshake_with(io, &key, &config, hs).await {
            // Unreachable without forging a signature; drain the stream if it ever happens.
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            panic!("handshake succeeded against a forged peer");
        }
    });
});
