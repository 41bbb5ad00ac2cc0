//! [`NodeBuilder`]: the one place where a transport, the switch, an address book and reactors
//! are wired into a running [`Node`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mukan_node_key::NodeKey;
use mukan_pex::{PexConfig, PexObserver, PexReactor, SaveCallback};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, NetAddress, Network as _, NodeInfo, NodeInfoError, Observer,
    ParsedAddress, ProtocolVersion, Reactor, SharedAddressBook, Transport,
};
use mukan_switch::{Resolver, Switch};
use mukan_transport::TcpTransport;

/// Builds a running node from parts (or from a CometBFT home, [`NodeBuilder::from_home`]):
/// the node key, our `NodeInfo`'s fields, the switch's and the transport's settings, an
/// address book, any reactors (PEX included, [`NodeBuilder::pex`]), any observers.
///
/// It makes every decision two crates would otherwise have to agree on by hand, once:
/// - our `NodeInfo` lists the channels of the registered reactors, in registration order,
///   and is validated before anything starts ([`BuildError::NodeInfo`]: an empty moniker, no
///   listen address, …);
/// - the switch and the transport share one deny list, one duplicate-IP rule, and one flush
///   timeout (the switch's), and the transport's inbound slots are the switch's inbound limit
///   plus its unconditional peers plus the transport's pending pool, so that newcomers reach
///   the switch, which decides who holds the slots (eviction);
/// - the persistent peers are typed addresses, parsed once, dialed at start (with the
///   switch's `dial_randomizer`, Go's jitter; zero dials at once).
///
/// Generic over the transport: [`NodeBuilder::start`] runs on TCP; [`NodeBuilder::start_with`]
/// on any [`BindTransport`] (the in-memory transport with the `memory` feature, or a wrapper
/// of your own).
///
/// ```
/// use std::sync::Arc;
/// use mukan_node::NodeBuilder;
/// use mukan_node_key::NodeKey;
/// use mukan_reactor_api::{ChannelDescriptor, ChannelId, Envelope, Reactor, ReactorError};
///
/// struct Echo;
/// impl Reactor for Echo {
///     fn channels(&self) -> Vec<ChannelDescriptor> {
///         vec![ChannelDescriptor::new(ChannelId(0x77), std::num::NonZeroU32::MIN)]
///     }
///     fn receive(&self, e: Envelope) -> Result<(), ReactorError> {
///         let _ = e.src.try_send(e.channel, e.message.clone());
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let node = NodeBuilder::new(Arc::new(NodeKey::generate_os()), "my-chain")
///     .moniker("alpha")
///     .listen("127.0.0.1:0".parse().unwrap())
///     .reactor("ECHO", Arc::new(Echo))
///     .start()
///     .await
///     .unwrap();
/// assert_eq!(node.node_info().channels, vec![ChannelId(0x77)]);
/// node.stop().await;
/// # });
/// ```
pub struct NodeBuilder {
    key: Arc<NodeKey>,
    info: NodeInfo,
    listen: Option<SocketAddr>,
    switch: mukan_switch::Config,
    transport: mukan_transport::Config,
    transport_inbound_set: bool,
    book: Option<SharedAddressBook>,
    saver: Option<SaveCallback>,
    /// The reactors in registration order; PEX where [`NodeBuilder::pex`] put it.
    reactors: Vec<(String, Slot)>,
    observers: Vec<Arc<dyn Observer>>,
    observer_makers: Vec<ObserverMaker>,
    resolver: Option<Arc<dyn Resolver>>,
    dial_persistent: bool,
    pex_observer: Option<Arc<dyn PexObserver>>,
}

/// A reactor to register, or PEX (made at start, over the address book).
enum Slot {
    Reactor(Arc<dyn Reactor>),
    Pex(Box<PexConfig>),
}

/// Makes an observer once our channels are known.
type ObserverMaker = Box<dyn FnOnce(&[ChannelId]) -> Arc<dyn Observer> + Send>;

/// What a transport is made of ([`NodeBuilder::start_with`]): our key, our `NodeInfo`
/// (channels filled in, validated) and the transport settings (deny list, duplicate-IP rule,
/// flush timeout and inbound slots already agreed with the switch).
#[derive(Debug)]
#[non_exhaustive]
pub struct TransportParts {
    /// Our node key.
    pub key: Arc<NodeKey>,
    /// Our `NodeInfo`.
    pub node_info: NodeInfo,
    /// The transport settings.
    pub config: mukan_transport::Config,
}

/// A transport the builder can bind: [`TcpTransport`] (and, with the `memory` feature,
/// `MemoryTransport`), or a wrapper of yours that delegates to one.
pub trait BindTransport: Transport {
    /// Binds `addr` and starts accepting; returns the bound address. When our `NodeInfo`
    /// announces no listen address (or port 0), the transport announces the bound one.
    ///
    /// # Errors
    /// The bind error.
    fn bind(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<SocketAddr>> + Send + '_>>;

    /// The `NodeInfo` the transport announces (after [`BindTransport::bind`], with its listen
    /// address).
    fn announced(&self) -> NodeInfo;
}

impl BindTransport for TcpTransport {
    fn bind(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<SocketAddr>> + Send + '_>> {
        Box::pin(self.listen(addr))
    }

    fn announced(&self) -> NodeInfo {
        self.node_info()
    }
}

#[cfg(feature = "memory")]
impl BindTransport for mukan_transport::MemoryTransport {
    fn bind(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<SocketAddr>> + Send + '_>> {
        Box::pin(self.listen(addr))
    }

    fn announced(&self) -> NodeInfo {
        self.node_info()
    }
}

/// Feelers' probes ([`mukan_pex::ProbeCallback`]) through `transport`, one of their own (the
/// node's key, `NodeInfo` and settings): a probe completes the handshake and the `NodeInfo`
/// exchange (which checks the ID dialed), then closes; it is never a switch peer and takes
/// no outbound slot.
pub fn feeler_probe(transport: Arc<TcpTransport>) -> mukan_pex::ProbeCallback {
    Arc::new(move |addr| {
        let transport = transport.clone();
        Box::pin(async move {
            let config = mukan_reactor_api::PeerConfig::new(vec![mukan_pex::channel_descriptor()]);
            match transport.dial(addr, config).await {
                Ok(peer) => {
                    peer.stop();
                    true
                }
                Err(_) => false,
            }
        })
    })
}

/// Why a node could not be built or started. Nothing was started then (a bound listener is
/// closed again).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Our own `NodeInfo` would be refused by every peer (Go validates its own info the same
    /// way): an empty or non-ASCII moniker, no listen address, too many channels, …
    #[error("our NodeInfo is invalid: {0}")]
    NodeInfo(#[source] NodeInfoError),
    /// No reactor is registered: a connection needs at least one channel.
    #[error("no reactor registered: a connection needs at least one channel")]
    NoReactors,
    /// A reactor could not be registered (a duplicate name or channel).
    #[error("reactor {name:?}: {source}")]
    Reactor {
        /// The name it was registered under.
        name: String,
        /// Why.
        #[source]
        source: mukan_switch::Error,
    },
    /// The PEX settings do not parse.
    #[error("PEX: {0}")]
    Pex(#[source] mukan_reactor_api::NetAddressError),
    /// PEX needs an address book ([`NodeBuilder::address_book`]).
    #[error("PEX needs an address book")]
    PexWithoutBook,
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: io::Error,
    },
    /// The switch refused to build or start.
    #[error(transparent)]
    Switch(mukan_switch::Error),
}

impl NodeBuilder {
    /// A node with key `key` on the chain `network`, named `mukan-p2p`, with CometBFT's
    /// protocol versions, this crate's version, the switch's and the transport's defaults
    /// (CometBFT's `[p2p]` defaults), no listener, no reactor and no address book.
    pub fn new(key: Arc<NodeKey>, network: impl Into<String>) -> Self {
        let info = NodeInfo::new(key.node_id(), network, "mukan-p2p").with_version(crate::VERSION);
        Self {
            key,
            info,
            listen: None,
            switch: mukan_switch::Config::default(),
            transport: mukan_transport::Config::default(),
            transport_inbound_set: false,
            book: None,
            saver: None,
            reactors: Vec::new(),
            observers: Vec::new(),
            observer_makers: Vec::new(),
            resolver: None,
            dial_persistent: true,
            pex_observer: None,
        }
    }

    /// Our name (`moniker`; required, printable ASCII).
    #[must_use]
    pub fn moniker(mut self, moniker: impl Into<String>) -> Self {
        self.info.moniker = moniker.into();
        self
    }

    /// Our software version (`NodeInfo.version`; default: this crate's).
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.info.version = version.into();
        self
    }

    /// Our protocol versions (default [`ProtocolVersion::COMETBFT`]); a peer whose block
    /// version differs is incompatible.
    #[must_use]
    pub fn protocol_version(mut self, version: ProtocolVersion) -> Self {
        self.info.protocol_version = version;
        self
    }

    /// `other.tx_index` of our `NodeInfo` (`"on"`, `"off"` or empty; default `"off"`).
    #[must_use]
    pub fn tx_index(mut self, tx_index: impl Into<String>) -> Self {
        self.info.other.tx_index = tx_index.into();
        self
    }

    /// `other.rpc_address` of our `NodeInfo` (default: empty).
    #[must_use]
    pub fn rpc_address(mut self, rpc_address: impl Into<String>) -> Self {
        self.info.other.rpc_address = rpc_address.into();
        self
    }

    /// Where to accept connections. Without it the node only dials, and must announce an
    /// [`external_address`](NodeBuilder::external_address).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// The address we announce (`NodeInfo.listen_addr`, `[p2p] external_address`), when it is
    /// not where we listen (behind NAT). Default: the bound listen address.
    #[must_use]
    pub fn external_address(mut self, addr: impl Into<String>) -> Self {
        self.info.listen_addr = addr.into();
        self
    }

    /// The switch's settings (limits, persistent and unconditional peers, deny list, …).
    #[must_use]
    pub fn switch_config(mut self, config: mukan_switch::Config) -> Self {
        self.switch = config;
        self
    }

    /// Changes the switch's settings in place.
    #[must_use]
    pub fn map_switch_config(mut self, f: impl FnOnce(&mut mukan_switch::Config)) -> Self {
        f(&mut self.switch);
        self
    }

    /// The transport's settings (timeouts of each stage, MConnection, filters' bounds, …). Its
    /// deny list, duplicate-IP rule and MConnection flush timeout are replaced by the
    /// switch's at start; its inbound slots too, unless set here.
    #[must_use]
    pub fn transport_config(mut self, config: mukan_transport::Config) -> Self {
        self.transport_inbound_set = config.max_inbound.is_some();
        self.transport = config;
        self
    }

    /// Changes the transport's settings in place (see [`NodeBuilder::transport_config`]).
    #[must_use]
    pub fn map_transport_config(mut self, f: impl FnOnce(&mut mukan_transport::Config)) -> Self {
        f(&mut self.transport);
        self.transport_inbound_set = self.transport.max_inbound.is_some();
        self
    }

    /// The peers to keep connected (Go `persistent_peers`), parsed once; a host name is
    /// resolved at every dial.
    #[must_use]
    pub fn persistent_peers(mut self, peers: Vec<ParsedAddress>) -> Self {
        self.switch.persistent_peers = peers;
        self
    }

    /// Whether [`NodeBuilder::start`] dials the persistent peers (default: yes, as a node
    /// does).
    #[must_use]
    pub fn dial_persistent_peers(mut self, dial: bool) -> Self {
        self.dial_persistent = dial;
        self
    }

    /// The bound on flushing a peer's queues on a graceful stop, for both the switch and each
    /// connection (one owner of the value).
    #[must_use]
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.switch.flush_timeout = timeout;
        self
    }

    /// How long a channel's full receive budget may pause reading before the peer is stopped
    /// as a slow receiver (the connection enforces it).
    #[must_use]
    pub fn recv_stall_timeout(mut self, timeout: Duration) -> Self {
        self.transport.mconn.recv_stall_timeout = timeout;
        self
    }

    /// The address book: the switch tells it our address, the private IDs, the addresses it
    /// dials and which peers were good; PEX fills it.
    #[must_use]
    pub fn address_book(mut self, book: SharedAddressBook) -> Self {
        self.book = Some(book);
        self
    }

    /// Saves the address book (called by PEX on its schedule and as it stops, off the async
    /// workers).
    #[must_use]
    pub fn save_book_with(mut self, save: SaveCallback) -> Self {
        self.saver = Some(save);
        self
    }

    /// Runs PEX with `config`, registered as `"PEX"` at this point of the reactor order, over
    /// the address book (required). The switch's persistent peers are added to the IDs PEX
    /// leaves to the switch.
    #[must_use]
    pub fn pex(mut self, config: PexConfig) -> Self {
        self.reactors
            .push(("PEX".to_owned(), Slot::Pex(Box::new(config))));
        self
    }

    /// Changes the PEX settings in place (no effect without [`NodeBuilder::pex`]).
    #[must_use]
    pub fn map_pex(mut self, f: impl FnOnce(&mut PexConfig)) -> Self {
        for (_, slot) in &mut self.reactors {
            if let Slot::Pex(p) = slot {
                f(p);
                break;
            }
        }
        self
    }

    /// Tells `observer` what PEX serves (no effect without [`NodeBuilder::pex`]): the
    /// addresses of each answer, which the switch's observers do not see.
    #[must_use]
    pub fn pex_observer(mut self, observer: Arc<dyn PexObserver>) -> Self {
        self.pex_observer = Some(observer);
        self
    }

    /// Registers `reactor` under `name`, after the reactors (and PEX) registered before. Its
    /// channels join our `NodeInfo`, in registration order.
    #[must_use]
    pub fn reactor(mut self, name: impl Into<String>, reactor: Arc<dyn Reactor>) -> Self {
        self.reactors.push((name.into(), Slot::Reactor(reactor)));
        self
    }

    /// Adds an observer of the switch (peers, traffic, dials, refusals).
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Adds the observer `make` returns, called at start with our channels (the channels of
    /// every registered reactor, in order): for observers that prepare per-channel state,
    /// such as metrics.
    #[must_use]
    pub fn observer_with(
        mut self,
        make: impl FnOnce(&[ChannelId]) -> Arc<dyn Observer> + Send + 'static,
    ) -> Self {
        self.observer_makers.push(Box::new(make));
        self
    }

    /// Resolves host names with `resolver` instead of the system's.
    #[must_use]
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The transport settings so far (as given; at start, the deny list, duplicate-IP rule,
    /// flush timeout and inbound limit are taken from the switch's settings).
    pub fn transport_settings(&self) -> &mukan_transport::Config {
        &self.transport
    }

    /// Builds the node over TCP, listens, starts it and dials the persistent peers.
    ///
    /// # Errors
    /// A [`BuildError`]; nothing is left running then.
    /// With PEX, its feelers probe through a transport of their own ([`feeler_probe`]).
    pub async fn start(self) -> Result<Node<TcpTransport>, BuildError> {
        let mut probe_parts = None;
        let node = self
            .start_with(|p| {
                probe_parts = Some((p.key.clone(), p.config.clone()));
                TcpTransport::new(p.key, p.node_info, p.config)
            })
            .await?;
        if let (Some(pex), Some((key, config))) = (node.pex(), probe_parts) {
            let info = node.node_info().clone();
            pex.set_probe(feeler_probe(Arc::new(TcpTransport::new(key, info, config))));
        }
        Ok(node)
    }

    /// As [`NodeBuilder::start`], over the transport `make` builds from the agreed parts.
    ///
    /// # Errors
    /// A [`BuildError`]; nothing is left running then.
    pub async fn start_with<T: BindTransport>(
        self,
        make: impl FnOnce(TransportParts) -> T,
    ) -> Result<Node<T>, BuildError> {
        let dial_persistent = self.dial_persistent;
        let listen = self.listen;
        let (builder, parts, pex) = self.prepare()?;
        let transport = make(parts);
        let local_addr = match listen {
            Some(addr) => Some(
                transport
                    .bind(addr)
                    .await
                    .map_err(|source| BuildError::Listen { addr, source })?,
            ),
            None => None,
        };
        let node_info = transport.announced();
        if let Err(e) = node_info.validate() {
            transport.close();
            return Err(BuildError::NodeInfo(e));
        }
        let switch = builder.build(transport).map_err(BuildError::Switch)?;
        switch.start().map_err(BuildError::Switch)?;
        if dial_persistent {
            switch.dial_persistent_peers();
        }
        Ok(Node {
            switch,
            node_info,
            local_addr,
            pex,
        })
    }

    /// Only the transport, for a program that dials without a switch (a crawler): our
    /// `NodeInfo` holds `channels` (there are no reactors to take them from), validated, and
    /// the transport gets the settings it would get in a node.
    ///
    /// # Errors
    /// [`BuildError::NodeInfo`].
    pub fn build_transport<T: Transport>(
        mut self,
        channels: &[ChannelDescriptor],
        make: impl FnOnce(TransportParts) -> T,
    ) -> Result<T, BuildError> {
        self.info.channels = channels.iter().map(|c| c.id).collect();
        self.info.validate().map_err(BuildError::NodeInfo)?;
        let config = self.agreed_transport_config();
        Ok(make(TransportParts {
            key: self.key,
            node_info: self.info,
            config,
        }))
    }

    /// The transport settings with what the switch decides applied.
    fn agreed_transport_config(&self) -> mukan_transport::Config {
        let mut t = self.transport.clone();
        let s = &self.switch;
        t.deny = s.deny_list.clone();
        t.allow_duplicate_ip = s.allow_duplicate_ip;
        t.mconn.flush_timeout = s.flush_timeout;
        if !self.transport_inbound_set {
            // The peer slots plus the pending pool: every newcomer is answered and upgraded,
            // and the switch decides who holds the slots (per-netgroup cap, eviction).
            t.max_inbound = NonZeroUsize::new(
                s.max_num_inbound_peers
                    + s.unconditional_peer_ids.len()
                    + t.max_pending_upgrades.get(),
            );
        }
        t
    }

    /// Registers the reactors and checks our `NodeInfo`; what remains is binding and starting.
    fn prepare(
        self,
    ) -> Result<(mukan_switch::Builder, TransportParts, Option<PexReactor>), BuildError> {
        let transport = self.agreed_transport_config();
        let persistent_ids: Vec<mukan_reactor_api::NodeId> = self
            .switch
            .persistent_peers
            .iter()
            .map(|p| match p {
                ParsedAddress::Resolved(a) => a.id(),
                ParsedAddress::Unresolved(u) => u.id,
            })
            .collect();
        let mut builder = mukan_switch::Builder::new(self.switch);
        let mut pex_reactor = None;
        for (name, slot) in self.reactors {
            let reactor: Arc<dyn Reactor> = match slot {
                Slot::Reactor(r) => r,
                Slot::Pex(mut pex) => {
                    let Some(book) = self.book.clone() else {
                        return Err(BuildError::PexWithoutBook);
                    };
                    // PEX never dials the persistent peers: the switch does.
                    for id in &persistent_ids {
                        if !pex.persistent_peer_ids.contains(id) {
                            pex.persistent_peer_ids.push(*id);
                        }
                    }
                    let r =
                        PexReactor::new(*pex, book, self.saver.clone()).map_err(BuildError::Pex)?;
                    if let Some(o) = self.pex_observer.clone() {
                        r.set_observer(o);
                    }
                    pex_reactor = Some(r.clone());
                    Arc::new(r)
                }
            };
            builder
                .add_reactor(&name, reactor)
                .map_err(|source| BuildError::Reactor { name, source })?;
        }
        let channels = builder.channel_ids();
        if channels.is_empty() {
            return Err(BuildError::NoReactors);
        }
        let mut info = self.info;
        info.channels = channels;
        // Where we listen fills an empty listen address once bound; check the rest now.
        let mut check = info.clone();
        if let (true, Some(addr)) = (check.listen_addr.is_empty(), self.listen) {
            check.listen_addr = format!("tcp://{addr}");
        }
        check.validate().map_err(BuildError::NodeInfo)?;
        if let Some(book) = self.book {
            builder = builder.address_book(book);
        }
        if let Some(resolver) = self.resolver {
            builder = builder.resolver(resolver);
        }
        for o in self.observers {
            builder = builder.observer(o);
        }
        for make in self.observer_makers {
            builder = builder.observer(make(&info.channels));
        }
        let parts = TransportParts {
            key: self.key,
            node_info: info,
            config: transport,
        };
        Ok((builder, parts, pex_reactor))
    }
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("node_info", &self.info)
            .field("listen", &self.listen)
            .field(
                "reactors",
                &self.reactors.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A running node ([`NodeBuilder::start`]): its switch over transport `T`, what it announces
/// and where it listens. [`Node::stop`] stops it in order; dropping it stops the switch
/// without waiting.
pub struct Node<T: Transport> {
    switch: Arc<Switch<T>>,
    node_info: NodeInfo,
    local_addr: Option<SocketAddr>,
    pex: Option<PexReactor>,
}

impl<T: Transport> Node<T> {
    /// The switch.
    pub fn switch(&self) -> &Arc<Switch<T>> {
        &self.switch
    }

    /// The `NodeInfo` we announce (channels and listen address filled in).
    pub fn node_info(&self) -> &NodeInfo {
        &self.node_info
    }

    /// The bound listen address, if listening.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Our address (`id@ip:port`), as peers dial it.
    pub fn net_address(&self) -> NetAddress {
        self.switch.net_address()
    }

    /// The PEX reactor, when running.
    pub fn pex(&self) -> Option<&PexReactor> {
        self.pex.as_ref()
    }

    /// Stops in order: stop accepting, flush and close every peer, stop the reactors; PEX
    /// saves the address book as it stops ([`NodeBuilder::save_book_with`]), and this waits
    /// for that save.
    ///
    /// # Cancel safety
    /// Not cancel-safe (see `Switch::stop`).
    pub async fn stop(&self) {
        self.switch.stop().await;
        if let Some(pex) = &self.pex {
            pex.wait_saved().await;
        }
    }
}

impl<T: Transport> std::fmt::Debug for Node<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_info", &self.node_info)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}
