//! Key derivation: the Merlin transcript challenge and the HKDF-SHA256 session keys
//! (Go `deriveSecrets` and the transcript steps of `MakeSecretConnection`).

use hkdf::Hkdf;
use merlin::Transcript;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Merlin transcript name.
const TRANSCRIPT_NAME: &[u8] = b"TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH";
/// Transcript label of the lexicographically smaller ephemeral key.
const LABEL_EPH_LOWER: &[u8] = b"EPHEMERAL_LOWER_PUBLIC_KEY";
/// Transcript label of the lexicographically larger ephemeral key.
const LABEL_EPH_UPPER: &[u8] = b"EPHEMERAL_UPPER_PUBLIC_KEY";
/// Transcript label of the X25519 shared secret.
const LABEL_DH_SECRET: &[u8] = b"DH_SECRET";
/// Transcript label of the 32-byte challenge both sides sign.
const LABEL_MAC: &[u8] = b"SECRET_CONNECTION_MAC";
/// HKDF `info`.
const HKDF_INFO: &[u8] = b"TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN";

/// The two ChaCha20-Poly1305 keys of a session, zeroized on drop.
pub(crate) struct SessionKeys {
    pub(crate) recv: Zeroizing<[u8; 32]>,
    pub(crate) send: Zeroizing<[u8; 32]>,
}

/// HKDF-SHA256 with an empty salt over the DH secret, 96 bytes of output; the first two 32-byte
/// blocks are the keys, assigned by which side has the smaller ephemeral key. The last 32 bytes
/// are the pre-Merlin challenge that nobody uses any more (returned for the golden test only).
pub(crate) fn derive_secrets(dh_secret: &[u8; 32], loc_is_least: bool) -> (SessionKeys, [u8; 32]) {
    let mut okm = Zeroizing::new([0u8; 96]);
    // The only error is an output longer than 255 * 32 bytes; 96 is a constant far below it.
    let hkdf = Hkdf::<Sha256>::new(None, dh_secret);
    if hkdf.expand(HKDF_INFO, okm.as_mut()).is_err() {
        unreachable!("96 bytes is a valid HKDF-SHA256 output length");
    }
    let mut first = Zeroizing::new([0u8; 32]);
    let mut second = Zeroizing::new([0u8; 32]);
    let mut legacy = [0u8; 32];
    first.copy_from_slice(&okm[..32]);
    second.copy_from_slice(&okm[32..64]);
    legacy.copy_from_slice(&okm[64..]);
    let keys = if loc_is_least {
        SessionKeys {
            recv: first,
            send: second,
        }
    } else {
        SessionKeys {
            send: first,
            recv: second,
        }
    };
    (keys, legacy)
}

/// Runs the Merlin transcript over both ephemeral keys (sorted) and the DH secret, and returns
/// the 32-byte challenge each side signs with its node key.
pub(crate) fn challenge(lower: &[u8; 32], upper: &[u8; 32], dh_secret: &[u8; 32]) -> [u8; 32] {
    let mut transcript = Transcript::new(TRANSCRIPT_NAME);
    transcript.append_message(LABEL_EPH_LOWER, lower);
    transcript.append_message(LABEL_EPH_UPPER, upper);
    transcript.append_message(LABEL_DH_SECRET, dh_secret);
    let mut challenge = [0u8; 32];
    transcript.challenge_bytes(LABEL_MAC, &mut challenge);
    challenge
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// Every line of Go's `TestDeriveSecretsAndChallengeGolden.golden` (copied into
    /// `tests/data/derive-secrets.golden`, whose first line names its source): dh, locIsLeast,
    /// recv, send, legacy challenge.
    #[test]
    fn derive_secrets_golden() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/derive-secrets.golden");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut lines = 0;
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split(',').collect();
            assert_eq!(cols.len(), 5, "line {}: {line}", i + 1);
            let dh = hex32(cols[0]);
            let loc_is_least: bool = cols[1].parse().unwrap();
            let (keys, legacy) = derive_secrets(&dh, loc_is_least);
            assert_eq!(*keys.recv, hex32(cols[2]), "recv, line {}", i + 1);
            assert_eq!(*keys.send, hex32(cols[3]), "send, line {}", i + 1);
            assert_eq!(legacy, hex32(cols[4]), "legacy challenge, line {}", i + 1);
            lines += 1;
        }
        assert_eq!(lines, 32);
    }

    #[test]
    fn sides_get_mirrored_keys() {
        let dh = [7u8; 32];
        let (a, _) = derive_secrets(&dh, true);
        let (b, _) = derive_secrets(&dh, false);
        assert_eq!(*a.send, *b.recv);
        assert_eq!(*a.recv, *b.send);
        assert_ne!(*a.send, *a.recv);
    }
}
