//! Live interop of `mukan-secret-conn` with two independent Rust implementations of the CometBFT
//! secret connection, over loopback TCP (RELIABILITY V6a, issue 2 acceptance):
//!
//! - `tendermint-p2p` 0.41 (tendermint-rs): blocking `std::io`, run on std threads. It panics
//!   when a read buffer is smaller than the pending chunk, so it reads with 4 KiB buffers.
//! - `cometbft-p2p` 0.3 (iqlusion, tmkms): tokio, message-oriented. Its reader expects each
//!   message to start a frame, so we flush after every message we send it.
//!
//! Each test moves 4 MiB of seeded random bytes each way, full duplex, and checks them byte for
//! byte; our side is once the dialer and once the listener; both sides check the other's node ID.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::{
    io::{Read, Write},
    time::Duration,
};

use cometbft_p2p::{AsyncReadMsg, AsyncSecretConnection, AsyncWriteMsg, IdentitySecret};
use mukan_node_key::{NodeId, NodeKey};
use mukan_secret_conn::{Config, SecretStream};
use prost::Message as _;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tendermint_p2p::secret_connection::{SecretConnection, Version};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const TRANSFER: usize = 4 << 20;
const OUR_SEED: [u8; 32] = [0x11; 32];
const THEIR_SEED: [u8; 32] = [0x22; 32];
/// Generous: debug builds of the peers' RustCrypto ciphers are slow.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

fn random_bytes(seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; TRANSFER];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// Splits `TRANSFER` bytes into random sizes (1 B .. 64 KiB).
fn random_sizes(seed: u64) -> Vec<usize> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut sizes = Vec::new();
    let mut left = TRANSFER;
    while left > 0 {
        let n = rng.gen_range(1..=64 * 1024).min(left);
        sizes.push(n);
        left -= n;
    }
    sizes
}

fn their_node_id() -> NodeId {
    NodeKey::from_seed(THEIR_SEED).node_id()
}

fn our_config() -> Config {
    Config::new(Duration::from_secs(30)).expect_peer(their_node_id())
}

/// Our side for a byte-stream peer: writes in random sizes with occasional flushes, reads with
/// its own buffer, full duplex through the split halves.
async fn our_stream_side<T>(io: T, send: Vec<u8>) -> (NodeId, Vec<u8>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stream = SecretStream::handshake(io, &NodeKey::from_seed(OUR_SEED), &our_config())
        .await
        .unwrap();
    let remote = stream.remote_node_id();
    let (mut rd, mut wr) = stream.split();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for (i, n) in random_sizes(7).into_iter().enumerate() {
            wr.write_all(&send[at..at + n]).await.unwrap();
            at += n;
            if i % 3 == 0 {
                wr.flush().await.unwrap();
            }
        }
        wr.flush().await.unwrap();
        wr
    });
    let mut got = Vec::with_capacity(TRANSFER);
    let mut buf = vec![0u8; 5000];
    while got.len() < TRANSFER {
        let n = rd.read(&mut buf).await.unwrap();
        assert!(n > 0, "early EOF after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    drop(writer.await.unwrap());
    (remote, got)
}

/// tendermint-p2p's side, blocking: returns the peer ID it authenticated and what it read.
fn tendermint_side(tcp: std::net::TcpStream, send: Vec<u8>) -> (String, Vec<u8>) {
    let key = ed25519_consensus::SigningKey::from(THEIR_SEED);
    let conn = SecretConnection::new(tcp, key, Version::V0_34).unwrap();
    let peer = conn.remote_pubkey().peer_id().to_string();
    let (mut tx, mut rx) = conn.split().unwrap();
    let writer = std::thread::spawn(move || {
        let mut at = 0;
        for n in random_sizes(8) {
            tx.write_all(&send[at..at + n]).unwrap();
            at += n;
        }
        tx.flush().unwrap();
        tx
    });
    let mut got = Vec::with_capacity(TRANSFER);
    let mut buf = vec![0u8; 4096];
    while got.len() < TRANSFER {
        let n = rx.read(&mut buf).unwrap();
        assert!(n > 0, "early EOF after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    drop(writer.join().unwrap());
    (peer, got)
}

fn check(ours: (NodeId, Vec<u8>), theirs: (String, Vec<u8>), our_data: &[u8], their_data: &[u8]) {
    assert_eq!(ours.0, their_node_id(), "we see their true ID");
    assert_eq!(
        theirs.0,
        NodeKey::from_seed(OUR_SEED).node_id().to_string(),
        "they see our true ID"
    );
    assert!(ours.1 == their_data, "bytes they sent arrived intact");
    assert!(theirs.1 == our_data, "bytes we sent arrived intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendermint_p2p_we_dial() {
    let (our_data, their_data) = (random_bytes(1), random_bytes(2));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let td = their_data.clone();
    let theirs = tokio::task::spawn_blocking(move || {
        let (tcp, _) = listener.accept().unwrap();
        tendermint_side(tcp, td)
    });
    let ours = tokio::time::timeout(TEST_TIMEOUT, async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        our_stream_side(tcp, our_data.clone()).await
    })
    .await
    .unwrap();
    let theirs = theirs.await.unwrap();
    check(ours, theirs, &our_data, &their_data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tendermint_p2p_we_listen() {
    let (our_data, their_data) = (random_bytes(3), random_bytes(4));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let td = their_data.clone();
    let theirs = tokio::task::spawn_blocking(move || {
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tendermint_side(tcp, td)
    });
    let ours = tokio::time::timeout(TEST_TIMEOUT, async {
        let (tcp, _) = listener.accept().await.unwrap();
        our_stream_side(tcp, our_data.clone()).await
    })
    .await
    .unwrap();
    let theirs = theirs.await.unwrap();
    check(ours, theirs, &our_data, &their_data);
}

/// Our side for the message-oriented peer: each message is `uvarint(len) || BytesValue` and
/// is flushed on its own, so it starts at a frame boundary.
async fn our_message_side(io: TcpStream, send: Vec<u8>) -> (NodeId, Vec<u8>) {
    let stream = SecretStream::handshake(io, &NodeKey::from_seed(OUR_SEED), &our_config())
        .await
        .unwrap();
    let remote = stream.remote_node_id();
    let (mut rd, mut wr) = stream.split();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for n in random_sizes(9) {
            let msg = send[at..at + n].to_vec().encode_length_delimited_to_vec();
            at += n;
            wr.write_all(&msg).await.unwrap();
            wr.flush().await.unwrap();
        }
        wr
    });
    let mut got = Vec::with_capacity(TRANSFER);
    let mut body = Vec::new();
    while got.len() < TRANSFER {
        let mut len = 0u64;
        for shift in (0..64).step_by(7) {
            let b = rd.read_u8().await.unwrap();
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        body.resize(usize::try_from(len).unwrap(), 0);
        rd.read_exact(&mut body).await.unwrap();
        let value = Vec::<u8>::decode(body.as_slice()).unwrap();
        got.extend_from_slice(&value);
    }
    drop(writer.await.unwrap());
    (remote, got)
}

/// cometbft-p2p's side: returns the peer ID it authenticated and the concatenated messages.
async fn cometbft_side(io: TcpStream, send: Vec<u8>) -> (String, Vec<u8>) {
    let identity = IdentitySecret::from_bytes(&THEIR_SEED);
    let conn = AsyncSecretConnection::new(io, &identity).await.unwrap();
    let peer = hex::encode(conn.peer_public_key().peer_id().as_bytes());
    let (mut rd, mut wr) = conn.split();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for n in random_sizes(10) {
            wr.write_msg(send[at..at + n].to_vec()).await.unwrap();
            at += n;
        }
        wr
    });
    let mut got = Vec::with_capacity(TRANSFER);
    while got.len() < TRANSFER {
        let msg: Vec<u8> = rd.read_msg().await.unwrap();
        got.extend_from_slice(&msg);
    }
    drop(writer.await.unwrap());
    (peer, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cometbft_p2p_we_dial() {
    let (our_data, their_data) = (random_bytes(5), random_bytes(6));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let td = their_data.clone();
    let theirs = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        cometbft_side(tcp, td).await
    });
    let ours = tokio::time::timeout(TEST_TIMEOUT, async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        our_message_side(tcp, our_data.clone()).await
    })
    .await
    .unwrap();
    let theirs = tokio::time::timeout(TEST_TIMEOUT, theirs)
        .await
        .unwrap()
        .unwrap();
    check(ours, theirs, &our_data, &their_data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cometbft_p2p_we_listen() {
    let (our_data, their_data) = (random_bytes(7), random_bytes(8));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let td = their_data.clone();
    let theirs = tokio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        cometbft_side(tcp, td).await
    });
    let ours = tokio::time::timeout(TEST_TIMEOUT, async {
        let (tcp, _) = listener.accept().await.unwrap();
        our_message_side(tcp, our_data.clone()).await
    })
    .await
    .unwrap();
    let theirs = tokio::time::timeout(TEST_TIMEOUT, theirs)
        .await
        .unwrap()
        .unwrap();
    check(ours, theirs, &our_data, &their_data);
}
