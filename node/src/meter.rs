//! Counts what reactors send and receive, per peer, channel and message type, for the
//! CometBFT metrics (`peer_send_bytes_total{peer_id,chID}`, `message_send_bytes_total
//! {message_type}`, …) and ours (PEX messages, peer stops by reason).
//!
//! [`Metered`] wraps a reactor: it sees every `receive`, hands the reactor a switch whose
//! peers count every send, and sees every `remove_peer` (with its typed reason). Byte counts
//! are message sizes, as in Go (not wire bytes).

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use mukan_reactor_api::{
    BroadcastOutcome, BroadcastReport, ChannelDescriptor, ChannelId, DialError, Envelope,
    NetAddress, NodeId, ParsedAddress, Peer, PeerCounts, Reactor, SendWatcher, StopReason, Switch,
    WatchedPeer,
};

use crate::metrics::Metrics;

/// The PEX channel.
const PEX: u8 = 0x00;

/// Go's message type label of a PEX message (`p2p_PexRequest`, `p2p_PexAddrs`): the field
/// number of the `Message` oneof, from its first tag byte.
fn message_type(channel: u8, msg: &[u8]) -> Option<&'static str> {
    if channel != PEX {
        return None;
    }
    match msg.first() {
        Some(0x0a) => Some("p2p_PexRequest"),
        Some(0x12) => Some("p2p_PexAddrs"),
        _ => None,
    }
}

fn count(metrics: &Metrics, peer: &NodeId, channel: ChannelId, len: usize, sent: bool, msg: &[u8]) {
    let bytes = len as u64;
    metrics.peer_bytes(&peer.to_string(), channel.0, sent, bytes);
    if let Some(t) = message_type(channel.0, msg) {
        metrics.message(sent, t, bytes);
        metrics.pex_message(sent, t.trim_start_matches("p2p_"));
    }
}

/// A reactor whose traffic is counted.
pub(crate) struct Metered {
    inner: Arc<dyn Reactor>,
    metrics: Arc<Metrics>,
    /// The switch handed to the inner reactor (kept alive here; the reactor holds it weakly).
    switch: OnceLock<Arc<MeteredSwitch>>,
}

impl Metered {
    pub(crate) fn new(inner: Arc<dyn Reactor>, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            metrics,
            switch: OnceLock::new(),
        }
    }

    fn wrap(&self, peer: &Arc<dyn Peer>) -> Arc<dyn Peer> {
        Arc::new(WatchedPeer::new(
            peer.clone(),
            SendMeter(self.metrics.clone()),
        ))
    }
}

impl Reactor for Metered {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        self.inner.channels()
    }

    fn set_switch(&self, switch: Weak<dyn Switch>) {
        let ours = self.switch.get_or_init(|| {
            Arc::new(MeteredSwitch {
                inner: switch,
                metrics: self.metrics.clone(),
            })
        });
        let weak: Weak<MeteredSwitch> = Arc::downgrade(ours);
        let weak: Weak<dyn Switch> = weak;
        self.inner.set_switch(weak);
    }

    fn on_start(&self) {
        self.inner.on_start();
    }

    fn on_stop(&self) {
        self.inner.on_stop();
    }

    fn init_peer(&self, peer: &Arc<dyn Peer>) {
        self.metrics.peer_started(&peer.id().to_string());
        self.inner.init_peer(&self.wrap(peer));
    }

    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        self.inner.add_peer(&self.wrap(peer));
    }

    fn remove_peer(&self, peer: &Arc<dyn Peer>, reason: &StopReason) {
        self.inner.remove_peer(&self.wrap(peer), reason);
        let channels: Vec<u8> = self.inner.channels().iter().map(|c| c.id.0).collect();
        self.metrics
            .peer_stopped(&peer.id().to_string(), &channels, reason.label());
    }

    fn filter(
        &self,
        channel: ChannelId,
        message: &[u8],
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        self.inner.filter(channel, message)
    }

    fn receive(&self, envelope: Envelope) -> Result<(), Box<dyn Error + Send + Sync>> {
        count(
            &self.metrics,
            &envelope.src.id(),
            envelope.channel,
            envelope.message.len(),
            false,
            &envelope.message,
        );
        let src = self.wrap(&envelope.src);
        self.inner.receive(Envelope { src, ..envelope })
    }
}

/// Counts a peer's sends (through [`WatchedPeer`], which delegates the rest).
struct SendMeter(Arc<Metrics>);

impl SendWatcher for SendMeter {
    fn sent(&self, peer: &NodeId, channel: ChannelId, message: &Bytes) {
        count(&self.0, peer, channel, message.len(), true, message);
    }
}

/// The switch as a metered reactor sees it: its peers count their sends.
struct MeteredSwitch {
    inner: Weak<dyn Switch>,
    metrics: Arc<Metrics>,
}

impl MeteredSwitch {
    fn wrap(&self, peer: Arc<dyn Peer>) -> Arc<dyn Peer> {
        Arc::new(WatchedPeer::new(peer, SendMeter(self.metrics.clone())))
    }
}

impl Switch for MeteredSwitch {
    fn net_address(&self) -> NetAddress {
        match self.inner.upgrade() {
            Some(s) => s.net_address(),
            // Only reachable while the node shuts down; any address will do.
            None => NetAddress::new(NodeId([0; 20]), [0, 0, 0, 0].into(), 0),
        }
    }

    fn peers(&self) -> Vec<Arc<dyn Peer>> {
        self.inner
            .upgrade()
            .map(|s| s.peers().into_iter().map(|p| self.wrap(p)).collect())
            .unwrap_or_default()
    }

    fn peer(&self, id: &NodeId) -> Option<Arc<dyn Peer>> {
        self.inner.upgrade()?.peer(id).map(|p| self.wrap(p))
    }

    fn num_peers(&self) -> PeerCounts {
        self.inner
            .upgrade()
            .map(|s| s.num_peers())
            .unwrap_or_default()
    }

    fn max_num_outbound_peers(&self) -> usize {
        self.inner
            .upgrade()
            .map_or(0, |s| s.max_num_outbound_peers())
    }

    fn broadcast(&self, channel: ChannelId, message: Bytes) -> BroadcastReport {
        let Some(s) = self.inner.upgrade() else {
            return BroadcastReport::default();
        };
        let report = s.broadcast(channel, message.clone());
        for (id, outcome) in &report.outcomes {
            if *outcome == BroadcastOutcome::Queued {
                count(&self.metrics, id, channel, message.len(), true, &message);
            }
        }
        report
    }

    fn stop_peer_for_error(&self, id: &NodeId, reason: Box<dyn Error + Send + Sync>) {
        if let Some(s) = self.inner.upgrade() {
            s.stop_peer_for_error(id, reason);
        }
    }

    fn stop_peer_gracefully(&self, id: &NodeId) {
        if let Some(s) = self.inner.upgrade() {
            s.stop_peer_gracefully(id);
        }
    }

    fn mark_peer_as_good(&self, id: &NodeId) {
        if let Some(s) = self.inner.upgrade() {
            s.mark_peer_as_good(id);
        }
    }

    fn reactor(&self, name: &str) -> Option<Arc<dyn Reactor>> {
        self.inner.upgrade()?.reactor(name)
    }

    fn is_dialing_or_existing_address(&self, addr: &NetAddress) -> bool {
        self.inner
            .upgrade()
            .is_some_and(|s| s.is_dialing_or_existing_address(addr))
    }

    fn dial_peer_with_address(
        &self,
        addr: NetAddress,
    ) -> Pin<Box<dyn Future<Output = Result<(), DialError>> + Send + '_>> {
        Box::pin(async move {
            match self.inner.upgrade() {
                Some(s) => s.dial_peer_with_address(addr).await,
                None => Err(DialError::NotRunning),
            }
        })
    }

    fn dial_parsed_address(
        &self,
        addr: ParsedAddress,
    ) -> Pin<Box<dyn Future<Output = Result<(), DialError>> + Send + '_>> {
        Box::pin(async move {
            match self.inner.upgrade() {
                Some(s) => s.dial_parsed_address(addr).await,
                None => Err(DialError::NotRunning),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use mukan_reactor_api::testing::{FakePeer, FakeSwitch, RecordingReactor, SwitchCall};

    use super::*;

    /// The metered switch's peers count their sends (and only those queued), and it passes a
    /// dial by host name on to the switch, which resolves it.
    #[test]
    fn metered_switch_counts_sends_and_forwards_dials_by_name() {
        let metrics = Arc::new(Metrics::new("t", "c"));
        let id = NodeId([2; 20]);
        let fake = Arc::new(FakeSwitch::new(NetAddress::new(
            NodeId([9; 20]),
            [127, 0, 0, 1].into(),
            1,
        )));
        fake.add_peer(Arc::new(FakePeer::new(id, vec![ChannelId(PEX)])));
        let inner: Arc<dyn Switch> = fake.clone();
        let metered = MeteredSwitch {
            inner: Arc::downgrade(&inner),
            metrics: metrics.clone(),
        };
        let peer = metered.peer(&id).unwrap();
        peer.try_send(ChannelId(PEX), Bytes::from_static(&[0x0a, 0x00]))
            .unwrap();
        assert!(
            peer.try_send(ChannelId(0x30), Bytes::from_static(&[1]))
                .is_err()
        );
        let text = metrics.encode();
        assert!(text.contains("t_p2p_pex_messages_total{chain_id=\"c\",direction=\"sent\",message_type=\"PexRequest\"} 1"), "{text}");
        assert!(
            text.contains(
                "t_p2p_message_send_bytes_total{chain_id=\"c\",message_type=\"p2p_PexRequest\"} 2"
            ),
            "{text}"
        );

        fake.set_host("seed.example", Some([8, 8, 8, 8].into()));
        let seed: ParsedAddress = format!("{id}@seed.example:26656").parse().unwrap();
        let dial = metered.dial_parsed_address(seed);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut dial = dial;
        assert!(matches!(
            dial.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Ok(()))
        ));
        assert!(fake.calls().contains(&SwitchCall::Dial(NetAddress::new(
            id,
            [8, 8, 8, 8].into(),
            26656
        ))));
    }

    #[test]
    fn receive_and_remove_are_counted() {
        let metrics = Arc::new(Metrics::new("t", "c"));
        let inner = Arc::new(RecordingReactor::new(vec![ChannelDescriptor::new(
            ChannelId(PEX),
            std::num::NonZeroU32::MIN,
        )]));
        let m = Metered::new(inner, metrics.clone());
        let peer: Arc<dyn Peer> = Arc::new(FakePeer::new(NodeId([1; 20]), vec![ChannelId(PEX)]));
        m.receive(Envelope::new(
            peer.clone(),
            ChannelId(PEX),
            Bytes::from_static(&[0x0a, 0x00]),
        ))
        .unwrap();
        let text = metrics.encode();
        assert!(text.contains("t_p2p_message_receive_bytes_total{chain_id=\"c\",message_type=\"p2p_PexRequest\"} 2"), "{text}");
        assert!(text.contains("t_p2p_pex_messages_total{chain_id=\"c\",direction=\"received\",message_type=\"PexRequest\"} 1"), "{text}");
        m.remove_peer(&peer, &StopReason::ClosedByPeer);
        let text = metrics.encode();
        assert!(text.contains("reason=\"closed_by_peer\"} 1"), "{text}");
        assert!(!text.contains(&NodeId([1; 20]).to_string()), "{text}");
    }
}
