//! Two MConnection channels over any byte stream, with `mukan-mconn` alone.
//!
//! Here the stream is an in-memory `tokio::io::duplex` pipe wrapped in a `PlainStream` (any
//! `AsyncRead + AsyncWrite` will do: a `TcpStream`, a Unix socket); in a node it is a
//! `mukan-secret-conn` `SecretStream`, given to `MConnection::spawn` as it is. Channel 0x20
//! ("votes", priority 5) and channel 0x30 ("txs", priority 1) carry messages both ways; a
//! message larger than one packet is chunked and reassembled. Each received message holds a
//! lease on its channel's receive budget until it is dropped.
//!
//! ```text
//! cargo run -p mukan-mconn --example two_channels
//! ```

use std::error::Error;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use mukan_mconn::{Config, Inbox, MConnection, PlainStream};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, InboxItem};
use tokio::time::timeout;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const VOTES: ChannelId = ChannelId(0x20);
const TXS: ChannelId = ChannelId(0x30);

fn channels() -> Vec<ChannelDescriptor> {
    let priority = |p| NonZeroU32::new(p).unwrap_or(NonZeroU32::MIN);
    vec![
        ChannelDescriptor::new(VOTES, priority(5)),
        ChannelDescriptor::new(TXS, priority(1)),
    ]
}

/// Waits for `n` messages and prints them; fails if the connection stops or after 5 s.
async fn receive(name: &str, inbox: &mut Inbox, n: usize) -> Result<()> {
    for _ in 0..n {
        let item = timeout(Duration::from_secs(5), inbox.recv())
            .await
            .map_err(|_| "no message within 5 s")?
            .ok_or("connection closed")?;
        match item {
            InboxItem::Received {
                channel, message, ..
            } => {
                let text = String::from_utf8_lossy(&message[..message.len().min(40)]);
                println!(
                    "{name} got {} bytes on {channel:?}: {text:?}",
                    message.len()
                );
            }
            InboxItem::Stopped(reason) => return Err(reason.to_string().into()),
            other => println!("{name}: {other:?}"),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // 64 KiB of pipe between the two ends.
    let (a_io, b_io) = tokio::io::duplex(64 * 1024);
    // The library default: Go's `DefaultMConnConfig` (512,000 B/s each way).
    let (alice, mut alice_inbox) =
        MConnection::spawn(PlainStream::new(a_io), &channels(), Config::default())?;
    let (bob, mut bob_inbox) =
        MConnection::spawn(PlainStream::new(b_io), &channels(), Config::default())?;

    alice
        .send(VOTES, Bytes::from_static(b"vote: height 1, round 0"))
        .await?;
    alice
        .send(TXS, Bytes::from_static(b"tx: send 5 coins"))
        .await?;
    // 3,000 bytes: three packets of at most 1024 bytes of payload, one message on arrival.
    alice.send(TXS, Bytes::from(vec![b'x'; 3000])).await?;
    bob.send(VOTES, Bytes::from_static(b"vote: height 1, round 0 (bob)"))
        .await?;

    receive("bob", &mut bob_inbox, 3).await?;
    receive("alice", &mut alice_inbox, 1).await?;

    let status = alice.status();
    println!("alice sent {} bytes in all", status.send.bytes);

    // Deliver what is queued, then close.
    alice.flush_stop().await;
    bob.flush_stop().await;
    Ok(())
}
