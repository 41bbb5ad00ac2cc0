//! `cargo bench -p mukan-switch`:
//! - `broadcast_1KiB_to_100_loopback_peers`: one broadcast of 1 KiB from a hub to 100 peers
//!   over TCP on loopback (each its own switch in this process), timed until all 100 have
//!   delivered it to their reactor; CPU per delivered message is printed (from the threads'
//!   `schedstat`).
//! - `dispatch_per_received_message`: the switch's own receive path (drain the inbox, route by
//!   channel, build the envelope, call the reactor) over an in-process inbox that is always
//!   ready, per message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark"
)]

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Dialer as _, Direction, Envelope, InboxItem, ManagedPeer,
    NetAddress, Network as _, NodeId, NodeInfo, Other, Peer, PeerConfig, PeerData, PeerInbox,
    PeerStatus, ProtocolVersion, Reactor, RecvBudget, SendError, StopReason, Transport,
    TransportError, TrySendError,
};
use mukan_switch::{Builder, Config, Switch};
use mukan_transport::TcpTransport;
use tokio::sync::{Mutex, mpsc};

const CH: ChannelId = ChannelId(0x20);
const PEERS: usize = 100;

/// Counts what it receives and what was removed; wakes the benchmark when `target` is
/// reached (so the waiting side burns no CPU).
#[derive(Default)]
struct Counter {
    received: AtomicU64,
    removed: AtomicU64,
    target: AtomicU64,
    reached: tokio::sync::Notify,
}

impl Reactor for Counter {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(CH, NonZeroU32::MIN)]
    }
    fn remove_peer(&self, _: &Arc<dyn Peer>, _: &StopReason) {
        self.removed.fetch_add(1, Ordering::Release);
    }
    fn receive(&self, _: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
        let n = self.received.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.target.load(Ordering::Acquire) {
            self.reached.notify_one();
        }
        Ok(())
    }
}

fn key(n: u16) -> Arc<NodeKey> {
    let mut s = [7u8; 32];
    s[..2].copy_from_slice(&n.to_be_bytes());
    Arc::new(NodeKey::from_seed(s))
}

fn info(key: &NodeKey) -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        id: key.node_id().to_string(),
        listen_addr: "tcp://127.0.0.1:0".into(),
        network: "bench".into(),
        version: "0.38.25".into(),
        channels: vec![CH],
        moniker: "bench".into(),
        other: Other::default(),
    }
}

async fn tcp_switch(n: u16, counter: Arc<Counter>) -> Arc<Switch<TcpTransport>> {
    let key = key(n);
    let mut config = Config::default();
    config.allow_duplicate_ip = true;
    config.max_num_inbound_peers = 1_000;
    let mut builder = Builder::new(config);
    builder.add_reactor("counter", counter).unwrap();
    let mut tconfig = mukan_transport::Config::default();
    tconfig.allow_duplicate_ip = true;
    let t = TcpTransport::new(key.clone(), info(&key), tconfig);
    t.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sw = builder.build(t).unwrap();
    sw.start().unwrap();
    sw
}

/// CPU time of every thread of the process, in nanoseconds (`/proc/self/task/*/schedstat`).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn broadcast(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let delivered = Arc::new(Counter::default());
    let (hub, _readers) = rt.block_on(async {
        let hub = tcp_switch(0, Arc::new(Counter::default())).await;
        let mut readers = Vec::new();
        for n in 1..=PEERS {
            let r = tcp_switch(u16::try_from(n).unwrap(), delivered.clone()).await;
            r.dial_peer_with_address(hub.net_address()).await.unwrap();
            readers.push(r);
        }
        while hub.peers().len() < PEERS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (hub, readers)
    });
    let message = Bytes::from(vec![0x5a; 1_024]);
    let mut group = c.benchmark_group("switch");
    group.throughput(Throughput::Elements(PEERS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    let cpu_before = cpu_ns();
    let sent_before = delivered.received.load(Ordering::Acquire);
    group.bench_function("broadcast_1KiB_to_100_loopback_peers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let target = delivered.received.load(Ordering::Acquire) + PEERS as u64;
                    delivered.target.store(target, Ordering::Release);
                    let reached = delivered.reached.notified();
                    let report = hub.broadcast(CH, message.clone());
                    assert_eq!(report.queued(), PEERS);
                    reached.await;
                }
                start.elapsed()
            })
        });
    });
    let messages = delivered.received.load(Ordering::Acquire) - sent_before;
    let cpu = cpu_ns() - cpu_before;
    if messages > 0 {
        eprintln!(
            "broadcast: {messages} messages delivered, CPU {:.1} µs per delivered message \
             (all threads of the process: sender, 100 receivers, runtime)",
            cpu as f64 / messages as f64 / 1_000.0
        );
    }
    group.finish();
}

/// A peer whose inbox always has the next message ready.
struct ReadyPeer {
    id: NodeId,
    info: NodeInfo,
    items: std::sync::Mutex<Option<VecDeque<InboxItem>>>,
    data: PeerData,
}

struct ReadyInbox(VecDeque<InboxItem>);

impl PeerInbox for ReadyInbox {
    fn poll_next(&mut self, _: &mut Context<'_>) -> Poll<Option<InboxItem>> {
        Poll::Ready(self.0.pop_front())
    }
}

impl Peer for ReadyPeer {
    fn id(&self) -> NodeId {
        self.id
    }
    fn node_info(&self) -> &NodeInfo {
        &self.info
    }
    fn direction(&self) -> Direction {
        Direction::Inbound
    }
    fn is_persistent(&self) -> bool {
        false
    }
    fn socket_addr(&self) -> NetAddress {
        NetAddress::new(self.id, IpAddr::V4(Ipv4Addr::LOCALHOST), 1)
    }
    fn status(&self) -> PeerStatus {
        PeerStatus::default()
    }
    fn send(
        &self,
        _: ChannelId,
        _: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + '_>> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn try_send(&self, _: ChannelId, _: Bytes) -> Result<(), TrySendError> {
        Ok(())
    }
    fn data(&self) -> &PeerData {
        &self.data
    }
}

impl ManagedPeer for ReadyPeer {
    fn start(&self) -> Result<Box<dyn PeerInbox>, StopReason> {
        let items = self
            .items
            .lock()
            .unwrap()
            .take()
            .ok_or(StopReason::ClosedByPeer)?;
        Ok(Box::new(ReadyInbox(items)))
    }
    fn stop(&self) {}
    fn flush_stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
    fn as_peer(self: Arc<Self>) -> Arc<dyn Peer> {
        self
    }
}

/// A transport that hands out the peers pushed into it.
struct QueueTransport {
    id: NodeId,
    rx: Mutex<mpsc::Receiver<Arc<dyn ManagedPeer>>>,
}

type PeerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + 'a>>;

impl Transport for QueueTransport {
    fn net_address(&self) -> NetAddress {
        NetAddress::new(self.id, IpAddr::V4(Ipv4Addr::LOCALHOST), 2)
    }
    fn dial(&self, _: NetAddress, _: PeerConfig) -> PeerFuture<'_> {
        Box::pin(std::future::ready(Err(TransportError::Closed)))
    }
    fn accept(&self, _: PeerConfig) -> PeerFuture<'_> {
        Box::pin(async move {
            self.rx
                .lock()
                .await
                .recv()
                .await
                .ok_or(TransportError::Closed)
        })
    }
    fn close(&self) {}
}

const BATCH: usize = 100_000;

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let counter = Arc::new(Counter::default());
    let (tx, rx) = mpsc::channel(4);
    let sw = {
        let mut builder = Builder::new(Config::default());
        builder.add_reactor("counter", counter.clone()).unwrap();
        let t = QueueTransport {
            id: key(0).node_id(),
            rx: Mutex::new(rx),
        };
        let sw = builder.build(t).unwrap();
        rt.block_on(async { sw.start().unwrap() });
        sw
    };
    let budget = RecvBudget::new(CH, usize::MAX / 2);
    let message = Bytes::from(vec![1u8; 256]);
    let mut n = 1u16;
    let mut group = c.benchmark_group("switch");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("dispatch_per_received_message", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n = n.wrapping_add(1).max(1);
                let items: VecDeque<InboxItem> = (0..BATCH)
                    .map(|_| InboxItem::Received {
                        channel: CH,
                        message: message.clone(),
                        lease: budget.try_acquire(message.len()).unwrap(),
                    })
                    .chain(std::iter::once(InboxItem::Stopped(
                        StopReason::ClosedByPeer,
                    )))
                    .collect();
                let id = key(n).node_id();
                let peer: Arc<dyn ManagedPeer> = Arc::new(ReadyPeer {
                    id,
                    info: NodeInfo {
                        id: id.to_string(),
                        channels: vec![CH],
                        ..NodeInfo::default()
                    },
                    items: std::sync::Mutex::new(Some(items)),
                    data: PeerData::default(),
                });
                let removed = counter.removed.load(Ordering::Acquire);
                total += rt.block_on(async {
                    let start = Instant::now();
                    tx.send(peer).await.unwrap();
                    while counter.removed.load(Ordering::Acquire) == removed {
                        tokio::task::yield_now().await;
                    }
                    start.elapsed()
                });
            }
            total
        });
    });
    group.finish();
    rt.block_on(sw.stop());
}

criterion_group!(benches, broadcast, dispatch);
criterion_main!(benches);
