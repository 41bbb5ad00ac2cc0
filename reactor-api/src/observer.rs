//! [`Observer`]: the one place where the switch reports what happens (peers, traffic, dials,
//! refusals), for metrics, statistics and logs.

use crate::{ChannelId, DialError, ParsedAddress, Peer, StopReason, TransportError};

/// Told of everything the switch does, as it happens: one observation point for metrics,
/// statistics and logs, instead of wrapping reactors, peers or the switch.
///
/// Calls come from the switch's tasks (a peer's delivery task, dial tasks, the accept loop),
/// concurrently: every method must be cheap and must not block or call back into the switch.
/// Every method has a no-op default.
///
/// For every [`Observer::peer_connected`] the switch calls [`Observer::peer_stopped`] exactly
/// once, for the same connection, after the last traffic of that connection was reported.
pub trait Observer: Send + Sync + 'static {
    /// A connection to `peer` was admitted (it is about to start; `init_peer` follows). The
    /// returned handle is told of that connection's traffic: its methods run on the hot path
    /// (every message), so it holds whatever it counts into, ready, and does not allocate or
    /// format per message.
    fn peer_connected(&self, peer: &dyn Peer) -> Box<dyn PeerObserver> {
        let _ = peer;
        Box::new(IgnoredPeer)
    }

    /// The connection to `peer` ended for `reason` (after `remove_peer` on every reactor, when
    /// the peer had been announced to them).
    fn peer_stopped(&self, peer: &dyn Peer, reason: &StopReason) {
        let _ = (peer, reason);
    }

    /// A dial of `target` ended with `result`
    /// ([`DialOutcome::of`](crate::DialOutcome::of) classifies it).
    fn dial_finished(&self, target: &ParsedAddress, result: &Result<(), DialError>) {
        let _ = (target, result);
    }

    /// An inbound connection failed before it became a peer: its upgrade failed or timed out,
    /// or the transport refused it (the typed reason is in `error`).
    fn inbound_failed(&self, error: &TransportError) {
        let _ = error;
    }

    /// The switch refused an upgraded inbound `peer` for `refusal`; the connection is closed.
    fn inbound_refused(&self, peer: &dyn Peer, refusal: AdmissionRefusal) {
        let _ = (peer, refusal);
    }
}

/// Told of one connection's traffic ([`Observer::peer_connected`]). Byte counts are message
/// sizes, as in Go's metrics (not wire bytes).
pub trait PeerObserver: Send + Sync + 'static {
    /// A message of `bytes` bytes on `channel` was delivered to its reactor.
    /// `message_type` is what the reactor says of it
    /// ([`Reactor::message_type`](crate::Reactor::message_type)).
    fn received(&self, channel: ChannelId, message_type: Option<&'static str>, bytes: usize) {
        let _ = (channel, message_type, bytes);
    }

    /// A message of `bytes` bytes was queued on `channel` for this peer (a send, a try-send
    /// or a broadcast that succeeded; refused ones are not reported).
    fn sent(&self, channel: ChannelId, message_type: Option<&'static str>, bytes: usize) {
        let _ = (channel, message_type, bytes);
    }
}

/// A [`PeerObserver`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct IgnoredPeer;

impl PeerObserver for IgnoredPeer {}

/// Why the switch refused an upgraded inbound peer ([`Observer::inbound_refused`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdmissionRefusal {
    /// Its ID or IP is on the deny list.
    Denied,
    /// A connection to this peer is kept instead.
    Duplicate,
    /// The inbound limit is reached and no connected peer may be evicted for it.
    InboundLimit,
    /// Its netgroup ([`NetGroup::capped`](crate::NetGroup::capped)) already holds the most
    /// inbound peers one netgroup may hold.
    NetgroupLimit,
    /// The switch is not running.
    NotRunning,
}

impl AdmissionRefusal {
    /// A short stable label (`limit`, `netgroup_limit`, `denied`, `duplicate`,
    /// `not_running`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::Duplicate => "duplicate",
            Self::InboundLimit => "limit",
            Self::NetgroupLimit => "netgroup_limit",
            Self::NotRunning => "not_running",
        }
    }
}

/// Several observers as one, each told of everything in order.
#[derive(Default)]
pub struct Observers(Vec<std::sync::Arc<dyn Observer>>);

impl Observers {
    /// No observers.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Adds `observer` after the others.
    pub fn push(&mut self, observer: std::sync::Arc<dyn Observer>) {
        self.0.push(observer);
    }

    /// How many observers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("len", &self.0.len())
            .finish()
    }
}

impl Observer for Observers {
    fn peer_connected(&self, peer: &dyn Peer) -> Box<dyn PeerObserver> {
        match self.0.as_slice() {
            [] => Box::new(IgnoredPeer),
            [one] => one.peer_connected(peer),
            many => Box::new(PeerObservers(
                many.iter().map(|o| o.peer_connected(peer)).collect(),
            )),
        }
    }

    fn peer_stopped(&self, peer: &dyn Peer, reason: &StopReason) {
        for o in &self.0 {
            o.peer_stopped(peer, reason);
        }
    }

    fn dial_finished(&self, target: &ParsedAddress, result: &Result<(), DialError>) {
        for o in &self.0 {
            o.dial_finished(target, result);
        }
    }

    fn inbound_failed(&self, error: &TransportError) {
        for o in &self.0 {
            o.inbound_failed(error);
        }
    }

    fn inbound_refused(&self, peer: &dyn Peer, refusal: AdmissionRefusal) {
        for o in &self.0 {
            o.inbound_refused(peer, refusal);
        }
    }
}

/// The per-peer handles of several observers.
struct PeerObservers(Box<[Box<dyn PeerObserver>]>);

impl PeerObserver for PeerObservers {
    fn received(&self, channel: ChannelId, message_type: Option<&'static str>, bytes: usize) {
        for o in &self.0 {
            o.received(channel, message_type, bytes);
        }
    }

    fn sent(&self, channel: ChannelId, message_type: Option<&'static str>, bytes: usize) {
        for o in &self.0 {
            o.sent(channel, message_type, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::NodeId;
    use crate::testing::FakePeer;

    #[derive(Default)]
    struct Count {
        bytes: Arc<AtomicUsize>,
        stops: AtomicUsize,
    }

    struct CountPeer(Arc<AtomicUsize>);

    impl PeerObserver for CountPeer {
        fn received(&self, _: ChannelId, _: Option<&'static str>, bytes: usize) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    impl Observer for Count {
        fn peer_connected(&self, _: &dyn Peer) -> Box<dyn PeerObserver> {
            Box::new(CountPeer(self.bytes.clone()))
        }

        fn peer_stopped(&self, _: &dyn Peer, _: &StopReason) {
            self.stops.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn observers_tell_each_one_everything() {
        let (a, b) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let mut all = Observers::new();
        assert!(all.is_empty());
        all.push(a.clone());
        all.push(b.clone());
        assert_eq!(all.len(), 2);
        let peer = FakePeer::new(NodeId([1; 20]), vec![ChannelId(1)]);
        let handle = all.peer_connected(&peer);
        handle.received(ChannelId(1), None, 10);
        handle.sent(ChannelId(1), None, 99);
        all.peer_stopped(&peer, &StopReason::ClosedByPeer);
        for o in [&a, &b] {
            assert_eq!(o.bytes.load(Ordering::Relaxed), 10);
            assert_eq!(o.stops.load(Ordering::Relaxed), 1);
        }
        assert_eq!(AdmissionRefusal::InboundLimit.label(), "limit");
    }
}
