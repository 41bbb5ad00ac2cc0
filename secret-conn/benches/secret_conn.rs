//! `cargo bench -p mukan-secret-conn --bench secret_conn`: handshakes per second and bulk
//! throughput of one `SecretStream` over loopback TCP. Results are in the crate README.

#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented functions"
)]
#![allow(
    clippy::unwrap_used,
    reason = "benchmark setup; a failure should abort"
)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mukan_node_key::NodeKey;
use mukan_secret_conn::{Config, ReadHalf, SecretStream, WriteHalf};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, duplex},
    net::{TcpListener, TcpStream},
    runtime::Runtime,
};

/// Bytes moved per throughput iteration.
const TRANSFER: usize = 8 << 20;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn tcp_pair(
    ka: &NodeKey,
    kb: &NodeKey,
) -> (SecretStream<TcpStream>, SecretStream<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = Config::default();
    let (dialed, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (dialed, (accepted, _)) = (dialed.unwrap(), accepted.unwrap());
    dialed.set_nodelay(true).unwrap();
    accepted.set_nodelay(true).unwrap();
    let (a, b) = tokio::join!(
        SecretStream::handshake(dialed, ka, &cfg),
        SecretStream::handshake(accepted, kb, &cfg)
    );
    (a.unwrap(), b.unwrap())
}

fn handshakes(c: &mut Criterion) {
    let rt = runtime();
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let mut group = c.benchmark_group("handshake");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    // One element = one complete handshake (both sides' CPU on this machine).
    group.throughput(Throughput::Elements(1));
    group.bench_function("in_memory_pipe", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let (x, y) = duplex(4096);
                    let cfg = Config::default();
                    let (a, b) = tokio::join!(
                        SecretStream::handshake(x, &ka, &cfg),
                        SecretStream::handshake(y, &kb, &cfg)
                    );
                    drop((a.unwrap(), b.unwrap()));
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("loopback_tcp_incl_connect", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    drop(tcp_pair(&ka, &kb).await);
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let (a, b) = rt.block_on(tcp_pair(&ka, &kb));
    let (_ar, aw) = a.split();
    let (br, _bw) = b.split();
    let mut halves: Option<(WriteHalf<TcpStream>, ReadHalf<TcpStream>)> = Some((aw, br));

    let mut group = c.benchmark_group("bulk_loopback_tcp");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(TRANSFER as u64));
    for write_size in [1024usize, 64 * 1024] {
        group.bench_with_input(
            BenchmarkId::new("write_size", write_size),
            &write_size,
            |bench, &write_size| {
                bench.iter_custom(|iters| {
                    let (mut w, mut r) = halves.take().unwrap();
                    let (elapsed, w, r) = rt.block_on(async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let reader = tokio::spawn(async move {
                                let mut buf = vec![0u8; 64 * 1024];
                                let mut left = TRANSFER;
                                while left > 0 {
                                    let want = left.min(buf.len());
                                    let n = r.read(&mut buf[..want]).await.unwrap();
                                    assert!(n > 0);
                                    left -= n;
                                }
                                r
                            });
                            let chunk = vec![0xa5u8; write_size];
                            for _ in 0..TRANSFER / write_size {
                                w.write_all(&chunk).await.unwrap();
                            }
                            w.flush().await.unwrap();
                            r = reader.await.unwrap();
                        }
                        (start.elapsed(), w, r)
                    });
                    halves = Some((w, r));
                    elapsed
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, handshakes, throughput);
criterion_main!(benches);
