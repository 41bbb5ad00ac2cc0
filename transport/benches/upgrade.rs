//! Full upgrades (TCP connect + secret connection + NodeInfo exchange + checks) per second on
//! loopback, one at a time and 16 in parallel.
#![allow(clippy::unwrap_used, missing_docs, reason = "benchmark")]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, NetAddress, NodeInfo, Other, PeerConfig, ProtocolVersion,
    Transport,
};
use mukan_transport::{Config, TcpTransport};

fn info(key: &NodeKey) -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        id: key.node_id().to_string(),
        listen_addr: "tcp://127.0.0.1:1".into(),
        network: "bench".into(),
        version: "0.38.25".into(),
        channels: vec![ChannelId(0x7e)],
        moniker: "bench".into(),
        other: Other::default(),
    }
}

fn peer_config() -> PeerConfig {
    PeerConfig::new(vec![ChannelDescriptor::new(
        ChannelId(0x7e),
        NonZeroU32::MIN,
    )])
}

const PARALLEL: u64 = 16;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config::default();
    config.allow_duplicate_ip = true;
    let (server, target) = rt.block_on(async {
        let key = Arc::new(NodeKey::from_seed([1; 32]));
        let t = TcpTransport::new(key.clone(), info(&key), config.clone());
        let addr = t.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let accepting = t.clone();
        tokio::spawn(async move {
            // Accept and drop: the benchmark measures the upgrade only.
            while accepting.accept(peer_config()).await.is_ok() {}
        });
        (t, NetAddress::new(key.node_id(), addr.ip(), addr.port()))
    });
    // One client transport per parallel dial: like Go, a transport refuses a second open
    // connection to the same remote socket address.
    let clients: Vec<TcpTransport> = (0..PARALLEL as u8)
        .map(|i| {
            let key = Arc::new(NodeKey::from_seed([i + 2; 32]));
            TcpTransport::new(key.clone(), info(&key), config.clone())
        })
        .collect();
    let client = clients[0].clone();

    let mut group = c.benchmark_group("transport_upgrade");
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    group.bench_function("sequential", |b| {
        b.to_async(&rt).iter(|| async {
            let peer = client.dial(target, peer_config()).await.unwrap();
            drop(peer);
        });
    });
    group.throughput(Throughput::Elements(PARALLEL));
    group.bench_function("parallel_16", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let clients = clients.clone();
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut set = tokio::task::JoinSet::new();
                    for client in &clients {
                        let client = client.clone();
                        set.spawn(async move {
                            client
                                .dial(target, peer_config())
                                .await
                                .map(drop)
                                .map_err(|e| e.to_string())
                        });
                    }
                    while let Some(ok) = set.join_next().await {
                        ok.unwrap().unwrap();
                    }
                }
                start.elapsed()
            }
        });
    });
    group.finish();
    server.close();
}

criterion_group!(benches, bench);
criterion_main!(benches);
