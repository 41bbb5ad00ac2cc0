//! The node `run` builds (switch, transport, echo reactor, PEX) and what it dials.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mukan_addrbook::{AddrBook, Config as AddrBookConfig};
use mukan_node_key::NodeKey;
use mukan_pex::{PexConfig, PexReactor, SaveCallback};
use std::future::Future;
use std::pin::Pin;

use mukan_node::{BindTransport, NodeBuilder};
use mukan_reactor_api::{
    AddressBook, DialError, Dialer, ManagedPeer, NetAddress, Network, NodeInfo, ParsedAddress,
    PeerConfig, ProtocolVersion, Reactor, Transport, TransportError,
};
use mukan_switch::Switch;
use mukan_transport::TcpTransport;
use parking_lot::Mutex;
use rand::SeedableRng;

use crate::cfg::Cfg;
use crate::echo::{ECHO_REACTOR, EchoReactor};
use crate::events::{Events, emit_rejected};

/// What `run` builds: the switch, the echo reactor and the event printer.
pub(crate) struct Node {
    pub(crate) cfg: Cfg,
    pub(crate) ev: Events,
    pub(crate) switch: Arc<Switch<EventTransport>>,
    /// The bound listen address.
    pub(crate) local_addr: std::net::SocketAddr,
    pub(crate) echo: Arc<EchoReactor>,
    /// With `--pex`: the PEX reactor and its address book.
    pub(crate) pex: Option<Pex>,
}

/// The PEX reactor (`--pex`) and the address book it shares with the switch.
pub(crate) struct Pex {
    pub(crate) reactor: Option<PexReactor>,
    pub(crate) book: Arc<Mutex<AddrBook>>,
    pub(crate) path: PathBuf,
}

impl Pex {
    /// Loads (or starts) the book at `--addrbook`.
    pub(crate) fn load(cfg: &Cfg) -> Result<Self, String> {
        let path = cfg.addrbook_file();
        let mut book = AddrBook::new(
            AddrBookConfig::with_strict(cfg.addr_book_strict),
            rand_chacha::ChaCha8Rng::from_entropy(),
        );
        book.load(&path, SystemTime::now())
            .map_err(|e| format!("address book {}: {e}", path.display()))?;
        Ok(Self {
            reactor: None,
            book: Arc::new(Mutex::new(book)),
            path,
        })
    }

    /// Saves the book (PEX's schedule and stop).
    pub(crate) fn saver(&self) -> SaveCallback {
        let (book, path) = (self.book.clone(), self.path.clone());
        Arc::new(move || {
            let _ = save_book(&book, &path);
        })
    }

    /// The PEX settings of `cfg` (the builder adds the persistent peers' IDs).
    pub(crate) fn config(&self, cfg: &Cfg) -> PexConfig {
        let mut pc = PexConfig::default();
        pc.seeds = cfg.seeds.clone();
        pc.seed_mode = cfg.seed_mode;
        pc.strict_addr_book = cfg.addr_book_strict;
        pc
    }

    pub(crate) fn with_reactor(mut self, reactor: PexReactor) -> Self {
        self.reactor = Some(reactor);
        self
    }

    pub(crate) fn size(&self) -> usize {
        self.book.lock().size()
    }
}

/// Writes the book atomically (a temporary file, then rename); the lock is held only to
/// encode it.
pub(crate) fn save_book(book: &Mutex<AddrBook>, path: &std::path::Path) -> std::io::Result<()> {
    let json = book.lock().to_json();
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".addrbook.json.tmp");
    std::fs::write(&tmp, &json)?;
    std::fs::rename(&tmp, path)
}

/// Prints `addrbook` with the book's size whenever it changes (checked every 200 ms).
pub(crate) async fn watch_book(node: Arc<Node>) {
    let Some(pex) = &node.pex else {
        return;
    };
    let mut last = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let n = pex.size();
        if last != Some(n) {
            last = Some(n);
            node.ev.emit("addrbook", kv!["size" => n]);
        }
    }
}

/// The echo reactor (and PEX), the transport (listening) and the switch over it, assembled by
/// `mukan_node::NodeBuilder` and started (the persistent peers are dialed by the caller, once
/// it printed `listening`).
pub(crate) async fn build(cfg: &Cfg, ev: &Events, key: Arc<NodeKey>) -> Result<Arc<Node>, String> {
    let echo = Arc::new(EchoReactor::new(cfg, ev.clone()));
    let persistent = cfg
        .persistent
        .iter()
        .map(|s| {
            s.parse::<ParsedAddress>()
                .map_err(|e| format!("--persistent-peers {s:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sconfig = mukan_switch::Config::default();
    sconfig.persistent_peers = persistent;
    sconfig.max_num_inbound_peers = cfg.max_inbound;
    sconfig.max_num_outbound_peers = cfg.max_outbound;
    sconfig.allow_duplicate_ip = cfg.allow_duplicate_ip;
    // gopeer dials its persistent peers at once; so do we.
    sconfig.dial_randomizer = Duration::ZERO;
    sconfig.persistent_peers_max_dial_period = cfg.persistent_max_dial_period;
    sconfig.redial_persistent_forever = cfg.redial_forever;
    let listen_addr = if cfg.external_address.is_empty() {
        cfg.listen.clone()
    } else {
        cfg.external_address.clone()
    };
    let bind = cfg.listen.rsplit("://").next().unwrap_or("").to_owned();
    let bind: std::net::SocketAddr = bind
        .parse()
        .map_err(|e| format!("--listen {bind:?}: {e}"))?;
    let mut builder = NodeBuilder::new(key.clone(), cfg.chain_id.clone())
        .moniker(cfg.moniker.clone())
        .version(cfg.node_version.clone())
        .protocol_version(ProtocolVersion {
            p2p: cfg.p2p_version,
            block: cfg.block_version,
            app: cfg.app_version,
        })
        .tx_index(cfg.tx_index.clone())
        .rpc_address(cfg.rpc_address.clone())
        .external_address(listen_addr)
        .listen(bind)
        .switch_config(sconfig)
        .transport_config(cfg.transport_config())
        .dial_persistent_peers(false)
        .reactor(ECHO_REACTOR, echo.clone());
    let pex = if cfg.pex {
        let pex = Pex::load(cfg)?;
        // After the echo reactor, as gopeer (and a Go node) list the PEX channel last.
        builder = builder
            .address_book(pex.book.clone())
            .save_book_with(pex.saver())
            .pex(pex.config(cfg));
        Some(pex)
    } else {
        None
    };
    let started = builder
        .start_with(|p| EventTransport {
            inner: TcpTransport::new(p.key, p.node_info, p.config),
            ev: ev.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let pex = match (pex, started.pex()) {
        (Some(p), Some(reactor)) => Some(p.with_reactor(reactor.clone())),
        _ => None,
    };
    Ok(Arc::new(Node {
        cfg: cfg.clone(),
        ev: ev.clone(),
        switch: started.switch().clone(),
        local_addr: started.local_addr().unwrap_or(bind),
        echo,
        pex,
    }))
}

/// A one-time dial (`--dial`) through the switch. An address with our own ID goes to the
/// transport directly: the switch refuses it before dialing (`DialError::SelfAddress`), and the
/// `reject-self` cases check the transport's own detection of a self-connection on both ends.
pub(crate) async fn dial_once(node: Arc<Node>, addr: NetAddress) {
    let transport = node.switch.transport();
    if addr.id() == Network::net_address(&*node.switch).id() {
        let config = PeerConfig::new(node.echo.channels());
        if let Ok(peer) = transport.dial(addr, config).await {
            peer.stop();
        }
        return;
    }
    if let Some(pex) = &node.pex {
        // As a node's DialPeersAsync (and gopeer) do: the dialed address goes into the book.
        let ours = Network::net_address(&*node.switch);
        let _ = pex.book.lock().add_address(addr, ours, SystemTime::now());
    }
    let (reason, error) = match Dialer::dial_peer_with_address(&*node.switch, addr).await {
        // Transport errors were reported by the transport wrapper.
        Ok(()) | Err(DialError::Transport(_)) => return,
        Err(e @ DialError::AlreadyDialingOrConnected(_)) => ("already_connected", e.to_string()),
        Err(e @ DialError::SelfAddress(_)) => ("self", e.to_string()),
        Err(e @ DialError::Denied(_)) => ("filtered", e.to_string()),
        Err(e) => ("other", e.to_string()),
    };
    node.ev.emit(
        "rejected",
        kv!["direction" => "outbound", "reason" => reason, "detail" => "",
            "addr" => addr.to_string(), "error" => error],
    );
}

/// The TCP transport, printing `dialing` for every dial and `rejected` for every dial or
/// accept the transport refused (the switch's own refusals happen above it).
pub(crate) struct EventTransport {
    pub(crate) inner: TcpTransport,
    pub(crate) ev: Events,
}

impl BindTransport for EventTransport {
    fn bind(
        &self,
        addr: std::net::SocketAddr,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<std::net::SocketAddr>> + Send + '_>> {
        self.inner.bind(addr)
    }

    fn announced(&self) -> NodeInfo {
        self.inner.announced()
    }
}

pub(crate) type PeerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + 'a>>;

impl Transport for EventTransport {
    fn net_address(&self) -> NetAddress {
        self.inner.net_address()
    }

    fn dial(&self, addr: NetAddress, config: PeerConfig) -> PeerFuture<'_> {
        Box::pin(async move {
            self.ev.emit("dialing", kv!["addr" => addr.to_string()]);
            let result = self.inner.dial(addr, config).await;
            if let Err(e) = &result {
                if !matches!(e, TransportError::Closed) {
                    emit_rejected(&self.ev, "outbound", e, &addr.to_string());
                }
            }
            result
        })
    }

    fn accept(&self, config: PeerConfig) -> PeerFuture<'_> {
        Box::pin(async move {
            let result = self.inner.accept(config).await;
            if let Err(e) = &result {
                if !matches!(e, TransportError::Closed) {
                    emit_rejected(&self.ev, "inbound", e, "");
                }
            }
            result
        })
    }

    fn close(&self) {
        self.inner.close();
    }
}

#[cfg(unix)]
pub(crate) async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
pub(crate) async fn terminate() {
    std::future::pending::<()>().await;
}
