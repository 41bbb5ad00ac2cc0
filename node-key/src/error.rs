//! Error types of the crate.

use std::path::PathBuf;

/// Why a node ID or a public key could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text was empty (Go: `"no ID"`).
    #[error("no ID")]
    Empty,
    /// The text is not hexadecimal.
    #[error("invalid hex: {0}")]
    Hex(hex::FromHexError),
    /// The decoded value has the wrong length.
    #[error("invalid length - got {got}, expected {expected}")]
    Length {
        /// Bytes found.
        got: usize,
        /// Bytes required.
        expected: usize,
    },
    /// The bytes are not a valid ed25519 public key (not a curve point encoding).
    #[error("invalid ed25519 public key")]
    InvalidKey,
}

/// Why `node_key.json` could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading, writing or renaming the file failed.
    #[error("node key file {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not the JSON shape `{"priv_key":{"type":…,"value":…}}`.
    #[error("node key file {path}: invalid JSON: {source}")]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The key type is not `tendermint/PrivKeyEd25519`.
    #[error("node key file {path}: unsupported key type {found:?}")]
    WrongType {
        /// The file concerned.
        path: PathBuf,
        /// The type string found.
        found: String,
    },
    /// The value is not valid standard base64.
    #[error("node key file {path}: value is not base64: {source}")]
    Base64 {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: base64::DecodeError,
    },
    /// The decoded key is not 64 bytes (seed || public key).
    #[error("node key file {path}: key is {got} bytes, expected 64")]
    WrongLength {
        /// The file concerned.
        path: PathBuf,
        /// Bytes found.
        got: usize,
    },
    /// The public half stored in the file is not the one derived from the seed.
    #[error("node key file {path}: stored public key does not match the seed")]
    PublicKeyMismatch {
        /// The file concerned.
        path: PathBuf,
    },
    /// The file is larger than any valid node key file could be.
    #[error("node key file {path}: {len} bytes is too large")]
    TooLarge {
        /// The file concerned.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
}
