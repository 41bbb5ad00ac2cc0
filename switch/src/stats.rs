//! The switch's own counters, kept as one [`Observer`] among the switch's observers, and
//! their snapshot [`Stats`].

#![cfg_attr(
    not(test),
    expect(
        clippy::indexing_slicing,
        reason = "tables of 256 entries indexed by a u8 channel ID, and counters indexed by their own enum"
    )
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mukan_reactor_api::{
    AdmissionRefusal, ChannelId, DialError, DialOutcome, Observer, ParsedAddress, Peer,
    PeerObserver, StopReason, TransportError,
};
use parking_lot::Mutex;

/// A snapshot of the switch's counters ([`Switch::stats`](crate::Switch::stats)). Counters
/// only grow; the peer and dial counts are current values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connected inbound peers (unconditional ones included).
    pub peers_inbound: usize,
    /// Connected outbound peers (persistent and unconditional ones included).
    pub peers_outbound: usize,
    /// Dials in progress.
    pub dialing: usize,
    /// Finished dials by outcome ([`DialOutcome::label`]).
    pub dials: BTreeMap<&'static str, u64>,
    /// Inbound peers refused by the switch, by reason (`limit`, `denied`, `duplicate`,
    /// `not_running`).
    pub inbound_refused: BTreeMap<&'static str, u64>,
    /// Inbound connections that failed before becoming a peer (their upgrade failed, timed
    /// out, or the transport refused them), by `TransportError::label` (`timeout`, `io`,
    /// `auth_failure`, `denied`, `duplicate`, …).
    pub inbound_failed: BTreeMap<&'static str, u64>,
    /// Stopped peers by reason (`StopReason::label`).
    pub peer_stops: BTreeMap<&'static str, u64>,
    /// Traffic of each registered channel, in registration order.
    pub channels: Vec<ChannelStats>,
}

/// Messages and bytes of one channel, counted by the switch (received: delivered to the
/// reactor; sent: queued through the switch's peer handles and broadcasts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStats {
    /// The channel.
    pub channel: ChannelId,
    /// Messages delivered to the reactor.
    pub received_messages: u64,
    /// Bytes of those messages.
    pub received_bytes: u64,
    /// Messages queued for sending.
    pub sent_messages: u64,
    /// Bytes of those messages.
    pub sent_bytes: u64,
}

#[derive(Default)]
struct ChannelCounters {
    received_messages: AtomicU64,
    received_bytes: AtomicU64,
    sent_messages: AtomicU64,
    sent_bytes: AtomicU64,
}

/// The live counters: an [`Observer`] of the switch.
pub(crate) struct Counters {
    channels: Arc<[ChannelCounters]>,
    dials: [AtomicU64; DialOutcome::ALL.len()],
    labelled: Mutex<Labelled>,
}

#[derive(Default)]
struct Labelled {
    peer_stops: BTreeMap<&'static str, u64>,
    inbound_refused: BTreeMap<&'static str, u64>,
    inbound_failed: BTreeMap<&'static str, u64>,
}

/// Counts one peer's traffic into the per-channel counters.
struct ChannelTraffic(Arc<[ChannelCounters]>);

impl PeerObserver for ChannelTraffic {
    fn received(&self, channel: ChannelId, _: Option<&'static str>, bytes: usize) {
        let c = &self.0[usize::from(channel.0)];
        c.received_messages.fetch_add(1, Ordering::Relaxed);
        c.received_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn sent(&self, channel: ChannelId, _: Option<&'static str>, bytes: usize) {
        let c = &self.0[usize::from(channel.0)];
        c.sent_messages.fetch_add(1, Ordering::Relaxed);
        c.sent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

impl Observer for Counters {
    fn peer_connected(&self, _: &dyn Peer) -> Box<dyn PeerObserver> {
        Box::new(ChannelTraffic(self.channels.clone()))
    }

    fn peer_stopped(&self, _: &dyn Peer, reason: &StopReason) {
        *self
            .labelled
            .lock()
            .peer_stops
            .entry(reason.label())
            .or_default() += 1;
    }

    fn dial_finished(&self, _: &ParsedAddress, result: &Result<(), DialError>) {
        self.dials[index(DialOutcome::of(result))].fetch_add(1, Ordering::Relaxed);
    }

    fn inbound_failed(&self, error: &TransportError) {
        *self
            .labelled
            .lock()
            .inbound_failed
            .entry(error.label())
            .or_default() += 1;
    }

    fn inbound_refused(&self, _: &dyn Peer, refusal: AdmissionRefusal) {
        *self
            .labelled
            .lock()
            .inbound_refused
            .entry(refusal.label())
            .or_default() += 1;
    }
}

fn index(outcome: DialOutcome) -> usize {
    DialOutcome::ALL
        .iter()
        .position(|o| *o == outcome)
        .unwrap_or(0)
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            channels: (0..256).map(|_| ChannelCounters::default()).collect(),
            dials: Default::default(),
            labelled: Mutex::new(Labelled::default()),
        }
    }

    pub(crate) fn snapshot(&self, channels: &[ChannelId]) -> Stats {
        let labelled = self.labelled.lock();
        Stats {
            peers_inbound: 0,
            peers_outbound: 0,
            dialing: 0,
            dials: DialOutcome::ALL
                .iter()
                .map(|o| (o.label(), self.dials[index(*o)].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            inbound_refused: labelled.inbound_refused.clone(),
            inbound_failed: labelled.inbound_failed.clone(),
            peer_stops: labelled.peer_stops.clone(),
            channels: channels
                .iter()
                .map(|&channel| {
                    let c = &self.channels[usize::from(channel.0)];
                    ChannelStats {
                        channel,
                        received_messages: c.received_messages.load(Ordering::Relaxed),
                        received_bytes: c.received_bytes.load(Ordering::Relaxed),
                        sent_messages: c.sent_messages.load(Ordering::Relaxed),
                        sent_bytes: c.sent_bytes.load(Ordering::Relaxed),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_snapshots() {
        use mukan_reactor_api::testing::FakePeer;
        use mukan_reactor_api::{NodeId, RejectDetail};
        let c = Counters::new();
        let peer = FakePeer::new(NodeId([1; 20]), vec![ChannelId(1)]);
        let traffic = c.peer_connected(&peer);
        traffic.received(ChannelId(1), None, 10);
        for _ in 0..3 {
            traffic.sent(ChannelId(1), Some("t"), 100);
        }
        let target: ParsedAddress = format!("{}@1.2.3.4:5", NodeId([2; 20])).parse().unwrap();
        c.dial_finished(&target, &Ok(()));
        c.dial_finished(&target, &Ok(()));
        let unresolved = DialError::Unresolved(peer.socket_addr());
        c.dial_finished(&target, &Err(unresolved));
        c.peer_stopped(
            &peer,
            &StopReason::Io(Arc::new(std::io::ErrorKind::Other.into())),
        );
        c.inbound_refused(&peer, AdmissionRefusal::InboundLimit);
        c.inbound_failed(&TransportError::rejected(
            RejectDetail::SelfConnection,
            None,
        ));
        let s = c.snapshot(&[ChannelId(1), ChannelId(2)]);
        assert_eq!(s.channels[0].received_messages, 1);
        assert_eq!(s.channels[0].received_bytes, 10);
        assert_eq!(s.channels[0].sent_messages, 3);
        assert_eq!(s.channels[0].sent_bytes, 300);
        assert_eq!(s.channels[1].channel, ChannelId(2));
        assert_eq!(s.channels[1].received_messages, 0);
        assert_eq!(s.dials.get("connected"), Some(&2));
        assert_eq!(s.dials.get("unresolved"), Some(&1));
        assert_eq!(s.dials.get("failed"), None);
        assert_eq!(s.peer_stops.get("io"), Some(&1));
        assert_eq!(s.inbound_refused.get("limit"), Some(&1));
        assert_eq!(s.inbound_failed.get("self"), Some(&1));
    }
}
