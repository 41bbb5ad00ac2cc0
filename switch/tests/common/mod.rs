//! Helpers shared by the switch's integration tests: nodes over `MemoryTransport`, a
//! transport wrapper whose peers fail to start on demand, a scripted resolver, and waiting.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a subset")]

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use mukan_node_key::NodeKey;
use mukan_reactor_api::testing::{CallTrace, RecordingReactor, Traced};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Direction, ManagedPeer, NetAddress, NodeId, NodeInfo, Peer,
    PeerConfig, PeerData, PeerInbox, PeerStatus, Reactor, SendError, StopReason, Transport,
    TransportError, TrySendError,
};
use mukan_switch::{Builder, Config, Resolver, Switch};
use mukan_transport::{MemoryNetwork, MemoryTransport};
use parking_lot::Mutex;

pub const CH_A: ChannelId = ChannelId(0x0a);
pub const CH_B: ChannelId = ChannelId(0x0b);

pub fn key(seed: u16) -> Arc<NodeKey> {
    let mut s = [0u8; 32];
    s[..2].copy_from_slice(&seed.to_be_bytes());
    s[31] = 1;
    Arc::new(NodeKey::from_seed(s))
}

pub fn ip(n: u16) -> IpAddr {
    let [hi, lo] = n.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo))
}

pub fn descriptor(id: ChannelId) -> ChannelDescriptor {
    ChannelDescriptor::new(id, NonZeroU32::MIN)
}

pub fn node_info(key: &NodeKey, channels: Vec<ChannelId>, listen: &str) -> NodeInfo {
    NodeInfo::new(key.node_id(), "test-chain", "switch-test")
        .with_listen_addr(listen)
        .with_channels(channels)
        .with_version("0.38.25")
}

/// The transport config of test nodes: duplicate IPs allowed (several connections between
/// two nodes must reach the switch, which picks one).
pub fn transport_config() -> mukan_transport::Config {
    let mut c = mukan_transport::Config::default();
    c.allow_duplicate_ip = true;
    c
}

/// A switch over a memory transport, with one recording reactor per descriptor group.
///
/// Every reactor is registered wrapped in a [`Traced`]: `trace` holds the switch's calls on
/// all of them in order. When the environment variable `MUKAN_REACTOR_TRACES` names a
/// directory, the trace is written there when the node is dropped, for the Quint oracle
/// (`conformance-tests/quint/`), as `<test binary>.<test>.<n>.trace`.
pub struct Node<T: Transport = MemoryTransport> {
    pub sw: Arc<Switch<T>>,
    pub reactors: Vec<Arc<RecordingReactor>>,
    pub key: Arc<NodeKey>,
    pub addr: NetAddress,
    pub trace: CallTrace,
}

impl<T: Transport> Drop for Node<T> {
    fn drop(&mut self) {
        export_trace(&self.trace);
    }
}

/// Writes `trace` into `$MUKAN_REACTOR_TRACES` (if set) under a name made of the test
/// binary, the test (its thread's name) and a counter.
pub fn export_trace(trace: &CallTrace) {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let Some(dir) = std::env::var_os("MUKAN_REACTOR_TRACES") else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let stem = exe.file_stem().unwrap().to_string_lossy();
    // Cargo names test binaries `<name>-<hash>`.
    let binary = stem.rsplit_once('-').map_or(&*stem, |(b, _)| b).to_owned();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test").replace("::", ".");
    let n = COUNT.fetch_add(1, Ordering::SeqCst);
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    trace
        .write(&dir.join(format!("{binary}.{test}.{n}.trace")))
        .unwrap();
}

impl<T: Transport> Node<T> {
    pub fn id(&self) -> NodeId {
        self.key.node_id()
    }
    pub fn rec(&self) -> &RecordingReactor {
        &self.reactors[0]
    }
}

pub struct NodeSpec {
    pub seed: u16,
    pub ip: IpAddr,
    pub port: u16,
    pub config: Config,
    pub transport: mukan_transport::Config,
    pub groups: Vec<Vec<ChannelId>>,
    pub extra: Vec<(String, Arc<dyn Reactor>)>,
    pub resolver: Option<Arc<dyn Resolver>>,
    pub listen_addr: Option<String>,
    pub addr_book: Option<mukan_reactor_api::SharedAddressBook>,
}

impl NodeSpec {
    pub fn new(seed: u16) -> Self {
        Self {
            seed,
            ip: ip(seed),
            port: 0,
            config: Config::default(),
            transport: transport_config(),
            groups: vec![vec![CH_A, CH_B]],
            extra: Vec::new(),
            resolver: None,
            listen_addr: None,
            addr_book: None,
        }
    }
}

/// Builds and starts a node listening on the memory network.
pub async fn memory_node(net: &MemoryNetwork, spec: NodeSpec) -> Node {
    memory_node_with(net, spec, |t| t).await
}

/// As [`memory_node`], wrapping the transport first.
pub async fn memory_node_with<T: Transport>(
    net: &MemoryNetwork,
    spec: NodeSpec,
    wrap: impl FnOnce(MemoryTransport) -> T,
) -> Node<T> {
    let key = key(spec.seed);
    let deny = spec.config.deny_list.clone();
    let mut builder = Builder::new(spec.config);
    let mut reactors = Vec::new();
    let trace = CallTrace::new();
    for (i, group) in spec.groups.iter().enumerate() {
        let r = Arc::new(RecordingReactor::new(
            group.iter().map(|c| descriptor(*c)).collect(),
        ));
        let name = format!("rec{i}");
        builder
            .add_reactor(&name, Arc::new(Traced::new(&name, r.clone(), &trace)))
            .unwrap();
        reactors.push(r);
    }
    for (name, r) in spec.extra {
        builder
            .add_reactor(&name, Arc::new(Traced::new(&name, r, &trace)))
            .unwrap();
    }
    if let Some(res) = spec.resolver {
        builder = builder.resolver(res);
    }
    if let Some(book) = spec.addr_book {
        builder = builder.address_book(book);
    }
    let listen = spec
        .listen_addr
        .unwrap_or_else(|| "tcp://0.0.0.0:0".to_owned());
    let info = node_info(&key, builder.channel_ids(), &listen);
    // The node shares one deny list between its switch and its transport.
    let mut tconfig = spec.transport;
    tconfig.deny = deny;
    let mt = MemoryTransport::new(net, spec.ip, key.clone(), info, tconfig);
    mt.listen(SocketAddr::new(spec.ip, spec.port))
        .await
        .unwrap();
    let transport = wrap(mt);
    let sw = builder.build(transport).unwrap();
    sw.start().unwrap();
    let addr = mukan_reactor_api::Network::net_address(&*sw);
    Node {
        sw,
        reactors,
        key,
        addr,
        trace,
    }
}

/// Polls `cond` on a 10 ms tick (virtual or real) until it holds; panics after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A resolver answering from a table that the test changes, recording when it is asked.
#[derive(Default)]
pub struct ScriptedResolver {
    pub table: Mutex<HashMap<String, Vec<IpAddr>>>,
    pub calls: Mutex<Vec<(String, tokio::time::Instant)>>,
}

impl ScriptedResolver {
    pub fn set(&self, host: &str, ips: Vec<IpAddr>) {
        self.table.lock().insert(host.to_owned(), ips);
    }
    pub fn count(&self) -> usize {
        self.calls.lock().len()
    }
    pub fn times(&self) -> Vec<tokio::time::Instant> {
        self.calls.lock().iter().map(|(_, t)| *t).collect()
    }
}

impl Resolver for ScriptedResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        self.calls
            .lock()
            .push((host.to_owned(), tokio::time::Instant::now()));
        let answer = self
            .table
            .lock()
            .get(host)
            .cloned()
            .filter(|ips| !ips.is_empty())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"));
        Box::pin(std::future::ready(answer))
    }
}

/// A transport whose peers fail to start while `fail_starts` is positive (each failure
/// takes one).
#[derive(Clone)]
pub struct FlakyTransport<T> {
    pub inner: T,
    pub fail_starts: Arc<AtomicUsize>,
}

impl<T> FlakyTransport<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            fail_starts: Arc::new(AtomicUsize::new(0)),
        }
    }
}

type PeerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + 'a>>;

impl<T: Transport> Transport for FlakyTransport<T> {
    fn net_address(&self) -> NetAddress {
        self.inner.net_address()
    }

    fn dial(&self, addr: NetAddress, config: PeerConfig) -> PeerFuture<'_> {
        let fail = self.fail_starts.clone();
        Box::pin(async move {
            let p = self.inner.dial(addr, config).await?;
            Ok(Arc::new(FlakyPeer { inner: p, fail }) as Arc<dyn ManagedPeer>)
        })
    }

    fn accept(&self, config: PeerConfig) -> PeerFuture<'_> {
        let fail = self.fail_starts.clone();
        Box::pin(async move {
            let p = self.inner.accept(config).await?;
            Ok(Arc::new(FlakyPeer { inner: p, fail }) as Arc<dyn ManagedPeer>)
        })
    }

    fn close(&self) {
        self.inner.close();
    }
}

struct FlakyPeer {
    inner: Arc<dyn ManagedPeer>,
    fail: Arc<AtomicUsize>,
}

impl Peer for FlakyPeer {
    fn id(&self) -> NodeId {
        self.inner.id()
    }
    fn node_info(&self) -> &NodeInfo {
        self.inner.node_info()
    }
    fn direction(&self) -> Direction {
        self.inner.direction()
    }
    fn is_persistent(&self) -> bool {
        self.inner.is_persistent()
    }
    fn socket_addr(&self) -> NetAddress {
        self.inner.socket_addr()
    }
    fn status(&self) -> PeerStatus {
        self.inner.status()
    }
    fn send(
        &self,
        channel: ChannelId,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + '_>> {
        self.inner.send(channel, message)
    }
    fn try_send(&self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError> {
        self.inner.try_send(channel, message)
    }
    fn data(&self) -> &PeerData {
        self.inner.data()
    }
}

impl ManagedPeer for FlakyPeer {
    fn start(&self) -> Result<Box<dyn PeerInbox>, StopReason> {
        let took = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if took {
            self.inner.stop();
            return Err(StopReason::Io(Arc::new(io::Error::other(
                "injected start failure",
            ))));
        }
        self.inner.start()
    }
    fn stop(&self) {
        self.inner.stop();
    }
    fn flush_stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.inner.flush_stop()
    }
    fn as_peer(self: Arc<Self>) -> Arc<dyn Peer> {
        self
    }
}
