//! The [`Reactor`] trait and why a peer stops ([`StopReason`]).

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Weak};

use crate::{ChannelDescriptor, ChannelId, Envelope, Peer, Switch};

/// A protocol running over the p2p layer on its own channels (Go `p2p.Reactor`).
///
/// Stored by the switch as `Arc<dyn Reactor>` and called from many peers' receive paths at
/// once, so methods take `&self` and must not block: hand work to your own tasks. The order of
/// calls is the grammar in the [crate documentation](crate#the-reactor-call-grammar).
///
/// Every method except [`Reactor::channels`] and [`Reactor::receive`] has a no-op default
/// (Go `BaseReactor`). A registered reactor can be reached as its concrete type with
/// [`downcast_reactor`] (or `Switch::reactor_as`).
pub trait Reactor: Any + Send + Sync + 'static {
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
    /// The envelope holds a lease on its channel's receive budget until it is dropped: a
    /// reactor that hands messages to its own task keeps back-pressure on that channel (and
    /// only that one), and one that keeps messages for long should copy what it needs and drop
    /// the envelope.
    ///
    /// # Errors
    /// Return an error when the message is malformed or not allowed; the switch then stops the
    /// peer for that error (Go: an unmarshal panic, recovered as a peer error).
    fn receive(&self, envelope: Envelope) -> Result<(), Box<dyn Error + Send + Sync>>;

    /// Looks at a message's raw bytes before [`Reactor::receive`] (Go's message-bytes filter):
    /// a cheap check that refuses a message without decoding it. The default lets every
    /// message through.
    ///
    /// # Errors
    /// Return an error to refuse the message: it is dropped without reaching
    /// [`Reactor::receive`] and the switch stops the peer for that error.
    fn filter(
        &self,
        channel: ChannelId,
        message: &[u8],
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        let _ = (channel, message);
        Ok(())
    }
}

/// Why a peer was stopped, as passed to [`Reactor::remove_peer`] and reported by a peer's
/// inbox ([`InboxItem::Stopped`](crate::InboxItem::Stopped)).
///
/// Typed so that the switch and PEX decide "ban" or "redial" without parsing strings:
/// [`StopReason::is_misbehaviour`] and [`StopReason::redial`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum StopReason {
    /// The peer closed the connection between messages.
    ClosedByPeer,
    /// Reading or writing the socket failed.
    Io(Arc<std::io::Error>),
    /// The peer broke the wire protocol (undecodable or oversized packet, unknown channel,
    /// a stream cut in the middle of a message).
    Protocol(Arc<dyn Error + Send + Sync>),
    /// A deadline passed.
    Timeout(TimeoutKind),
    /// A channel's receive budget stayed full longer than the stall timeout: our side did not
    /// keep up. Not the peer's fault; not a reason to ban.
    SlowReceiver {
        /// The channel whose budget was full.
        channel: ChannelId,
    },
    /// A reactor reported the peer ([`Switch::stop_peer_for_error`], or an error returned by
    /// [`Reactor::receive`]).
    Reactor(Arc<dyn Error + Send + Sync>),
    /// The peer's ID or IP is on the deny list.
    Denied,
    /// Stopped on purpose ([`Switch::stop_peer_gracefully`]).
    Graceful,
    /// The switch is shutting down.
    Shutdown,
}

/// Which deadline passed ([`StopReason::Timeout`], `TransportError::Timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Establishing the TCP connection.
    Dial,
    /// A connection filter did not answer.
    Filter,
    /// The secret-connection handshake.
    Handshake,
    /// The `NodeInfo` exchange.
    NodeInfo,
    /// No pong arrived in time after a ping.
    Pong,
    /// The peer stopped reading: our writes made no progress in time.
    Write,
    /// Flushing the send queues on a graceful stop.
    Flush,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dial => "dial",
            Self::Filter => "connection filter",
            Self::Handshake => "secret-connection handshake",
            Self::NodeInfo => "NodeInfo exchange",
            Self::Pong => "pong",
            Self::Write => "write",
            Self::Flush => "flush",
        })
    }
}

impl StopReason {
    /// The peer misbehaved (broke the protocol or was reported by a reactor): grounds to ban.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(self, Self::Protocol(_) | Self::Reactor(_))
    }

    /// A persistent peer stopped for this reason is redialed: everything but a graceful stop,
    /// a shutdown and the deny list.
    pub fn redial(&self) -> bool {
        !matches!(self, Self::Graceful | Self::Shutdown | Self::Denied)
    }

    /// A short stable label for metrics (`peer_stops{reason}`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::ClosedByPeer => "closed_by_peer",
            Self::Io(_) => "io",
            Self::Protocol(_) => "protocol",
            Self::Timeout(_) => "timeout",
            Self::SlowReceiver { .. } => "slow_receiver",
            Self::Reactor(_) => "reactor",
            Self::Denied => "denied",
            Self::Graceful => "graceful",
            Self::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClosedByPeer => f.write_str("connection closed by peer"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Protocol(e) => write!(f, "protocol violation: {e}"),
            Self::Timeout(k) => write!(f, "{k} timeout"),
            Self::SlowReceiver { channel } => {
                write!(f, "slow receiver: channel {channel} budget stayed full")
            }
            Self::Reactor(e) => write!(f, "reported by a reactor: {e}"),
            Self::Denied => f.write_str("on the deny list"),
            Self::Graceful => f.write_str("stopped gracefully"),
            Self::Shutdown => f.write_str("switch shut down"),
        }
    }
}

/// `reactor` as its concrete type `R`, if it is one.
///
/// ```
/// # use std::sync::Arc;
/// # use mukan_reactor_api::{downcast_reactor, ChannelDescriptor, Envelope, Reactor};
/// struct Mine;
/// impl Reactor for Mine {
///     fn channels(&self) -> Vec<ChannelDescriptor> { Vec::new() }
///     fn receive(&self, _: Envelope) -> Result<(), Box<dyn std::error::Error + Send + Sync>> { Ok(()) }
/// }
/// let r: Arc<dyn Reactor> = Arc::new(Mine);
/// assert!(downcast_reactor::<Mine>(r).is_some());
/// ```
pub fn downcast_reactor<R: Reactor>(reactor: Arc<dyn Reactor>) -> Option<Arc<R>> {
    let any: Arc<dyn Any + Send + Sync> = reactor;
    any.downcast::<R>().ok()
}
