//! A peer that speaks the wire protocol by hand (B7, C10): TCP from its own 127.x address,
//! a `mukan-secret-conn` handshake run with the sans-IO pieces (the node's ID checked), the
//! `NodeInfo` exchange, then raw writes: sealed frames of our choosing (empty ones for B7)
//! carrying `mukan_mconn::Packet`s (a ping per frame for C10). It runs on its own OS thread
//! so that the node's CPU can be told apart from the attacker's (see [`PeerThread`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mukan_mconn::{Packet, PacketDecoder, PacketMsg};
use mukan_node_key::NodeKey;
use mukan_reactor_api::{ChannelId, NodeId, NodeInfo};
use mukan_secret_conn::{FrameOpener, FrameSealer, Handshake, SEALED_FRAME_LEN};
use mukan_test_support::wire;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::net::node_info;

/// MConnection payload per packet (the node default, as Go's).
pub(crate) const PACKET_PAYLOAD: usize = 1024;

// ---------------------------------------------------------------------------------------
// sans-IO pieces (unit-tested)

/// Appends the delimited packets of `message` on `channel` (chunks of 1024 bytes, `eof` on
/// the last) to `out`.
pub(crate) fn message_packets(channel: ChannelId, message: &Bytes, out: &mut BytesMut) {
    let mut off = 0;
    loop {
        let end = (off + PACKET_PAYLOAD).min(message.len());
        Packet::Msg(PacketMsg {
            channel,
            eof: end == message.len(),
            data: message.slice(off..end),
        })
        .encode(out);
        off = end;
        if off == message.len() {
            break;
        }
    }
}

pub(crate) use mukan_test_support::wire::seal_into;

/// Appends `n` valid sealed frames with a zero-length chunk.
pub(crate) fn seal_empty(sealer: &mut FrameSealer, n: usize, out: &mut Vec<u8>) {
    let mut frame = [0u8; SEALED_FRAME_LEN];
    out.reserve(n * SEALED_FRAME_LEN);
    for _ in 0..n {
        let _ = sealer.seal(&[], &mut frame);
        out.extend_from_slice(&frame);
    }
}

/// What the evil peer read from the node.
#[derive(Debug, Default)]
pub(crate) struct ReadStats {
    pub(crate) frames: AtomicU64,
    pub(crate) pings: AtomicU64,
    pub(crate) pongs: AtomicU64,
    pub(crate) messages: AtomicU64,
    /// The node closed the connection (EOF or error) or sent something that does not open or
    /// decode.
    pub(crate) closed: AtomicBool,
    pub(crate) bad: AtomicBool,
    /// A ping from the node waits for our pong.
    pub(crate) pong_owed: AtomicBool,
}

/// The reading side's decoder: ciphertext in, frames opened, packets counted.
pub(crate) struct FrameReader {
    opener: FrameOpener,
    cipher: Vec<u8>,
    plain: BytesMut,
    decoder: PacketDecoder,
}

impl FrameReader {
    pub(crate) fn new(opener: FrameOpener, plain: &[u8]) -> Self {
        Self {
            opener,
            cipher: Vec::new(),
            plain: BytesMut::from(plain),
            decoder: PacketDecoder::new(mukan_mconn::max_packet_size(PACKET_PAYLOAD)),
        }
    }

    /// Takes ciphertext; opens every whole frame and counts the packets in `stats`.
    ///
    /// # Errors
    /// A frame that does not authenticate, or a packet that does not decode.
    pub(crate) fn feed(&mut self, data: &[u8], stats: &ReadStats) -> Result<(), String> {
        self.cipher.extend_from_slice(data);
        let whole = self.cipher.len() / SEALED_FRAME_LEN * SEALED_FRAME_LEN;
        let mut frame = [0u8; SEALED_FRAME_LEN];
        for c in self.cipher[..whole].chunks_exact(SEALED_FRAME_LEN) {
            frame.copy_from_slice(c);
            let plain = self
                .opener
                .open(&mut frame)
                .map_err(|e| format!("open: {e}"))?;
            self.plain.extend_from_slice(plain);
            stats.frames.fetch_add(1, Ordering::Relaxed);
        }
        self.cipher.drain(..whole);
        while let Some(p) = self
            .decoder
            .decode(&mut self.plain)
            .map_err(|e| format!("packet: {e}"))?
        {
            match p {
                Packet::Ping => {
                    stats.pings.fetch_add(1, Ordering::Relaxed);
                    stats.pong_owed.store(true, Ordering::Relaxed);
                }
                Packet::Pong => {
                    stats.pongs.fetch_add(1, Ordering::Relaxed);
                }
                Packet::Msg(m) => {
                    if m.eof {
                        stats.messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(())
    }
}

/// How many pings are due `elapsed` into a flood of `rate` pings per second.
pub(crate) fn pings_due(rate: u64, elapsed: Duration) -> u64 {
    (u128::from(rate) * elapsed.as_micros() / 1_000_000) as u64
}

// ---------------------------------------------------------------------------------------
// the connection

/// The writing side: a sealer and the socket.
pub(crate) struct EvilWriter {
    wr: OwnedWriteHalf,
    pub(crate) sealer: FrameSealer,
    pub(crate) buf: Vec<u8>,
}

impl EvilWriter {
    /// Seals delimited packets into frames and queues them.
    pub(crate) fn push_plain(&mut self, plain: &[u8]) {
        seal_into(&mut self.sealer, plain, &mut self.buf);
    }
    /// Queues one packet in a frame of its own.
    pub(crate) fn push_packet(&mut self, p: &Packet) {
        let mut b = BytesMut::new();
        p.encode(&mut b);
        self.push_plain(&b);
    }
    pub(crate) fn push_empty(&mut self, n: usize) {
        seal_empty(&mut self.sealer, n, &mut self.buf);
    }
    /// Writes everything queued.
    pub(crate) async fn flush(&mut self) -> Result<(), String> {
        let r = self.wr.write_all(&self.buf).await;
        self.buf.clear();
        r.map_err(|e| format!("write: {e}"))
    }
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.wr.shutdown().await;
    }
}

/// Reads until the node closes, counting what arrives; bounded by the connection.
pub(crate) async fn read_loop(
    mut rd: OwnedReadHalf,
    mut reader: FrameReader,
    stats: Arc<ReadStats>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    // What was already buffered (the node's first packets after its NodeInfo).
    if reader.feed(&[], &stats).is_err() {
        stats.bad.store(true, Ordering::Relaxed);
    }
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if reader.feed(&buf[..n], &stats).is_err() {
                    stats.bad.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
    stats.closed.store(true, Ordering::Relaxed);
}

/// Dials the node from `src` as `key`: TCP, the secret-connection handshake by hand (the
/// node's ID checked), the `NodeInfo` exchange. Everything within `limit`. The node's
/// MConnection is running when this returns.
pub(crate) async fn upgrade(
    src: IpAddr,
    hub: SocketAddr,
    hub_id: NodeId,
    key: &NodeKey,
    limit: Duration,
) -> Result<(EvilWriter, FrameReader, OwnedReadHalf), String> {
    tokio::time::timeout(limit, upgrade_inner(src, hub, hub_id, key))
        .await
        .map_err(|_| "timed out".to_owned())?
}

async fn upgrade_inner(
    src: IpAddr,
    hub: SocketAddr,
    hub_id: NodeId,
    key: &NodeKey,
) -> Result<(EvilWriter, FrameReader, OwnedReadHalf), String> {
    let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    sock.bind(SocketAddr::new(src, 0))
        .map_err(|e| format!("bind {src}: {e}"))?;
    let s = sock
        .connect(hub)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    let (mut rd, mut wr) = s.into_split();
    let hs = Handshake::generate().map_err(|e| format!("handshake: {e}"))?;
    let (sealed, remote) = wire::handshake(&mut rd, &mut wr, hs, key).await?;
    if remote.node_id() != hub_id {
        return Err("the node's ID is not the expected one".into());
    }
    let wire::Sealed {
        sealer,
        mut opener,
        mut pending,
    } = sealed;
    let mut w = EvilWriter {
        wr,
        sealer,
        buf: Vec::new(),
    };
    w.push_plain(&node_info(key).encode_length_delimited_to_vec());
    w.flush().await?;
    let body = wire::read_delimited(&mut rd, &mut opener, &mut pending).await?;
    let info = NodeInfo::decode(&body).map_err(|e| format!("node info: {e}"))?;
    if info.id != hub_id.to_string() {
        return Err("node info of another ID".into());
    }
    Ok((w, FrameReader::new(opener, &pending), rd))
}

// ---------------------------------------------------------------------------------------
// its own OS thread

/// CPU time of thread `tid` of this process so far, nanoseconds.
pub(crate) fn thread_cpu_ns(tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The calling thread's ID (from `/proc/thread-self`, a link to `<pid>/task/<tid>`).
pub(crate) fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The evil peer's OS thread (a current-thread tokio runtime): the node's CPU is the
/// process's minus this thread's.
pub(crate) struct PeerThread {
    pub(crate) tid: u32,
    pub(crate) handle: std::thread::JoinHandle<()>,
}

impl PeerThread {
    /// Runs `script` on a new thread with its own runtime.
    pub(crate) fn spawn<F, Fut>(script: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let _ = tx.send(current_tid().unwrap_or(0));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(script());
        });
        let tid = rx.recv().unwrap_or(0);
        Self { tid, handle }
    }

    /// The node's CPU so far: every thread of the process but this one.
    pub(crate) fn node_cpu_ns(&self) -> u64 {
        crate::net::cpu_ns().saturating_sub(thread_cpu_ns(self.tid))
    }
}

/// A sealer and the opener that opens what it seals (the two ends of an in-memory
/// handshake with fixed ephemeral keys).
pub(crate) fn frame_pair() -> (FrameSealer, FrameOpener) {
    let body = |m: &[u8]| m[1..=usize::from(m[0])].to_vec();
    let a = Handshake::from_ephemeral_secret([1; 32]);
    let b = Handshake::from_ephemeral_secret([2; 32]);
    let (am, bm) = (a.eph_key_message(), b.eph_key_message());
    let (_, a_sealer, _) = a.recv_eph_key(&body(&bm)).unwrap();
    let (_, _, b_opener) = b.recv_eph_key(&body(&am)).unwrap();
    (a_sealer, b_opener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (FrameSealer, FrameOpener) {
        frame_pair()
    }

    #[test]
    fn the_reader_counts_packets_across_empty_and_split_frames_and_rejects_a_forgery() {
        let (mut sealer, opener) = pair();
        let mut wire = Vec::new();
        seal_empty(&mut sealer, 3, &mut wire);
        let mut plain = BytesMut::new();
        Packet::Ping.encode(&mut plain);
        Packet::Pong.encode(&mut plain);
        message_packets(ChannelId(0x40), &Bytes::from(vec![7u8; 3000]), &mut plain);
        Packet::Pong.encode(&mut plain);
        seal_into(&mut sealer, &plain, &mut wire);
        seal_empty(&mut sealer, 2, &mut wire);
        assert_eq!(wire.len() % SEALED_FRAME_LEN, 0);
        let stats = ReadStats::default();
        let mut r = FrameReader::new(opener, &[]);
        // Fed in odd pieces: frames and packets straddle the reads.
        for piece in wire.chunks(777) {
            r.feed(piece, &stats).unwrap();
        }
        assert_eq!(
            stats.frames.load(Ordering::Relaxed),
            (wire.len() / SEALED_FRAME_LEN) as u64
        );
        assert_eq!(stats.pings.load(Ordering::Relaxed), 1);
        assert_eq!(stats.pongs.load(Ordering::Relaxed), 2);
        assert_eq!(stats.messages.load(Ordering::Relaxed), 1);
        assert!(stats.pong_owed.load(Ordering::Relaxed));
        // One flipped bit: the frame does not open.
        let mut forged = Vec::new();
        seal_into(&mut sealer, &plain, &mut forged);
        forged[10] ^= 1;
        assert!(r.feed(&forged, &stats).is_err());
    }

    #[test]
    fn a_message_is_cut_into_1024_byte_packets_ending_with_eof() {
        let mut out = BytesMut::new();
        message_packets(ChannelId(0x40), &Bytes::from(vec![1u8; 2049]), &mut out);
        let mut d = PacketDecoder::new(mukan_mconn::max_packet_size(PACKET_PAYLOAD));
        let mut got = Vec::new();
        while let Some(Packet::Msg(m)) = d.decode(&mut out).unwrap() {
            got.push((m.data.len(), m.eof));
        }
        assert_eq!(got, vec![(1024, false), (1024, false), (1, true)]);
        // An empty message is one empty packet with eof.
        message_packets(ChannelId(0x40), &Bytes::new(), &mut out);
        assert!(
            matches!(d.decode(&mut out).unwrap(), Some(Packet::Msg(m)) if m.eof && m.data.is_empty())
        );
    }

    #[test]
    fn pings_fall_due_at_the_rate_and_never_ahead_of_it() {
        assert_eq!(pings_due(10_000, Duration::ZERO), 0);
        assert_eq!(pings_due(10_000, Duration::from_micros(99)), 0);
        assert_eq!(pings_due(10_000, Duration::from_micros(100)), 1);
        assert_eq!(pings_due(10_000, Duration::from_millis(500)), 5_000);
        assert_eq!(pings_due(10_000, Duration::from_secs(30)), 300_000);
        let mut last = 0;
        for us in (0..2_000_000).step_by(777) {
            let d = pings_due(10_000, Duration::from_micros(us));
            assert!(d >= last && d * 100 <= us);
            last = d;
        }
    }

    #[test]
    fn the_peer_thread_is_another_thread_and_its_cpu_is_read() {
        let (burned_tx, burned_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let t = PeerThread::spawn(move || async move {
            // Burn some CPU on the peer's thread, then stay alive until told.
            let mut x = 0u64;
            for i in 0..50_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            std::hint::black_box(x);
            let _ = burned_tx.send(());
            let _ = done_rx.await;
        });
        burned_rx.recv().unwrap();
        assert_ne!(t.tid, 0);
        assert_ne!(Some(t.tid), current_tid());
        let peer = thread_cpu_ns(t.tid);
        // 50 million dependent additions take well over a millisecond of CPU.
        assert!(peer > 1_000_000, "{peer} ns");
        assert!(t.node_cpu_ns() + peer <= crate::net::cpu_ns());
        done_tx.send(()).unwrap();
        t.handle.join().unwrap();
        // Gone: nothing left to read.
        assert_eq!(thread_cpu_ns(t.tid), 0);
    }
}
