//! `mukan-reactor-api`: the contract of the Mukan P2P stack.
//!
//! This crate owns the vocabulary every other crate speaks ([`ChannelId`],
//! [`ChannelDescriptor`], [`Envelope`], [`NodeInfo`], [`NetAddress`], [`NetGroup`],
//! [`HostPrefix`], [`Direction`], [`PeerStatus`]) and the narrow, object-safe traits they
//! implement or consume: [`Reactor`], [`Peer`], [`Switch`], [`Transport`] (+ [`ManagedPeer`],
//! [`PeerInbox`]) and [`AddressBook`].
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
//! registration    = channels set-switch
//! peer-management = init-peer start-peer stop-peer      ; one per connection of a peer
//! start-peer      = [*receive] (connected-peer / start-error)
//! connected-peer  = add-peer *receive
//! stop-peer       = [peer-error] remove-peer
//! ```
//!
//! In words:
//! - [`Reactor::channels`] and [`Reactor::set_switch`] are called once, when the reactor is
//!   registered, before the switch starts; then [`Reactor::on_start`].
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

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod addr_book;
mod channel;
mod deny;
mod envelope;
mod inbox;
mod net_address;
mod net_group;
mod node_info;
mod peer;
mod reactor;
mod switch;
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
pub use node_info::{
    IncompatibleError, NodeInfo, NodeInfoDecodeError, NodeInfoError, Other, ProtocolVersion,
};
pub use peer::{
    ChannelStatus, Direction, FlowStatus, Peer, PeerData, PeerStatus, SendError, SendWatcher,
    TrySendError, WatchedPeer,
};
pub use reactor::{Reactor, StopReason, TimeoutKind, downcast_reactor};
pub use switch::{BroadcastOutcome, BroadcastReport, DialError, PeerCounts, Switch};
pub use transport::{ManagedPeer, PeerConfig, RejectReason, Transport, TransportError};

/// Re-exported so users need not depend on `mukan-node-key` for the ID type.
pub use mukan_node_key::NodeId;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The traits held as `dyn` stay object-safe.
    #[test]
    fn traits_are_object_safe() {
        fn takes(
            _: Option<Arc<dyn Reactor>>,
            _: Option<Arc<dyn Peer>>,
            _: Option<Arc<dyn Switch>>,
            _: Option<Arc<dyn Transport>>,
            _: Option<Arc<dyn ManagedPeer>>,
            _: Option<Box<dyn PeerInbox>>,
        ) -> bool {
            true
        }
        assert!(takes(None, None, None, None, None, None));
    }
}
