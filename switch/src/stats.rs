//! Counters the node exports as metrics, and their snapshot [`Stats`].

#![cfg_attr(
    not(test),
    expect(
        clippy::indexing_slicing,
        reason = "tables of 256 entries indexed by a u8 channel ID, and counters indexed by their own enum"
    )
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use mukan_reactor_api::ChannelId;
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

/// How a dial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DialOutcome {
    /// Connected and handed to the peer's task.
    Connected,
    /// Already connected or being dialed.
    Duplicate,
    /// The ID or IP is on the deny list.
    Denied,
    /// The transport failed (I/O) or the switch refused the upgraded peer.
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
    /// A stable metrics label.
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

    const ALL: [Self; 10] = [
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

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

#[derive(Default)]
struct ChannelCounters {
    received_messages: AtomicU64,
    received_bytes: AtomicU64,
    sent_messages: AtomicU64,
    sent_bytes: AtomicU64,
}

/// The live counters.
pub(crate) struct Counters {
    channels: Box<[ChannelCounters]>,
    dials: [AtomicU64; DialOutcome::ALL.len()],
    labelled: Mutex<Labelled>,
}

#[derive(Default)]
struct Labelled {
    peer_stops: BTreeMap<&'static str, u64>,
    inbound_refused: BTreeMap<&'static str, u64>,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            channels: (0..256).map(|_| ChannelCounters::default()).collect(),
            dials: Default::default(),
            labelled: Mutex::new(Labelled::default()),
        }
    }

    pub(crate) fn received(&self, channel: ChannelId, bytes: usize) {
        let c = &self.channels[usize::from(channel.0)];
        c.received_messages.fetch_add(1, Ordering::Relaxed);
        c.received_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, channel: ChannelId, bytes: usize) {
        self.sent_many(channel, bytes, 1);
    }

    pub(crate) fn sent_many(&self, channel: ChannelId, bytes: usize, messages: u64) {
        if messages == 0 {
            return;
        }
        let c = &self.channels[usize::from(channel.0)];
        c.sent_messages.fetch_add(messages, Ordering::Relaxed);
        c.sent_bytes
            .fetch_add((bytes as u64).saturating_mul(messages), Ordering::Relaxed);
    }

    pub(crate) fn dial(&self, outcome: DialOutcome) {
        self.dials[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn peer_stop(&self, label: &'static str) {
        *self.labelled.lock().peer_stops.entry(label).or_default() += 1;
    }

    pub(crate) fn inbound_refused(&self, label: &'static str) {
        *self
            .labelled
            .lock()
            .inbound_refused
            .entry(label)
            .or_default() += 1;
    }

    pub(crate) fn snapshot(&self, channels: &[ChannelId]) -> Stats {
        let labelled = self.labelled.lock();
        Stats {
            peers_inbound: 0,
            peers_outbound: 0,
            dialing: 0,
            dials: DialOutcome::ALL
                .iter()
                .map(|o| (o.label(), self.dials[o.index()].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            inbound_refused: labelled.inbound_refused.clone(),
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
        let c = Counters::new();
        c.received(ChannelId(1), 10);
        c.sent_many(ChannelId(1), 100, 3);
        c.dial(DialOutcome::Connected);
        c.dial(DialOutcome::Connected);
        c.dial(DialOutcome::Unresolved);
        c.peer_stop("io");
        c.inbound_refused("limit");
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
    }
}
