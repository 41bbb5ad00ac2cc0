//! `mukan-reactor-api`: the contract of the Mukan P2P stack.
//!
//! This crate owns the vocabulary every other crate speaks ([`ChannelId`],
//! [`ChannelDescriptor`], [`Envelope`], [`NodeInfo`], [`NetAddress`], [`NetGroup`],
//! [`HostPrefix`], [`Direction`], [`PeerStatus`], [`StopReason`]) and the narrow, object-safe
//! traits they implement or consume: [`Reactor`], [`Peer`], [`Network`] and [`Dialer`] (the
//! switch as reactors see it), [`Observer`], [`Transport`] (+ [`ManagedPeer`],
//! [`PeerInbox`]) and [`AddressBook`].
//!
//! Every seam is typed: a reactor refuses a message with a [`ReactorError`], a dial fails with
//! a [`DialError`] (a transport's failure inside it is a [`TransportError`] whose rejections
//! carry a [`RejectDetail`]), and a peer stops for a [`StopReason`]. No error crosses the
//! contract as a trait object, so callers act on variants, never on downcasts or message
//! text (checked by `tests/no_error_trait_objects.rs`).
//!
//! # What a reactor gets from the switch
//! - [`Reactor::set_switch`] hands every reactor the data plane, [`Network`]: our address,
//!   the peers, [`Network::broadcast`], stopping a peer, marking it good, finding another
//!   reactor.
//! - [`Reactor::set_dialer`] hands it the [`Dialer`]: dialing (by address or by host name),
//!   the outbound limit, whether an address is already dialed. Only a reactor that decides
//!   whom to connect to (PEX) keeps it; the default ignores it.
//!
//! Both are weak references (the switch owns its reactors) to the one switch; the split only
//! narrows what each reactor depends on, so that a test fake or a wrapper implements the few
//! methods its reactor uses.
//!
//! # Observing the switch
//! The switch reports what happens (each peer connected and stopped with its reason, every
//! message's bytes per peer, channel and [`Reactor::message_type`], every dial with its
//! outcome, every inbound failure or refusal with its typed reason) to one [`Observer`].
//! Metrics, statistics and logs are observers; none of them wraps a reactor, a peer or the
//! switch.
//!
//! What it does not do: no sockets, no tasks, no clock, no tokio, no policy. Methods that
//! wait return boxed `std` futures so that any runtime can drive them. [`NodeInfo`] encodes
//! and decodes its own protobuf (`tendermint.p2p.DefaultNodeInfo`); DNS names are checked syntactically only,
//! never resolved.
//!
//! # The reactor call grammar
//!
//! A [`Reactor`] can rely on the following order of calls from the switch (the grammar of
//! `spec/p2p/reactor-api/reactor.md`, CometBFT v0.38), shown in ABNF:
//!
//! ```text
//! start           = registration on-start *peer-management on-stop
//! registration    = channels set-switch set-dialer
//! peer-management = init-peer start-peer stop-peer      ; one per connection of a peer
//! start-peer      = [*receive] (connected-peer / start-error)
//! connected-peer  = add-peer *receive
//! stop-peer       = [peer-error] remove-peer
//! ```
//!
//! In words:
//! - [`Reactor::channels`], [`Reactor::set_switch`] and [`Reactor::set_dialer`] are called
//!   once, in this order, when the reactor is registered, before the switch starts; then
//!   [`Reactor::on_start`].
//! - For each connection to a peer, [`Reactor::init_peer`] comes first, while the peer is not
//!   yet started: prepare state, do not send.
//! - The peer is then started, so [`Reactor::receive`] may be called *before*
//!   [`Reactor::add_peer`]. If starting fails, `add_peer` never comes.
//! - [`Reactor::add_peer`] means the peer is running and in the peer set: from here the
//!   reactor may send to it.
//! - [`Reactor::remove_peer`] ends the connection: the peer's routines are stopped, no
//!   `receive` from it follows, and the reactor must stop sending to it. The same peer ID may
//!   then start over with a new `init_peer` (a reconnection).
//! - Different peers' sequences run concurrently: calls for different peers may interleave
//!   and run in parallel. Calls for one peer are never concurrent with each other.
//! - [`Reactor::on_stop`] comes last, after every peer was removed.
//!
//! Each `receive` is preceded by [`Reactor::filter`] on the same message, on the same path
//! (a cheap check of the raw bytes; the default accepts everything). A refused message never
//! reaches `receive`, and the peer is stopped, so `remove-peer` follows.
//!
//! `receive` runs on the switch's delivery path for that peer: while it runs, nothing else
//! from that peer is delivered, so it must not block. Each envelope holds a lease on its
//! channel's receive budget until dropped ([`RecvLease`]). The `test-util` feature provides
//! `testing::check_grammar` to check a recorded trace against these rules.
//!
//! # Features
//! - `test-util`: the `testing` module with `RecordingReactor`, `FakePeer` and `FakeSwitch`.
//!
//! # Re-exports
//! [`Bytes`] (the message type of every send and receive) and [`NodeId`], so that a reactor
//! needs no other crate to name them.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

/// The code in `README.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod addr_book;
mod channel;
mod deny;
mod envelope;
mod inbox;
mod net_address;
mod net_group;
mod network;
mod node_info;
mod observer;
mod peer;
mod reactor;
mod stop;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod transport;

pub use addr_book::*;
pub use channel::{ChannelDescriptor, ChannelId};
pub use deny::{DenyEntry, DenyEntryError, DenyList};
pub use envelope::Envelope;
pub use inbox::{InboxItem, PeerInbox, RecvBudget, RecvLease};
pub use net_address::*;
pub use net_group::{HostPrefix, NetGroup};
pub use network::{
    BroadcastOutcome, BroadcastReport, DialError, DialOutcome, Dialer, Network, PeerCounts,
};
pub use node_info::{
    IncompatibleError, NodeInfo, NodeInfoDecodeError, NodeInfoError, Other, ProtocolVersion,
};
pub use observer::{AdmissionRefusal, IgnoredPeer, Observer, Observers, PeerObserver};
pub use peer::{
    ChannelStatus, Direction, FlowStatus, Peer, PeerData, PeerStatus, SendError, TrySendError,
};
pub use reactor::{Reactor, ReactorError, downcast_reactor};
pub use stop::{ConnConfigError, ProtocolError, StopReason, TimeoutKind};
pub use transport::{
    ExchangeError, FilterRefusal, HandshakeFailure, ManagedPeer, PeerConfig, RejectDetail,
    RejectReason, Transport, TransportError,
};

/// Re-exported: the bytes of every message sent and received.
pub use bytes::Bytes;
/// Re-exported so users need not depend on `mukan-node-key` for the ID type.
pub use mukan_node_key::NodeId;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The traits held as `dyn` stay object-safe.
    #[test]
    #[expect(clippy::too_many_arguments, reason = "one argument per trait")]
    fn traits_are_object_safe() {
        fn takes(
            _: Option<Arc<dyn Reactor>>,
            _: Option<Arc<dyn Peer>>,
            _: Option<Arc<dyn Network>>,
            _: Option<Arc<dyn Dialer>>,
            _: Option<Arc<dyn Observer>>,
            _: Option<Box<dyn PeerObserver>>,
            _: Option<Arc<dyn Transport>>,
            _: Option<Arc<dyn ManagedPeer>>,
            _: Option<Box<dyn PeerInbox>>,
        ) -> bool {
            true
        }
        assert!(takes(None, None, None, None, None, None, None, None, None));
    }
}
