//! The error type of the crate: why `addrbook.json` could not be loaded or saved.

use std::path::PathBuf;

use mukan_reactor_api::NodeIdError as ParseError;

/// Why `addrbook.json` could not be loaded or saved.
///
/// Every variant except [`PersistError::Io`] means the file's content is unusable: the loader
/// has then moved the file aside intact (see [`PersistError::moved_aside`]) and left the book
/// empty.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// The file is empty (or whitespace only).
    #[error("address book file {path}: empty")]
    Empty {
        /// The file concerned.
        path: PathBuf,
        /// Where the unusable file was moved.
        moved_to: Option<PathBuf>,
    },
    /// One stored address is unusable.
    #[error("address book file {path}: entry {index}: {reason}")]
    InvalidEntry {
        /// The file concerned.
        path: PathBuf,
        /// Position of the entry in `addrs` (or in the ban list after them).
        index: usize,
        /// What is wrong with it.
        reason: EntryError,
        /// Where the unusable file was moved.
        moved_to: Option<PathBuf>,
    },
    /// Reading, writing, syncing or renaming failed.
    #[error("address book file {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not JSON (bad syntax).
    #[error("address book file {path}: invalid JSON at line {line} column {column}")]
    Syntax {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// Where the unusable file was moved.
        moved_to: Option<PathBuf>,
    },
    /// The file is larger than the configured cap; it was not read.
    #[error("address book file {path}: {size} bytes is over the cap of {max}")]
    TooLarge {
        /// The file concerned.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The cap ([`Config::max_file_size`](crate::Config::max_file_size)).
        max: u64,
        /// Where the unusable file was moved.
        moved_to: Option<PathBuf>,
    },
    /// The file ends in the middle of the JSON document.
    #[error("address book file {path}: truncated")]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// Where the unusable file was moved.
        moved_to: Option<PathBuf>,
    },
    /// The JSON is well formed but not the shape of `addrbook.json` (a missing field, a
    /// string where a number belongs, a number out of range…).
    #[error("address book file {path}: wrong shape at line {line} column {column}: {source}")]
    WrongShape {
        /// The file concerned.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde's description.
        source: serde_json::Error,
        /// Where the unusable file was moved.
        moved_to: Option<PathBuf>,
    },
}

impl PersistError {
    /// Where the loader moved the unusable file (`<file>.corrupt-<time>`), if it did.
    pub fn moved_aside(&self) -> Option<&PathBuf> {
        match self {
            Self::Empty { moved_to, .. }
            | Self::InvalidEntry { moved_to, .. }
            | Self::Syntax { moved_to, .. }
            | Self::TooLarge { moved_to, .. }
            | Self::Truncated { moved_to, .. }
            | Self::WrongShape { moved_to, .. } => moved_to.as_ref(),
            Self::Io { .. } => None,
        }
    }

    pub(crate) fn set_moved_to(&mut self, to: PathBuf) {
        match self {
            Self::Empty { moved_to, .. }
            | Self::InvalidEntry { moved_to, .. }
            | Self::Syntax { moved_to, .. }
            | Self::TooLarge { moved_to, .. }
            | Self::Truncated { moved_to, .. }
            | Self::WrongShape { moved_to, .. } => *moved_to = Some(to),
            Self::Io { .. } => {}
        }
    }
}

/// What is wrong with one entry of `addrbook.json`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// A bucket index is out of range for the entry's bucket type.
    #[error("bucket index {index} out of range for {kind} buckets")]
    BucketIndex {
        /// `"new"` or `"old"`.
        kind: &'static str,
        /// The index found.
        index: i64,
    },
    /// `bucket_type` is neither 1 (new) nor 2 (old).
    #[error("bucket type {0} is neither 1 (new) nor 2 (old)")]
    BucketType(u8),
    /// The same node ID is stored twice (the first entry is kept in lenient mode).
    #[error("duplicate node ID {0}")]
    DuplicateId(String),
    /// An `id` field is not a node ID.
    #[error("invalid node ID {id:?}: {source}")]
    InvalidId {
        /// The text found.
        id: String,
        /// Why it does not parse.
        source: ParseError,
    },
    /// An `ip` field is not an IP literal (a host name, for instance).
    #[error("invalid IP address {0:?}")]
    InvalidIp(String),
    /// A time field is not RFC 3339.
    #[error("invalid time {0:?}")]
    InvalidTime(String),
    /// An old entry lists more than one bucket, or a new one more than four.
    #[error("{count} buckets listed, at most {max} allowed")]
    TooManyBuckets {
        /// Buckets listed.
        count: usize,
        /// The maximum for the bucket type.
        max: usize,
    },
}
