//! The Station-to-Station handshake as a typestate machine (Go `MakeSecretConnection`
//! in `p2p/conn/secret_connection.go`).

use mukan_node_key::{NodeKey, PublicKey};
use rand_core::CryptoRngCore;
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};

use crate::{
    CryptoError, Error, FrameOpener, FrameSealer, ProtocolViolation, kdf,
    proto::{self, AUTH_SIG_MSG_LEN, EPH_KEY_LEN, EPH_MSG_LEN},
};

/// Largest ephemeral-key message body (after the uvarint prefix) a driver should read; larger
/// declared lengths are [`ProtocolViolation::MessageTooLarge`].
pub const MAX_EPH_KEY_MSG_LEN: usize = proto::MAX_EPH_MSG_BODY;
/// Largest `AuthSigMessage` body (after the uvarint prefix) a driver should read.
pub const MAX_AUTH_SIG_MSG_LEN: usize = proto::MAX_AUTH_SIG_MSG_BODY;

/// The secret-connection handshake, one state per type.
///
/// Call order (each step consumes the previous state):
/// 1. [`Handshake::generate`] (or [`Handshake::new`] with a caller's RNG, or
///    [`Handshake::from_ephemeral_secret`] for test vectors), then send
///    [`Handshake::eph_key_message`] **while** reading the peer's delimited ephemeral-key
///    message (both sides send first; a sequential write-then-read deadlocks on an unbuffered
///    pipe).
/// 2. [`Handshake::recv_eph_key`] with the peer's message body. It returns the session's
///    [`FrameSealer`] and [`FrameOpener`]: from here on every byte is sealed in frames.
/// 3. Seal and send [`Handshake::auth_sig_message`] while reading the peer's delimited
///    `AuthSigMessage` from opened frames, then call [`Handshake::recv_auth_sig`] with its body.
///    Only after it returns `Ok` is the peer authenticated; the caller compares the returned
///    key's [`NodeId`](mukan_node_key::NodeId) with the one it dialed.
///
/// The state machine does no IO and reads no clock; randomness comes from the caller.
pub struct Handshake<S> {
    state: S,
}

/// First state: our ephemeral X25519 key exists, the peer's is awaited.
pub struct AwaitingEphKey {
    secret: EphSecret,
    public: [u8; EPH_KEY_LEN],
}

/// The ephemeral X25519 secret, computed with one of two implementations of the same function.
enum EphSecret {
    /// [`Handshake::generate`]: `ring`'s X25519 (assembly on x86_64 and aarch64), drawn from
    /// the OS RNG inside `ring`, usable for one agreement only. About 11% less CPU per key
    /// exchange than x25519-dalek's portable ladder (see the crate README).
    Ring(EphemeralPrivateKey),
    /// [`Handshake::new`] / [`Handshake::from_ephemeral_secret`]: a secret the caller chose
    /// (seeded RNG, test vectors), which `ring` cannot take; x25519-dalek, zeroized on drop.
    Dalek(StaticSecret),
}

/// Second state: session keys and challenge are derived, the peer's signature is awaited.
pub struct AwaitingAuthSig {
    challenge: [u8; 32],
}

impl Handshake<AwaitingEphKey> {
    /// Starts a handshake with a fresh ephemeral key from the operating system's RNG: the
    /// production path ([`SecretStream::handshake`](crate::SecretStream::handshake) uses it).
    /// The key exchange runs on `ring`'s X25519.
    ///
    /// # Errors
    /// [`Error::Io`] if the operating system's RNG fails.
    pub fn generate() -> Result<Self, Error> {
        let rng = ring::rand::SystemRandom::new();
        let secret = EphemeralPrivateKey::generate(&X25519, &rng).map_err(|_| {
            Error::Io(std::io::Error::other(
                "the OS random number generator failed",
            ))
        })?;
        let public = secret
            .compute_public_key()
            .ok()
            .and_then(|key| <[u8; EPH_KEY_LEN]>::try_from(key.as_ref()).ok())
            .ok_or(Error::Crypto(CryptoError(())))?;
        Ok(Self {
            state: AwaitingEphKey {
                secret: EphSecret::Ring(secret),
                public,
            },
        })
    }

    /// Starts a handshake with a fresh ephemeral key drawn from `rng` (a seeded RNG makes the
    /// handshake reproducible; the key exchange then runs on x25519-dalek).
    pub fn new(rng: &mut impl CryptoRngCore) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        Self::from_ephemeral_secret(secret)
    }

    /// Starts a handshake with a given ephemeral X25519 secret (clamped as RFC 7748 says).
    /// Use this for test vectors only; reusing a secret across handshakes breaks forward secrecy.
    pub fn from_ephemeral_secret(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = X25519Public::from(&secret).to_bytes();
        Self {
            state: AwaitingEphKey {
                secret: EphSecret::Dalek(secret),
                public,
            },
        }
    }

    /// Our ephemeral public key.
    pub fn local_eph_key(&self) -> &[u8; 32] {
        &self.state.public
    }

    /// The 35 bytes to send in plaintext: `uvarint(34) || BytesValue{ value = eph key }`.
    pub fn eph_key_message(&self) -> [u8; EPH_MSG_LEN] {
        proto::encode_eph_msg(&self.state.public)
    }

    /// Takes the body of the peer's delimited ephemeral-key message (without its length prefix)
    /// and derives the session: keys, nonces and the challenge to sign.
    ///
    /// # Errors
    /// - [`Error::Decode`] if the body is not a `BytesValue`;
    /// - [`ProtocolViolation::EphKeyLength`] if the key is not 32 bytes (stricter than Go);
    /// - [`ProtocolViolation::ReflectedEphKey`] if the peer sent our own key back;
    /// - [`ProtocolViolation::LowOrderEphKey`] if the X25519 result is all zeros (the
    ///   all-zero key and every other low-order point).
    pub fn recv_eph_key(
        self,
        body: &[u8],
    ) -> Result<(Handshake<AwaitingAuthSig>, FrameSealer, FrameOpener), Error> {
        let remote = proto::decode_eph_msg(body)?;
        let local = self.state.public;
        if remote == local {
            return Err(ProtocolViolation::ReflectedEphKey.into());
        }
        let loc_is_least = local < remote;
        let derive = |shared: &[u8; 32]| {
            let (lower, upper) = if loc_is_least {
                (&local, &remote)
            } else {
                (&remote, &local)
            };
            let challenge = kdf::challenge(lower, upper, shared);
            let (keys, _legacy) = kdf::derive_secrets(shared, loc_is_least);
            (challenge, keys)
        };
        // Go's `curve25519.X25519` rejects exactly the all-zero output; so do both paths.
        let (challenge, keys) = match self.state.secret {
            EphSecret::Dalek(secret) => {
                let shared = secret.diffie_hellman(&X25519Public::from(remote));
                if !shared.was_contributory() {
                    return Err(ProtocolViolation::LowOrderEphKey.into());
                }
                derive(shared.as_bytes())
            }
            EphSecret::Ring(secret) => {
                let peer = UnparsedPublicKey::new(&X25519, remote);
                // `ring` fails only for a peer key of the wrong length (ours is 32 bytes by
                // type) and for the all-zero output.
                agreement::agree_ephemeral(secret, &peer, |shared| {
                    shared.first_chunk::<32>().map(derive)
                })
                .map_err(|_| ProtocolViolation::LowOrderEphKey)?
                .ok_or(Error::Crypto(CryptoError(())))?
            }
        };
        Ok((
            Handshake {
                state: AwaitingAuthSig { challenge },
            },
            FrameSealer::new(&keys.send),
            FrameOpener::new(&keys.recv),
        ))
    }
}

impl Handshake<AwaitingAuthSig> {
    /// The 32-byte Merlin challenge both sides sign.
    pub fn challenge(&self) -> &[u8; 32] {
        &self.state.challenge
    }

    /// The 103 bytes to send sealed: `uvarint(102) || AuthSigMessage{ ed25519 key, signature
    /// over the challenge }`, in gogoproto's exact layout.
    pub fn auth_sig_message(&self, node_key: &NodeKey) -> [u8; AUTH_SIG_MSG_LEN] {
        let sig = node_key.sign(&self.state.challenge);
        proto::encode_auth_sig_msg(node_key.public_key().as_bytes(), &sig)
    }

    /// Takes the body of the peer's delimited `AuthSigMessage` (without its length prefix),
    /// checks the key type and verifies the signature over the challenge with the ZIP-215
    /// rules. Returns the peer's authenticated key.
    ///
    /// # Errors
    /// - [`Error::Decode`] if the body is not an `AuthSigMessage`;
    /// - [`ProtocolViolation::MissingPubKey`], [`ProtocolViolation::UnsupportedKeyType`]
    ///   (e.g. secp256k1), [`ProtocolViolation::InvalidPubKey`] for the key;
    /// - [`ProtocolViolation::SignatureLength`] if the signature is not 64 bytes;
    /// - [`ProtocolViolation::InvalidSignature`] if it does not verify.
    pub fn recv_auth_sig(self, body: &[u8]) -> Result<PublicKey, Error> {
        let msg = proto::decode_auth_sig_msg(body)?;
        let key = PublicKey::from_bytes(&msg.ed25519_key).map_err(|_| {
            ProtocolViolation::InvalidPubKey {
                len: msg.ed25519_key.len(),
            }
        })?;
        if msg.sig.len() != 64 {
            return Err(ProtocolViolation::SignatureLength { len: msg.sig.len() }.into());
        }
        if !key.verify(&self.state.challenge, &msg.sig) {
            return Err(ProtocolViolation::InvalidSignature.into());
        }
        Ok(key)
    }
}

impl<S> std::fmt::Debug for Handshake<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.debug_struct("Handshake")
            .field("state", &std::any::type_name::<S>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::{
        SEALED_FRAME_LEN,
        proto::{AuthSigMessage, PublicKeyProto, public_key_proto::Sum},
    };

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn arr<const N: usize>(s: &str) -> [u8; N] {
        h(s).try_into().unwrap()
    }

    // Fixed-key vectors published with cometbft-p2p 0.3 (`src/test_vectors.rs`), an
    // independent implementation used against live CometBFT validators.
    const ALICE_ED25519_SEED: &str =
        "a0d068d7c44e951610d54a7eb90279e8a31b61128d44d2dd92311763c468185c";
    const BOB_ED25519_SEED: &str =
        "b07e65300419ce0b5d7274bcbc67fcfd3fb68272de9aa52a452a6889c7d33fd5";
    const ALICE_X25519_SK: &str =
        "a14d1fe92419d4e23b4007079439b497ae77494ccda0195ac1c70680bb460908";
    const BOB_X25519_SK: &str = "b19aff79f5b8cd2f37d46b19e294364d843b1d820b0ac55ec72e9d4e7e04f041";
    const ALICE_EPH_MSG: &str =
        "220a202faa1fdf0320284c3f8aae4f30c89f02bffac563155ddd572e887214464f5463";
    const BOB_X25519_PK: &str = "b129035e9bfe7416c0288b0f0914faee07392ed5ce9073ee0d13ae6f7654f07a";
    const ALICE_AUTH_SIG_MSG: &str = "660a220a208f5a716b651b628b3e6fffd28f8b1fafc765fcfca53f7cad89f4680585c7668012402735eb20c3f2b8d6643d761be7d873427ccbb83fd6f64d04e5cbf8a1fa523422dcbc17fe2fb831fcb378cf17136f19e67defaebbcbc06135df8a7471734e9406";
    const BOB_AUTH_SIG_MSG: &str = "660a220a201ac739117419d70a79bc031b74a7dbcf3e1d6f82342693078d526ddbd41984c21240fc9ecf23994aef6a1eae80ebb2fe10ac8784b9ec08cf1d17a19a5d87c1217e11430f955c7f6c213a7f00a9cecd181214c3ffc62b352417c775dec6c93b3d7f0a";

    fn alice() -> (NodeKey, Handshake<AwaitingEphKey>) {
        (
            NodeKey::from_seed(arr(ALICE_ED25519_SEED)),
            Handshake::from_ephemeral_secret(arr(ALICE_X25519_SK)),
        )
    }

    fn bob() -> (NodeKey, Handshake<AwaitingEphKey>) {
        (
            NodeKey::from_seed(arr(BOB_ED25519_SEED)),
            Handshake::from_ephemeral_secret(arr(BOB_X25519_SK)),
        )
    }

    /// V3: with fixed keys our messages are byte-identical to the independent implementation's,
    /// which pins the Merlin transcript (the signature is deterministic over the challenge).
    #[test]
    fn fixed_key_transcript_is_byte_exact() {
        let (alice_key, a) = alice();
        let (bob_key, b) = bob();
        assert_eq!(a.eph_key_message().as_slice(), h(ALICE_EPH_MSG));
        assert_eq!(b.local_eph_key().as_slice(), h(BOB_X25519_PK));
        let b_msg = b.eph_key_message();
        let a_msg = a.eph_key_message();
        let (a, ..) = a.recv_eph_key(&b_msg[1..]).unwrap();
        let (b, ..) = b.recv_eph_key(&a_msg[1..]).unwrap();
        assert_eq!(a.challenge(), b.challenge());
        assert_eq!(
            a.auth_sig_message(&alice_key).as_slice(),
            h(ALICE_AUTH_SIG_MSG)
        );
        assert_eq!(b.auth_sig_message(&bob_key).as_slice(), h(BOB_AUTH_SIG_MSG));
        let got_bob = a.recv_auth_sig(&h(BOB_AUTH_SIG_MSG)[1..]).unwrap();
        assert_eq!(got_bob, bob_key.public_key());
        let got_alice = b.recv_auth_sig(&h(ALICE_AUTH_SIG_MSG)[1..]).unwrap();
        assert_eq!(got_alice.node_id(), alice_key.node_id());
    }

    /// The two sides' sealers and openers pair up crosswise.
    #[test]
    fn derived_ciphers_pair_up() {
        let (_, a) = alice();
        let (_, b) = bob();
        let (a_msg, b_msg) = (a.eph_key_message(), b.eph_key_message());
        let (_, mut a_seal, mut a_open) = a.recv_eph_key(&b_msg[1..]).unwrap();
        let (_, mut b_seal, mut b_open) = b.recv_eph_key(&a_msg[1..]).unwrap();
        let mut frame = [0u8; SEALED_FRAME_LEN];
        a_seal.seal(b"to bob", &mut frame).unwrap();
        assert_eq!(b_open.open(&mut frame).unwrap(), b"to bob");
        b_seal.seal(b"to alice", &mut frame).unwrap();
        assert_eq!(a_open.open(&mut frame).unwrap(), b"to alice");
    }

    fn eph_body(key: &[u8]) -> Vec<u8> {
        proto::BytesValue {
            value: key.to_vec(),
        }
        .encode_to_vec()
    }

    /// A4 / A5: the all-zero key and every other point of small order (Wycheproof / libsodium
    /// low-order set) make the DH output all zero, which is rejected before authentication.
    #[test]
    fn low_order_eph_keys_are_rejected() {
        let low_order: [&str; 14] = [
            // The canonical points of order 1, 2, 4 and 8, and p, p + 1 (0 and 1 mod p).
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            // The same with bit 255 set, which X25519 ignores (RFC 7748 §5).
            "0000000000000000000000000000000000000000000000000000000000000080",
            "0100000000000000000000000000000000000000000000000000000000000080",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ];
        for point in low_order {
            // Both implementations: x25519-dalek (injected secret) and ring (production).
            for a in [alice().1, Handshake::generate().unwrap()] {
                let err = a.recv_eph_key(&eph_body(&h(point))).unwrap_err();
                assert!(
                    matches!(err, Error::Protocol(ProtocolViolation::LowOrderEphKey)),
                    "{point}: {err:?}"
                );
            }
        }
    }

    /// The production key exchange (ring) and the injected-secret one (x25519-dalek) compute
    /// the same X25519: a session between them agrees on the challenge and the keys, each
    /// side verifies the other's signature, and fresh keys differ every time.
    #[test]
    fn ring_and_dalek_key_exchanges_agree() {
        let (alice_key, _) = alice();
        let (bob_key, b) = bob();
        let a = Handshake::generate().unwrap();
        assert_ne!(
            a.local_eph_key(),
            Handshake::generate().unwrap().local_eph_key()
        );
        let (a_msg, b_msg) = (a.eph_key_message(), b.eph_key_message());
        let (a, mut a_seal, mut a_open) = a.recv_eph_key(&b_msg[1..]).unwrap();
        let (b, mut b_seal, mut b_open) = b.recv_eph_key(&a_msg[1..]).unwrap();
        assert_eq!(a.challenge(), b.challenge());
        let a_auth = a.auth_sig_message(&alice_key);
        let b_auth = b.auth_sig_message(&bob_key);
        assert_eq!(a.recv_auth_sig(&b_auth[1..]).unwrap(), bob_key.public_key());
        assert_eq!(
            b.recv_auth_sig(&a_auth[1..]).unwrap(),
            alice_key.public_key()
        );
        let mut frame = [0u8; SEALED_FRAME_LEN];
        a_seal.seal(b"to bob", &mut frame).unwrap();
        assert_eq!(b_open.open(&mut frame).unwrap(), b"to bob");
        b_seal.seal(b"to alice", &mut frame).unwrap();
        assert_eq!(a_open.open(&mut frame).unwrap(), b"to alice");
    }

    #[test]
    fn reflected_eph_key_is_rejected() {
        for a in [alice().1, Handshake::generate().unwrap()] {
            let own = a.eph_key_message();
            assert!(matches!(
                a.recv_eph_key(&own[1..]),
                Err(Error::Protocol(ProtocolViolation::ReflectedEphKey))
            ));
        }
    }

    fn ready_alice() -> Handshake<AwaitingAuthSig> {
        let (_, a) = alice();
        let (_, b) = bob();
        a.recv_eph_key(&b.eph_key_message()[1..]).unwrap().0
    }

    fn auth_body(key: Option<Sum>, sig: Vec<u8>) -> Vec<u8> {
        AuthSigMessage {
            pub_key: PublicKeyProto { sum: key },
            sig,
        }
        .encode_to_vec()
    }

    /// A9–A11: each bad `AuthSigMessage` has its own variant.
    #[test]
    fn bad_auth_sig_messages() {
        let (bob_key, _) = bob();
        let good = h(BOB_AUTH_SIG_MSG);
        let good_sig = good[39..].to_vec();
        let bob_pub = bob_key.public_key().as_bytes().to_vec();

        let mut flipped = good_sig.clone();
        flipped[10] ^= 0x01;
        assert!(matches!(
            ready_alice().recv_auth_sig(&auth_body(Some(Sum::Ed25519(bob_pub.clone())), flipped)),
            Err(Error::Protocol(ProtocolViolation::InvalidSignature))
        ));
        // A valid signature by Bob over something else.
        let other = bob_key.sign(b"not the challenge").to_vec();
        assert!(matches!(
            ready_alice().recv_auth_sig(&auth_body(Some(Sum::Ed25519(bob_pub.clone())), other)),
            Err(Error::Protocol(ProtocolViolation::InvalidSignature))
        ));
        assert!(matches!(
            ready_alice().recv_auth_sig(&auth_body(
                Some(Sum::Ed25519(bob_pub.clone())),
                good_sig[..63].to_vec()
            )),
            Err(Error::Protocol(ProtocolViolation::SignatureLength {
                len: 63
            }))
        ));
        assert!(matches!(
            ready_alice().recv_auth_sig(&auth_body(
                Some(Sum::Secp256k1(vec![2; 33])),
                good_sig.clone()
            )),
            Err(Error::Protocol(ProtocolViolation::UnsupportedKeyType {
                tag: 2
            }))
        ));
        assert!(matches!(
            ready_alice().recv_auth_sig(&auth_body(None, good_sig.clone())),
            Err(Error::Protocol(ProtocolViolation::MissingPubKey))
        ));
        assert!(matches!(
            ready_alice().recv_auth_sig(&auth_body(
                Some(Sum::Ed25519(bob_pub[..31].to_vec())),
                good_sig.clone()
            )),
            Err(Error::Protocol(ProtocolViolation::InvalidPubKey {
                len: 31
            }))
        ));
        // Another node's key with Bob's signature.
        let (alice_key, _) = alice();
        assert!(matches!(
            ready_alice().recv_auth_sig(&auth_body(
                Some(Sum::Ed25519(alice_key.public_key().as_bytes().to_vec())),
                good_sig
            )),
            Err(Error::Protocol(ProtocolViolation::InvalidSignature))
        ));
        assert!(matches!(
            ready_alice().recv_auth_sig(&[0x0a, 0x05, 0x01]),
            Err(Error::Decode(_))
        ));
    }
}
