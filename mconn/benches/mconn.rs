//! `cargo bench -p mukan-mconn`: one-way latency of a lone 100-byte message and throughput of
//! 1 KiB and 64 KiB messages, MConnection over a `SecretStream` over loopback TCP, with the
//! node's default configuration (`Config::node_default()`, 5.12 MB/s rate limits) and with
//! rate limits off; and the 1 KiB throughput through the inbox consumed as a `PeerInbox` (the
//! switch's view). Every message holds a lease on its channel's receive budget. Results are in
//! the crate README.

#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented functions"
)]
#![allow(
    clippy::unwrap_used,
    reason = "benchmark setup; a failure should abort"
)]

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mukan_mconn::{Config, Inbox, MConnection};
use mukan_node_key::NodeKey;
use mukan_reactor_api::{ChannelDescriptor, ChannelId, InboxItem};
use mukan_secret_conn::SecretStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const CH: ChannelId = ChannelId(0x40);

struct Link {
    a: MConnection,
    _a_rx: Inbox,
    _b: MConnection,
    b_rx: Inbox,
}

fn channels() -> Vec<ChannelDescriptor> {
    vec![
        ChannelDescriptor::new(CH, NonZeroU32::new(5).unwrap())
            .with_send_queue_capacity(NonZeroUsize::new(128).unwrap()),
    ]
}

async fn secret_pair() -> (SecretStream<TcpStream>, SecretStream<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ka = NodeKey::from_seed([1; 32]);
    let kb = NodeKey::from_seed([2; 32]);
    let sc = mukan_secret_conn::Config::default();
    let (a, b) = tokio::join!(
        async {
            let s = TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            SecretStream::handshake(s, &ka, &sc).await.unwrap()
        },
        async {
            let (s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            SecretStream::handshake(s, &kb, &sc).await.unwrap()
        }
    );
    (a, b)
}

async fn link(config: Config) -> Link {
    let (a, b) = secret_pair().await;
    let (a, a_rx) = MConnection::spawn(a, &channels(), config.clone()).unwrap();
    let (b, b_rx) = MConnection::spawn(b, &channels(), config).unwrap();
    Link {
        a,
        _a_rx: a_rx,
        _b: b,
        b_rx,
    }
}

async fn recv(rx: &mut Inbox) -> usize {
    match rx.recv().await {
        Some(InboxItem::Received { message, .. }) => message.len(),
        other => panic!("unexpected {other:?}"),
    }
}

fn configs() -> [(&'static str, Config); 2] {
    [
        ("default", Config::node_default()),
        ("unlimited", Config::node_default().with_rates(None, None)),
    ]
}

fn latency(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("latency_100B");
    for (name, config) in configs() {
        let mut l = rt.block_on(link(config));
        let msg = Bytes::from(vec![7u8; 100]);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        l.a.send(CH, msg.clone()).await.unwrap();
                        assert_eq!(recv(&mut l.b_rx).await, 100);
                        total += t.elapsed();
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

fn throughput(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("throughput");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for (size, count) in [(1024usize, 2048usize), (64 * 1024, 64)] {
        group.throughput(Throughput::Bytes((size * count) as u64));
        for (name, config) in configs() {
            let mut l = rt.block_on(link(config));
            let msg = Bytes::from(vec![3u8; size]);
            let label = format!("{}KiB", size / 1024);
            group.bench_function(BenchmarkId::new(label, name), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let t = Instant::now();
                        for _ in 0..iters {
                            let send = async {
                                for _ in 0..count {
                                    l.a.send(CH, msg.clone()).await.unwrap();
                                }
                            };
                            let receive = async {
                                for _ in 0..count {
                                    assert_eq!(recv(&mut l.b_rx).await, size);
                                }
                            };
                            tokio::join!(send, receive);
                        }
                        t.elapsed()
                    })
                });
            });
        }
    }
    group.finish();
}

/// Throughput of 1 KiB messages taken from the inbox through `dyn PeerInbox` (as the switch
/// does), each lease dropped at once (unlimited rates).
fn inbox_throughput(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("inbox_throughput");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let (size, count) = (1024usize, 2048usize);
    group.throughput(Throughput::Bytes((size * count) as u64));
    let config = Config::node_default().with_rates(None, None);
    let (a, _a_rx, _b, mut b_rx) = rt.block_on(async {
        let (a, b) = secret_pair().await;
        let (a, a_rx) = MConnection::spawn(a, &channels(), config.clone()).unwrap();
        let (b, b_rx) = MConnection::spawn(b, &channels(), config).unwrap();
        let b_rx: Box<dyn mukan_reactor_api::PeerInbox> = Box::new(b_rx);
        (a, a_rx, b, b_rx)
    });
    let msg = Bytes::from(vec![3u8; size]);
    group.bench_function("1KiB/unlimited", |bench| {
        bench.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let send = async {
                        for _ in 0..count {
                            a.send(CH, msg.clone()).await.unwrap();
                        }
                    };
                    let receive = async {
                        for _ in 0..count {
                            match b_rx.recv().await {
                                Some(InboxItem::Received { message, .. }) => {
                                    assert_eq!(message.len(), size);
                                }
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                    };
                    tokio::join!(send, receive);
                }
                t.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, latency, throughput, inbox_throughput);
criterion_main!(benches);
