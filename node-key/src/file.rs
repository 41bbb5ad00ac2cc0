//! `node_key.json` in CometBFT's format (`p2p/key.go`, `libs/json`).
//!
//! `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"<base64 of seed || pubkey>"}}`,
//! compact, no trailing newline, mode 0600.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::{FileError, NodeKey};

/// The amino type name CometBFT uses for ed25519 private keys.
const PRIV_KEY_TYPE: &str = "tendermint/PrivKeyEd25519";

/// No valid node key file is near this size; larger files are rejected before reading.
const MAX_FILE_LEN: u64 = 64 * 1024;

#[derive(Serialize, Deserialize)]
struct FileJson {
    priv_key: TypedValue,
}

#[derive(Serialize, Deserialize)]
struct TypedValue {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

impl Drop for TypedValue {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl NodeKey {
    /// Loads a `node_key.json` written by CometBFT (or by [`NodeKey::save`]).
    ///
    /// Stricter than Go, which loads whatever it finds: the type must be
    /// `tendermint/PrivKeyEd25519`, the value exactly 64 bytes, and its public half must be
    /// the one derived from its seed.
    ///
    /// # Errors
    /// A [`FileError`] naming what is wrong; the file is never modified.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let path = path.as_ref();
        let io_err = |source| FileError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = fs::File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        if len > MAX_FILE_LEN {
            return Err(FileError::TooLarge {
                path: path.to_owned(),
                len,
            });
        }
        let mut text = Zeroizing::new(Vec::new());
        file.read_to_end(&mut text).map_err(io_err)?;
        Self::from_json(&text, path)
    }

    /// Parses the JSON text of a node key file; `path` is only used in errors.
    fn from_json(text: &[u8], path: &Path) -> Result<Self, FileError> {
        let parsed: FileJson = serde_json::from_slice(text).map_err(|source| FileError::Json {
            path: path.to_owned(),
            source,
        })?;
        if parsed.priv_key.kind != PRIV_KEY_TYPE {
            return Err(FileError::WrongType {
                path: path.to_owned(),
                found: parsed.priv_key.kind.clone(),
            });
        }
        let raw = Zeroizing::new(STANDARD.decode(parsed.priv_key.value.as_bytes()).map_err(
            |source| FileError::Base64 {
                path: path.to_owned(),
                source,
            },
        )?);
        if raw.len() != 64 {
            return Err(FileError::WrongLength {
                path: path.to_owned(),
                got: raw.len(),
            });
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&raw[..32]);
        let key = Self::from_seed(seed);
        seed.zeroize();
        if key.public_key().as_bytes()[..] != raw[32..] {
            return Err(FileError::PublicKeyMismatch {
                path: path.to_owned(),
            });
        }
        Ok(key)
    }

    /// The file contents CometBFT writes for this key (compact JSON, no newline).
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; 64]);
        raw[..32].copy_from_slice(self.seed());
        raw[32..].copy_from_slice(self.public_key().as_bytes());
        let file = FileJson {
            priv_key: TypedValue {
                kind: PRIV_KEY_TYPE.to_owned(),
                value: STANDARD.encode(*raw),
            },
        };
        // Serializing two plain strings cannot fail.
        Zeroizing::new(serde_json::to_string(&file).unwrap_or_default())
    }

    /// Writes the key to `path` atomically (temporary file, fsync, rename) with mode 0600.
    ///
    /// # Errors
    /// [`FileError::Io`] if any step fails; an existing file is then left as it was.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), FileError> {
        let path = path.as_ref();
        write_atomic(path, self.to_json().as_bytes()).map_err(|source| FileError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Loads the key at `path`, or generates one with `rng` and saves it if there is no
    /// file (CometBFT `LoadOrGenNodeKey`).
    ///
    /// # Errors
    /// Any [`FileError`] from loading an existing file (which is then never overwritten) or
    /// from saving a new one.
    pub fn load_or_generate(
        path: impl AsRef<Path>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, FileError> {
        let path = path.as_ref();
        match fs::symlink_metadata(path) {
            Ok(_) => Self::load(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = Self::generate(rng);
                key.save(path)?;
                Ok(key)
            }
            Err(source) => Err(FileError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }
}

/// Writes `contents` to a fresh temporary file (mode 0600) beside `path`, syncs it, renames
/// it over `path` and syncs the directory. The temporary name is unique per call
/// ([`tempfile`]), so two saves in one process cannot interleave; on error it is removed.
fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut file = builder.prefix(".node_key").tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path)?;
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    /// The key with seed 0x01 × 32, as CometBFT writes it (Go `SaveAs` of `p2p/key.go`).
    const SEED1_JSON: &str = r#"{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGKiOPddAnxlf1S2y08ul1yymcJvx2UEhvzdIgBtA9vXA=="}}"#;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("node_key.json");
        fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn loads_the_cometbft_vector_and_saves_it_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::load(write(dir.path(), SEED1_JSON)).unwrap();
        assert_eq!(
            key.node_id().to_string(),
            "34750f98bd59fcfc946da45aaabe933be154a4b5"
        );
        let out = dir.path().join("saved.json");
        key.save(&out).unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), SEED1_JSON);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&out).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn save_replaces_an_existing_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "old");
        NodeKey::from_seed([1; 32]).save(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), SEED1_JSON);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    /// Saves from many threads of one process into one path: each uses its own temporary
    /// file, so the result is one whole key file and nothing is left beside it.
    #[test]
    fn concurrent_saves_in_one_process_do_not_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_key.json");
        let keys: Vec<NodeKey> = (1..=8u8).map(|i| NodeKey::from_seed([i; 32])).collect();
        let texts: Vec<String> = keys.iter().map(|k| k.to_json().to_string()).collect();
        std::thread::scope(|s| {
            for key in &keys {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        key.save(path).unwrap();
                    }
                });
            }
        });
        let saved = fs::read_to_string(&path).unwrap();
        assert!(texts.contains(&saved), "a whole key file: {saved}");
        let entries = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no temporary file is left behind");
    }

    #[test]
    fn bad_files_are_typed_errors_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let seed1_pub_swapped = SEED1_JSON.replace(
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGK",
            "AgEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQGK",
        );
        type Check = fn(&FileError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (SEED1_JSON.replace("PrivKeyEd25519", "PrivKeySecp256k1"), |e| {
                matches!(e, FileError::WrongType { found, .. } if found == "tendermint/PrivKeySecp256k1")
            }),
            (SEED1_JSON.replace("XA==", "X!=="), |e| matches!(e, FileError::Base64 { .. })),
            (
                r#"{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}}"#.to_owned(),
                |e| matches!(e, FileError::WrongLength { got: 32, .. }),
            ),
            (seed1_pub_swapped, |e| matches!(e, FileError::PublicKeyMismatch { .. })),
            ("{".to_owned(), |e| matches!(e, FileError::Json { .. })),
            (String::new(), |e| matches!(e, FileError::Json { .. })),
            (r#"{"priv_key":{"type":1,"value":"x"}}"#.to_owned(), |e| matches!(e, FileError::Json { .. })),
        ];
        for (text, is_expected) in cases {
            let path = write(dir.path(), &text);
            let err = NodeKey::load_or_generate(&path, &mut rng).unwrap_err();
            assert!(is_expected(&err), "{text:?} gave {err:?}");
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                text,
                "file must be kept as it was"
            );
        }
    }

    #[test]
    fn oversized_file_is_rejected_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &" ".repeat(100_000));
        assert!(matches!(
            NodeKey::load(&path),
            Err(FileError::TooLarge { len: 100_000, .. })
        ));
    }

    #[test]
    fn load_or_generate_creates_then_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config").join("node_key.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let first = NodeKey::load_or_generate(&path, &mut rng).unwrap();
        let second = NodeKey::load_or_generate(&path, &mut rng).unwrap();
        assert_eq!(first.node_id(), second.node_id());
        assert!(matches!(
            NodeKey::load(dir.path().join("missing")),
            Err(FileError::Io { .. })
        ));
    }
}
