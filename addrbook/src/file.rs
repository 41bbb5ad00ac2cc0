//! `addrbook.json`, in the format of CometBFT v0.38 (`p2p/pex/file.go`).
//!
//! Written like Go's `json.MarshalIndent(…, "", "\t")`: the same field order, tab
//! indentation, RFC 3339 times (we write UTC), `bucket_type` 1 or 2, `null` for an empty
//! bucket list, no trailing newline. Banned entries, which Go does not save, go into an
//! extra top-level array `"mukan_banned"` (same entry shape) written only when non-empty;
//! Go's `encoding/json` ignores unknown fields, so a Go node still loads the file (and drops
//! the bans when it next saves). Two extra entry fields, written only when true and ignored
//! by Go: `"mukan_unverified"` (a self-reported address not reached yet, never served) and,
//! in `"mukan_banned"`, `"mukan_ban_only"` (an ID banned while not in the table, dropped when
//! its ban ends). At most [`Config::max_bans`](crate::Config::max_bans) bans are kept, so the
//! file is bounded: 20,480 addresses and 10,000 bans, under 16 MiB at the widest field
//! values.
//!
//! Reading accepts what Go writes: any UTC offset, `null` buckets and times, missing fields
//! (Go's zero values). What it refuses (each a [`PersistError`]) Go would panic on or load
//! into an inconsistent book.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use mukan_reactor_api::NetAddress;
use mukan_reactor_api::NodeId;
use serde::{Deserialize, Serialize};

use crate::book::{AddrBook, BucketKind, NEW_BUCKET_COUNT, OLD_BUCKET_COUNT};
use crate::error::{EntryError, PersistError};
use crate::known_address::{KnownAddress, MAX_NEW_BUCKETS_PER_ADDRESS};
use crate::time;

/// What [`AddrBook::load`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoadReport {
    /// Whether the file existed.
    pub found: bool,
    /// Entries now in the book.
    pub loaded: usize,
    /// Banned entries restored.
    pub banned: usize,
    /// Unusable entries skipped ([`Config::skip_invalid_entries`](crate::Config)).
    pub skipped: usize,
}

impl AddrBook {
    /// Replaces the book's content with the file at `path` (Go `loadFromFile`). A missing
    /// file leaves the book empty and is not an error.
    ///
    /// A file whose content is unusable is renamed to `<path>.corrupt-<now>` (kept intact,
    /// never overwritten) and the book is left empty; the error says where it went.
    ///
    /// # Errors
    /// [`PersistError::Io`] if the file cannot be read (left in place), or the reason its
    /// content is unusable.
    pub fn load(&mut self, path: &Path, now: SystemTime) -> Result<LoadReport, PersistError> {
        self.clear();
        let io = |source| PersistError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LoadReport::default()),
            Err(e) => return Err(io(e)),
        };
        let size = file.metadata().map_err(io)?.len();
        let max = self.config.max_file_size;
        let result = if size > max {
            Err(PersistError::TooLarge {
                path: path.to_owned(),
                size,
                max,
                moved_to: None,
            })
        } else {
            let mut bytes = Vec::with_capacity(size as usize);
            file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
            if bytes.len() as u64 > max {
                let size = bytes.len() as u64;
                Err(PersistError::TooLarge {
                    path: path.to_owned(),
                    size,
                    max,
                    moved_to: None,
                })
            } else {
                self.load_from_slice(&bytes, path, now)
            }
        };
        result.map_err(|mut e| {
            self.clear();
            if let Some(to) = move_aside(path, now) {
                e.set_moved_to(to);
            }
            e
        })
    }

    /// Replaces the book's content with `bytes` (the content of `addrbook.json`); `origin`
    /// only labels errors. On error the book is left empty. Nothing is moved aside.
    ///
    /// # Errors
    /// The reason the content is unusable.
    pub fn load_from_slice(
        &mut self,
        bytes: &[u8],
        origin: &Path,
        now: SystemTime,
    ) -> Result<LoadReport, PersistError> {
        self.clear();
        let result = self.parse_into(bytes, origin, now);
        if result.is_err() {
            self.clear();
        }
        result
    }

    /// Writes the book to `path` atomically: a temporary file in the same directory is
    /// written, flushed to disk, renamed over `path`, and the directory is synced. A crash
    /// at any point leaves either the old or the new file.
    ///
    /// For a book behind a lock, [`AddrBook::save_snapshot`] keeps the lock only while
    /// serializing.
    ///
    /// # Errors
    /// [`PersistError::Io`]; the previous file is then untouched.
    pub fn save(&self, path: &Path) -> Result<(), PersistError> {
        self.snapshot().write(path)
    }

    /// The book serialized ([`AddrBook::to_json`]), to write later with [`Snapshot::write`]
    /// (no IO here: cheap enough to take under the book's lock).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            bytes: self.to_json(),
        }
    }

    /// Saves a book that lives behind a lock: `take` locks it and returns its
    /// [`AddrBook::snapshot`] (e.g. `|| book.lock().snapshot()`), and the file is written
    /// after `take` returned, so the lock is never held across disk IO. Saves through this
    /// function are serialized process-wide, snapshot and write together, so the newest
    /// snapshot is the one left on disk when several threads save at once.
    ///
    /// # Errors
    /// [`PersistError::Io`]; the previous file is then untouched.
    pub fn save_snapshot(path: &Path, take: impl FnOnce() -> Snapshot) -> Result<(), PersistError> {
        static SAVING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = SAVING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot = take();
        snapshot.write(path)
    }

    /// The file content, as Go would write it (plus bans, see the module docs).
    pub fn to_json(&self) -> Vec<u8> {
        let out = FileOut {
            key: self.key(),
            addrs: self.slots.iter().map(KaOut::from).collect(),
            mukan_banned: (self.banned.sorted().into_iter())
                .map(|b| KaOut {
                    mukan_ban_only: b.ban_only,
                    ..KaOut::from(&b.ka)
                })
                .collect(),
        };
        let mut buf = Vec::with_capacity(64 + self.slots.len() * 560);
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        // Serializing plain strings and numbers into a Vec cannot fail.
        if out.serialize(&mut ser).is_err() {
            buf.clear();
        }
        buf
    }

    fn parse_into(
        &mut self,
        bytes: &[u8],
        origin: &Path,
        now: SystemTime,
    ) -> Result<LoadReport, PersistError> {
        let path = origin.to_owned();
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(PersistError::Empty {
                path,
                moved_to: None,
            });
        }
        // serde accepts a struct written as an array; Go (and we) want an object.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let parsed = if first == Some(&b'{') {
            serde_json::from_slice::<FileIn>(bytes)
        } else {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
                .and_then(|_| serde_json::from_slice::<FileIn>(b"[0]"))
        };
        let file: FileIn = parsed.map_err(|e| {
            let (line, column) = (e.line(), e.column());
            match e.classify() {
                serde_json::error::Category::Eof => PersistError::Truncated {
                    path: path.clone(),
                    moved_to: None,
                },
                serde_json::error::Category::Data => PersistError::WrongShape {
                    path: path.clone(),
                    line,
                    column,
                    source: e,
                    moved_to: None,
                },
                _ => PersistError::Syntax {
                    path: path.clone(),
                    line,
                    column,
                    moved_to: None,
                },
            }
        })?;
        if !file.key.is_empty() && file.key.len() <= 256 {
            self.placement = crate::group::Placement::new(file.key, self.config.strict);
        }
        let skip = self.config.skip_invalid_entries;
        let mut report = LoadReport {
            found: true,
            ..LoadReport::default()
        };
        let addrs = file.addrs.unwrap_or_default();
        let n_addrs = addrs.len();
        for (index, raw) in addrs.into_iter().enumerate() {
            let checked = raw.into_known().and_then(|ka| {
                if self.index.contains_key(&ka.addr.id()) {
                    Err(EntryError::DuplicateId(ka.addr.id().to_string()))
                } else {
                    Ok(ka)
                }
            });
            match checked {
                Ok(ka) => self.place_loaded(ka, now),
                Err(_) if skip => report.skipped += 1,
                Err(reason) => {
                    return Err(PersistError::InvalidEntry {
                        path,
                        index,
                        reason,
                        moved_to: None,
                    });
                }
            }
        }
        for (i, raw) in file
            .mukan_banned
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let ban_only = raw.mukan_ban_only;
            match raw.into_known() {
                Ok(mut ka) => {
                    let id = ka.addr.id();
                    ka.clear_buckets();
                    if self.index.contains_key(&id) {
                        // Banned wins over stored.
                        self.remove_loaded(&id);
                    }
                    self.insert_ban(ka, ban_only);
                }
                Err(_) if skip => report.skipped += 1,
                Err(reason) => {
                    let index = n_addrs + i;
                    return Err(PersistError::InvalidEntry {
                        path,
                        index,
                        reason,
                        moved_to: None,
                    });
                }
            }
        }
        report.loaded = self.slots.len();
        report.banned = self.banned.len();
        Ok(report)
    }

    fn remove_loaded(&mut self, id: &NodeId) {
        use mukan_reactor_api::AddressBook;
        if let Some(addr) = self.address(id) {
            self.remove_address(&addr);
        }
    }
}

/// Renames an unusable file to `<path>.corrupt-<stamp>[-n]`; `None` if that fails.
fn move_aside(path: &Path, now: SystemTime) -> Option<PathBuf> {
    let base = format!("{}.corrupt-{}", path.display(), time::file_stamp(now));
    for n in 0..100 {
        let target = if n == 0 {
            PathBuf::from(&base)
        } else {
            PathBuf::from(format!("{base}-{n}"))
        };
        if target.exists() {
            continue;
        }
        return fs::rename(path, &target).ok().map(|()| target);
    }
    None
}

/// A serialized copy of an address book ([`AddrBook::snapshot`]), taken under the book's
/// lock and written without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    bytes: Vec<u8>,
}

impl Snapshot {
    /// The file content.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes the snapshot to `path` atomically, as [`AddrBook::save`] does.
    ///
    /// # Errors
    /// [`PersistError::Io`]; the previous file is then untouched.
    pub fn write(&self, path: &Path) -> Result<(), PersistError> {
        write_atomic(path, &self.bytes).map_err(|source| PersistError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes `bytes` to a fresh temporary file (mode 0644, as Go writes the book) beside `path`,
/// syncs it, renames it over `path` and syncs the directory. The temporary name is unique
/// per call ([`tempfile`]), so two saves in one process cannot interleave; on error it is
/// removed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = (path.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::with_prefix_in(".addrbook", dir)?;
    #[cfg(unix)]
    file.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path)?;
    // Make the rename itself durable.
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[derive(Serialize)]
struct FileOut<'a> {
    key: &'a str,
    addrs: Vec<KaOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mukan_banned: Vec<KaOut<'a>>,
}

#[derive(Serialize)]
struct KaOut<'a> {
    addr: &'a NetAddress,
    src: &'a NetAddress,
    buckets: Option<&'a [u16]>,
    attempts: i32,
    bucket_type: u8,
    last_attempt: String,
    last_success: String,
    last_ban_time: String,
    #[serde(skip_serializing_if = "is_false")]
    mukan_unverified: bool,
    #[serde(skip_serializing_if = "is_false")]
    mukan_ban_only: bool,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if signature"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

impl<'a> From<&'a KnownAddress> for KaOut<'a> {
    fn from(ka: &'a KnownAddress) -> Self {
        Self {
            addr: &ka.addr,
            src: &ka.src,
            buckets: if ka.buckets().is_empty() {
                None
            } else {
                Some(ka.buckets())
            },
            attempts: ka.attempts,
            bucket_type: ka.kind.code(),
            last_attempt: time::format(ka.last_attempt),
            last_success: time::format(ka.last_success),
            last_ban_time: time::format(ka.last_ban_time),
            mukan_unverified: ka.unverified,
            mukan_ban_only: false,
        }
    }
}

#[derive(Deserialize)]
struct FileIn {
    #[serde(default)]
    key: String,
    #[serde(default)]
    addrs: Option<Vec<KaIn>>,
    #[serde(default)]
    mukan_banned: Option<Vec<KaIn>>,
}

#[derive(Deserialize)]
struct KaIn {
    addr: AddrIn,
    src: AddrIn,
    #[serde(default)]
    buckets: Option<Vec<i64>>,
    #[serde(default)]
    attempts: i32,
    #[serde(default)]
    bucket_type: u8,
    #[serde(default)]
    last_attempt: Option<String>,
    #[serde(default)]
    last_success: Option<String>,
    #[serde(default)]
    last_ban_time: Option<String>,
    #[serde(default)]
    mukan_unverified: bool,
    #[serde(default)]
    mukan_ban_only: bool,
}

#[derive(Deserialize)]
struct AddrIn {
    #[serde(default)]
    id: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    port: u16,
}

impl AddrIn {
    fn into_address(self) -> Result<NetAddress, EntryError> {
        let id = self
            .id
            .parse::<NodeId>()
            .map_err(|source| EntryError::InvalidId {
                id: self.id.clone(),
                source,
            })?;
        let ip = self
            .ip
            .parse::<std::net::IpAddr>()
            .map_err(|_| EntryError::InvalidIp(self.ip))?;
        Ok(NetAddress::new(id, ip, self.port))
    }
}

fn parse_time(t: Option<String>) -> Result<Option<SystemTime>, EntryError> {
    match t {
        None => Ok(None),
        Some(s) => time::parse(&s).ok_or(EntryError::InvalidTime(s)),
    }
}

impl KaIn {
    fn into_known(self) -> Result<KnownAddress, EntryError> {
        let addr = self.addr.into_address()?;
        let src = self.src.into_address()?;
        let (kind, count, max) = match self.bucket_type {
            1 => (
                BucketKind::New,
                NEW_BUCKET_COUNT,
                MAX_NEW_BUCKETS_PER_ADDRESS,
            ),
            2 => (BucketKind::Old, OLD_BUCKET_COUNT, 1),
            other => return Err(EntryError::BucketType(other)),
        };
        let mut buckets = self.buckets.unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        buckets.retain(|b| seen.insert(*b));
        if buckets.len() > max {
            return Err(EntryError::TooManyBuckets {
                count: buckets.len(),
                max,
            });
        }
        let mut ka = KnownAddress::new(addr, src, SystemTime::UNIX_EPOCH);
        ka.kind = kind;
        for b in buckets {
            let Some(idx) = u16::try_from(b).ok().filter(|&i| usize::from(i) < count) else {
                let kind = if kind == BucketKind::New {
                    "new"
                } else {
                    "old"
                };
                return Err(EntryError::BucketIndex { kind, index: b });
            };
            ka.add_bucket(idx);
        }
        ka.attempts = self.attempts;
        ka.last_attempt = parse_time(self.last_attempt)?;
        ka.last_success = parse_time(self.last_success)?;
        ka.last_ban_time = parse_time(self.last_ban_time)?;
        // Only a new entry can be unverified (a good one was reached).
        ka.unverified = self.mukan_unverified && kind == BucketKind::New;
        Ok(ka)
    }
}
