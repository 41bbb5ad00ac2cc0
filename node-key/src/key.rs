//! [`NodeKey`] and [`PublicKey`].

use std::fmt;

use ed25519_consensus::{Signature, SigningKey, VerificationKey};
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
    /// Generates a fresh key from `rng`.
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
        let public = PublicKey {
            key: signing.verification_key(),
        };
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
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey {
    key: VerificationKey,
}

impl PublicKey {
    /// Length of the key in bytes.
    pub const LEN: usize = 32;

    /// Parses a 32-byte encoded key.
    ///
    /// # Errors
    /// [`ParseError::Length`] if `bytes` is not 32 bytes long, [`ParseError::InvalidKey`] if it
    /// is not the encoding of a curve point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.len() != Self::LEN {
            return Err(ParseError::Length {
                got: bytes.len(),
                expected: Self::LEN,
            });
        }
        let key = VerificationKey::try_from(bytes).map_err(|_| ParseError::InvalidKey)?;
        Ok(Self { key })
    }

    /// The 32-byte encoding.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        self.key.as_bytes()
    }

    /// The node ID: `SHA256(key)[..20]` (CometBFT `tmhash.SumTruncated`).
    pub fn node_id(&self) -> NodeId {
        let digest = Sha256::digest(self.key.as_bytes());
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
    use rand_core::SeedableRng;

    use super::*;

    const SEED1_PUB: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
    const SEED1_ID: &str = "34750f98bd59fcfc946da45aaabe933be154a4b5";

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
