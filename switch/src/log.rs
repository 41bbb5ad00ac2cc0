//! [`Log`]: the switch's events as `tracing` lines (target `mukan_switch`), one per dial,
//! connection, refusal and stop, with its typed reason.
//!
//! Levels: what happens in the normal course of a node (a dial, a peer coming or going, a
//! refused connection) is `debug`; a persistent peer lost (it will be redialed) is `info`.

use mukan_reactor_api::{
    AdmissionRefusal, DialError, Observer, ParsedAddress, Peer, PeerObserver, StopReason,
    TransportError,
};

/// Logs every event of the switch (one of its observers, always installed).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Log;

impl Observer for Log {
    fn peer_connected(&self, peer: &dyn Peer) -> Box<dyn PeerObserver> {
        tracing::debug!(
            target: "mukan_switch",
            peer = %peer.id(),
            direction = ?peer.direction(),
            addr = %peer.socket_addr(),
            persistent = peer.is_persistent(),
            "peer connected"
        );
        Box::new(mukan_reactor_api::IgnoredPeer)
    }

    fn peer_stopped(&self, peer: &dyn Peer, reason: &StopReason) {
        if peer.is_persistent() && reason.redial() {
            tracing::info!(
                target: "mukan_switch",
                peer = %peer.id(),
                addr = %peer.socket_addr(),
                reason = reason.label(),
                "persistent peer lost: {reason}; redialing"
            );
        } else {
            tracing::debug!(
                target: "mukan_switch",
                peer = %peer.id(),
                addr = %peer.socket_addr(),
                reason = reason.label(),
                "peer stopped: {reason}"
            );
        }
    }

    fn dial_finished(&self, target: &ParsedAddress, result: &Result<(), DialError>) {
        match result {
            Ok(()) => tracing::debug!(target: "mukan_switch", %target, "dialed"),
            Err(e) => tracing::debug!(
                target: "mukan_switch",
                %target,
                outcome = e.outcome().label(),
                "dial failed: {e}"
            ),
        }
    }

    fn inbound_failed(&self, error: &TransportError) {
        tracing::debug!(
            target: "mukan_switch",
            reason = error.label(),
            "inbound connection refused: {error}"
        );
    }

    fn inbound_refused(&self, peer: &dyn Peer, refusal: AdmissionRefusal) {
        tracing::debug!(
            target: "mukan_switch",
            peer = %peer.id(),
            addr = %peer.socket_addr(),
            reason = refusal.label(),
            "inbound peer refused by the switch"
        );
    }
}
