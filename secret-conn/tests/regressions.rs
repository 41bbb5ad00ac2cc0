//! Regressions found outside the crate's own tests.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::time::Duration;

use mukan_node_key::NodeKey;
use mukan_secret_conn::{Config, DATA_MAX_SIZE, SecretStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

/// Found by the Go interop echo: when the write buffer filled up with exactly 16 sealed frames
/// and no partial frame, draining it indexed past the end of the buffer and panicked.
#[tokio::test]
async fn write_buffer_full_of_whole_frames_drains() {
    let (a, b) = duplex(1 << 20);
    let (ka, kb) = (NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32]));
    let cfg = Config::new(Duration::from_secs(5));
    let (a, b) = tokio::join!(
        SecretStream::handshake(a, &ka, &cfg),
        SecretStream::handshake(b, &kb, &cfg)
    );
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    // Whole frames only, in several sizes around the 16-frame buffer, then more data.
    let mut sent = Vec::new();
    for frames in [16usize, 32, 15, 17, 48] {
        let chunk: Vec<u8> = (0..frames * DATA_MAX_SIZE)
            .map(|i| (i % 251) as u8)
            .collect();
        a.write_all(&chunk).await.unwrap();
        a.write_all(b"tail").await.unwrap();
        sent.extend_from_slice(&chunk);
        sent.extend_from_slice(b"tail");
    }
    a.flush().await.unwrap();
    let mut got = vec![0u8; sent.len()];
    b.read_exact(&mut got).await.unwrap();
    assert!(got == sent, "stream corrupted");
}
