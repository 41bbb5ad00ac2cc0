//! Z4: two honest `SecretStream`s over an in-memory pipe. The input picks the pipe capacity,
//! the write sizes, the flush pattern and the read sizes, and supplies the data (repeated up to
//! 16 times to cross the 16-frame buffers). Invariant: the bytes read equal the bytes written.
#![no_main]

use std::{sync::OnceLock, time::Duration};

use libfuzzer_sys::fuzz_target;
use mukan_node_key::NodeKey;
use mukan_secret_conn::{Config, Handshake, SecretStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

/// A small deterministic sequence of sizes in `1..=max` from a seed byte.
fn sizes(seed: u8, max: usize) -> impl Iterator<Item = usize> {
    let mut x = u32::from(seed) | 0x100;
    std::iter::repeat_with(move || {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        1 + (x >> 8) as usize % max
    })
}

fuzz_target!(|input: &[u8]| {
    let [w_seed, r_seed, pipe, shape, rest @ ..] = input else {
        return;
    };
    let pipe = 1 + usize::from(*pipe) * 257;
    let repeat = 1 + usize::from(shape & 0x0f);
    let flush_every = 1 + usize::from(shape >> 4);
    let data: Vec<u8> = rest
        .iter()
        .copied()
        .cycle()
        .take(rest.len() * repeat)
        .collect();

    runtime().block_on(async {
        let (x, y) = duplex(pipe);
        let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
        let cfg = Config::new(Duration::from_secs(5));
        let (a, b) = tokio::join!(
            SecretStream::handshake_with(x, &ka, &cfg, Handshake::from_ephemeral_secret([3; 32])),
            SecretStream::handshake_with(y, &kb, &cfg, Handshake::from_ephemeral_secret([4; 32])),
        );
        let (mut a, mut b) = (a.expect("honest handshake"), b.expect("honest handshake"));
        let writer = async {
            let mut at = 0;
            for (i, n) in sizes(*w_seed, 3000).enumerate() {
                if at == data.len() {
                    break;
                }
                let n = n.min(data.len() - at);
                a.write_all(&data[at..at + n]).await.expect("write");
                at += n;
                if i % flush_every == 0 {
                    a.flush().await.expect("flush");
                }
            }
            a.shutdown().await.expect("shutdown");
        };
        let reader = async {
            let mut got = Vec::with_capacity(data.len());
            let mut buf = [0u8; 2048];
            for n in sizes(*r_seed, 2048) {
                let k = b.read(&mut buf[..n]).await.expect("read");
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
            }
            got
        };
        let ((), got) = tokio::join!(writer, reader);
        assert!(got == data, "stream content differs");
    });
});
