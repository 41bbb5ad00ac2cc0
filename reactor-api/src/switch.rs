//! The [`Switch`] trait: what reactors may ask of the p2p layer.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use mukan_node_key::NodeId;

use crate::{ChannelId, NetAddress, ParsedAddress, Peer, Reactor, downcast_reactor};

/// The p2p layer as reactors see it (the reactor-facing part of Go's `*p2p.Switch`,
/// `spec/p2p/reactor-api/p2p-api.md`). Object-safe; reactors hold a `Weak<dyn Switch>`.
///
/// No method blocks; the ones that wait return a boxed future.
pub trait Switch: Send + Sync + 'static {
    /// Our own address (`id@listen-ip:port`).
    fn net_address(&self) -> NetAddress;

    /// All connected peers.
    fn peers(&self) -> Vec<Arc<dyn Peer>>;

    /// The connected peer with ID `id`.
    fn peer(&self, id: &NodeId) -> Option<Arc<dyn Peer>>;

    /// Outbound, inbound (both excluding unconditional peers) and in-progress dials
    /// (Go `NumPeers`).
    fn num_peers(&self) -> PeerCounts;

    /// The most outbound peers the switch keeps (`max_num_outbound_peers`); persistent and
    /// unconditional peers are not counted against it.
    fn max_num_outbound_peers(&self) -> usize;

    /// Queues `message` on `channel` to every connected peer that has the channel, without
    /// waiting: the bytes are shared (encoded once), no task is started, and each peer's
    /// outcome is reported. A peer whose queue is full does not get the message (Go waits up
    /// to the send timeout per peer; reactors that need that use [`Peer::send`]).
    fn broadcast(&self, channel: ChannelId, message: Bytes) -> BroadcastReport;

    /// Disconnects peer `id` because of `reason` ([`StopReason::Reactor`](crate::StopReason::Reactor)) and informs every
    /// reactor; a persistent peer is redialed. No-op if the peer is not connected.
    fn stop_peer_for_error(&self, id: &NodeId, reason: Box<dyn Error + Send + Sync>);

    /// Flushes what is queued for peer `id` (bounded by the flush timeout), then disconnects
    /// it without redialing ([`StopReason::Graceful`](crate::StopReason::Graceful)).
    fn stop_peer_gracefully(&self, id: &NodeId);

    /// Tells the address book that peer `id` behaved well (Go `MarkPeerAsGood`).
    fn mark_peer_as_good(&self, id: &NodeId);

    /// The reactor registered under `name` (see also `reactor_as` on `dyn Switch`).
    fn reactor(&self, name: &str) -> Option<Arc<dyn Reactor>>;

    /// Whether `addr` is being dialed or already connected (by ID, or by IP when duplicate IPs
    /// are not allowed) (Go `IsDialingOrExistingAddress`).
    fn is_dialing_or_existing_address(&self, addr: &NetAddress) -> bool;

    /// Dials `addr` and adds it as a peer.
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

    /// Dials `addr` as [`Switch::dial_peer_with_address`], resolving a host name first, afresh
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

/// Peer counts returned by [`Switch::num_peers`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounts {
    /// Connected peers we dialed.
    pub outbound: usize,
    /// Connected peers that dialed us.
    pub inbound: usize,
    /// Dials in progress.
    pub dialing: usize,
}

/// Why [`Switch::dial_peer_with_address`] failed.
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
    /// The transport failed or rejected the connection, or adding the peer failed.
    #[error("dial failed: {0}")]
    Failed(#[source] Box<dyn Error + Send + Sync>),
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

impl dyn Switch {
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

/// The per-peer outcomes of [`Switch::broadcast`].
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
