//! The deny list's ID check comes right after the secret connection: a denied node that
//! completes the handshake reads nothing from us (no `NodeInfo`), only the end of the stream,
//! in both directions.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, DenyEntry, DenyList, NetAddress, NodeInfo, PeerConfig,
    RejectDetail, Transport, TransportError,
};
use mukan_secret_conn::SecretStream;
use mukan_transport::{Config, TcpTransport};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Bounds every wait on the evil side, so a broken transport fails the test instead of
/// hanging it.
const LIMIT: Duration = Duration::from_secs(20);

fn node_info(key: &NodeKey) -> NodeInfo {
    NodeInfo::new(key.node_id(), "chain", "honest")
        .with_channels(vec![ChannelId(0x7e)])
        .with_version("0.38.25")
}

fn peer_config() -> PeerConfig {
    PeerConfig::new(vec![ChannelDescriptor::new(
        ChannelId(0x7e),
        NonZeroU32::MIN,
    )])
}

fn transport(deny: Arc<DenyList>) -> TcpTransport {
    let key = Arc::new(NodeKey::from_seed([1; 32]));
    let mut cfg = Config::default();
    cfg.allow_duplicate_ip = true;
    cfg.deny = deny;
    // Longer than the evil side waits: only the deny check can end the connection first.
    cfg.node_info_timeout = LIMIT * 2;
    TcpTransport::new(key.clone(), node_info(&key), cfg)
}

/// After the handshake, the first bytes the evil side reads: empty at the end of the stream.
async fn observe(stream: &mut SecretStream<TcpStream>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(LIMIT, stream.read(&mut buf)).await;
    let n = match read {
        Err(_) => panic!("the transport kept the denied connection open, silent"),
        Ok(Ok(n)) => n,
        // A reset is as good as the end: nothing was read.
        Ok(Err(_)) => 0,
    };
    buf.truncate(n);
    buf
}

fn denied_id(err: &TransportError) -> Option<mukan_node_key::NodeId> {
    match err {
        TransportError::Rejected {
            detail: RejectDetail::DeniedId(id),
            ..
        } => Some(*id),
        _ => None,
    }
}

#[tokio::test]
async fn a_denied_inbound_id_reads_no_node_info() {
    let evil_key = NodeKey::from_seed([66; 32]);
    let deny = Arc::new(DenyList::new());
    deny.deny(DenyEntry::Id(evil_key.node_id()));
    let ours = transport(deny);
    let addr: SocketAddr = ours.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();

    let evil = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let config = mukan_secret_conn::Config::new(Duration::from_secs(5));
        let mut stream = SecretStream::handshake(tcp, &evil_key, &config)
            .await
            .unwrap();
        observe(&mut stream).await
    };
    let (seen, accepted) = tokio::join!(evil, ours.accept(peer_config()));
    assert!(
        seen.is_empty(),
        "we sent {} bytes to a denied ID",
        seen.len()
    );
    let err = accepted.err().unwrap();
    assert_eq!(denied_id(&err), Some(evil_key.node_id()), "{err:?}");
    assert_eq!(ours.connection_count(), 0);
}

#[tokio::test]
async fn an_id_denied_while_dialing_reads_no_node_info() {
    let evil_key = NodeKey::from_seed([67; 32]);
    let evil_id = evil_key.node_id();
    let deny = Arc::new(DenyList::new());
    let ours = transport(deny.clone());
    let raw = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = raw.local_addr().unwrap();

    // Denied after our pre-dial check passed, before the handshake.
    let evil = async {
        let (socket, _) = raw.accept().await.unwrap();
        deny.deny(DenyEntry::Id(evil_id));
        let config = mukan_secret_conn::Config::new(Duration::from_secs(5));
        let mut stream = SecretStream::handshake(socket, &evil_key, &config)
            .await
            .unwrap();
        observe(&mut stream).await
    };
    let target = NetAddress::new(evil_id, addr.ip(), addr.port());
    let (seen, dialed) = tokio::join!(evil, ours.dial(target, peer_config()));
    assert!(
        seen.is_empty(),
        "we sent {} bytes to a denied ID",
        seen.len()
    );
    let err = dialed.err().unwrap();
    assert_eq!(denied_id(&err), Some(evil_id), "{err:?}");
}
