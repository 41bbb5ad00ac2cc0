//! `NodeBuilder` from parts, as an outside program uses it: a node with a reactor and an
//! address book of its own, our `NodeInfo` checked at build, one deny list for the switch and
//! the transport.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mukan_node::{BuildError, NodeBuilder};
use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    AddAddressError, AddressBook, Bytes, ChannelDescriptor, ChannelId, DenyEntry, Dialer as _,
    Envelope, NetAddress, Network as _, NodeId, NodeInfoError, ParsedAddress, Reactor,
    ReactorError,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// Two nodes, each with a reactor and an address book of its own, wired by the builder: 28
/// lines from the first key to the echo coming back and the ordered stop (the reactor and
/// the book are defined below, as a user's crate would define them).
#[tokio::test]
async fn a_node_with_its_own_reactor_and_address_book() {
    let (tx, mut echoed) = mpsc::channel(8);
    let (book_a, book_b) = (
        Arc::new(Mutex::new(Book::default())),
        Arc::new(Mutex::new(Book::default())),
    );
    let a = NodeBuilder::new(Arc::new(NodeKey::generate_os()), "chain")
        .listen("127.0.0.1:0".parse().unwrap())
        .reactor("ECHO", Arc::new(Echo(None)))
        .address_book(book_a.clone())
        .start()
        .await
        .unwrap();
    let b = NodeBuilder::new(Arc::new(NodeKey::generate_os()), "chain")
        .listen("127.0.0.1:0".parse().unwrap())
        .reactor("ECHO", Arc::new(Echo(Some(tx))))
        .address_book(book_b.clone())
        .persistent_peers(vec![ParsedAddress::Resolved(a.net_address())])
        .map_switch_config(|c| c.dial_randomizer = Duration::ZERO)
        .start()
        .await
        .unwrap();
    let to_a = wait_for_peer(&b, a.net_address().id()).await;
    to_a.try_send(ECHO, Bytes::from_static(b"ping")).unwrap();
    assert_eq!(&echoed.recv().await.unwrap()[..], b"ping");
    assert_eq!(book_a.lock().ours, vec![a.net_address()]);
    assert!(book_b.lock().added.contains(&a.net_address()));
    b.stop().await;
    a.stop().await;
}

/// Our own `NodeInfo` is checked before anything starts, with a typed error: an empty moniker,
/// or no address to announce (a node that neither listens nor names an external address).
#[tokio::test]
async fn a_wrong_own_node_info_is_a_typed_error_at_build() {
    let key = || Arc::new(NodeKey::generate_os());
    let empty_moniker = NodeBuilder::new(key(), "chain")
        .moniker("")
        .listen("127.0.0.1:0".parse().unwrap())
        .reactor("ECHO", Arc::new(Echo(None)))
        .start()
        .await;
    assert!(
        matches!(
            empty_moniker,
            Err(BuildError::NodeInfo(NodeInfoError::Moniker(_)))
        ),
        "{empty_moniker:?}"
    );
    let no_address = NodeBuilder::new(key(), "chain")
        .moniker("m")
        .reactor("ECHO", Arc::new(Echo(None)))
        .start()
        .await;
    assert!(
        matches!(
            no_address,
            Err(BuildError::NodeInfo(NodeInfoError::Address(_)))
        ),
        "{no_address:?}"
    );
    let no_reactor = NodeBuilder::new(key(), "chain")
        .listen("127.0.0.1:0".parse().unwrap())
        .start()
        .await;
    assert!(
        matches!(no_reactor, Err(BuildError::NoReactors)),
        "{no_reactor:?}"
    );
}

/// The switch and the transport share one deny list: an IP denied on the switch at runtime is
/// refused by the transport before any handshake, and the refusal is counted.
#[tokio::test]
async fn a_runtime_ban_reaches_the_transport() {
    let a = NodeBuilder::new(Arc::new(NodeKey::generate_os()), "chain")
        .listen("127.0.0.1:0".parse().unwrap())
        .reactor("ECHO", Arc::new(Echo(None)))
        .start()
        .await
        .unwrap();
    let b = NodeBuilder::new(Arc::new(NodeKey::generate_os()), "chain")
        .listen("127.0.0.1:0".parse().unwrap())
        .reactor("ECHO", Arc::new(Echo(None)))
        .start()
        .await
        .unwrap();
    a.switch().deny("127.0.0.1".parse::<DenyEntry>().unwrap());
    assert!(
        b.switch()
            .dial_peer_with_address(a.net_address())
            .await
            .is_err()
    );
    for _ in 0..100 {
        if a.switch().stats().inbound_failed.get("denied") == Some(&1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.switch().stats().inbound_failed.get("denied"), Some(&1));
    assert!(a.switch().peers().is_empty());
    b.stop().await;
    a.stop().await;
}

const ECHO: ChannelId = ChannelId(0x77);

/// Sends every message back, or (with a sender) hands it to the test.
struct Echo(Option<mpsc::Sender<Bytes>>);

impl Reactor for Echo {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(ECHO, NonZeroU32::MIN)]
    }

    fn receive(&self, e: Envelope) -> Result<(), ReactorError> {
        match &self.0 {
            Some(tx) => tx
                .try_send(e.message.clone())
                .map_err(|_| ReactorError::PeerRefused("full")),
            None => {
                let _ = e.src.try_send(e.channel, e.message.clone());
                Ok(())
            }
        }
    }
}

async fn wait_for_peer(
    node: &mukan_node::Node<mukan_transport::TcpTransport>,
    id: NodeId,
) -> Arc<dyn mukan_reactor_api::Peer> {
    for _ in 0..250 {
        if let Some(p) = node.switch().peer(&id) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no peer {id} within 5 s");
}

/// An address book of our own: it keeps what it is told, and offers nothing to dial.
#[derive(Default)]
struct Book {
    ours: Vec<NetAddress>,
    added: Vec<NetAddress>,
}

impl AddressBook for Book {
    fn add_our_address(&mut self, addr: NetAddress) {
        self.ours.push(addr);
    }
    fn our_address(&self, addr: &NetAddress) -> bool {
        self.ours.contains(addr)
    }
    fn add_private_ids(&mut self, _: &[NodeId]) {}
    fn add_address(
        &mut self,
        addr: NetAddress,
        _: NetAddress,
        _: SystemTime,
    ) -> Result<(), AddAddressError> {
        self.added.push(addr);
        Ok(())
    }
    fn remove_address(&mut self, addr: &NetAddress) {
        self.added.retain(|a| a != addr);
    }
    fn has_address(&self, addr: &NetAddress) -> bool {
        self.added.contains(addr)
    }
    fn size(&self) -> usize {
        self.added.len()
    }
    fn pick_address(&mut self, _: u8) -> Option<NetAddress> {
        None
    }
    fn mark_good(&mut self, _: NodeId, _: SystemTime) {}
    fn mark_attempt(&mut self, _: &NetAddress, _: SystemTime) {}
    fn mark_bad(&mut self, _: &NetAddress, _: Duration, _: SystemTime) {}
    fn reinstate_bad_peers(&mut self, _: SystemTime) {}
    fn is_good(&self, _: &NetAddress) -> bool {
        false
    }
    fn is_banned(&self, _: &NetAddress, _: SystemTime) -> bool {
        false
    }
    fn selection(&mut self) -> Vec<NetAddress> {
        Vec::new()
    }
    fn selection_with_bias(&mut self, _: u8) -> Vec<NetAddress> {
        Vec::new()
    }
}
