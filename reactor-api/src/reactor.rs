//! The [`Reactor`] trait and why a peer stops ([`StopReason`]).

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Weak};

use crate::{ChannelDescriptor, Envelope, Peer, Switch};

/// A protocol running over the p2p layer on its own channels (Go `p2p.Reactor`).
///
/// Stored by the switch as `Arc<dyn Reactor>` and called from many peers' receive paths at
/// once, so methods take `&self` and must not block: hand work to your own tasks. The order of
/// calls is the grammar in the [crate documentation](crate#the-reactor-call-grammar).
///
/// Every method except [`Reactor::channels`] and [`Reactor::receive`] has a no-op default
/// (Go `BaseReactor`).
pub trait Reactor: Send + Sync + 'static {
    /// The channels this reactor owns. Called once, at registration; every message arriving
    /// on one of them is delivered to [`Reactor::receive`].
    fn channels(&self) -> Vec<ChannelDescriptor>;

    /// Gives the reactor the switch it is registered with (once, after
    /// [`Reactor::channels`]). Weak, because the switch owns the reactor.
    fn set_switch(&self, switch: Weak<dyn Switch>) {
        let _ = switch;
    }

    /// The switch starts (Go `OnStart`). Start background work here.
    fn on_start(&self) {}

    /// The switch stops (Go `OnStop`); no peer calls follow.
    fn on_stop(&self) {}

    /// A connection to `peer` was established and is about to start. Prepare per-peer state;
    /// do not send yet.
    fn init_peer(&self, peer: &Arc<dyn Peer>) {
        let _ = peer;
    }

    /// `peer` is started and in the switch's peer set; the reactor may send to it.
    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        let _ = peer;
    }

    /// `peer` is stopped; no more messages from it follow. Drop per-peer state and stop
    /// sending to it.
    fn remove_peer(&self, peer: &Arc<dyn Peer>, reason: &StopReason) {
        let _ = (peer, reason);
    }

    /// A complete message arrived on one of this reactor's channels. May be called before
    /// [`Reactor::add_peer`] (the peer's receive path starts first).
    ///
    /// # Errors
    /// Return an error when the message is malformed or not allowed; the switch then stops the
    /// peer for that error (Go: an unmarshal panic, recovered as a peer error).
    fn receive(&self, envelope: Envelope) -> Result<(), Box<dyn Error + Send + Sync>>;
}

/// Why a peer was stopped, as passed to [`Reactor::remove_peer`].
#[derive(Clone)]
#[non_exhaustive]
pub enum StopReason {
    /// The connection failed or a reactor reported the peer for an error
    /// ([`Switch::stop_peer_for_error`]). A persistent peer is redialed.
    Error(Arc<dyn Error + Send + Sync>),
    /// Stopped on purpose ([`Switch::stop_peer_gracefully`]).
    Graceful,
    /// The switch is shutting down.
    Shutdown,
}

impl fmt::Debug for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => f.debug_tuple("Error").field(&e.to_string()).finish(),
            Self::Graceful => f.write_str("Graceful"),
            Self::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => write!(f, "error: {e}"),
            Self::Graceful => f.write_str("stopped gracefully"),
            Self::Shutdown => f.write_str("switch shut down"),
        }
    }
}
