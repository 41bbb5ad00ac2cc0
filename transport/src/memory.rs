//! An in-memory transport (feature `test-util`): the real upgrade (secret connection,
//! `NodeInfo` exchange, checks) and MConnection over `tokio::io::duplex` pipes instead of
//! sockets, so switches and PEX can be tested and simulated without the network, with
//! `start_paused` time.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mukan_node_key::NodeKey;
use mukan_reactor_api::NodeInfo;
use parking_lot::Mutex;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use crate::backend::Backend;
use crate::core::Core;
use crate::{Config, ConnFilter};

/// Bytes buffered in each direction of an in-memory connection.
pub(crate) const PIPE_CAPACITY: usize = 64 * 1024;
/// Connections waiting to be accepted per in-memory listener (a kernel backlog).
const BACKLOG: usize = 128;
/// First port handed out for port 0.
const FIRST_PORT: u16 = 20_000;

/// A set of in-memory transports that can reach each other by `ip:port`. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    state: Arc<Mutex<NetState>>,
}

#[derive(Debug, Default)]
struct NetState {
    listeners: HashMap<SocketAddr, mpsc::Sender<(DuplexStream, SocketAddr)>>,
    /// Addresses whose connection attempts hang (until the dialer's dial timeout).
    unresponsive: HashSet<SocketAddr>,
    next_port: u16,
    next_ip: u32,
    /// Fault injection, when the network was made with [`MemoryNetwork::with_faults`].
    faults: Option<crate::fault::Faults>,
}

impl NetState {
    fn port(&mut self) -> u16 {
        if self.next_port < FIRST_PORT {
            self.next_port = FIRST_PORT;
        }
        let port = self.next_port;
        self.next_port = self.next_port.checked_add(1).unwrap_or(FIRST_PORT);
        port
    }
}

impl MemoryNetwork {
    /// A new, empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// A network with fault injection: every connection runs through a relay that applies
    /// the per-link [`LinkProfile`](crate::LinkProfile) (latency, jitter, retransmission
    /// delays, rate), partitions, frozen hosts and connection breaks (see the `fault`
    /// methods). All its randomness comes from `seed`. Must be created inside a tokio
    /// runtime (relays are tasks).
    pub fn with_faults(seed: u64) -> Self {
        let net = Self::default();
        net.state.lock().faults = Some(crate::fault::Faults::new(seed));
        net
    }

    /// Runs `f` on the fault state; `None` when the network has no fault injection.
    pub(crate) fn with_fault_state<T>(
        &self,
        f: impl FnOnce(&mut crate::fault::Faults) -> T,
    ) -> Option<T> {
        self.state.lock().faults.as_mut().map(f)
    }

    /// The listener queue at `target`, and a fresh local port for a dialer at `ip`.
    pub(crate) fn route(
        &self,
        ip: IpAddr,
        target: SocketAddr,
    ) -> io::Result<(mpsc::Sender<(DuplexStream, SocketAddr)>, SocketAddr)> {
        let mut state = self.state.lock();
        let tx = state
            .listeners
            .get(&target)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        Ok((tx, SocketAddr::new(ip, state.port())))
    }

    /// Whether `addr` was marked unresponsive.
    pub(crate) fn is_unresponsive(&self, addr: &SocketAddr) -> bool {
        self.state.lock().unresponsive.contains(addr)
    }

    /// An IP no earlier call returned: `10.0.0.1`, `10.0.0.2`, … (in `10.0.0.0/8`; pick
    /// addresses outside it by hand to avoid collisions). One per node makes every node's
    /// connections distinguishable by IP (duplicate-IP checks, deny lists).
    pub fn next_ip(&self) -> IpAddr {
        let mut state = self.state.lock();
        state.next_ip = state.next_ip.wrapping_add(1) & 0x00ff_ffff;
        if state.next_ip == 0 {
            state.next_ip = 1;
        }
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | state.next_ip))
    }

    /// Removes the listener bound at `addr` (a node that went away): dials to it are refused
    /// from now on, connections already queued for it stay. Returns whether one was bound.
    /// The transport that owned it keeps its peers; it can `listen` again.
    pub fn kill_listener(&self, addr: SocketAddr) -> bool {
        self.state.lock().listeners.remove(&addr).is_some()
    }

    /// While set, connection attempts to `addr` hang (a host that drops packets): the dialer
    /// sees its dial timeout. Existing connections are not affected.
    pub fn set_unresponsive(&self, addr: SocketAddr, unresponsive: bool) {
        let mut state = self.state.lock();
        if unresponsive {
            state.unresponsive.insert(addr);
        } else {
            state.unresponsive.remove(&addr);
        }
    }

    /// Whether a listener is bound at `addr`.
    pub fn is_listening(&self, addr: SocketAddr) -> bool {
        self.state
            .lock()
            .listeners
            .get(&addr)
            .is_some_and(|tx| !tx.is_closed())
    }
}

/// One node's place in a [`MemoryNetwork`]: its IP.
pub(crate) struct Endpoint {
    network: MemoryNetwork,
    ip: IpAddr,
}

/// An in-memory listener.
pub(crate) struct MemoryListener {
    rx: mpsc::Receiver<(DuplexStream, SocketAddr)>,
}

impl MemoryListener {
    /// The next connection; once the listener was killed
    /// ([`MemoryNetwork::kill_listener`]) and its backlog is empty, waits forever (the accept
    /// loop ends when its transport closes).
    pub(crate) async fn accept(&mut self) -> io::Result<(DuplexStream, SocketAddr)> {
        match self.rx.recv().await {
            Some(conn) => Ok(conn),
            None => std::future::pending().await,
        }
    }
}

impl Endpoint {
    #[cfg(test)]
    pub(crate) fn new(network: &MemoryNetwork, ip: IpAddr) -> Self {
        Self {
            network: network.clone(),
            ip,
        }
    }

    pub(crate) fn bind(&self, addr: SocketAddr) -> io::Result<(MemoryListener, SocketAddr)> {
        let mut state = self.network.state.lock();
        let ip = if addr.ip().is_unspecified() {
            self.ip
        } else {
            addr.ip()
        };
        let port = if addr.port() == 0 {
            state.port()
        } else {
            addr.port()
        };
        let bound = SocketAddr::new(ip, port);
        if state
            .listeners
            .get(&bound)
            .is_some_and(|tx| !tx.is_closed())
        {
            return Err(io::Error::from(io::ErrorKind::AddrInUse));
        }
        let (tx, rx) = mpsc::channel(BACKLOG);
        state.listeners.insert(bound, tx);
        Ok((MemoryListener { rx }, bound))
    }

    pub(crate) async fn connect(&self, target: SocketAddr) -> io::Result<DuplexStream> {
        if self.network.state.lock().faults.is_some() {
            return crate::fault::connect(&self.network, self.ip, target).await;
        }
        let unresponsive = self.network.state.lock().unresponsive.contains(&target);
        if unresponsive {
            return std::future::pending().await;
        }
        let (tx, local) = {
            let mut state = self.network.state.lock();
            let tx = state
                .listeners
                .get(&target)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            (tx, SocketAddr::new(self.ip, state.port()))
        };
        let (ours, theirs) = tokio::io::duplex(PIPE_CAPACITY);
        tx.send((theirs, local))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        Ok(ours)
    }
}

/// A transport over a [`MemoryNetwork`], behaving as [`TcpTransport`](crate::TcpTransport)
/// does (same upgrade, checks, limits and peers).
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    core: Core,
}

impl MemoryTransport {
    /// A transport for the node `node_key` at `ip` on `network`; call `listen` (with port 0
    /// for any free port) to accept connections.
    pub fn new(
        network: &MemoryNetwork,
        ip: IpAddr,
        node_key: Arc<NodeKey>,
        node_info: NodeInfo,
        config: Config,
    ) -> Self {
        Self::with_filters(network, ip, node_key, node_info, config, Vec::new())
    }

    /// As [`MemoryTransport::new`], with connection filters.
    pub fn with_filters(
        network: &MemoryNetwork,
        ip: IpAddr,
        node_key: Arc<NodeKey>,
        node_info: NodeInfo,
        config: Config,
        filters: Vec<Arc<dyn ConnFilter>>,
    ) -> Self {
        let backend = Backend::Memory(Endpoint {
            network: network.clone(),
            ip,
        });
        Self {
            core: Core::new(node_key, node_info, config, filters, backend),
        }
    }
}

crate::core::delegate_transport!(MemoryTransport);
