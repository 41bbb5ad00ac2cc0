//! The measurement behind the AEAD choice: ChaCha20-Poly1305 sealing and opening one 1028-byte
//! secret-connection frame in place, with `ring` (the one we use) and RustCrypto's
//! `chacha20poly1305`. Results are in the crate README.

#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented functions"
)]
#![allow(
    clippy::unwrap_used,
    reason = "benchmark setup; a failure should abort"
)]

use std::hint::black_box;

use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mukan_secret_conn::{FRAME_LEN, FrameOpener, FrameSealer, Handshake, SEALED_FRAME_LEN};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

const KEY: [u8; 32] = [0x42; 32];

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

fn aead(c: &mut Criterion) {
    let mut group = c.benchmark_group("aead_1028B_frame");
    group.throughput(Throughput::Bytes(FRAME_LEN as u64));

    let ring_key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &KEY).unwrap());
    let mut buf = [0x5au8; FRAME_LEN];
    let mut counter = 0u64;
    group.bench_function("ring/seal", |b| {
        b.iter(|| {
            counter += 1;
            let tag = ring_key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce(counter)),
                    Aad::empty(),
                    black_box(&mut buf[..]),
                )
                .unwrap();
            black_box(tag.as_ref()[0]);
        });
    });

    let rc = ChaCha20Poly1305::new(&KEY.into());
    group.bench_function("rustcrypto/seal", |b| {
        b.iter(|| {
            counter += 1;
            let tag = rc
                .encrypt_in_place_detached(&nonce(counter).into(), b"", black_box(&mut buf[..]))
                .unwrap();
            black_box(tag[0]);
        });
    });

    // Opening: the same sealed frame each time (counter fixed), so only decryption is timed.
    let mut sealed = [0u8; SEALED_FRAME_LEN];
    sealed[..FRAME_LEN].copy_from_slice(&[0x11; FRAME_LEN]);
    let tag = ring_key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce(0)),
            Aad::empty(),
            &mut sealed[..FRAME_LEN],
        )
        .unwrap();
    sealed[FRAME_LEN..].copy_from_slice(tag.as_ref());
    group.bench_function("ring/open", |b| {
        b.iter(|| {
            let mut f = sealed;
            let plain = ring_key
                .open_in_place(Nonce::assume_unique_for_key(nonce(0)), Aad::empty(), &mut f)
                .unwrap();
            black_box(plain.len());
        });
    });
    group.bench_function("rustcrypto/open", |b| {
        b.iter(|| {
            let mut f = sealed;
            let (plain, tag) = f.split_at_mut(FRAME_LEN);
            rc.decrypt_in_place_detached(&nonce(0).into(), b"", plain, (&*tag).into())
                .unwrap();
            black_box(&f);
        });
    });

    // Our frame codec end to end (length prefix, padding, AEAD, nonce).
    let a = Handshake::from_ephemeral_secret([1; 32]);
    let b_hs = Handshake::from_ephemeral_secret([2; 32]);
    let (a_msg, b_msg) = (a.eph_key_message(), b_hs.eph_key_message());
    let (_, mut sealer, _): (_, FrameSealer, FrameOpener) = a.recv_eph_key(&b_msg[1..]).unwrap();
    let (_, _, _opener) = b_hs.recv_eph_key(&a_msg[1..]).unwrap();
    let data = [0x33u8; 1024];
    let mut out = [0u8; SEALED_FRAME_LEN];
    group.bench_function("mukan/FrameSealer::seal", |b| {
        b.iter(|| black_box(sealer.seal(black_box(&data), &mut out).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, aead);
criterion_main!(benches);
