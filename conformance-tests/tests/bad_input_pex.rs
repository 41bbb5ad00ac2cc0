//! Bad-input suite, PEX over a real connection (case of conformance-tests/BAD_INPUT.md: E4): an evil peer that
//! our node dialed answers our request with a `PexAddrs` as large as the PEX channel takes
//! (64,000 bytes, about a thousand addresses, in 63 packets). It is processed: the addresses
//! reach the book, within its capacity, and the peer stays connected. Every address is on
//! loopback, and the node has no free outbound slot, so nothing is dialed off the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::evil::{Baseline, Evil, SERIAL, node_info, packet_msg};
use mukan_addrbook::AddrBook;
use mukan_node_key::{NodeId, NodeKey};
use mukan_pex::msg::MAX_MSG_SIZE;
use mukan_pex::{PexConfig, PexMessage, PexReactor};
use mukan_reactor_api::{
    AddressBook as _, Dialer as _, NetAddress, Network as _, SharedAddressBook,
};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// About a thousand distinct loopback addresses whose `PexAddrs` encoding is as large as
/// the PEX channel accepts, and that encoding.
fn largest_answer() -> (Vec<NetAddress>, Vec<u8>) {
    let mut addrs = Vec::new();
    for i in 0u16.. {
        let mut id = [0x5a; 20];
        id[..2].copy_from_slice(&i.to_be_bytes());
        let [hi, lo] = i.to_be_bytes();
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 100, hi, lo.max(1)));
        addrs.push(NetAddress::new(NodeId(id), ip, 26_656));
        if PexMessage::Addrs(addrs.clone()).encode().len() > MAX_MSG_SIZE {
            addrs.pop();
            break;
        }
    }
    let bytes = PexMessage::Addrs(addrs.clone()).encode();
    (addrs, bytes)
}

#[tokio::test]
async fn e4_a_pex_answer_of_64000_bytes_is_processed_and_the_peer_stays() {
    let _serial = SERIAL.lock().await;
    let (addrs, answer) = largest_answer();
    assert!(answer.len() <= MAX_MSG_SIZE && answer.len() > MAX_MSG_SIZE - 80);
    assert!(addrs.len() > 900, "{}", addrs.len());
    let base = Baseline::take();

    // The evil peer listens; our node dials it.
    let evil_key = NodeKey::from_seed([7; 32]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_addr = NetAddress::new(
        evil_key.node_id(),
        listener.local_addr().unwrap().ip(),
        listener.local_addr().unwrap().port(),
    );

    // Our node: a switch over TCP with the PEX reactor and a non-strict book (loopback
    // addresses count), one outbound slot, which the evil peer takes.
    let book = Arc::new(Mutex::new(AddrBook::new(
        mukan_addrbook::Config::with_strict(false),
        ChaCha8Rng::seed_from_u64(4),
    )));
    let shared: SharedAddressBook = book.clone();
    let mut pex = PexConfig::default();
    pex.strict_addr_book = false;
    pex.max_outbound = Some(1);
    pex.ensure_peers_period = Duration::from_secs(3600);
    let reactor = Arc::new(PexReactor::new(pex, shared.clone(), None).unwrap());
    let mut sw_config = mukan_switch::Config::default();
    sw_config.max_num_outbound_peers = 1;
    let mut builder = mukan_switch::Builder::new(sw_config);
    builder.add_reactor("pex", reactor).unwrap();
    let builder = builder.address_book(shared);
    let key = Arc::new(NodeKey::from_seed([1; 32]));
    let mut info = node_info(&key, &[0x00]);
    info.moniker = "honest".into();
    let mut tconfig = common::evil::fast_config();
    tconfig.mconn.ping_interval = Duration::from_secs(60);
    tconfig.mconn.pong_timeout = Duration::from_secs(45);
    let transport = mukan_transport::TcpTransport::new(key, info, tconfig);
    transport
        .listen("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let sw = builder.build(transport).unwrap();
    sw.start().unwrap();

    let (dialed, mut evil) = tokio::join!(sw.dial_peer_with_address(evil_addr), async {
        let (tcp, _) = listener.accept().await.unwrap();
        Evil::upgraded_over(tcp, &evil_key, &[0x00]).await
    });
    dialed.unwrap();
    // Our node asks (PexRequest = `0a 00` on channel 0).
    let request = evil.read_delimited().await;
    assert!(request.ends_with(&[0x0a, 0x00]), "{request:02x?}");
    // The answer, in packets of the default 1,024-byte payload.
    let chunks: Vec<&[u8]> = answer.chunks(1024).collect();
    let mut plain = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        plain.extend_from_slice(&packet_msg(0, i + 1 == chunks.len(), chunk));
    }
    evil.send_sealed(&plain).await;

    // Processed: the book fills (up to what its buckets take), the peer is not stopped.
    let before = tokio::time::Instant::now();
    while book.lock().size() == 0 {
        assert!(
            before.elapsed() < Duration::from_secs(5),
            "nothing reached the book"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let size = book.lock().size();
    assert!(size <= addrs.len(), "{size} > {}", addrs.len());
    assert!(
        addrs.iter().any(|a| book.lock().has_address(a)),
        "none of the advertised addresses is in the book"
    );
    book.lock().check_invariants().unwrap();
    assert!(
        sw.peer(&evil_key.node_id()).is_some(),
        "the peer was stopped"
    );
    assert!(
        sw.stats().peer_stops.is_empty(),
        "{:?}",
        sw.stats().peer_stops
    );
    assert!(
        !book
            .lock()
            .is_banned(&evil_addr, std::time::SystemTime::now())
    );

    // Shut down: our side closes the socket; nothing leaks.
    sw.stop().await;
    evil.expect_closed().await;
    drop(listener);
    base.assert_restored().await;
}
