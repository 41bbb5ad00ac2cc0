//! The [`Switch`] trait: what reactors may ask of the p2p layer.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use mukan_node_key::NodeId;

use crate::{ChannelId, NetAddress, Peer, Reactor};

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

    /// Queues `message` on `channel` to every connected peer. The sends start when this is
    /// called; the returned future need not be awaited and resolves, once every peer accepted
    /// or timed out, to the number of peers that accepted.
    fn broadcast(
        &self,
        channel: ChannelId,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = usize> + Send + 'static>>;

    /// Disconnects peer `id` because of `reason` and informs every reactor; a persistent peer
    /// is redialed. No-op if the peer is not connected.
    fn stop_peer_for_error(&self, id: &NodeId, reason: Box<dyn Error + Send + Sync>);

    /// Disconnects peer `id` without redialing.
    fn stop_peer_gracefully(&self, id: &NodeId);

    /// Tells the address book that peer `id` behaved well (Go `MarkPeerAsGood`).
    fn mark_peer_as_good(&self, id: &NodeId);

    /// The reactor registered under `name`.
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
}
