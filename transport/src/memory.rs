//! An in-memory transport (feature `test-util`): the real upgrade (secret connection,
//! `NodeInfo` exchange, checks) and MConnection over `tokio::io::duplex` pipes instead of
//! sockets, so switches and PEX can be tested and simulated without the network, with
//! `start_paused` time.

use std::collections::HashMap;
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
const PIPE_CAPACITY: usize = 64 * 1024;
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
    next_port: u16,
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
    pub(crate) async fn accept(&mut self) -> io::Result<(DuplexStream, SocketAddr)> {
        self.rx
            .recv()
            .await
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Endpoint {
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
