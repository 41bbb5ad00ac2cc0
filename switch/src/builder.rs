//! [`Builder`]: registers reactors and observers, then builds a [`Switch`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Dialer, Network, NodeId, Observer, Observers, PeerConfig,
    Reactor, Transport,
};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use crate::log::Log;
use crate::peer_set::Table;
use crate::resolver::{Resolver, TokioResolver};
use crate::routing::Routes;
use crate::stats::Counters;
use crate::switch::{Inner, Switch, parsed_id};
use crate::{Config, Error};

/// Registers reactors, then builds a [`Switch`] over a transport.
///
/// Reactors are asked for their channels when added (so the node can build its `NodeInfo`
/// from [`Builder::channel_ids`] before creating the transport), and get the switch
/// ([`Reactor::set_switch`], [`Reactor::set_dialer`]) when it is built.
pub struct Builder {
    config: Config,
    routes: Routes,
    resolver: Arc<dyn Resolver>,
    addr_book: Option<mukan_reactor_api::SharedAddressBook>,
    observers: Vec<Arc<dyn Observer>>,
}

impl Builder {
    /// A builder with `config`, the system resolver and no address book.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            routes: Routes::default(),
            resolver: Arc::new(TokioResolver),
            addr_book: None,
            observers: Vec::new(),
        }
    }

    /// Adds `observer`: it is told of every peer, message, dial and refusal
    /// ([`Observer`]), after the switch's own counters ([`Switch::stats`]) and its log
    /// lines. Observers added in turn are told in that order.
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Registers `reactor` under `name` (Go `AddReactor`).
    ///
    /// # Errors
    /// [`Error::DuplicateReactorName`] or [`Error::DuplicateChannel`]; the reactor is not
    /// registered then.
    pub fn add_reactor(&mut self, name: &str, reactor: Arc<dyn Reactor>) -> Result<(), Error> {
        self.routes.add(name, reactor)
    }

    /// Uses `resolver` for host names instead of the system resolver.
    #[must_use]
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Gives the switch an address book: it learns our own address, the private IDs, the
    /// addresses of [`Switch::dial_peers_async`] and which peers were good.
    #[must_use]
    pub fn address_book(mut self, book: mukan_reactor_api::SharedAddressBook) -> Self {
        self.addr_book = Some(book);
        self
    }

    /// The channels of every registered reactor, in registration order (for `PeerConfig`).
    pub fn channels(&self) -> Vec<ChannelDescriptor> {
        self.routes.channels().to_vec()
    }

    /// The channel IDs of every registered reactor, in registration order (our `NodeInfo`'s
    /// `channels`).
    pub fn channel_ids(&self) -> Vec<ChannelId> {
        self.routes.channel_ids()
    }

    /// Builds the switch over `transport` and hands it to every reactor
    /// ([`Reactor::set_switch`], then [`Reactor::set_dialer`]).
    ///
    /// # Errors
    /// None today (registration errors come from [`Builder::add_reactor`]); kept so that a
    /// check at build time is not a breaking change.
    pub fn build<T: Transport>(self, transport: T) -> Result<Arc<Switch<T>>, Error> {
        let persistent = self.config.persistent_peers.clone();
        let persistent_ids: Arc<HashSet<NodeId>> =
            Arc::new(persistent.iter().map(parsed_id).collect());
        let unconditional: HashSet<NodeId> =
            self.config.unconditional_peer_ids.iter().copied().collect();
        let mut rng = match self.config.rng_seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_entropy(),
        };
        let group_key = rand::Rng::r#gen::<u64>(&mut rng);
        let peer_config = PeerConfig::new(self.routes.channels().to_vec());
        let counters = Arc::new(Counters::new());
        let mut observer = Observers::new();
        observer.push(counters.clone());
        observer.push(Arc::new(Log));
        for o in self.observers {
            observer.push(o);
        }
        let transport = Arc::new(transport);
        let dyn_transport: Arc<dyn Transport> = transport.clone();
        let our_id = dyn_transport.net_address().id();
        let (shutdown, _) = watch::channel(false);
        let (started, _) = watch::channel(false);
        let channel_ids = self.routes.channel_ids();
        let inner = Arc::new(Inner {
            config: self.config,
            transport: dyn_transport,
            routes: Arc::new(self.routes),
            channel_ids,
            peer_config,
            persistent,
            persistent_ids,
            unconditional,
            our_id,
            resolver: self.resolver,
            addr_book: self.addr_book,
            rng: Mutex::new(rng),
            redial_from: Mutex::new(HashMap::new()),
            table: Mutex::new(Table::new()),
            group_key,
            counters,
            observer,
            shutdown,
            started,
            accept_task: Mutex::new(None),
        });
        let switch = Arc::new_cyclic(|weak: &Weak<Switch<T>>| {
            let network: Weak<dyn Network> = weak.clone();
            let dialer: Weak<dyn Dialer> = weak.clone();
            for reactor in inner.routes.reactors() {
                reactor.set_switch(network.clone());
                reactor.set_dialer(dialer.clone());
            }
            Switch {
                inner: inner.clone(),
                transport,
            }
        });
        Ok(switch)
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("channels", &self.routes.channel_ids())
            .finish_non_exhaustive()
    }
}
