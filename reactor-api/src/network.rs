//! What reactors may ask of the p2p layer: the data plane ([`Network`]) and dialing
//! ([`Dialer`]), with their outcomes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use mukan_node_key::NodeId;

use crate::{
    ChannelId, NetAddress, ParsedAddress, Peer, Reactor, ReactorError, RejectReason,
    TransportError, downcast_reactor,
};

/// The p2p layer as every reactor sees it: the data plane (the reactor-facing part of Go's
/// `*p2p.Switch`, `spec/p2p/reactor-api/p2p-api.md`): our address, the peers, broadcast,
/// stopping a peer. Dialing is the separate [`Dialer`].
///
/// Object-safe; reactors hold a `Weak<dyn Network>` ([`Reactor::set_switch`]). No method
/// blocks.
pub trait Network: Send + Sync + 'static {
    /// Our own address (`id@listen-ip:port`).
    fn net_address(&self) -> NetAddress;

    /// All connected peers.
    fn peers(&self) -> Vec<Arc<dyn Peer>>;

    /// The connected peer with ID `id`.
    fn peer(&self, id: &NodeId) -> Option<Arc<dyn Peer>>;

    /// Outbound, inbound (both excluding unconditional peers) and in-progress dials
    /// (Go `NumPeers`).
    fn num_peers(&self) -> PeerCounts;

    /// Queues `message` on `channel` to every connected peer that has the channel, without
    /// waiting: the bytes are shared (encoded once), no task is started, and each peer's
    /// outcome is reported. A peer whose queue is full does not get the message (Go waits up
    /// to the send timeout per peer; reactors that need that use [`Peer::send`]).
    fn broadcast(&self, channel: ChannelId, message: Bytes) -> BroadcastReport;

    /// Disconnects peer `id` because of `reason` ([`StopReason::Reactor`](crate::StopReason::Reactor)) and informs every
    /// reactor; a persistent peer is redialed. No-op if the peer is not connected.
    fn stop_peer_for_error(&self, id: &NodeId, reason: ReactorError);

    /// Flushes what is queued for peer `id` (bounded by the flush timeout), then disconnects
    /// it without redialing ([`StopReason::Graceful`](crate::StopReason::Graceful)).
    fn stop_peer_gracefully(&self, id: &NodeId);

    /// Tells the address book that peer `id` behaved well (Go `MarkPeerAsGood`).
    fn mark_peer_as_good(&self, id: &NodeId);

    /// Peer `id` just sent a message that did us good (an answer we asked for, something
    /// new): call it from [`Reactor::receive`] after checking the message. When the inbound
    /// slots are full, the peers that most recently did so are among those protected from
    /// eviction, so an attacker must do useful work to keep a slot that way. No-op if the
    /// peer is not connected. Cheap (a lookup and a store; nothing waits). Required (no default),
    /// so that a wrapper cannot silently lose the signal.
    fn mark_useful(&self, id: &NodeId);

    /// The reactor registered under `name` (see also `reactor_as` on `dyn Network`).
    fn reactor(&self, name: &str) -> Option<Arc<dyn Reactor>>;
}

/// The dialing side of the switch, for the one reactor that decides whom to connect to (PEX);
/// handed over by [`Reactor::set_dialer`]. Object-safe.
pub trait Dialer: Send + Sync + 'static {
    /// The most outbound peers the switch keeps (`max_num_outbound_peers`); persistent and
    /// unconditional peers are not counted against it.
    fn max_num_outbound_peers(&self) -> usize;

    /// Whether `addr` is being dialed or already connected (by ID, or by IP when duplicate IPs
    /// are not allowed) (Go `IsDialingOrExistingAddress`).
    fn is_dialing_or_existing_address(&self, addr: &NetAddress) -> bool;

    /// Dials `addr` at once and adds it as a peer.
    ///
    /// # Errors
    /// A [`DialError`].
    ///
    /// # Cancel safety
    /// Dropping the future abandons the dial.
    fn dial_peer_with_address(
        &self,
        addr: NetAddress,
    ) -> Pin<Box<dyn Future<Output = Result<(), DialError>> + Send + '_>>;

    /// Dials `addr` as [`Dialer::dial_peer_with_address`], resolving a host name first, afresh
    /// at every call, the way the switch resolves its persistent peers (for configured
    /// addresses such as PEX seeds, whose names may move). Required (no default), so that a
    /// wrapper cannot silently lose the resolution.
    ///
    /// # Errors
    /// A [`DialError`]; [`DialError::Unresolved`] when the name does not resolve.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the dial.
    fn dial_parsed_address(
        &self,
        addr: ParsedAddress,
    ) -> Pin<Box<dyn Future<Output = Result<(), DialError>> + Send + '_>>;
}

/// Peer counts returned by [`Network::num_peers`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounts {
    /// Connected peers we dialed.
    pub outbound: usize,
    /// Connected peers that dialed us.
    pub inbound: usize,
    /// Dials in progress.
    pub dialing: usize,
}

/// Why a dial failed ([`Dialer::dial_peer_with_address`], [`Dialer::dial_parsed_address`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// Already connected to or dialing this address (Go
    /// `ErrCurrentlyDialingOrExistingAddress`).
    #[error("connection with {0} has been established or dialed")]
    AlreadyDialingOrConnected(NetAddress),
    /// The address is our own.
    #[error("cannot dial self ({0})")]
    SelfAddress(NetAddress),
    /// The switch is not running.
    #[error("switch is not running")]
    NotRunning,
    /// The transport failed or rejected the connection (a timeout, a socket error, a
    /// rejection with its [`RejectDetail`](crate::RejectDetail)).
    #[error("dial failed: {0}")]
    Transport(#[source] TransportError),
    /// The address or its ID is on the deny list.
    #[error("{0} is on the deny list")]
    Denied(NetAddress),
    /// The outbound limit is reached.
    #[error("outbound peer limit reached")]
    OutboundLimit,
    /// The host name did not resolve.
    #[error("cannot resolve {0}")]
    Unresolved(NetAddress),
}

impl DialError {
    /// How the dial ended, as one stable category.
    pub fn outcome(&self) -> DialOutcome {
        match self {
            Self::AlreadyDialingOrConnected(_) => DialOutcome::Duplicate,
            Self::SelfAddress(_) => DialOutcome::SelfAddress,
            Self::NotRunning => DialOutcome::NotRunning,
            Self::Transport(TransportError::Timeout(_) | TransportError::FilterTimeout) => {
                DialOutcome::Timeout
            }
            Self::Transport(TransportError::Closed) => DialOutcome::NotRunning,
            Self::Transport(e) => match e.reject_reason() {
                Some(RejectReason::SelfConnection) => DialOutcome::SelfAddress,
                Some(RejectReason::Denied) => DialOutcome::Denied,
                Some(_) => DialOutcome::Rejected,
                None => DialOutcome::Failed,
            },
            Self::Denied(_) => DialOutcome::Denied,
            Self::OutboundLimit => DialOutcome::OutboundLimit,
            Self::Unresolved(_) => DialOutcome::Unresolved,
        }
    }
}

/// How a dial ended: its [`DialError::outcome`], or [`DialOutcome::Connected`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DialOutcome {
    /// Connected and handed to the peer's task.
    Connected,
    /// Already connected or being dialed.
    Duplicate,
    /// The ID or IP is on the deny list.
    Denied,
    /// The transport failed (I/O).
    Failed,
    /// The outbound limit was reached.
    OutboundLimit,
    /// The transport rejected the connection (authentication, incompatible, filtered…).
    Rejected,
    /// The address was our own.
    SelfAddress,
    /// A stage of the dial timed out.
    Timeout,
    /// The host name did not resolve.
    Unresolved,
    /// The switch was not running.
    NotRunning,
}

impl DialOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::Connected,
        Self::Duplicate,
        Self::Denied,
        Self::Failed,
        Self::OutboundLimit,
        Self::Rejected,
        Self::SelfAddress,
        Self::Timeout,
        Self::Unresolved,
        Self::NotRunning,
    ];

    /// The outcome of a dial's result.
    pub fn of(result: &Result<(), DialError>) -> Self {
        match result {
            Ok(()) => Self::Connected,
            Err(e) => e.outcome(),
        }
    }

    /// A stable metrics label (`dials_total{outcome}`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Duplicate => "duplicate",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::OutboundLimit => "outbound_limit",
            Self::Rejected => "rejected",
            Self::SelfAddress => "self",
            Self::Timeout => "timeout",
            Self::Unresolved => "unresolved",
            Self::NotRunning => "not_running",
        }
    }
}

impl dyn Network {
    /// The reactor registered under `name`, as its concrete type `R`.
    pub fn reactor_as<R: Reactor>(&self, name: &str) -> Option<Arc<R>> {
        self.reactor(name).and_then(downcast_reactor::<R>)
    }
}

/// What happened to a broadcast message at one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BroadcastOutcome {
    /// Queued for sending.
    Queued,
    /// The channel's send queue was full: not queued.
    Full,
    /// The connection is closing: not queued.
    Closed,
    /// The peer does not have the channel: not sent (Go skips such peers too).
    UnknownChannel,
}

/// The per-peer outcomes of [`Network::broadcast`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// One entry per peer connected when the broadcast was made.
    pub outcomes: Vec<(NodeId, BroadcastOutcome)>,
}

impl BroadcastReport {
    /// How many peers the message was queued for.
    pub fn queued(&self) -> usize {
        self.count(BroadcastOutcome::Queued)
    }

    /// How many peers had `outcome`.
    pub fn count(&self, outcome: BroadcastOutcome) -> usize {
        self.outcomes.iter().filter(|(_, o)| *o == outcome).count()
    }
}
