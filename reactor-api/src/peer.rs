//! The [`Peer`] handle a reactor talks to, and what it reports.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use mukan_node_key::NodeId;

use crate::{ChannelId, NetAddress, NodeInfo};

/// A connected peer, as reactors see it (Go `p2p.Peer`).
///
/// Handed to reactors as `Arc<dyn Peer>`; object-safe. Implementations are cheap handles onto
/// a connection owned by a task: no method blocks, and [`Peer::send`] waits for queue space at
/// most the connection's send timeout (10 s by default).
///
/// Sending on a channel the peer did not list in its [`NodeInfo::channels`] fails with
/// [`SendError::UnknownChannel`] / [`TrySendError::UnknownChannel`], as Go's `peer.send`
/// refuses it.
pub trait Peer: Send + Sync + 'static {
    /// The authenticated ID (derived from the key of the secret connection).
    fn id(&self) -> NodeId;

    /// The info the peer sent in the handshake (validated and compatible).
    fn node_info(&self) -> &NodeInfo;

    /// Whether we dialed the peer or it dialed us.
    fn direction(&self) -> Direction;

    /// Whether the switch reconnects to the peer when the connection drops.
    fn is_persistent(&self) -> bool;

    /// The address of the peer's socket: the dialed address for an outbound peer, the remote
    /// address of the accepted socket for an inbound one (Go `SocketAddr`).
    fn socket_addr(&self) -> NetAddress;

    /// A snapshot of the connection's counters.
    fn status(&self) -> PeerStatus;

    /// Queues `message` on `channel`, waiting for queue space at most the send timeout.
    ///
    /// # Errors
    /// [`SendError::Closed`] if the connection is stopped, [`SendError::Timeout`] if the queue
    /// stayed full, [`SendError::UnknownChannel`] if the channel is not one of the peer's.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes leaves `message` unsent.
    fn send(
        &self,
        channel: ChannelId,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + '_>>;

    /// Queues `message` on `channel` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`], [`TrySendError::Closed`] or [`TrySendError::UnknownChannel`].
    fn try_send(&self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError>;

    /// Per-peer storage that reactors share (Go `Peer.Set` / `Peer.Get`), keyed by type.
    fn data(&self) -> &PeerData;
}

/// Which side opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer dialed us.
    Inbound,
    /// We dialed the peer.
    Outbound,
}

impl Direction {
    /// `true` for [`Direction::Outbound`] (Go `IsOutbound`).
    pub fn is_outbound(self) -> bool {
        self == Self::Outbound
    }
}

/// A snapshot of a connection's counters (Go `ConnectionStatus`).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PeerStatus {
    /// Time since the connection started.
    pub duration: Duration,
    /// Outgoing traffic.
    pub send: FlowStatus,
    /// Incoming traffic.
    pub recv: FlowStatus,
    /// One entry per channel, in descriptor order.
    pub channels: Vec<ChannelStatus>,
    /// The lowest round trip measured between one of our pings and its pong on this
    /// connection, `None` before the first pong. Inbound eviction protects the peers with the
    /// lowest (an attacker cannot move closer without moving).
    pub min_ping: Option<Duration>,
}

impl PeerStatus {
    /// Builds a status.
    pub fn new(
        duration: Duration,
        send: FlowStatus,
        recv: FlowStatus,
        channels: Vec<ChannelStatus>,
    ) -> Self {
        Self {
            duration,
            send,
            recv,
            channels,
            min_ping: None,
        }
    }

    /// The same status with the lowest ping round trip measured.
    #[must_use]
    pub fn with_min_ping(mut self, min_ping: Option<Duration>) -> Self {
        self.min_ping = min_ping;
        self
    }
}

/// Traffic in one direction (a subset of Go `flowrate.Status`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct FlowStatus {
    /// Bytes transferred since the start, length prefixes included.
    pub bytes: u64,
    /// Recent rate, bytes per second (exponential moving average over about 1 s).
    pub cur_rate: u64,
    /// Average rate since the start, bytes per second.
    pub avg_rate: u64,
}

impl FlowStatus {
    /// Builds a flow status.
    pub fn new(bytes: u64, cur_rate: u64, avg_rate: u64) -> Self {
        Self {
            bytes,
            cur_rate,
            avg_rate,
        }
    }
}

/// The state of one channel of a connection (Go `ChannelStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStatus {
    /// The channel.
    pub id: ChannelId,
    /// Its send queue capacity, in messages.
    pub send_queue_capacity: usize,
    /// Messages waiting in its send queue (including one partly sent).
    pub send_queue_size: usize,
    /// Its priority.
    pub priority: u32,
    /// Bytes sent recently (decays by ×0.8 every 2 s); what the scheduler compares.
    pub recently_sent: u64,
}

impl ChannelStatus {
    /// Builds a channel status.
    pub fn new(
        id: ChannelId,
        send_queue_capacity: usize,
        send_queue_size: usize,
        priority: u32,
        recently_sent: u64,
    ) -> Self {
        Self {
            id,
            send_queue_capacity,
            send_queue_size,
            priority,
            recently_sent,
        }
    }
}

/// Why [`Peer::send`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is stopped.
    #[error("peer connection closed")]
    Closed,
    /// The channel's queue stayed full for the whole send timeout.
    #[error("send timed out")]
    Timeout,
    /// The channel is not open on this connection.
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelId),
}

/// Why [`Peer::try_send`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError {
    /// The connection is stopped.
    #[error("peer connection closed")]
    Closed,
    /// The channel's queue is full.
    #[error("send queue full")]
    Full,
    /// The channel is not open on this connection.
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelId),
}

/// A type-keyed store of values attached to a peer, shared by all reactors.
///
/// Each type holds at most one value; use a newtype per key. Values are `Arc`s so readers
/// never hold the lock while using them.
///
/// ```
/// # use mukan_reactor_api::PeerData;
/// #[derive(Debug, PartialEq)]
/// struct Height(u64);
/// let data = PeerData::default();
/// assert!(data.insert(Height(5)).is_none());
/// assert_eq!(*data.get::<Height>().unwrap(), Height(5));
/// ```
#[derive(Default)]
pub struct PeerData {
    map: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl PeerData {
    /// Stores `value`, returning the previous value of the same type.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) -> Option<Arc<T>> {
        let old = self.lock().insert(TypeId::of::<T>(), Arc::new(value));
        old.and_then(|v| v.downcast::<T>().ok())
    }

    /// The stored value of type `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let v = self.lock().get(&TypeId::of::<T>()).cloned();
        v.and_then(|v| v.downcast::<T>().ok())
    }

    /// Removes and returns the stored value of type `T`.
    pub fn remove<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let v = self.lock().remove(&TypeId::of::<T>());
        v.and_then(|v| v.downcast::<T>().ok())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Arc<dyn Any + Send + Sync>>> {
        // No code runs under the lock except HashMap operations, so a poisoned lock still
        // holds a consistent map.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for PeerData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerData")
            .field("entries", &self.lock().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_data_is_keyed_by_type() {
        struct A(u8);
        struct B(u8);
        let d = PeerData::default();
        assert!(d.insert(A(1)).is_none());
        assert!(d.insert(B(2)).is_none());
        assert_eq!(d.insert(A(3)).map(|a| a.0), Some(1));
        assert_eq!(d.get::<A>().map(|a| a.0), Some(3));
        assert_eq!(d.remove::<B>().map(|b| b.0), Some(2));
        assert!(d.get::<B>().is_none());
    }
}
