//! [`Config`]: the switch's part of `config.toml`'s `[p2p]`, and the errors of building a
//! switch.

use std::sync::Arc;
use std::time::Duration;

use mukan_reactor_api::{ChannelId, DenyList, NodeId, ParsedAddress};

use crate::backoff::RedialPolicy;

/// What the switch is told by the node (Go `config.P2PConfig`, the fields the switch reads).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Inbound peers kept, unconditional peers not counted (`max_num_inbound_peers`, 40).
    /// When they are all taken, a newcomer evicts the peer [`select_victim`](crate::select_victim)
    /// picks, or is refused when every inbound peer is protected.
    pub max_num_inbound_peers: usize,
    /// Of those, how many one netgroup may hold (IPv4 /16, IPv6 /32:
    /// [`NetGroup::capped`](mukan_reactor_api::NetGroup::capped)), 10: a newcomer from a
    /// netgroup that holds as many is refused. Loopback and private addresses are exempt,
    /// and so are persistent and unconditional peers. Set it to `max_num_inbound_peers` or
    /// more to turn the cap off.
    pub max_inbound_per_netgroup: usize,
    /// Outbound peers kept, persistent and unconditional peers not counted
    /// (`max_num_outbound_peers`, 10). Enforced on every dial path.
    pub max_num_outbound_peers: usize,
    /// The peers to keep connected (`persistent_peers`), parsed once; a host name is kept
    /// and resolved again at every dial.
    pub persistent_peers: Vec<ParsedAddress>,
    /// Peers exempt from both peer limits (`unconditional_peer_ids`).
    pub unconditional_peer_ids: Vec<NodeId>,
    /// Peers whose addresses are never gossiped (`private_peer_ids`); handed to the address
    /// book.
    pub private_peer_ids: Vec<NodeId>,
    /// IDs and IP networks refused on every dial and on inbound peers; shared with the
    /// transport and changeable at runtime ([`Switch::deny`](crate::Switch::deny)).
    pub deny_list: Arc<DenyList>,
    /// Cap on the wait between two dials of a persistent peer
    /// (`persistent_peers_max_dial_period`); zero for none.
    pub persistent_peers_max_dial_period: Duration,
    /// Keep redialing persistent peers after Go's 30 attempts.
    pub redial_persistent_forever: bool,
    /// Upper bound (exclusive) on the random delay before each dial of
    /// [`Switch::dial_peers_async`](crate::Switch::dial_peers_async) and
    /// [`Switch::dial_persistent_peers`](crate::Switch::dial_persistent_peers) (Go's
    /// `DialPeersAsync`: 3 s, so that nodes started together do not dial at once). Zero dials
    /// at once. An explicit dial ([`Dialer::dial_peer_with_address`]) never waits, nor does a
    /// redial (it has its own schedule).
    ///
    /// [`Dialer::dial_peer_with_address`]: mukan_reactor_api::Dialer::dial_peer_with_address
    pub dial_randomizer: Duration,
    /// Allow several peers with one IP (`allow_duplicate_ip`); when false, an address whose
    /// IP is already connected counts as existing.
    pub allow_duplicate_ip: bool,
    /// Bound on flushing a peer's queues on a graceful stop and at shutdown: the switch waits
    /// at most this long for each `flush_stop`. (The connection bounds its own flush by its
    /// MConnection setting; `mukan_node::NodeBuilder` sets both from this one value.)
    pub flush_timeout: Duration,
    /// Bound on one host-name resolution.
    pub resolve_timeout: Duration,
    /// A host name (of a persistent peer or a seed) is dialed only at a routable address:
    /// loopback, private, link-local and other non-routable answers are skipped, and a name
    /// with no other answer does not resolve (a public name rebound to an inside address).
    /// An entry written as such an IP is dialed as given. Default `false` (Go dials what the
    /// name resolves to); `mukan-p2p` sets it from `addr_book_strict`.
    pub routable_names_only: bool,
    /// Seed of the switch's random source (dial order and jitter); `None` for a random seed.
    pub rng_seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_num_inbound_peers: 40,
            max_inbound_per_netgroup: 10,
            max_num_outbound_peers: 10,
            persistent_peers: Vec::new(),
            unconditional_peer_ids: Vec::new(),
            private_peer_ids: Vec::new(),
            deny_list: Arc::new(DenyList::new()),
            persistent_peers_max_dial_period: Duration::ZERO,
            redial_persistent_forever: false,
            dial_randomizer: Duration::from_secs(3),
            allow_duplicate_ip: false,
            flush_timeout: Duration::from_secs(10),
            resolve_timeout: Duration::from_secs(5),
            routable_names_only: false,
            rng_seed: None,
        }
    }
}

impl Config {
    pub(crate) fn redial_policy(&self) -> RedialPolicy {
        RedialPolicy {
            max_dial_period: (!self.persistent_peers_max_dial_period.is_zero())
                .then_some(self.persistent_peers_max_dial_period),
            forever: self.redial_persistent_forever,
        }
    }
}

/// Why a switch could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two reactors registered under one name.
    #[error("a reactor named {0:?} is already registered")]
    DuplicateReactorName(String),
    /// Two reactors (or one reactor twice) claim a channel.
    #[error("channel {channel} is claimed by reactors {first:?} and {second:?}")]
    DuplicateChannel {
        /// The channel.
        channel: ChannelId,
        /// The reactor registered first.
        first: String,
        /// The reactor that claimed it again.
        second: String,
    },
    /// [`Switch::start`](crate::Switch::start) was called twice, or after
    /// [`Switch::stop`](crate::Switch::stop).
    #[error("the switch was already started")]
    AlreadyStarted,
}
