//! An evil peer for the bad-input suite: it speaks the wire protocol over real loopback TCP
//! (our sans-IO secret-connection pieces craft the frames) and misbehaves on purpose, plus the
//! leak checks every case ends with (open fds, live tokio tasks).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers shared by several test binaries"
)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, InboxItem, NetAddress, NodeInfo, PeerConfig, PeerInbox,
    StopReason,
};
use mukan_secret_conn::Handshake;
use mukan_test_support::wire;
use mukan_transport::{Config, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Cases share the process's fd table: they run one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The channel our honest node serves.
pub const ECHO: ChannelId = ChannelId(0x7e);

pub use mukan_test_support::Baseline;

/// Open TCP socket descriptors of this process ([`mukan_test_support::open_tcp_sockets`]).
pub fn open_fds() -> usize {
    mukan_test_support::open_tcp_sockets()
}

pub fn node_info(key: &NodeKey, channels: &[u8]) -> NodeInfo {
    NodeInfo::new(key.node_id(), "chain", "evil")
        .with_listen_addr("tcp://127.0.0.1:1")
        .with_channels(channels.iter().map(|&c| ChannelId(c)).collect())
        .with_version("0.38.25")
}

pub fn peer_config(channels: &[u8]) -> PeerConfig {
    PeerConfig::new(
        channels
            .iter()
            .map(|&c| ChannelDescriptor::new(ChannelId(c), NonZeroU32::new(1 << 16).unwrap()))
            .collect(),
    )
}

/// Scaled-down timeouts (as the Go tests: ping 90 ms, pong 45 ms).
pub fn fast_config() -> Config {
    let mut c = Config::default();
    c.allow_duplicate_ip = true;
    c.handshake_timeout = Duration::from_millis(500);
    c.node_info_timeout = Duration::from_millis(500);
    c.mconn.ping_interval = Duration::from_millis(90);
    c.mconn.pong_timeout = Duration::from_millis(45);
    c
}

/// An honest node listening on loopback.
pub struct Honest {
    pub key: Arc<NodeKey>,
    pub transport: TcpTransport,
    pub addr: SocketAddr,
}

impl Honest {
    pub async fn listen(cfg: Config) -> Self {
        Self::listen_with(cfg, Vec::new()).await
    }

    pub async fn listen_with(
        cfg: Config,
        filters: Vec<Arc<dyn mukan_transport::ConnFilter>>,
    ) -> Self {
        let key = Arc::new(NodeKey::from_seed([1; 32]));
        let mut info = node_info(&key, &[ECHO.0]);
        info.moniker = "honest".into();
        let transport = TcpTransport::with_filters(key.clone(), info, cfg, filters);
        let addr = transport
            .listen("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self {
            key,
            transport,
            addr,
        }
    }

    pub fn target(&self) -> NetAddress {
        NetAddress::new(self.key.node_id(), self.addr.ip(), self.addr.port())
    }
}

/// Appends a protobuf varint.
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `len(body) || body`.
pub fn delimited(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

/// A delimited mconn `Packet{PacketMsg{channel_id, eof, data}}`; `channel_id` is an int32
/// on the wire, so any i64 can be sent.
pub fn packet_msg(channel_id: i64, eof: bool, data: &[u8]) -> Vec<u8> {
    let mut msg = vec![0x08];
    varint(channel_id as u64, &mut msg);
    if eof {
        msg.extend_from_slice(&[0x10, 0x01]);
    }
    if !data.is_empty() {
        msg.push(0x1a);
        varint(data.len() as u64, &mut msg);
        msg.extend_from_slice(data);
    }
    let mut packet = vec![0x1a];
    varint(msg.len() as u64, &mut packet);
    packet.extend_from_slice(&msg);
    delimited(&packet)
}

/// A delimited mconn `Packet{PacketPing{}}`.
pub const PING: [u8; 3] = [0x02, 0x0a, 0x00];

/// A delimited mconn `Packet{PacketPong{}}`.
pub const PONG: [u8; 3] = [0x02, 0x12, 0x00];

/// A TCP connection whose secret-connection handshake the evil peer runs by hand.
pub struct Evil {
    pub tcp: TcpStream,
    /// The frame halves, and plaintext read past the last whole message.
    pub sealed: wire::Sealed,
}

impl Evil {
    /// Connects and sends `eph_msg` (the whole first message) instead of a valid key.
    pub async fn connect_raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(bytes).await.unwrap();
        tcp
    }

    /// Runs an honest handshake as `key` with the sans-IO pieces.
    pub async fn handshake(addr: SocketAddr, key: &NodeKey) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Self::handshake_over(tcp, key).await
    }

    /// Connects with a small receive buffer (`bytes`), so that a peer that stops reading
    /// stalls its sender quickly.
    pub async fn connect_small(addr: SocketAddr, bytes: u32) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        socket.connect(addr).await.unwrap()
    }

    /// Exchanges ephemeral keys honestly, then sends `craft(challenge)` (plaintext, sealed
    /// by the caller through the returned `Evil`) as the authentication stage; the caller
    /// writes what `craft` returns. Returns the connection without reading the honest
    /// side's authentication.
    pub async fn after_eph(addr: SocketAddr) -> (Self, [u8; 32]) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let hs = Handshake::from_ephemeral_secret([0x43; 32]);
        let (rd, wr) = &mut tcp.split();
        let (hs, sealed) = wire::exchange_eph(rd, wr, hs).await.unwrap();
        let challenge = *hs.challenge();
        (Self { tcp, sealed }, challenge)
    }

    /// Runs an honest handshake as `key` over an open connection.
    pub async fn handshake_over(mut tcp: TcpStream, key: &NodeKey) -> Self {
        let hs = Handshake::from_ephemeral_secret([0x42; 32]);
        let (rd, wr) = &mut tcp.split();
        let (sealed, _) = wire::handshake(rd, wr, hs, key).await.unwrap();
        Self { tcp, sealed }
    }

    /// Honest handshake plus the NodeInfo exchange: the connection is upgraded.
    pub async fn upgraded(addr: SocketAddr, key: &NodeKey, channels: &[u8]) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Self::upgraded_over(tcp, key, channels).await
    }

    /// As [`Evil::upgraded`], over an open connection.
    pub async fn upgraded_over(tcp: TcpStream, key: &NodeKey, channels: &[u8]) -> Self {
        let mut evil = Self::handshake_over(tcp, key).await;
        let info = node_info(key, channels).encode_to_vec();
        evil.send_sealed(&delimited(&info)).await;
        let _theirs = evil.read_delimited().await;
        evil
    }

    /// Seals `data` into frames of up to 1024 bytes.
    pub fn seal(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.sealed.seal_into(data, &mut out);
        out
    }

    pub async fn send_sealed(&mut self, data: &[u8]) {
        let frames = self.seal(data);
        self.tcp.write_all(&frames).await.unwrap();
    }

    /// Reads one delimited message (as the honest side writes them: in whole frames).
    pub async fn read_delimited(&mut self) -> Vec<u8> {
        self.sealed.read_delimited(&mut self.tcp).await.unwrap()
    }

    /// Reads until the honest side closes the socket; panics (fails the case) if it is still
    /// open after 5 s. Returns how many bytes arrived first.
    pub async fn expect_closed(mut self) -> usize {
        expect_closed(&mut self.tcp).await
    }
}

/// Reads `tcp` until EOF or a reset (bounded: 5 s); fails the case if it stays open.
pub async fn expect_closed(tcp: &mut TcpStream) -> usize {
    let mut sink = Vec::new();
    match tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await {
        Ok(_) => sink.len(),
        Err(_) => panic!("the honest node left the socket open"),
    }
}

/// Drains a started peer's inbox: the messages it delivered and how it stopped.
pub async fn drain(mut inbox: Box<dyn PeerInbox>) -> (Vec<(ChannelId, bytes::Bytes)>, StopReason) {
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), inbox.recv()).await {
            Ok(Some(InboxItem::Received {
                channel, message, ..
            })) => got.push((channel, message)),
            Ok(Some(InboxItem::Stopped(reason))) => return (got, reason),
            Ok(Some(_)) => {}
            Ok(None) => panic!("inbox ended without a stop reason"),
            Err(_) => panic!("the peer was not stopped within 5 s"),
        }
    }
}
