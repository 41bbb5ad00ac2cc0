//! A testnet run, for the Quint oracle (`conformance-tests/quint/`): a PEX seed and four
//! nodes on loopback TCP find each other through the seed and PEX, and a transaction handed
//! to one node's `tx-relay` reactor reaches the other three through the relays. Every reactor
//! is wrapped in `Traced`; with `MUKAN_REACTOR_TRACES=DIR` each node's trace is written there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test"
)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mukan_addrbook::{AddrBook, Config as BookConfig};
use mukan_example_reactors::tx_relay::{ReceivedTx, TxRelay};
use mukan_node::NodeBuilder;
use mukan_node_key::NodeKey;
use mukan_pex::{PexConfig, PexReactor};
use mukan_reactor_api::testing::{CallTrace, Traced};
use mukan_reactor_api::{Network as _, SharedAddressBook};
use mukan_transport::TcpTransport;
use parking_lot::Mutex;
use rand::SeedableRng;
use tokio::sync::mpsc;

struct Node {
    node: mukan_node::Node<TcpTransport>,
    relay: Arc<TxRelay>,
    received: mpsc::Receiver<ReceivedTx>,
    trace: CallTrace,
}

/// A node built as any user builds one (`NodeBuilder`), its two reactors wrapped in `Traced`
/// (so PEX is registered as a reactor of ours, over the node's address book).
async fn node(n: u8, seeds: Vec<String>) -> Node {
    let key = Arc::new(NodeKey::from_seed([n + 1; 32]));
    let book = AddrBook::new(
        BookConfig::with_strict(false),
        rand_chacha::ChaCha8Rng::seed_from_u64(n.into()),
    );
    let book: SharedAddressBook = Arc::new(Mutex::new(book));
    let mut pc = PexConfig::default();
    pc.seed_mode = seeds.is_empty();
    pc.seeds = seeds;
    pc.ensure_peers_period = Duration::from_secs(1);
    pc.strict_addr_book = false;
    let pex = Arc::new(PexReactor::new(pc, book.clone(), None).unwrap());
    let (tx, received) = mpsc::channel(64);
    let relay = Arc::new(TxRelay::new(tx));
    let trace = CallTrace::new();
    let node = NodeBuilder::new(key, "testnet-trace")
        .moniker(format!("node{n}"))
        .listen("127.0.0.1:0".parse().unwrap())
        .map_switch_config(|c| {
            c.allow_duplicate_ip = true;
            c.dial_randomizer = Duration::ZERO;
        })
        .address_book(book)
        .reactor(
            "relay",
            Arc::new(Traced::new("relay", relay.clone(), &trace)),
        )
        .reactor("pex", Arc::new(Traced::new("pex", pex, &trace)))
        .start()
        .await
        .unwrap();
    Node {
        node,
        relay,
        received,
        trace,
    }
}

fn export(name: &str, trace: &CallTrace) {
    let Some(dir) = std::env::var_os("MUKAN_REACTOR_TRACES") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    trace
        .write(&dir.join(format!("testnet.{name}.trace")))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_and_four_nodes_find_each_other_and_relay_a_transaction() {
    let seed = node(0, Vec::new()).await;
    let seed_addr = seed.node.net_address().to_string();
    let mut nodes = Vec::new();
    for n in 1..=4 {
        nodes.push(node(n, vec![seed_addr.clone()]).await);
    }
    // Every node connected to the three others (the seed hangs up on them after answering).
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ids: Vec<_> = nodes.iter().map(|n| n.node.net_address().id()).collect();
        let meshed = nodes.iter().all(|n| {
            ids.iter()
                .filter(|id| {
                    **id != n.node.net_address().id() && n.node.switch().peer(id).is_some()
                })
                .count()
                == 3
        });
        if meshed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the network did not form within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A transaction handed to node 1 reaches nodes 2-4, each once.
    let report = nodes[0]
        .relay
        .broadcast_tx(Bytes::from_static(b"testnet=relayed"));
    assert!(report.queued() >= 3, "{report:?}");
    for n in &mut nodes[1..] {
        let got = tokio::time::timeout(Duration::from_secs(10), n.received.recv()).await;
        assert_eq!(
            got.unwrap().unwrap().tx,
            Bytes::from_static(b"testnet=relayed")
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in &mut nodes[1..] {
        assert!(
            n.received.try_recv().is_err(),
            "a transaction is relayed once"
        );
    }
    seed.node.stop().await;
    for n in &nodes {
        n.node.stop().await;
    }
    export("seed", &seed.trace);
    for (i, n) in nodes.iter().enumerate() {
        export(&format!("node{}", i + 1), &n.trace);
    }
    for n in nodes.iter().chain([&seed]) {
        let events = n.trace.events();
        assert!(events.len() > 8, "{} calls recorded", events.len());
    }
}
