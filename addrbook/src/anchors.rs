//! `anchors.json`: the outbound peers a node was connected to longest when it stopped
//! cleanly, dialed first at the next start (Bitcoin Core's `anchors.dat`).
//!
//! The file is a JSON array of `id@ip:port` strings, written atomically like the book.
//! [`take_anchors`] reads it and deletes it at once, so that a crash after the start cannot
//! replay the same anchors (an attacker among them would otherwise come back at every start).
//! What it reads is bounded: at most [`MAX_ANCHOR_FILE`] bytes and [`MAX_ANCHORS`] entries;
//! anything else is a typed [`AnchorsError`] (and the file is still deleted).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use mukan_reactor_api::NetAddress;

/// The most bytes [`take_anchors`] reads.
pub const MAX_ANCHOR_FILE: u64 = 16 * 1024;
/// The most anchors [`take_anchors`] returns (and [`save_anchors`] writes).
pub const MAX_ANCHORS: usize = 16;

/// Why `anchors.json` could not be written or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorsError {
    /// Reading, writing or deleting failed.
    #[error("anchors file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is over [`MAX_ANCHOR_FILE`] bytes.
    #[error("anchors file {path}: over {MAX_ANCHOR_FILE} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a JSON array of `id@ip:port` strings.
    #[error("anchors file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Writes `anchors` (at most [`MAX_ANCHORS`]) to `path` atomically (temporary file in the
/// same directory, fsync, rename, fsync of the directory). An empty list removes the file.
///
/// # Errors
/// [`AnchorsError::Io`]; a previous file is then untouched.
pub fn save_anchors(path: &Path, anchors: &[NetAddress]) -> Result<(), AnchorsError> {
    let io = |source| AnchorsError::Io {
        path: path.to_owned(),
        source,
    };
    if anchors.is_empty() {
        return remove_anchors(path);
    }
    let list: Vec<String> = anchors
        .iter()
        .take(MAX_ANCHORS)
        .map(NetAddress::to_string)
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&list).unwrap_or_default();
    bytes.push(b'\n');
    crate::file::write_atomic(path, &bytes).map_err(io)
}

/// Reads the anchors saved at `path` and deletes the file, whatever it held. A missing file
/// gives no anchors.
///
/// # Errors
/// [`AnchorsError`] when the file cannot be read or deleted, is too large or is not a list
/// of addresses; the file is deleted in every case it could be.
pub fn take_anchors(path: &Path) -> Result<Vec<NetAddress>, AnchorsError> {
    let read = read_anchors(path);
    remove_anchors(path)?;
    read
}

/// Deletes `anchors.json` (nothing to do when it is absent). A program that reads the
/// anchors with [`read_anchors`] before it is sure to start calls this once it started.
///
/// # Errors
/// [`AnchorsError::Io`].
pub fn remove_anchors(path: &Path) -> Result<(), AnchorsError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AnchorsError::Io {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Reads the anchors saved at `path` without deleting the file (see [`take_anchors`]). A
/// missing file gives no anchors.
///
/// # Errors
/// [`AnchorsError`] when the file cannot be read, is too large or is not a list of
/// addresses.
pub fn read_anchors(path: &Path) -> Result<Vec<NetAddress>, AnchorsError> {
    let io = |source| AnchorsError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_ANCHOR_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_ANCHOR_FILE {
        return Err(AnchorsError::TooLarge {
            path: path.to_owned(),
        });
    }
    let invalid = |reason: String| AnchorsError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let list: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if list.len() > MAX_ANCHORS {
        return Err(invalid(format!(
            "{} entries, at most {MAX_ANCHORS}",
            list.len()
        )));
    }
    list.iter()
        .map(|s| {
            s.parse::<NetAddress>()
                .map_err(|e| invalid(format!("{s}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> NetAddress {
        let mut id = [0u8; 20];
        id[0] = n;
        NetAddress::new(
            mukan_reactor_api::NodeId(id),
            std::net::IpAddr::from([20, n, 1, 1]),
            26656,
        )
    }

    #[test]
    fn saved_anchors_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchors.json");
        save_anchors(&path, &[addr(1), addr(2)]).unwrap();
        assert_eq!(take_anchors(&path).unwrap(), vec![addr(1), addr(2)]);
        assert!(!path.exists(), "deleted once read");
        assert_eq!(take_anchors(&path).unwrap(), Vec::new());
        // Nothing to save: no file.
        save_anchors(&path, &[]).unwrap();
        assert!(!path.exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no temporary left"
        );
    }

    #[test]
    fn bad_files_are_typed_errors_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchors.json");
        for (content, what) in [
            (b"{\"a\": 1}".to_vec(), "not a list"),
            (b"[\"nope\"]".to_vec(), "not an address"),
            (vec![b' '; MAX_ANCHOR_FILE as usize + 1], "too large"),
            (
                serde_json::to_vec(&vec![addr(1).to_string(); MAX_ANCHORS + 1]).unwrap(),
                "too many",
            ),
        ] {
            fs::write(&path, content).unwrap();
            assert!(take_anchors(&path).is_err(), "{what}");
            assert!(!path.exists(), "{what}: deleted");
        }
    }
}
