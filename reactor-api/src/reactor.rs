//! The [`Reactor`] trait and how a reactor refuses a message or reports a peer
//! ([`ReactorError`]).

use std::any::Any;
use std::sync::{Arc, Weak};

use crate::{ChannelDescriptor, ChannelId, Dialer, Envelope, Network, Peer, StopReason};

/// A protocol running over the p2p layer on its own channels (Go `p2p.Reactor`).
///
/// Stored by the switch as `Arc<dyn Reactor>` and called from many peers' receive paths at
/// once, so methods take `&self` and must not block: hand work to your own tasks. The order of
/// calls is the grammar in the [crate documentation](crate#the-reactor-call-grammar).
///
/// Every method except [`Reactor::channels`] and [`Reactor::receive`] has a no-op default
/// (Go `BaseReactor`). A registered reactor can be reached as its concrete type with
/// [`downcast_reactor`] (or `Network::reactor_as`).
pub trait Reactor: Any + Send + Sync + 'static {
    /// The channels this reactor owns. Called once, at registration; every message arriving
    /// on one of them is delivered to [`Reactor::receive`].
    fn channels(&self) -> Vec<ChannelDescriptor>;

    /// Gives the reactor the switch it is registered with, as the data plane every reactor
    /// uses ([`Network`]: peers, broadcast, stopping a peer), once, after
    /// [`Reactor::channels`]. Weak, because the switch owns the reactor.
    fn set_switch(&self, switch: Weak<dyn Network>) {
        let _ = switch;
    }

    /// Gives the reactor the switch's dialing side ([`Dialer`]), right after
    /// [`Reactor::set_switch`]. Only a reactor that decides whom to connect to (PEX) needs
    /// it; the default ignores it.
    fn set_dialer(&self, dialer: Weak<dyn Dialer>) {
        let _ = dialer;
    }

    /// The switch starts (Go `OnStart`). Start background work here. A dial made from here
    /// (on a spawned task) waits until every reactor's `on_start` has returned, then proceeds:
    /// no peer reaches a reactor before its `on_start`.
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
    /// A [`ReactorError`] when the message is malformed or not allowed; the switch then stops
    /// the peer for it ([`StopReason::Reactor`]; Go: an unmarshal panic, recovered as a peer
    /// error).
    fn receive(&self, envelope: Envelope) -> Result<(), ReactorError>;

    /// Looks at a message's raw bytes before [`Reactor::receive`] (Go's message-bytes filter):
    /// a cheap check that refuses a message without decoding it. The default lets every
    /// message through.
    ///
    /// # Errors
    /// A [`ReactorError`] to refuse the message: it is dropped without reaching
    /// [`Reactor::receive`] and the switch stops the peer for it.
    fn filter(&self, channel: ChannelId, message: &[u8]) -> Result<(), ReactorError> {
        let _ = (channel, message);
        Ok(())
    }

    /// The type of `message` on `channel` as a stable label, e.g. `p2p_PexRequest` (Go's
    /// `pkg_Type` metric label), or `None` when the reactor does not say. Called by the switch
    /// for every message sent and received on the reactor's channels, to label what it
    /// reports to its [`Observer`](crate::Observer): it must be cheap (look at a tag byte, do
    /// not decode). The default says nothing.
    fn message_type(&self, channel: ChannelId, message: &[u8]) -> Option<&'static str> {
        let _ = (channel, message);
        None
    }
}

/// Why a reactor refused a message or reports a peer ([`Reactor::receive`],
/// [`Reactor::filter`], [`Network::stop_peer_for_error`]); the switch stops the peer with
/// [`StopReason::Reactor`].
///
/// Classified by what happened, so that observers and policies act on the variant; the
/// reactor's own detailed error stays with the reactor (it may log it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReactorError {
    /// The bytes are not a message of the channel: invalid protobuf.
    #[error("malformed message on channel {channel}: {source}")]
    Decode {
        /// The channel.
        channel: ChannelId,
        /// The decoder's error.
        source: prost::DecodeError,
    },
    /// The message is larger than the reactor allows.
    #[error("message of {len} bytes on channel {channel} exceeds {max}")]
    TooLarge {
        /// The channel.
        channel: ChannelId,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message decodes but breaks the reactor's protocol (no known content, an invalid
    /// field, a request too soon, a reply nobody asked for). `rule` names the rule broken, in
    /// fixed words.
    #[error("{rule} (channel {channel})")]
    Violation {
        /// The channel.
        channel: ChannelId,
        /// The rule broken, e.g. `"unsolicited PexAddrs"`.
        rule: &'static str,
    },
    /// The reactor's policy refuses the peer itself (banned, or not wanted), whatever it sends.
    #[error("peer refused by the reactor: {0}")]
    PeerRefused(&'static str),
    /// The reactor panicked on a message of `channel` (the switch recovers it and stops the
    /// peer, as Go's receive routine does).
    #[error("the reactor of channel {channel} panicked on a message")]
    Panicked {
        /// The channel.
        channel: ChannelId,
    },
}

/// `reactor` as its concrete type `R`, if it is one.
///
/// ```
/// # use std::sync::Arc;
/// # use mukan_reactor_api::{downcast_reactor, ChannelDescriptor, Envelope, Reactor, ReactorError};
/// struct Mine;
/// impl Reactor for Mine {
///     fn channels(&self) -> Vec<ChannelDescriptor> { Vec::new() }
///     fn receive(&self, _: Envelope) -> Result<(), ReactorError> { Ok(()) }
/// }
/// let r: Arc<dyn Reactor> = Arc::new(Mine);
/// assert!(downcast_reactor::<Mine>(r).is_some());
/// ```
pub fn downcast_reactor<R: Reactor>(reactor: Arc<dyn Reactor>) -> Option<Arc<R>> {
    let any: Arc<dyn Any + Send + Sync> = reactor;
    any.downcast::<R>().ok()
}
