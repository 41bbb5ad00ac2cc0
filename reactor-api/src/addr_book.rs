//! [`AddressBook`]: what the PEX reactor and the switch need from the address book
//! (CometBFT `p2p/pex/addrbook.go: AddrBook`).
//!
//! The trait is object-safe (held as `dyn AddressBook`, typically behind the owner's mutex)
//! and sans-IO: operations that depend on time take `now` (wall-clock `SystemTime`, because
//! attempt and ban times are persisted in `addrbook.json`), randomness belongs to the
//! implementation (seeded at construction), and persistence is not part of the contract
//! (the owner of the concrete book decides when to save).

use std::time::{Duration, SystemTime};

use mukan_node_key::NodeId;

use crate::{InvalidAddress, NetAddress};

/// The address book as seen by PEX and the switch.
///
/// Biases are percentages towards new (not yet proven good) addresses; values above 100 are
/// treated as 100 (Go clamps to `[0, 100]`).
pub trait AddressBook: Send {
    /// Records one of our own addresses so that it is never added (Go `AddOurAddress`).
    fn add_our_address(&mut self, addr: NetAddress);

    /// Whether `addr` was recorded with [`add_our_address`](Self::add_our_address).
    fn our_address(&self, addr: &NetAddress) -> bool;

    /// Node IDs that must never be stored nor accepted as a source (`private_peer_ids`).
    fn add_private_ids(&mut self, ids: &[NodeId]);

    /// Adds `addr`, learned from `src`, to a new bucket (Go `AddAddress`). A known ID gains at
    /// most one more new-bucket reference, with decreasing probability; a known good (old) ID
    /// is left as it is. Both count as success.
    ///
    /// # Errors
    /// The [`AddAddressError`] reason the address was refused, checked in Go's order.
    fn add_address(
        &mut self,
        addr: NetAddress,
        src: NetAddress,
        now: SystemTime,
    ) -> Result<(), AddAddressError>;

    /// Adds an address a peer reported for itself that we have not reached: its IP is not
    /// the IP of the connection it came over. It may be dialed, but it is never served to
    /// others ([`selection`](Self::selection), [`selection_with_bias`](Self::selection_with_bias))
    /// until a handshake with it succeeds ([`mark_good`](Self::mark_good)). Checks and
    /// errors as [`add_address`](Self::add_address); an ID already stored is left as it is.
    ///
    /// The default stores nothing: a book that cannot keep such an address out of its
    /// selections must not take it.
    ///
    /// # Errors
    /// As [`add_address`](Self::add_address).
    fn add_unverified_address(
        &mut self,
        addr: NetAddress,
        src: NetAddress,
        now: SystemTime,
    ) -> Result<(), AddAddressError> {
        let _ = (addr, src, now);
        Ok(())
    }

    /// Forgets the entry with `addr`'s ID (Go `RemoveAddress`).
    fn remove_address(&mut self, addr: &NetAddress);

    /// Whether an entry with `addr`'s ID is stored (banned entries are not).
    fn has_address(&self, addr: &NetAddress) -> bool;

    /// Fewer than 1000 addresses are stored (Go `NeedMoreAddrs`).
    fn need_more_addrs(&self) -> bool {
        self.size() < NEED_ADDRESS_THRESHOLD
    }

    /// No address is stored.
    fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// The number of stored addresses (new + old), banned ones excluded.
    fn size(&self) -> usize;

    /// An address to dial, or `None` when the book (or the chosen side) is empty. With `b` =
    /// `bias_towards_new` (0–100), Go picks an old address with probability
    /// `√old·(100−b) / (√old·(100−b) + √new·b)`, else a new one.
    fn pick_address(&mut self, bias_towards_new: u8) -> Option<NetAddress>;

    /// Marks the peer good: attempts reset, moved to an old bucket (Go `MarkGood`). A book
    /// with test-before-evict may instead keep it new until the old entry it would evict
    /// has been tested ([`tried_collision`](Self::tried_collision)).
    fn mark_good(&mut self, id: NodeId, now: SystemTime);

    /// Test-before-evict: the address of an old entry that a pending promotion would evict,
    /// for the caller to test with a short connection (a feeler), reporting the outcome with
    /// [`mark_good`](Self::mark_good) or [`mark_attempt`](Self::mark_attempt). `None` when
    /// nothing waits (the default).
    fn tried_collision(&mut self) -> Option<NetAddress> {
        None
    }

    /// Settles the pending promotions whose resident was tested: a resident that answered
    /// recently stays, one that failed its test (or was not tested in time) is demoted and
    /// the newcomer takes its place. The default does nothing.
    fn resolve_collisions(&mut self, now: SystemTime) {
        let _ = now;
    }

    /// Records a failed dial attempt (Go `MarkAttempt`).
    fn mark_attempt(&mut self, addr: &NetAddress, now: SystemTime);

    /// Bans the peer's ID for `ban` from `now` and removes it from the buckets (Go
    /// `MarkBad`). Go ignores an ID it does not store; an implementation may record the ban
    /// anyway (without adding the address to its table), as long as its bans are bounded.
    fn mark_bad(&mut self, addr: &NetAddress, ban: Duration, now: SystemTime);

    /// Returns peers whose ban has ended to a new bucket (Go `ReinstateBadPeers`, which
    /// returns all of them; an implementation may return them a few at a time).
    fn reinstate_bad_peers(&mut self, now: SystemTime);

    /// Whether the entry with `addr`'s ID is in an old bucket (Go `IsGood`).
    fn is_good(&self, addr: &NetAddress) -> bool;

    /// Whether `addr`'s ID is banned at `now`.
    fn is_banned(&self, addr: &NetAddress, now: SystemTime) -> bool;

    /// A uniform random sample of the book for a PEX response (Go `GetSelection`): of size
    /// `min(250, max(min(32, size), size * 23 / 100))`.
    fn selection(&mut self) -> Vec<NetAddress>;

    /// A sample of the same size, with `bias_towards_new` percent new addresses and the rest
    /// old, topped up with new ones when old ones run out (Go `GetSelectionWithBias`).
    fn selection_with_bias(&mut self, bias_towards_new: u8) -> Vec<NetAddress>;
}

/// Below this many addresses the book asks for more (Go `needAddressThreshold`).
pub const NEED_ADDRESS_THRESHOLD: usize = 1000;

/// Why [`AddressBook::add_address`] refused an address (Go `ErrAddrBook*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddAddressError {
    /// The ID is banned (Go `ErrAddressBanned`).
    #[error("address {0} is currently banned")]
    Banned(NetAddress),
    /// The address fails [`NetAddress::valid`] (Go `ErrAddrBookInvalidAddr`).
    #[error("cannot add invalid address {addr}: {reason}")]
    Invalid {
        /// The address.
        addr: NetAddress,
        /// Why it is invalid.
        reason: InvalidAddress,
    },
    /// Strict mode and the address is not routable (Go `ErrAddrBookNonRoutable`).
    #[error("cannot add non-routable address {0}")]
    NonRoutable(NetAddress),
    /// The address is one of ours (Go `ErrAddrBookSelf`).
    #[error("cannot add ourselves with address {0}")]
    OwnAddress(NetAddress),
    /// The ID is private (Go `ErrAddrBookPrivate`).
    #[error("cannot add private peer with address {0}")]
    Private(NetAddress),
    /// The source's ID is private (Go `ErrAddrBookPrivateSrc`).
    #[error("cannot add peer coming from private peer with address {0}")]
    PrivateSource(NetAddress),
}

impl AddAddressError {
    /// The address or its source is private (Go's `PrivateAddr()` marker), which callers
    /// usually do not log.
    pub fn is_private(&self) -> bool {
        matches!(self, Self::Private(_) | Self::PrivateSource(_))
    }
}

/// An address book shared by the switch, PEX and the node: a short lock, never held across an
/// `.await` nor while doing I/O (the owner of the concrete book saves a snapshot).
pub type SharedAddressBook = std::sync::Arc<parking_lot::Mutex<dyn AddressBook>>;
