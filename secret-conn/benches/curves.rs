//! The measurement behind the handshake's curve choices (results in the crate README):
//! X25519 with `ring` (production, `Handshake::generate`) against x25519-dalek (injected
//! secrets), Ed25519 signing with `ed25519-consensus` (used) against `ring`, and ZIP-215
//! verification with `ed25519-zebra` (used) against `ed25519-consensus`.
//!
//! `cargo bench -p mukan-secret-conn --bench curves -- --warm-up-time 1 --measurement-time 3`

#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented functions"
)]
#![allow(
    clippy::unwrap_used,
    reason = "benchmark setup; a failure should abort"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ring::{
    agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519},
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair as _},
};
use x25519_dalek::{PublicKey as DalekPublic, StaticSecret};

const SEED: [u8; 32] = [7; 32];
const CHALLENGE: [u8; 32] = [9; 32];

fn x25519(c: &mut Criterion) {
    let mut group = c.benchmark_group("x25519_keygen_and_agreement");
    let peer = *DalekPublic::from(&StaticSecret::from([3; 32])).as_bytes();
    let rng = SystemRandom::new();
    group.bench_function("ring", |b| {
        b.iter(|| {
            let secret = EphemeralPrivateKey::generate(&X25519, &rng).unwrap();
            let public = secret.compute_public_key().unwrap();
            black_box(public.as_ref());
            let peer = UnparsedPublicKey::new(&X25519, black_box(peer));
            agreement::agree_ephemeral(secret, &peer, |k| black_box(k[0])).unwrap()
        });
    });
    let mut n = 0u8;
    group.bench_function("x25519-dalek", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let mut seed = SEED;
            seed[0] = n;
            let secret = StaticSecret::from(seed);
            black_box(DalekPublic::from(&secret));
            let shared = secret.diffie_hellman(&DalekPublic::from(black_box(peer)));
            black_box(shared.as_bytes()[0])
        });
    });
    group.finish();
}

fn ed25519(c: &mut Criterion) {
    let mut group = c.benchmark_group("ed25519");
    let consensus = ed25519_consensus::SigningKey::from(SEED);
    let ring_key = Ed25519KeyPair::from_seed_unchecked(&SEED).unwrap();
    group.bench_function("sign/ed25519-consensus", |b| {
        b.iter(|| consensus.sign(black_box(&CHALLENGE)));
    });
    group.bench_function("sign/ring", |b| {
        b.iter(|| ring_key.sign(black_box(&CHALLENGE)));
    });
    let public: [u8; 32] = ring_key.public_key().as_ref().try_into().unwrap();
    let sig = consensus.sign(&CHALLENGE).to_bytes();
    // Parse + verify: what `Handshake::recv_auth_sig` does with a peer's key.
    group.bench_function("verify/ed25519-consensus", |b| {
        b.iter(|| {
            let key = ed25519_consensus::VerificationKey::try_from(black_box(public)).unwrap();
            key.verify(&ed25519_consensus::Signature::from(sig), &CHALLENGE)
                .unwrap();
        });
    });
    group.bench_function("verify/ed25519-zebra", |b| {
        b.iter(|| {
            let key = ed25519_zebra::VerificationKey::try_from(black_box(public)).unwrap();
            key.verify(&ed25519_zebra::Signature::from(sig), &CHALLENGE)
                .unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, x25519, ed25519);
criterion_main!(benches);
