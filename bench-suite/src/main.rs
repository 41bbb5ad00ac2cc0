//! `mukan-bench`: the Rust side of the benchmark suite, and the report writer.
//!
//! ```text
//! mukan-bench run [--quick] [--rows a,b,..]   print one `row<TAB>value` line per figure
//! mukan-bench report --out FILE --runs DIR --command CMD
//!                                             merge DIR/{rust,go38,go40}-N.tsv into FILE
//! mukan-bench mem-client ADDR N SECONDS       (internal) hold N idle connections to ADDR
//! ```
//!
//! The rows, their workloads and the Go programs that mirror them are described in
//! `bench-suite/README.md`. Timings are printed, never asserted.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark: a failed setup step should abort the run loudly"
)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "figures are printed as floats"
)]

mod report;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mukan_addrbook::AddrBook;
use mukan_bench_suite::Sizes;
use mukan_mconn::{Config as MConfig, Inbox, MConnection};
use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    AddressBook, ChannelDescriptor, ChannelId, InboxItem, NetAddress, NodeId, NodeInfo, Other,
    PeerConfig, ProtocolVersion, Transport,
};
use mukan_secret_conn::SecretStream;
use mukan_transport::TcpTransport;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Sizes of every row: the full run and the `--quick` smoke run.
#[derive(Clone, Copy, Debug)]
struct Scale {
    seal_time: Duration,
    bulk_bytes: usize,
    handshakes: usize,
    latency_samples: usize,
    mconn_bytes: usize,
    mixed_messages: usize,
    idle_peers: usize,
    addrbook: usize,
    picks: usize,
    selections: usize,
    bcast_peers: usize,
    broadcasts: usize,
}

const FULL: Scale = Scale {
    seal_time: Duration::from_secs(1),
    bulk_bytes: 64 << 20,
    handshakes: 800,
    latency_samples: 200,
    mconn_bytes: 64 << 20,
    mixed_messages: 8192,
    idle_peers: 1000,
    addrbook: 100_000,
    picks: 20_000,
    selections: 500,
    bcast_peers: 100,
    broadcasts: 100,
};

const QUICK: Scale = Scale {
    seal_time: Duration::from_millis(20),
    bulk_bytes: 1 << 20,
    handshakes: 16,
    latency_samples: 5,
    mconn_bytes: 1 << 20,
    mixed_messages: 64,
    idle_peers: 10,
    addrbook: 2_000,
    picks: 200,
    selections: 10,
    bcast_peers: 5,
    broadcasts: 5,
};

/// Every row the Rust side measures, in order.
const ROWS: &[&str] = &[
    "seal",
    "bulk",
    "handshake",
    "latency",
    "mconn",
    "memory",
    "addrbook",
    "broadcast",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("report") => report::main(&args[1..]),
        Some("mem-client") => mem_client(&args[1..]),
        _ => {
            eprintln!(
                "usage: mukan-bench run [--quick] [--rows a,b] | report ... | mem-client ..."
            );
            2
        }
    };
    std::process::exit(code);
}

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// The runtimes of the two ends of every connection row: `a` dials and sends, `b` listens
/// and receives. By default both are one 2-worker runtime, on equal footing with the Go
/// program (one process, `GOMAXPROCS` = 2); `--split-runtimes` gives each end its own
/// one-worker runtime, as two nodes would have.
struct Nodes {
    a: Arc<Runtime>,
    b: Arc<Runtime>,
}

/// Runs `fut` as a task on `rt`'s worker (not on the `block_on` thread, whose wake-ups cost
/// a futex each) and returns its output.
fn run_on<F>(rt: &Runtime, fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(rt.spawn(fut)).unwrap()
}

/// CPU time of this process so far (every thread's time on CPU, from
/// `/proc/self/task/*/schedstat`, in nanoseconds).
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| {
            let text = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// CPU microseconds per MiB moved.
fn cpu_per_mib(cpu_ns: u64, bytes: usize) -> f64 {
    cpu_ns as f64 / 1e3 / (bytes as f64 / MIB)
}

fn emit(row: &str, value: f64) {
    println!("{row}\t{value:.3}");
}

fn run(args: &[String]) -> i32 {
    let mut scale = FULL;
    let mut split = false;
    let mut rows: Vec<String> = ROWS.iter().map(ToString::to_string).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => scale = QUICK,
            "--split-runtimes" => split = true,
            "--rows" => match it.next() {
                Some(list) => rows = list.split(',').map(ToString::to_string).collect(),
                None => return 2,
            },
            other => {
                eprintln!("unknown argument {other}");
                return 2;
            }
        }
    }
    let nodes = if split {
        Nodes {
            a: Arc::new(runtime(1)),
            b: Arc::new(runtime(1)),
        }
    } else {
        let shared = Arc::new(runtime(2));
        Nodes {
            a: shared.clone(),
            b: shared,
        }
    };
    for row in &rows {
        let started = Instant::now();
        match row.as_str() {
            "seal" => seal(scale),
            "bulk" => bulk(&nodes, scale),
            "handshake" => handshakes(&nodes, scale),
            "latency" => latency(&nodes, scale),
            "mconn" => mconn_throughput(&nodes, scale),
            "memory" => run_on(&nodes.b, memory(scale)),
            "addrbook" => addrbook(scale),
            "broadcast" => broadcast(&nodes, scale),
            other => {
                eprintln!("unknown row {other}");
                return 2;
            }
        }
        eprintln!("rust: {row} took {:.1} s", started.elapsed().as_secs_f64());
    }
    0
}

// ---------------------------------------------------------------------------------------
// seal rate

/// Single-core ChaCha20-Poly1305 seal of 1028-byte frames (a secret-connection frame: 4-byte
/// length + 1024 data bytes), with `ring` as the secret connection uses it. Printed as MiB/s
/// of the 1024 data bytes per frame: the ceiling of one stream's throughput.
fn seal(scale: Scale) {
    use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[0x42; 32]).unwrap());
    let mut frame = [0x5au8; 1028];
    let mut counter = 0u64;
    let start = Instant::now();
    while start.elapsed() < scale.seal_time {
        for _ in 0..256 {
            counter += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_le_bytes());
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    std::hint::black_box(&mut frame[..]),
                )
                .unwrap();
            let _ = std::hint::black_box(tag);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    emit("seal_mib_s", counter as f64 * 1024.0 / secs / MIB);
}

const MIB: f64 = 1_048_576.0;

// ---------------------------------------------------------------------------------------
// secret connection bulk

fn key(i: u32) -> NodeKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xbe;
    NodeKey::from_seed(seed)
}

/// A listener on node `b`.
fn listen(nodes: &Nodes) -> Arc<TcpListener> {
    Arc::new(run_on(&nodes.b, async {
        TcpListener::bind("127.0.0.1:0").await.unwrap()
    }))
}

/// The two ends of one secret connection: the dialing end on node `a`, the accepting end
/// on node `b`.
fn secret_pair(
    nodes: &Nodes,
    listener: &Arc<TcpListener>,
) -> (SecretStream<TcpStream>, SecretStream<TcpStream>) {
    let addr = listener.local_addr().unwrap();
    let l = listener.clone();
    let accepted = nodes.b.spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        SecretStream::handshake(s, &key(2), &mukan_secret_conn::Config::default())
            .await
            .unwrap()
    });
    let dialed = run_on(&nodes.a, async move {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        SecretStream::handshake(s, &key(1), &mukan_secret_conn::Config::default())
            .await
            .unwrap()
    });
    (dialed, nodes.b.block_on(accepted).unwrap())
}

/// One secret stream over loopback TCP, `bulk_bytes` written in `write`-byte writes on node
/// `a`; time from the first write until node `b` has read every byte.
fn bulk(nodes: &Nodes, scale: Scale) {
    let listener = listen(nodes);
    for (row, cpu_row, write) in [
        ("bulk_1k_mib_s", "bulk_1k_cpu_us_mib", 1024usize),
        ("bulk_64k_mib_s", "bulk_64k_cpu_us_mib", 64 * 1024),
    ] {
        let (a, b) = secret_pair(nodes, &listener);
        let (_ar, mut w) = a.split();
        let (mut r, _bw) = b.split();
        let total = scale.bulk_bytes;
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let cpu0 = cpu_ns();
        let reader = nodes.b.spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut left = total;
            let _ = go_rx.await;
            while left > 0 {
                let n = r.read(&mut buf[..left.min(64 * 1024)]).await.unwrap();
                assert!(n > 0, "stream ended early");
                left -= n;
            }
            (Instant::now(), r)
        });
        let (start, w) = run_on(&nodes.a, async move {
            let chunk = vec![0xa5u8; write];
            let start = Instant::now();
            let _ = go_tx.send(());
            for _ in 0..total / write {
                w.write_all(&chunk).await.unwrap();
            }
            w.flush().await.unwrap();
            (start, w)
        });
        let (end, _r) = nodes.b.block_on(reader).unwrap();
        let cpu = cpu_ns() - cpu0;
        drop(w);
        emit(row, total as f64 / (end - start).as_secs_f64() / MIB);
        emit(cpu_row, cpu_per_mib(cpu, total));
    }
}

// ---------------------------------------------------------------------------------------
// handshakes

const HS_CHANNEL: ChannelId = ChannelId(0x7e);

fn node_info(key: &NodeKey) -> NodeInfo {
    NodeInfo {
        protocol_version: ProtocolVersion {
            p2p: 8,
            block: 11,
            app: 0,
        },
        id: key.node_id().to_string(),
        listen_addr: "tcp://127.0.0.1:26656".into(),
        network: "bench".into(),
        version: "0.38.25".into(),
        channels: vec![HS_CHANNEL],
        moniker: "bench".into(),
        other: Other::default(),
    }
}

fn peer_config() -> PeerConfig {
    PeerConfig::new(vec![ChannelDescriptor::new(HS_CHANNEL, NonZeroU32::MIN)])
}

/// Full upgrades (TCP connect + secret connection + `NodeInfo` exchange and checks) with
/// `TcpTransport::dial` against a listening `TcpTransport` in the same process whose accept
/// loop drops each peer unstarted; 1 dialer, then 16 dialers in parallel.
fn handshakes(nodes: &Nodes, scale: Scale) {
    let mut config = mukan_transport::Config::default();
    config.allow_duplicate_ip = true;
    let server_key = Arc::new(key(100));
    let server = TcpTransport::new(server_key.clone(), node_info(&server_key), config.clone());
    let listening = server.clone();
    let addr = run_on(&nodes.b, async move {
        listening
            .listen("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    });
    let accepting = server.clone();
    let acceptor = nodes
        .b
        .spawn(async move { while accepting.accept(peer_config()).await.is_ok() {} });
    let target = NetAddress::new(server_key.node_id(), addr.ip(), addr.port());
    for (row, parallel) in [("hs_1_per_s", 1usize), ("hs_16_per_s", 16)] {
        // One dialing transport per parallel dialer, as a node dials each peer once.
        let clients: Vec<TcpTransport> = (0..parallel)
            .map(|i| {
                let k = Arc::new(key(200 + i as u32));
                TcpTransport::new(k.clone(), node_info(&k), config.clone())
            })
            .collect();
        let per = scale.handshakes / parallel;
        let elapsed = run_on(&nodes.a, async move {
            let start = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for client in clients {
                set.spawn(async move {
                    for _ in 0..per {
                        drop(client.dial(target, peer_config()).await.unwrap());
                    }
                });
            }
            while let Some(done) = set.join_next().await {
                done.unwrap();
            }
            start.elapsed()
        });
        emit(row, (per * parallel) as f64 / elapsed.as_secs_f64());
    }
    server.close();
    acceptor.abort();
}

// ---------------------------------------------------------------------------------------
// MConnection

/// The four channels of the MConnection rows (priority 5 each, 100 queued messages, 1 MiB
/// messages): the same descriptors as the Go programs.
fn channels() -> Vec<ChannelDescriptor> {
    (0..4u8)
        .map(|i| {
            ChannelDescriptor::new(ChannelId(0x40 + i), NonZeroU32::new(5).unwrap())
                .with_send_queue_capacity(NonZeroUsize::new(100).unwrap())
                .with_recv_message_capacity(NonZeroUsize::new(1 << 20).unwrap())
        })
        .collect()
}

struct Link {
    a: Arc<MConnection>,
    _a_rx: Inbox,
    _b: MConnection,
    b_rx: Inbox,
}

/// An MConnection pair: `a` driven on node `a`, `b` on node `b`.
fn link(nodes: &Nodes, listener: &Arc<TcpListener>, config: &MConfig) -> Link {
    let (a, b) = secret_pair(nodes, listener);
    let ca = config.clone();
    let (a, a_rx) = run_on(&nodes.a, async move {
        MConnection::spawn(a, &channels(), ca).unwrap()
    });
    let cb = config.clone();
    let (b, b_rx) = run_on(&nodes.b, async move {
        MConnection::spawn(b, &channels(), cb).unwrap()
    });
    Link {
        a: Arc::new(a),
        _a_rx: a_rx,
        _b: b,
        b_rx,
    }
}

async fn received(rx: &mut Inbox) -> usize {
    match rx.recv().await {
        Some(InboxItem::Received { message, .. }) => message.len(),
        other => panic!("unexpected {other:?}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// One-way latency of a lone 100-byte message with the node's default configuration: from
/// the `send` call on node `a` to the receipt on node `b`, 2 ms of silence between samples.
fn latency(nodes: &Nodes, scale: Scale) {
    let listener = listen(nodes);
    let l = link(nodes, &listener, &MConfig::node_default());
    let Link {
        a,
        _a_rx,
        _b,
        mut b_rx,
    } = l;
    let (t_tx, mut t_rx) = mpsc::channel::<Instant>(1);
    let n = scale.latency_samples;
    let receiver = nodes.b.spawn(async move {
        for _ in 0..n {
            assert_eq!(received(&mut b_rx).await, 100);
            t_tx.send(Instant::now()).await.unwrap();
        }
        b_rx
    });
    let mut samples = run_on(&nodes.a, async move {
        let msg = Bytes::from(vec![7u8; 100]);
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let t = Instant::now();
            a.send(ChannelId(0x40), msg.clone()).await.unwrap();
            let got = t_rx.recv().await.unwrap();
            samples.push(got - t);
        }
        samples
    });
    drop(nodes.b.block_on(receiver).unwrap());
    samples.sort();
    emit("lat_p50_us", percentile(&samples, 0.50).as_secs_f64() * 1e6);
    emit("lat_p99_us", percentile(&samples, 0.99).as_secs_f64() * 1e6);
}

/// Sends `sizes` round-robin over the four channels from four tasks on node `a` (one per
/// channel) and returns the MiB/s until node `b` has received every message.
fn mconn_transfer(nodes: &Nodes, l: Link, sizes: &[usize]) -> (f64, f64) {
    let total: usize = sizes.iter().sum();
    let count = sizes.len();
    let payload = Bytes::from(vec![3u8; sizes.iter().copied().max().unwrap_or(0)]);
    let Link {
        a,
        _a_rx,
        _b,
        mut b_rx,
    } = l;
    let cpu0 = cpu_ns();
    let start = Instant::now();
    let receiver = nodes.b.spawn(async move {
        let mut got = 0usize;
        for _ in 0..count {
            got += received(&mut b_rx).await;
        }
        (Instant::now(), got, b_rx)
    });
    let mut senders = Vec::new();
    for c in 0..4usize {
        let conn = a.clone();
        let mine: Vec<Bytes> = sizes
            .iter()
            .skip(c)
            .step_by(4)
            .map(|&s| payload.slice(..s))
            .collect();
        senders.push(nodes.a.spawn(async move {
            let ch = ChannelId(0x40 + c as u8);
            for m in mine {
                conn.send(ch, m).await.unwrap();
            }
        }));
    }
    let (end, got, _b_rx) = nodes.b.block_on(receiver).unwrap();
    let cpu = cpu_ns() - cpu0;
    for s in senders {
        nodes.a.block_on(s).unwrap();
    }
    assert_eq!(got, total);
    drop((a, _a_rx, _b));
    (
        total as f64 / (end - start).as_secs_f64() / MIB,
        cpu_per_mib(cpu, total),
    )
}

/// MConnection throughput with the rate limits off: 1 KiB and 64 KiB messages, and the
/// shared mixed-size workload, over four channels.
fn mconn_throughput(nodes: &Nodes, scale: Scale) {
    let listener = listen(nodes);
    let unlimited = MConfig::node_default().with_rates(None, None);
    // `MCONN_ONLY=1k` (or `64k`) runs that row alone, e.g. for a profile.
    let only = std::env::var("MCONN_ONLY").unwrap_or_default();
    for (row, size) in [
        ("mconn_1k_mib_s", 1024usize),
        ("mconn_64k_mib_s", 64 * 1024),
    ] {
        if !only.is_empty() && !row.contains(only.as_str()) {
            continue;
        }
        let l = link(nodes, &listener, &unlimited);
        let (rate, cpu) = mconn_transfer(nodes, l, &vec![size; scale.mconn_bytes / size]);
        emit(row, rate);
        emit(&row.replace("mib_s", "cpu_us_mib"), cpu);
    }
    // Empty messages of the sequence are left out: Go's MConnection (v0.38.25 and v0.40.0,
    // `Channel.isSendPending`) silently drops an empty message that is dequeued while
    // another channel is picked to send, so the Go side would never see them all.
    let mixed: Vec<usize> = Sizes::new()
        .take(scale.mixed_messages)
        .filter(|&s| s > 0)
        .collect();
    if !only.is_empty() {
        return;
    }
    let l = link(nodes, &listener, &unlimited);
    let (rate, cpu) = mconn_transfer(nodes, l, &mixed);
    emit("mconn_mixed_mib_s", rate);
    emit("mconn_mixed_cpu_us_mib", cpu);
}

// ---------------------------------------------------------------------------------------
// memory per idle peer

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// RSS growth of this process per idle peer: `idle_peers` connections accepted, each a
/// secret connection with a running MConnection (node defaults, the four channels), held by
/// a child process (`mem-client`) that dials them; measured after 1 s of idleness.
async fn memory(scale: Scale) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sk = key(7);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss_bytes();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "mem-client",
            &addr.to_string(),
            &scale.idle_peers.to_string(),
            "120",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut held = Vec::with_capacity(scale.idle_peers);
    let cfg = mukan_secret_conn::Config::default();
    let accept_all = async {
        for _ in 0..scale.idle_peers {
            let (s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let s = SecretStream::handshake(s, &sk, &cfg).await.unwrap();
            held.push(MConnection::spawn(s, &channels(), MConfig::node_default()).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(120), accept_all)
        .await
        .expect("the idle peers connect within 120 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_bytes();
    assert!(held.iter().all(|(c, _)| c.is_running()));
    emit(
        "mem_per_peer_kib",
        after.saturating_sub(before) as f64 / scale.idle_peers as f64 / 1024.0,
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(held);
}

/// The dialing side of the memory row, in its own process: `n` connections to `addr`, each
/// a secret connection with a running MConnection, held until `seconds` pass or the parent
/// kills it.
fn mem_client(args: &[String]) -> i32 {
    let [addr, n, seconds] = args else {
        return 2;
    };
    let (Ok(addr), Ok(n), Ok(seconds)) = (
        addr.parse::<SocketAddr>(),
        n.parse::<usize>(),
        seconds.parse::<u64>(),
    ) else {
        return 2;
    };
    runtime(2).block_on(async move {
        let mut held = Vec::with_capacity(n);
        let cfg = mukan_secret_conn::Config::default();
        for i in 0..n {
            let s = TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let s = SecretStream::handshake(s, &key(10_000 + i as u32), &cfg)
                .await
                .unwrap();
            held.push(MConnection::spawn(s, &channels(), MConfig::node_default()).unwrap());
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    });
    0
}

// ---------------------------------------------------------------------------------------
// address book

fn book_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

/// Address `i` and its source: addresses over ~40,000 /16 groups, sources over 2,000 groups
/// (the same formula as the Go program).
fn book_addr(i: usize) -> (NetAddress, NetAddress) {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    id[19] = 1;
    let g = (i * 7919) % 40_000;
    let ip = Ipv4Addr::new(
        20 + (g / 256 % 100) as u8,
        (g % 256) as u8,
        (i >> 8) as u8,
        i as u8,
    );
    let mut sid = id;
    sid[19] = 2;
    let sg = i % 2_000;
    let sip = Ipv4Addr::new(130 + (sg / 256) as u8, (sg % 256) as u8, 1, 1);
    (
        NetAddress::new(NodeId(id), IpAddr::V4(ip), 26656),
        NetAddress::new(NodeId(sid), IpAddr::V4(sip), 26656),
    )
}

/// Address book at `addrbook` (100,000) offered addresses: adds into a fresh book, then
/// (every fifth address marked good, untimed) `pick_address(50)` and `selection()`.
fn addrbook(scale: Scale) {
    let addrs: Vec<(NetAddress, NetAddress)> = (0..scale.addrbook).map(book_addr).collect();
    let mut book = AddrBook::new(
        mukan_addrbook::Config::default(),
        ChaCha8Rng::seed_from_u64(1),
    );
    let start = Instant::now();
    for (a, s) in &addrs {
        let _ = std::hint::black_box(book.add_address(*a, *s, book_now()));
    }
    emit(
        "ab_add_per_s",
        addrs.len() as f64 / start.elapsed().as_secs_f64(),
    );
    emit("ab_size", book.size() as f64);
    for (a, _) in addrs.iter().step_by(5) {
        book.mark_good(a.id(), book_now());
    }
    let start = Instant::now();
    for _ in 0..scale.picks {
        std::hint::black_box(book.pick_address(50));
    }
    emit(
        "ab_pick_per_s",
        scale.picks as f64 / start.elapsed().as_secs_f64(),
    );
    let start = Instant::now();
    for _ in 0..scale.selections {
        std::hint::black_box(book.selection());
    }
    emit(
        "ab_select_per_s",
        scale.selections as f64 / start.elapsed().as_secs_f64(),
    );
}

// ---------------------------------------------------------------------------------------
// broadcast

const BCAST_CHANNEL: ChannelId = ChannelId(0x30);

/// Receives nothing of interest: the hub only sends.
struct Quiet;

impl mukan_reactor_api::Reactor for Quiet {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![
            ChannelDescriptor::new(BCAST_CHANNEL, NonZeroU32::new(5).unwrap())
                .with_send_queue_capacity(NonZeroUsize::new(100).unwrap())
                .with_recv_message_capacity(NonZeroUsize::new(1 << 20).unwrap()),
        ]
    }
    fn receive(
        &self,
        _: mukan_reactor_api::Envelope,
    ) -> Result<(), mukan_reactor_api::ReactorError> {
        Ok(())
    }
}

/// A mempool `Message { txs: Txs { txs: [tx] } }` (field 1 in both), as the Go sink expects.
fn mempool_txs(tx: &[u8]) -> Bytes {
    fn varint(mut v: usize, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut txs = vec![0x0a];
    varint(tx.len(), &mut txs);
    txs.extend_from_slice(tx);
    let mut msg = vec![0x0a];
    varint(txs.len(), &mut msg);
    msg.extend_from_slice(&txs);
    Bytes::from(msg)
}

/// Broadcast of 1 KiB to 100 peers: a `mukan-switch` hub listening on loopback; the peers
/// are the Go sink (`gobench-v0.40 bcast-sink`, path in `MUKAN_BENCH_SINK`, one Go switch
/// per peer in a child process, so only the hub's CPU is counted here), the same receivers
/// the Go rows face. One broadcast at a time; the sink prints `D <seq>` when all peers have
/// it.
fn broadcast(nodes: &Nodes, scale: Scale) {
    use mukan_reactor_api::Network as _;
    use std::io::BufRead;
    let Ok(sink) = std::env::var("MUKAN_BENCH_SINK") else {
        eprintln!("broadcast: MUKAN_BENCH_SINK (the Go sink binary) is not set; row skipped");
        return;
    };
    let peers = scale.bcast_peers;
    let hub_key = Arc::new(key(300));
    let hub = run_on(&nodes.b, {
        let hub_key = hub_key.clone();
        async move {
            let info = node_info(&hub_key);
            let node = mukan_node::NodeBuilder::new(hub_key.clone(), info.network)
                .moniker(info.moniker)
                .version(info.version)
                .tx_index(info.other.tx_index)
                .external_address(info.listen_addr)
                .listen("127.0.0.1:0".parse().unwrap())
                .map_switch_config(|c| {
                    c.allow_duplicate_ip = true;
                    c.max_num_inbound_peers = peers + 10;
                })
                .reactor("bench", Arc::new(Quiet))
                .start()
                .await
                .unwrap();
            node.switch().clone()
        }
    });
    let addr = hub.net_address();
    let mut child = Command::new(sink)
        .args(["bcast-sink", &addr.to_string(), &peers.to_string(), "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.num_peers().inbound < peers {
        assert!(
            Instant::now() < deadline,
            "the sink's peers did not all connect"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut tx = vec![0u8; 1024];
    // `BC_COUNT` sets the number of broadcasts, e.g. for a profile of the loop alone.
    let broadcasts = std::env::var("BC_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(scale.broadcasts)
        .max(1);
    let mut times = Vec::with_capacity(broadcasts);
    let cpu0 = cpu_ns();
    for k in 0..broadcasts {
        tx[..8].copy_from_slice(&(k as u64).to_be_bytes());
        let msg = mempool_txs(&tx);
        let t = Instant::now();
        let _report = hub.broadcast(BCAST_CHANNEL, msg);
        let want = format!("D {k}");
        loop {
            let line = lines.next().expect("the sink ended").unwrap();
            if line == want {
                break;
            }
        }
        times.push(t.elapsed());
    }
    let cpu = cpu_ns() - cpu0;
    times.sort();
    emit("bc_cpu_us", cpu as f64 / 1e3 / broadcasts as f64);
    emit("bc_p50_ms", percentile(&times, 0.5).as_secs_f64() * 1e3);
    emit(
        "bc_max_ms",
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(hub);
}
