//! [`NodeKey`] and [`PublicKey`].

use std::{
    fmt,
    hash::{Hash, Hasher},
};

use ed25519_consensus::SigningKey;
use ed25519_zebra::{Signature, VerificationKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::{NodeId, ParseError};

/// Length of an ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// The secret ed25519 key of a node.
///
/// `Debug` never shows the secret, and the secret is zeroized when the key is dropped.
/// Cloning is deliberately not offered: share it behind an `Arc`.
pub struct NodeKey {
    signing: SigningKey,
    public: PublicKey,
}

impl NodeKey {
    /// Generates a fresh key from the operating system's random source (what a node does
    /// for a new `node_key.json`), without the caller naming an RNG crate.
    ///
    /// # Panics
    /// If the operating system has no random source (`getrandom` fails), as `rand_core`'s
    /// `OsRng` does.
    pub fn generate_os() -> Self {
        Self::generate(&mut rand_core::OsRng)
    }

    /// Generates a fresh key from `rng` (a seeded RNG for reproducible keys in tests; see
    /// [`NodeKey::generate_os`] for a real key).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = Self::from_seed(seed);
        seed.zeroize();
        key
    }

    /// The key whose 32-byte ed25519 seed is `seed` (RFC 8032 secret key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from(seed);
        let public = PublicKey::from_key_bytes(signing.verification_key().to_bytes());
        Self { signing, public }
    }

    /// The 32-byte seed. Handle with care: this is the secret.
    pub fn seed(&self) -> &[u8; 32] {
        self.signing.as_bytes()
    }

    /// Signs `msg` (deterministic RFC 8032 ed25519).
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(msg).to_bytes()
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The node ID derived from the public key.
    pub fn node_id(&self) -> NodeId {
        self.public.node_id()
    }
}

impl Drop for NodeKey {
    fn drop(&mut self) {
        self.signing.zeroize();
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// An ed25519 public key.
///
/// Verification runs on `ed25519-zebra` (curve25519-dalek 4, whose AVX2 backend is picked at
/// run time): the same ZIP-215 rules as `ed25519-consensus`, which signs, and about 17% less
/// CPU per verification on x86_64 (see the secret-conn README).
#[derive(Clone, Copy)]
pub struct PublicKey {
    /// The encoding as received (ZIP-215 accepts non-canonical encodings; they are kept).
    bytes: [u8; 32],
    key: VerificationKey,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl PublicKey {
    /// Length of the key in bytes.
    pub const LEN: usize = 32;

    /// The public half of a key we hold: its encoding is a valid point by construction.
    fn from_key_bytes(bytes: [u8; 32]) -> Self {
        match VerificationKey::try_from(bytes) {
            Ok(key) => Self { bytes, key },
            // An ed25519 public key derived from a seed is [a]B, always a curve point.
            Err(_) => unreachable!("a derived ed25519 public key is a curve point"),
        }
    }

    /// Parses a 32-byte encoded key.
    ///
    /// # Errors
    /// [`ParseError::Length`] if `bytes` is not 32 bytes long, [`ParseError::InvalidKey`] if it
    /// is not the encoding of a curve point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
        let Ok(array) = <[u8; Self::LEN]>::try_from(bytes) else {
            return Err(ParseError::Length {
                got: bytes.len(),
                expected: Self::LEN,
            });
        };
        let key = VerificationKey::try_from(array).map_err(|_| ParseError::InvalidKey)?;
        Ok(Self { bytes: array, key })
    }

    /// The 32-byte encoding.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.bytes
    }

    /// The node ID: `SHA256(key)[..20]` (CometBFT `tmhash.SumTruncated`).
    pub fn node_id(&self) -> NodeId {
        let digest = Sha256::digest(self.bytes);
        let mut id = [0u8; NodeId::LEN];
        for (dst, src) in id.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        NodeId(id)
    }

    /// Verifies `sig` over `msg` with the ZIP-215 rules CometBFT uses.
    ///
    /// Returns `false` for a signature that is not exactly 64 bytes, as Go's
    /// `PubKey.VerifySignature` does.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = <[u8; SIGNATURE_LEN]>::try_from(sig) else {
            return false;
        };
        self.key.verify(&Signature::from(sig), msg).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    use super::*;

    const SEED1_PUB: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
    const SEED1_ID: &str = "34750f98bd59fcfc946da45aaabe933be154a4b5";

    #[test]
    fn os_keys_differ() {
        assert_ne!(
            NodeKey::generate_os().node_id(),
            NodeKey::generate_os().node_id()
        );
    }

    #[test]
    fn seed_one_vector() {
        let key = NodeKey::from_seed([1; 32]);
        assert_eq!(hex::encode(key.public_key().as_bytes()), SEED1_PUB);
        assert_eq!(key.node_id().to_string(), SEED1_ID);
    }

    #[test]
    fn sign_and_verify() {
        let key = NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(7));
        let sig = key.sign(b"challenge");
        let public = key.public_key();
        assert!(public.verify(b"challenge", &sig));
        assert!(!public.verify(b"challengf", &sig));
        assert!(!public.verify(b"challenge", &sig[..63]));
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(!public.verify(b"challenge", &bad));
    }

    #[test]
    fn generate_uses_the_rng() {
        let a = NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let b = NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let c = NodeKey::generate(&mut ChaCha20Rng::seed_from_u64(2));
        assert_eq!(a.node_id(), b.node_id());
        assert_ne!(a.node_id(), c.node_id());
    }

    #[test]
    fn debug_is_redacted() {
        let key = NodeKey::from_seed([0xab; 32]);
        let text = format!("{key:?}");
        assert!(text.contains("redacted"));
        assert!(!text.contains(&hex::encode([0xab; 32])));
        assert!(!text.contains("171, 171"));
    }

    /// The 8 canonical encodings of the 8-torsion points and 6 non-canonical low-order
    /// encodings (the ZIP-215 small-order test set).
    const SMALL_ORDER: [&str; 14] = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ];

    fn consensus_verify(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        ed25519_consensus::VerificationKey::try_from(*key).is_ok_and(|vk| {
            vk.verify(&ed25519_consensus::Signature::from(*sig), msg)
                .is_ok()
        })
    }

    /// ZIP-215: every small-order key with every small-order R and s = 0 verifies (cofactored
    /// equation, non-canonical encodings accepted), exactly as `ed25519-consensus` (the
    /// verifier used before, and the rules of CometBFT's `curve25519-voi`) decides.
    #[test]
    fn zip215_small_order_set_matches_ed25519_consensus() {
        for a in SMALL_ORDER {
            let a: [u8; 32] = hex::decode(a).unwrap().try_into().unwrap();
            let key = PublicKey::from_bytes(&a).unwrap();
            assert_eq!(key.as_bytes(), &a, "the encoding is kept as received");
            for r in SMALL_ORDER {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&hex::decode(r).unwrap());
                for msg in [&b"Zcash"[..], b"", b"challenge"] {
                    assert!(key.verify(msg, &sig), "A={a:02x?} R={r}");
                    assert!(consensus_verify(&a, msg, &sig));
                }
            }
        }
    }

    /// Honest signatures, every single-bit flip of them, a non-canonical s (s + l) and keys
    /// that are not points: the verifier decides as `ed25519-consensus` does, case by case.
    #[test]
    fn verify_decides_as_ed25519_consensus() {
        // l, the group order, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut rng = ChaCha20Rng::seed_from_u64(215);
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..8 {
            let key = NodeKey::generate(&mut rng);
            let a = *key.public_key().as_bytes();
            let msg = [rng.next_u32() as u8; 32];
            let sig = key.sign(&msg);
            let mut cases = vec![sig];
            for bit in (0..512).step_by(7) {
                let mut s = sig;
                s[bit / 8] ^= 1 << (bit % 8);
                cases.push(s);
            }
            // s + l: same value mod l, not canonical: rejected by both.
            let mut plus_l = sig;
            let mut carry = 0u16;
            for (b, l) in plus_l[32..].iter_mut().zip(L) {
                let sum = u16::from(*b) + u16::from(l) + carry;
                *b = sum as u8;
                carry = sum >> 8;
            }
            cases.push(plus_l);
            for case in cases {
                let ours = key.public_key().verify(&msg, &case);
                assert_eq!(ours, consensus_verify(&a, &msg, &case));
                if ours {
                    accepted += 1;
                } else {
                    rejected += 1;
                }
            }
            assert!(key.public_key().verify(&msg, &sig));
            assert!(!key.public_key().verify(&msg, &plus_l));
        }
        assert!(accepted >= 8 && rejected > 8 * 70);
        // Encodings that are not curve points are refused by both parsers.
        let mut not_points = 0;
        for i in 0..=255u8 {
            let mut bytes = [i; 32];
            bytes[0] = 2;
            let ours = PublicKey::from_bytes(&bytes).is_ok();
            let theirs = ed25519_consensus::VerificationKey::try_from(bytes).is_ok();
            assert_eq!(ours, theirs, "{bytes:02x?}");
            not_points += usize::from(!ours);
        }
        assert!(not_points > 0);
    }

    #[test]
    fn public_key_parse_errors() {
        assert_eq!(
            PublicKey::from_bytes(&[0; 31]),
            Err(ParseError::Length {
                got: 31,
                expected: 32
            })
        );
        let public = NodeKey::from_seed([1; 32]).public_key();
        assert_eq!(PublicKey::from_bytes(public.as_bytes()), Ok(public));
    }
}
