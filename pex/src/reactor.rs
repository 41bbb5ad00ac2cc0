//! [`PexReactor`]: the tokio adapter that feeds the [`PexCore`] from the switch and executes
//! its [`Action`]s through the switch's [`Network`] and [`Dialer`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, DialError, Dialer, Envelope, NetAddress, NetAddressError,
    Network, NodeId, ParsedAddress, Peer, Reactor, ReactorError, SharedAddressBook, StopReason,
    TrySendError, UnresolvedAddress,
};
use parking_lot::Mutex;
use rand::SeedableRng;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::core::{
    Action, CoreConfig, DEFAULT_ENSURE_PEERS_PERIOD, DEFAULT_SAVE_INTERVAL,
    DEFAULT_SEED_DISCONNECT_WAIT, DEFAULT_VERIFIED_FRESHNESS, DialOutcome, PeerInfo, PexCore,
    PexError,
};
use crate::msg::{DecodeError, MAX_MSG_SIZE, PEX_CHANNEL, channel_descriptor};

/// Saves the address book; run on a blocking thread. The node provides it (it owns the
/// concrete book and its path): lock, snapshot, unlock, write.
pub type SaveCallback = Arc<dyn Fn() + Send + Sync>;

/// A feeler's probe ([`Action::Probe`]): connect to the address, complete the secret
/// handshake and the `NodeInfo` exchange, then close; `true` when the node that answered
/// holds the ID dialed. Not a switch peer: no reactor sees it and it takes no outbound slot.
/// The node provides it (it owns the transport settings); the reactor bounds it by
/// [`PROBE_TIMEOUT`]. Without one, feelers are cancelled and nothing is marked.
pub type ProbeCallback =
    Arc<dyn Fn(NetAddress) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// The longest a feeler may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Told what PEX does that the switch's observers cannot see (the switch only sees a
/// message's type and size): for a node's seed-quality metrics. Calls come from PEX's tasks
/// and must be cheap; every method has a no-op default.
pub trait PexObserver: Send + Sync + 'static {
    /// We answered `peer`'s request with `addrs` (handed to the peer's send queue).
    fn addrs_served(&self, peer: &NodeId, addrs: &[NetAddress]) {
        let _ = (peer, addrs);
    }
}

/// Settings of the PEX reactor (the PEX part of CometBFT's `[p2p]` config).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PexConfig {
    /// `seeds`: `id@host:port` entries. A host name is resolved at every dial of the seed, by
    /// the switch ([`Dialer::dial_parsed_address`], its injected resolver), so a seed whose
    /// name moves to another IP is still found.
    pub seeds: Vec<String>,
    /// `seed_mode`.
    pub seed_mode: bool,
    /// Ensure-peers period (Go 30 s).
    pub ensure_peers_period: Duration,
    /// `addr_book_strict`, for the owner building the address book.
    pub strict_addr_book: bool,
    /// Overrides the switch's `max_num_outbound_peers` when set.
    pub max_outbound: Option<usize>,
    /// Seed mode: disconnect peers connected longer than this (Go 28 h).
    pub seed_disconnect_wait: Duration,
    /// Seed mode: serve addresses verified within this first (24 h).
    pub verified_freshness: Duration,
    /// How often the book is saved through the [`SaveCallback`] (Go 2 min).
    pub save_interval: Duration,
    /// IDs of persistent peers: the switch dials them, PEX never does.
    pub persistent_peer_ids: Vec<NodeId>,
    /// Seed of the policy's random source; `None` for a random seed (simulations set it).
    pub rng_seed: Option<u64>,
    /// Outbound netgroup diversity: at most this many outbound peers per IPv4 /16 or IPv6
    /// /32 unless the book offers nothing else ([`CoreConfig::max_outbound_per_group`];
    /// default 1, 0 = off). Beyond Go parity.
    pub max_outbound_per_group: usize,
    /// Anchors read at start (`anchors.json`): dialed first ([`CoreConfig::anchors`]).
    pub anchors: Vec<NetAddress>,
    /// Feeler period ([`CoreConfig::feeler_interval`]; default 2 minutes, zero = off).
    pub feeler_interval: Duration,
}

impl Default for PexConfig {
    fn default() -> Self {
        Self {
            seeds: Vec::new(),
            seed_mode: false,
            ensure_peers_period: DEFAULT_ENSURE_PEERS_PERIOD,
            strict_addr_book: true,
            max_outbound: None,
            seed_disconnect_wait: DEFAULT_SEED_DISCONNECT_WAIT,
            verified_freshness: DEFAULT_VERIFIED_FRESHNESS,
            save_interval: DEFAULT_SAVE_INTERVAL,
            persistent_peer_ids: Vec::new(),
            rng_seed: None,
            max_outbound_per_group: CoreConfig::default().max_outbound_per_group,
            anchors: Vec::new(),
            feeler_interval: crate::core::DEFAULT_FEELER_INTERVAL,
        }
    }
}

impl PexConfig {
    /// Parses the seed list.
    ///
    /// # Errors
    /// The first entry that is not `id@host:port` (Go: "seed node configuration has error").
    pub fn parse_seeds(&self) -> Result<Vec<ParsedAddress>, NetAddressError> {
        self.seeds
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<ParsedAddress>())
            .collect()
    }
}

struct Inner {
    book: SharedAddressBook,
    core: Mutex<PexCore>,
    /// Seeds given by host name, by the placeholder address the core knows them by
    /// ([`name_token`]); resolved when dialed.
    named_seeds: HashMap<NetAddress, UnresolvedAddress>,
    override_outbound: Option<usize>,
    switch: Mutex<Option<Weak<dyn Network>>>,
    dialer: Mutex<Option<Weak<dyn Dialer>>>,
    save: Option<SaveCallback>,
    probe: Mutex<Option<ProbeCallback>>,
    wake: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
    last_save: Mutex<Option<JoinHandle<()>>>,
    dial_slots: Mutex<Arc<Semaphore>>,
    observer: std::sync::OnceLock<Arc<dyn PexObserver>>,
}

/// The PEX reactor (channel `0x00`). See the crate docs.
#[derive(Clone)]
pub struct PexReactor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PexReactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PexReactor").finish_non_exhaustive()
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

fn peer_info(p: &dyn Peer) -> PeerInfo {
    let self_addr = match p.node_info().net_address() {
        Ok(ParsedAddress::Resolved(a)) => Some(a),
        _ => None,
    };
    PeerInfo {
        id: p.id(),
        direction: p.direction(),
        socket_addr: p.socket_addr(),
        self_addr,
        persistent: p.is_persistent(),
    }
}

impl PexReactor {
    /// A reactor over `book`; `save` persists the book (called off the async workers).
    ///
    /// # Errors
    /// A seed entry that does not parse.
    pub fn new(
        config: PexConfig,
        book: SharedAddressBook,
        save: Option<SaveCallback>,
    ) -> Result<Self, NetAddressError> {
        let mut named_seeds = HashMap::new();
        let seeds = config
            .parse_seeds()?
            .into_iter()
            .map(|s| match s {
                ParsedAddress::Resolved(a) => a,
                ParsedAddress::Unresolved(u) => {
                    let token = name_token(&u);
                    named_seeds.insert(token, u);
                    token
                }
            })
            .collect();
        let core_cfg = CoreConfig {
            seed_mode: config.seed_mode,
            seeds,
            ensure_peers_period: config.ensure_peers_period,
            seed_disconnect_wait: config.seed_disconnect_wait,
            verified_freshness: config.verified_freshness,
            save_interval: config.save_interval,
            request_spacing: config.ensure_peers_period / 2,
            max_outbound_per_group: config.max_outbound_per_group,
            anchors: config.anchors.clone(),
            feeler_interval: config.feeler_interval,
            persistent_ids: config
                .persistent_peer_ids
                .iter()
                .copied()
                .collect::<HashSet<_>>(),
            ..CoreConfig::default()
        };
        let rng = match config.rng_seed {
            Some(seed) => rand_chacha::ChaCha20Rng::seed_from_u64(seed),
            None => rand_chacha::ChaCha20Rng::from_entropy(),
        };
        let core = PexCore::new(core_cfg, rng);
        Ok(Self {
            inner: Arc::new(Inner {
                book,
                core: Mutex::new(core),
                named_seeds,
                override_outbound: config.max_outbound,
                switch: Mutex::new(None),
                dialer: Mutex::new(None),
                save,
                probe: Mutex::new(None),
                wake: Notify::new(),
                task: Mutex::new(None),
                last_save: Mutex::new(None),
                dial_slots: Mutex::new(Arc::new(Semaphore::new(10))),
                observer: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Waits for the last save started (e.g. by `on_stop`) to finish.
    pub async fn wait_saved(&self) {
        let h = self.inner.last_save.lock().take();
        if let Some(h) = h {
            let _ = h.await;
        }
    }

    /// Tells `observer` what PEX serves ([`PexObserver`]); set once, before the reactor
    /// starts (a second observer is ignored: `false`).
    pub fn set_observer(&self, observer: Arc<dyn PexObserver>) -> bool {
        self.inner.observer.set(observer).is_ok()
    }

    /// The anchors to save on a clean stop ([`PexCore::anchors`]): ask before stopping the
    /// switch, while the peers are still there.
    pub fn anchors(&self) -> Vec<NetAddress> {
        self.inner.core.lock().anchors()
    }

    /// Sets how feelers reach an address ([`ProbeCallback`]); until set, feelers are
    /// cancelled and nothing is marked.
    pub fn set_probe(&self, probe: ProbeCallback) {
        *self.inner.probe.lock() = Some(probe);
    }

    /// The policy core (for inspection).
    pub fn with_core<T>(&self, f: impl FnOnce(&PexCore) -> T) -> T {
        f(&self.inner.core.lock())
    }
}

impl Inner {
    fn switch(&self) -> Option<Arc<dyn Network>> {
        self.switch.lock().as_ref().and_then(Weak::upgrade)
    }

    fn dialer(&self) -> Option<Arc<dyn Dialer>> {
        self.dialer.lock().as_ref().and_then(Weak::upgrade)
    }

    /// Runs `f` on the core with the book locked (short, never across an await); locks in
    /// the order core → book everywhere.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut PexCore, &mut dyn mukan_reactor_api::AddressBook) -> T,
    ) -> T {
        let mut core = self.core.lock();
        let mut book = self.book.lock();
        f(&mut core, &mut *book)
    }

    fn execute(self: &Arc<Self>, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        let sw = self.switch();
        for action in actions {
            match action {
                Action::Send { peer, message } => {
                    let Some(p) = sw.as_ref().and_then(|s| s.peer(&peer)) else {
                        self.core.lock().send_failed(&peer, &message);
                        continue;
                    };
                    let bytes = Bytes::from(message.encode());
                    let served = |message: &crate::msg::PexMessage| {
                        if let (crate::msg::PexMessage::Addrs(addrs), Some(o)) =
                            (message, self.observer.get())
                        {
                            o.addrs_served(&peer, addrs);
                        }
                    };
                    match p.try_send(PEX_CHANNEL, bytes.clone()) {
                        Ok(()) => served(&message),
                        Err(TrySendError::Full) => {
                            let this = self.clone();
                            spawn(async move {
                                if p.send(PEX_CHANNEL, bytes).await.is_err() {
                                    this.core.lock().send_failed(&peer, &message);
                                } else if let (crate::msg::PexMessage::Addrs(addrs), Some(o)) =
                                    (&message, this.observer.get())
                                {
                                    o.addrs_served(&peer, addrs);
                                }
                            });
                        }
                        Err(_) => self.core.lock().send_failed(&peer, &message),
                    }
                }
                Action::StopPeer {
                    peer,
                    reason,
                    banned,
                } => {
                    tracing::debug!(
                        target: "mukan_pex",
                        %peer,
                        banned,
                        "stopping peer: {reason}"
                    );
                    if let Some(s) = &sw {
                        s.stop_peer_for_error(&peer, reactor_error(&reason));
                    }
                }
                Action::Disconnect { peer } => {
                    if let Some(s) = &sw {
                        s.stop_peer_gracefully(&peer);
                    }
                }
                Action::MarkUseful { peer } => {
                    if let Some(s) = &sw {
                        s.mark_useful(&peer);
                    }
                }
                Action::Dial { addr } => {
                    let Some(s) = self.dialer() else {
                        continue;
                    };
                    let this = self.clone();
                    let slots = self.dial_slots.lock().clone();
                    let target = match self.named_seeds.get(&addr) {
                        Some(u) => ParsedAddress::Unresolved(u.clone()),
                        None => ParsedAddress::Resolved(addr),
                    };
                    let spawned = spawn(async move {
                        let outcome = match slots.acquire_owned().await {
                            Ok(_permit) => match s.dial_parsed_address(target).await {
                                Ok(()) => DialOutcome::Connected,
                                Err(DialError::AlreadyDialingOrConnected(_)) => {
                                    DialOutcome::AlreadyConnected
                                }
                                Err(_) => DialOutcome::Failed,
                            },
                            Err(_) => DialOutcome::Failed,
                        };
                        let acts = this.with(|c, b| {
                            c.dial_finished(b, addr, outcome, now(), SystemTime::now())
                        });
                        this.execute(acts);
                    });
                    if !spawned {
                        let acts = self.with(|c, b| {
                            c.dial_finished(b, addr, DialOutcome::Failed, now(), SystemTime::now())
                        });
                        self.execute(acts);
                    }
                }
                Action::Probe { addr } => {
                    let probe = self.probe.lock().clone();
                    let Some(probe) = probe else {
                        self.core.lock().probe_cancelled(addr);
                        continue;
                    };
                    let this = self.clone();
                    let spawned = spawn(async move {
                        let reached = tokio::time::timeout(PROBE_TIMEOUT, probe(addr))
                            .await
                            .unwrap_or(false);
                        tracing::debug!(target: "mukan_pex", %addr, reached, "feeler");
                        this.with(|c, b| c.probe_finished(b, addr, reached, SystemTime::now()));
                    });
                    if !spawned {
                        self.core.lock().probe_cancelled(addr);
                    }
                }
                Action::SaveBook => {
                    if let Some(save) = self.save.clone() {
                        if let Ok(h) = tokio::runtime::Handle::try_current() {
                            *self.last_save.lock() = Some(h.spawn_blocking(move || save()));
                        } else {
                            save();
                        }
                    }
                }
            }
        }
    }
}

/// How the switch and its observers see a PEX error (the full error is logged at debug).
fn reactor_error(e: &PexError) -> ReactorError {
    let channel = PEX_CHANNEL;
    let violation = |rule| ReactorError::Violation { channel, rule };
    match e {
        PexError::Decode(DecodeError::TooLarge(len)) => ReactorError::TooLarge {
            channel,
            len: *len,
            max: MAX_MSG_SIZE,
        },
        PexError::Decode(DecodeError::Protobuf(source)) => ReactorError::Decode {
            channel,
            source: source.clone(),
        },
        PexError::Decode(DecodeError::InvalidAddress { .. }) => {
            violation("invalid address in PexAddrs")
        }
        PexError::Decode(_) => violation("PEX message with no content"),
        PexError::RequestTooSoon { .. } => violation("PEX request too soon"),
        PexError::Unsolicited => violation("unsolicited PexAddrs"),
        PexError::Banned => ReactorError::PeerRefused("peer is banned"),
    }
}

/// The address the core knows a seed given by host name by: its ID and port at `0.0.0.0`
/// (never dialed as such: the reactor dials the name).
fn name_token(u: &UnresolvedAddress) -> NetAddress {
    u.with_ip(std::net::Ipv4Addr::UNSPECIFIED.into())
}

/// Spawns on the current runtime; `false` when there is none.
fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> bool {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            drop(h.spawn(fut));
            true
        }
        Err(_) => false,
    }
}

async fn run(inner: Weak<Inner>) {
    let Some(this) = inner.upgrade() else {
        return;
    };
    let acts = this.with(|c, b| c.start(b, now(), SystemTime::now()));
    this.execute(acts);
    drop(this);
    loop {
        let Some(this) = inner.upgrade() else {
            return;
        };
        let deadline = this.core.lock().next_deadline();
        let Some(deadline) = deadline else {
            return;
        };
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
        tokio::select! {
            () = sleep => {}
            () = this.wake.notified() => {}
        }
        let acts = this.with(|c, b| c.tick(b, now(), SystemTime::now()));
        this.execute(acts);
    }
}

impl Reactor for PexReactor {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![channel_descriptor()]
    }

    fn set_switch(&self, switch: Weak<dyn Network>) {
        *self.inner.switch.lock() = Some(switch);
    }

    fn set_dialer(&self, dialer: Weak<dyn Dialer>) {
        *self.inner.dialer.lock() = Some(dialer);
    }

    fn on_start(&self) {
        let inner = &self.inner;
        if let Some(sw) = inner.switch() {
            let max = inner
                .override_outbound
                .unwrap_or_else(|| inner.dialer().map_or(0, |d| d.max_num_outbound_peers()));
            let ours = sw.net_address();
            let mut core = inner.core.lock();
            core.set_max_outbound(max);
            core.set_our_address(ours);
            *inner.dial_slots.lock() = Arc::new(Semaphore::new(max.max(1)));
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let task = handle.spawn(run(Arc::downgrade(inner)));
        if let Some(old) = inner.task.lock().replace(task) {
            old.abort();
        }
    }

    fn on_stop(&self) {
        if let Some(task) = self.inner.task.lock().take() {
            task.abort();
        }
        let acts = self.inner.core.lock().stop();
        self.inner.execute(acts);
    }

    fn init_peer(&self, peer: &Arc<dyn Peer>) {
        let _ = peer;
    }

    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        let info = peer_info(peer.as_ref());
        let acts = self
            .inner
            .with(|c, b| c.peer_added(b, info, now(), SystemTime::now()));
        self.inner.execute(acts);
    }

    fn remove_peer(&self, peer: &Arc<dyn Peer>, reason: &StopReason) {
        let _ = reason;
        self.inner.core.lock().peer_removed(&peer.id());
    }

    /// `p2p_PexRequest` or `p2p_PexAddrs` (Go's metric label), from the first tag byte of
    /// the `Message` oneof, without decoding.
    fn message_type(&self, channel: ChannelId, message: &[u8]) -> Option<&'static str> {
        if channel != PEX_CHANNEL {
            return None;
        }
        match message.first() {
            Some(0x0a) => Some("p2p_PexRequest"),
            Some(0x12) => Some("p2p_PexAddrs"),
            _ => None,
        }
    }

    fn receive(&self, envelope: Envelope) -> Result<(), ReactorError> {
        let info = peer_info(envelope.src.as_ref());
        let acts = self
            .inner
            .with(|c, b| c.receive(b, &info, &envelope.message, now(), SystemTime::now()));
        drop(envelope);
        self.inner.execute(acts);
        Ok(())
    }
}
