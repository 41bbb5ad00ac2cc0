//! Bad-input suite, transport side (cases of conformance-tests/BAD_INPUT.md: G6 and D11): dialing an address that
//! never answers the TCP handshake. The "blackhole" stays on this machine: a loopback listener
//! that never accepts and whose accept queue is full, so the kernel drops further SYNs and the
//! connect hangs until our `dial_timeout`. Each case asserts the typed error, that nothing
//! panicked, and that sockets and tokio tasks are back to their baseline.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, NetAddress, NodeInfo, PeerConfig, TimeoutKind, Transport,
    TransportError,
};
use mukan_test_support::Baseline;
use mukan_transport::{Config, TcpTransport};
use tokio::net::{TcpSocket, TcpStream};

/// Cases share the process's socket table: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A loopback listener that never accepts, with its accept queue filled: further connects
/// get no SYN-ACK. Holds the listener and the connections that fill the queue.
struct Blackhole {
    addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _fill: Vec<TcpStream>,
}

impl Blackhole {
    async fn new() -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fill = Vec::new();
        // Connect until one does not complete: the queue is full from then on.
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fill.push(s),
                Ok(Err(e)) => panic!("loopback connect failed: {e}"),
                Err(_) => {
                    return Self {
                        addr,
                        _listener: listener,
                        _fill: fill,
                    };
                }
            }
        }
        panic!("the accept queue of a listen(0) socket never filled");
    }
}

fn node_info(key: &NodeKey) -> NodeInfo {
    NodeInfo::new(key.node_id(), "chain", "dialer")
        .with_channels(vec![ChannelId(0x7e)])
        .with_version("0.38.25")
}

fn peer_config() -> PeerConfig {
    PeerConfig::new(vec![ChannelDescriptor::new(
        ChannelId(0x7e),
        NonZeroU32::MIN,
    )])
}

fn dialer(cfg: Config) -> TcpTransport {
    let key = Arc::new(NodeKey::from_seed([5; 32]));
    let info = node_info(&key);
    TcpTransport::new(key, info, cfg)
}

fn target(addr: SocketAddr) -> NetAddress {
    NetAddress::new(
        NodeKey::from_seed([6; 32]).node_id(),
        addr.ip(),
        addr.port(),
    )
}

#[tokio::test]
async fn g6_dialing_a_blackholed_address_fails_with_a_dial_timeout_and_no_leak() {
    let _serial = SERIAL.lock().await;
    let hole = Blackhole::new().await;
    let base = Baseline::take();
    let mut cfg = Config::default();
    cfg.dial_timeout = Duration::from_millis(300);
    // Longer than the dial timeout: the dial stage is the one that must fire.
    cfg.handshake_timeout = Duration::from_secs(20);
    let t = dialer(cfg);
    for _ in 0..3 {
        let err = t.dial(target(hole.addr), peer_config()).await.err();
        assert!(
            matches!(err, Some(TransportError::Timeout(TimeoutKind::Dial))),
            "{err:?}"
        );
    }
    // Several at once: each ends with its own timeout.
    let (a, b, c) = tokio::join!(
        t.dial(target(hole.addr), peer_config()),
        t.dial(target(hole.addr), peer_config()),
        t.dial(target(hole.addr), peer_config()),
    );
    for r in [a, b, c] {
        assert!(
            matches!(r.err(), Some(TransportError::Timeout(TimeoutKind::Dial))),
            "a concurrent dial did not time out as a dial"
        );
    }
    assert_eq!(t.connection_count(), 0);
    t.close();
    base.assert_restored().await;
}

/// D11: the configured stages are honoured one by one: with a short handshake timeout and a
/// peer that accepts TCP but never speaks, the error names the handshake, not the dial.
#[tokio::test]
async fn d11_configured_dial_and_handshake_timeouts_are_honoured_per_stage() {
    let _serial = SERIAL.lock().await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hole = Blackhole::new().await;
    let base = Baseline::take();
    let mut cfg = Config::default();
    cfg.dial_timeout = Duration::from_secs(20);
    cfg.handshake_timeout = Duration::from_millis(300);
    let t = dialer(cfg);
    let (err, accepted) = tokio::join!(t.dial(target(silent_addr), peer_config()), async {
        // Accept and hold the socket open in silence until the dialer gives up.
        silent.accept().await.unwrap().0
    });
    assert!(
        matches!(
            err.err(),
            Some(TransportError::Timeout(TimeoutKind::Handshake))
        ),
        "the silent peer was not a handshake timeout"
    );
    drop(accepted);
    t.close();
    let mut cfg = Config::default();
    cfg.dial_timeout = Duration::from_millis(200);
    cfg.handshake_timeout = Duration::from_secs(20);
    let t = dialer(cfg);
    let err = t.dial(target(hole.addr), peer_config()).await.err();
    assert!(
        matches!(err, Some(TransportError::Timeout(TimeoutKind::Dial))),
        "{err:?}"
    );
    t.close();
    base.assert_restored().await;
}
