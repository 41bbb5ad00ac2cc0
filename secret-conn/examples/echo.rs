//! An encrypted, authenticated echo between two processes over TCP, with `mukan-secret-conn`
//! alone, as a remote signer and its validator would use it: each side has an ed25519 key,
//! the client knows the server's node ID in advance and refuses any other server, and the
//! server may admit one client ID only.
//!
//! ```text
//! cargo run -p mukan-secret-conn --example echo -- server 127.0.0.1:26659 [--allow <client id>] [--count N]
//! cargo run -p mukan-secret-conn --example echo -- client <server id>@127.0.0.1:26659 [--messages N]
//! ```
//!
//! The server prints `listening <id>@<address>` first, the address for the client. The
//! client sends messages of growing size (up to 64 KiB, so they span many 1024-byte frames),
//! reads each echo back and checks it byte for byte. Every wait is bounded by `--timeout`
//! seconds (default 10).

use std::error::Error;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use mukan_node_key::{NodeId, NodeKey};
use mukan_secret_conn::{Config, SecretStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    mode: String,
    target: String,
    allow: Option<NodeId>,
    count: usize,
    messages: usize,
    timeout: Duration,
}

fn parse_args() -> Result<Args> {
    let usage = "usage: echo (server <ip:port> [--allow <id>] [--count N] | \
                 client <id>@<ip:port> [--messages N]) [--timeout <seconds>]";
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        mode: args.next().ok_or(usage)?,
        target: args.next().ok_or(usage)?,
        allow: None,
        count: 1,
        messages: 9,
        timeout: Duration::from_secs(10),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(usage)?;
        match flag.as_str() {
            "--allow" => parsed.allow = Some(value.parse()?),
            "--count" => parsed.count = value.parse()?,
            "--messages" => parsed.messages = value.parse()?,
            "--timeout" => parsed.timeout = Duration::from_secs(value.parse()?),
            _ => return Err(usage.into()),
        }
    }
    Ok(parsed)
}

/// Echoes everything the client sends until it closes its side.
async fn serve(mut stream: SecretStream<TcpStream>) -> Result<u64> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n]).await?;
        // Flush: the bytes leave now, sealed, instead of waiting for a full frame.
        stream.flush().await?;
        total += n as u64;
    }
}

async fn server(key: &NodeKey, args: &Args) -> Result<()> {
    let listener = TcpListener::bind(args.target.parse::<SocketAddr>()?).await?;
    println!("listening {}@{}", key.node_id(), listener.local_addr()?);
    std::io::stdout().flush()?;
    let config = Config::new(args.timeout);
    let mut served = 0;
    while served < args.count {
        let (tcp, from) = timeout(args.timeout, listener.accept())
            .await
            .map_err(|_| "no client before the timeout")??;
        let stream = match SecretStream::handshake(tcp, key, &config).await {
            Ok(stream) => stream,
            Err(e) => {
                // A typed error: which step of the handshake failed and why.
                println!("handshake with {from} failed: {e}");
                continue;
            }
        };
        let client = stream.remote_node_id();
        if args.allow.is_some_and(|allowed| allowed != client) {
            println!("refused client {client} from {from}: not the allowed key");
            continue;
        }
        println!("client {client} from {from}: authenticated");
        let echoed = timeout(args.timeout, serve(stream))
            .await
            .map_err(|_| "client stalled")??;
        println!("client {client}: echoed {echoed} bytes, closed");
        served += 1;
    }
    Ok(())
}

async fn client(key: &NodeKey, args: &Args) -> Result<()> {
    let (server_id, addr) = args
        .target
        .split_once('@')
        .ok_or("the server address is <id>@<ip:port>")?;
    let server_id: NodeId = server_id.parse()?;
    let tcp = timeout(args.timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out")??;
    // The handshake fails unless the server proves it holds the key of `server_id`.
    let config = Config::new(args.timeout).expect_peer(server_id);
    let mut stream = SecretStream::handshake(tcp, key, &config).await?;
    println!("connected to {server_id} as {}", key.node_id());
    let mut back = Vec::new();
    for i in 0..args.messages {
        let len = 1usize << (2 * i).min(16);
        let message: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
        stream.write_all(&message).await?;
        stream.flush().await?;
        back.resize(len, 0);
        timeout(args.timeout, stream.read_exact(&mut back))
            .await
            .map_err(|_| "echo timed out")??;
        if back != message {
            return Err(format!("echo {i} differs from what was sent").into());
        }
        println!("message {i}: {len} bytes echoed intact");
    }
    stream.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    // A fresh identity for this run; a signer would load its key from a file
    // (`mukan_node_key::NodeKey::load`).
    let key = NodeKey::generate(&mut rand_core::OsRng);
    match args.mode.as_str() {
        "server" => server(&key, &args).await,
        "client" => client(&key, &args).await,
        other => Err(format!("unknown mode {other:?}: server or client").into()),
    }
}
