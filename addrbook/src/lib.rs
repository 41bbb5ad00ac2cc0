//! `mukan-addrbook`: the address book of a CometBFT v0.38 node, compatible with its
//! `addrbook.json`.
//!
//! [`AddrBook`] implements [`mukan_reactor_api::AddressBook`] as
//! `spec/p2p/implementation/addressbook.md` and Go's `p2p/pex/addrbook.go` describe: 256 new and 64 old
//! buckets of at most 64 addresses, placed by a keyed hash of the address's and the source's
//! network groups ([`group_key`]), so that one source group reaches at most 32 new buckets
//! and one address group at most 4 old buckets; the add rules, attempts and the `is_bad`
//! rules, good and bad marking, bans and their reinstatement, `pick_address(bias)` and the
//! PEX selections.
//!
//! What it does not do: no IO except [`AddrBook::load`] / [`AddrBook::save`] /
//! [`AddrBook::save_snapshot`] (the owner
//! decides when to save; there is no background task), no clock (every time-dependent
//! operation takes `now`), no global randomness (the RNG is given to [`AddrBook::new`]).
//!
//! # Deviations from Go v0.38.25 (all following the spec or fixing a crash)
//!
//! - A bucket never holds more than 64 addresses (Go's `len > 64` checks allow 65).
//! - When an old bucket is full, its oldest address is demoted to a new bucket, as the spec
//!   says; Go drops it from the book. Reinstated bans of formerly good addresses likewise
//!   come back as new instead of being lost.
//! - Bucket placement uses SHA-256 keyed by the book's persisted `key`, so it is stable
//!   across restarts; Go uses HighwayHash under a random per-process key. No peer can
//!   observe either, and Go loads the stored bucket indexes without recomputing them, so
//!   interoperability does not depend on the hash.
//! - Bans survive a restart: they are saved in an extra `"mukan_banned"` array that Go's
//!   decoder ignores (see [`AddrBook::to_json`]). They are kept apart from the buckets and
//!   bounded ([`Config::max_bans`], the ban that ends first is dropped); an ID the table does
//!   not hold is banned too, without entering the table (Go ignores it). Ended bans come back
//!   one per `reinstate_bad_peers` call.
//! - A ban that has ended is lifted by `add_address` itself (Go refuses the address until
//!   `ReinstateBadPeers` runs). Banning an already banned ID extends the ban.
//! - Test-before-evict (Bitcoin Core): a promotion into a full old bucket waits for a test of
//!   the bucket's oldest entry (`tried_collision`, `resolve_collisions`).
//! - Self-reported addresses not reached yet (`add_unverified_address`) are never served.
//! - An unusable `addrbook.json` is a typed [`PersistError`]; the file is moved aside
//!   intact and the book starts empty (Go panics). Files over
//!   [`Config::max_file_size`] are not read.
//! - [`AddressBook::selection`](mukan_reactor_api::AddressBook::selection) is a uniform
//!   sample of the stored entries, as Go's; `pick_address` keeps Go's two-step choice
//!   (uniform non-empty bucket, then uniform entry).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod anchors;
mod bans;
mod book;
mod error;
mod file;
mod group;
mod known_address;
mod selection;
mod time;

pub use anchors::{AnchorsError, read_anchors, remove_anchors, save_anchors, take_anchors};
pub use book::{
    AddrBook, BUCKET_SIZE, BucketKind, Config, DEFAULT_MAX_BANS, MAX_TRIED_COLLISIONS,
    NEW_BUCKET_COUNT, OLD_BUCKET_COUNT, REPLACEMENT_WINDOW, TEST_WINDOW,
};
pub use error::{EntryError, PersistError};
pub use file::{LoadReport, Snapshot};
pub use group::group_key;
