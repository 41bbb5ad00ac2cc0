//! The tokio driver: the handshake over an `AsyncRead + AsyncWrite`, then a byte stream over
//! sealed frames.

use std::{
    fmt,
    future::{Future as _, poll_fn},
    io,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf as _, BytesMut};
use mukan_node_key::{NodeId, NodeKey, PublicKey};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};

use crate::{
    DATA_MAX_SIZE, Error, FrameOpener, FrameSealer, Handshake, MAX_AUTH_SIG_MSG_LEN,
    MAX_EPH_KEY_MSG_LEN, OpenBuffer, SEALED_FRAME_LEN, SealBuffer, handshake::AwaitingEphKey,
    proto,
};

/// Sealed frames buffered per direction while data flows: one write to the transport carries up
/// to this many frames, and one read asks for as many.
const BATCH_FRAMES: usize = 64;
/// Largest send buffer (66,816 bytes), allocated per burst and released when flushed.
const WRITE_CAP: usize = BATCH_FRAMES * SEALED_FRAME_LEN;

/// Handshake options.
#[derive(Debug, Clone)]
pub struct Config {
    timeout: Duration,
    expected_peer: Option<NodeId>,
}

impl Config {
    /// CometBFT's default `p2p.handshake_timeout` (20 s).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

    /// A configuration with the given overall handshake timeout and no expected peer.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            expected_peer: None,
        }
    }

    /// Requires the authenticated peer to have this node ID (set it when dialing
    /// `id@host:port`); any other peer fails with [`Error::PeerIdMismatch`].
    #[must_use]
    pub fn expect_peer(mut self, id: NodeId) -> Self {
        self.expected_peer = Some(id);
        self
    }

    /// The overall handshake timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The node ID the peer must have, if any.
    pub fn expected_peer(&self) -> Option<NodeId> {
        self.expected_peer
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TIMEOUT)
    }
}

/// An authenticated, encrypted byte stream over `T` (usually a `TcpStream`).
///
/// Writes are buffered: payload is packed into 1024-byte frames, and sealed frames go out
/// together, up to 64 (65 KiB) per write to `T`. A frame is sealed when it is full or on
/// [`flush`](tokio::io::AsyncWriteExt::flush); call `flush` when a message must leave now (this
/// is also what makes each flushed message start at a frame boundary). Reads ask `T` for up
/// to 64 frames at once and decrypt as many as arrived. After any error the stream is broken
/// and keeps failing.
///
/// Buffers live only while data flows: the send buffer is released by a flush that empties
/// it, the receive buffer when `T` has nothing more to read, so an idle stream holds no
/// buffer memory.
///
/// IO errors caused by the protocol carry an [`Error`]; recover it with [`Error::from_io`].
pub struct SecretStream<T> {
    io: T,
    reader: Reader,
    writer: Writer,
    remote: PublicKey,
}

impl<T: AsyncRead + AsyncWrite + Unpin> SecretStream<T> {
    /// Runs the handshake over `io` as either side (the protocol is symmetric), with a fresh
    /// ephemeral key from the OS RNG.
    ///
    /// The ephemeral-key message and the `AuthSigMessage` are each written and read
    /// concurrently. The reader never consumes a byte past the ephemeral-key message; bytes that
    /// arrive after the peer's `AuthSigMessage` stay buffered in the returned stream.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it takes longer than [`Config::timeout`]; [`Error::PeerIdMismatch`]
    /// if [`Config::expect_peer`] was set to another ID; otherwise the error of the step that
    /// failed (see [`Handshake`]), [`Error::UnexpectedEof`] or [`Error::Io`].
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future drops `io` mid-handshake.
    pub async fn handshake(io: T, node_key: &NodeKey, config: &Config) -> Result<Self, Error> {
        let handshake = Handshake::generate()?;
        Self::handshake_with(io, node_key, config, handshake).await
    }

    /// [`SecretStream::handshake`] with a caller-made [`Handshake`] (injected ephemeral secret
    /// for test vectors, or a seeded RNG in simulations).
    ///
    /// # Errors
    /// As [`SecretStream::handshake`].
    ///
    /// # Cancel safety
    /// Not cancel safe.
    pub async fn handshake_with(
        io: T,
        node_key: &NodeKey,
        config: &Config,
        handshake: Handshake<AwaitingEphKey>,
    ) -> Result<Self, Error> {
        let run = run_handshake(io, node_key, config, handshake);
        match tokio::time::timeout(config.timeout, run).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Error::Timeout),
        }
    }
}

impl<T> SecretStream<T> {
    /// The peer's authenticated ed25519 key.
    pub fn remote_public_key(&self) -> &PublicKey {
        &self.remote
    }

    /// The peer's node ID, derived from its authenticated key.
    pub fn remote_node_id(&self) -> NodeId {
        self.remote.node_id()
    }

    /// The underlying transport (e.g. to read its addresses). Reading or writing it directly
    /// breaks the session.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Splits the stream into a read half and a write half that can move to different tasks.
    /// Each half keeps its own buffer and cipher state; the transport is shared through
    /// [`tokio::io::split`].
    pub fn split(self) -> (ReadHalf<T>, WriteHalf<T>)
    where
        T: AsyncRead + AsyncWrite,
    {
        let (rd, wr) = tokio::io::split(self.io);
        (
            ReadHalf {
                io: rd,
                reader: self.reader,
                remote: self.remote,
            },
            WriteHalf {
                io: wr,
                writer: self.writer,
                remote: self.remote,
            },
        )
    }
}

/// The buffer-level interface, for a driver that parses the payload where it lies
/// (MConnection does): no copy between the frames and the caller in either direction.
impl<T: AsyncRead + AsyncWrite + Unpin> SecretStream<T> {
    /// Reads what the transport has and opens every whole frame, appending the payload to
    /// [`SecretStream::received`]: the payload bytes added (`Some(0)` for frames with no
    /// payload), `None` at a clean end of stream (at a frame boundary).
    ///
    /// Unlike `AsyncRead`, which asks for 64 frames per read and holds no buffer while
    /// waiting, reads start at 2 frames, double while they fill the room (up to 64) and halve
    /// while they do not, and the buffer is kept while waiting.
    ///
    /// # Errors
    /// The transport's error, or one of the protocol's (see [`Error::from_io`]); the stream
    /// is then broken.
    pub fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        self.poll_receive_capped(cx, None)
    }

    /// As [`SecretStream::poll_receive`], reading at most `cap` bytes from the transport if
    /// given (a receive budget's credit; frames already read are opened whatever the cap).
    ///
    /// # Errors
    /// As [`SecretStream::poll_receive`].
    pub fn poll_receive_capped(
        &mut self,
        cx: &mut Context<'_>,
        cap: Option<usize>,
    ) -> Poll<io::Result<Option<usize>>> {
        if !self.reader.adaptive {
            self.reader.adaptive = true;
            self.reader.open.set_min_read(2);
        }
        self.reader.poll_fill(&mut self.io, cx, cap)
    }

    /// The received payload not yet consumed, contiguous across frames. Take bytes off its
    /// front only (`advance`, `split_to`).
    pub fn received(&mut self) -> &mut BytesMut {
        self.reader.open.plaintext()
    }

    /// The outgoing frames: [`SealBuffer::put`] copies bytes into the frame being filled.
    /// Use [`SecretStream::poll_send`] to write them, not `AsyncWrite` (whose writes bound
    /// the buffer to 64 frames and whose flush releases it).
    pub fn send_buffer(&mut self) -> &mut SealBuffer {
        &mut self.writer.seal
    }

    /// Lets go of the receive and send buffers if nothing is in them: what a driver using
    /// [`SecretStream::poll_receive`] and [`SecretStream::poll_send`] (which keep their
    /// buffers while data flows) calls once the stream has gone quiet.
    pub fn release_buffers(&mut self) {
        self.reader.open.release();
        self.writer.seal.shrink(0);
    }

    /// Seals the frame being filled, writes every sealed frame and flushes the transport.
    /// The buffer is kept (see [`SecretStream::release_buffers`]).
    ///
    /// # Errors
    /// The transport's error, or [`Error::NonceExhausted`].
    pub fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.poll_send(&mut self.io, cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SecretStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.reader.poll_read(&mut this.io, cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SecretStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.writer.poll_write(&mut this.io, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.writer.poll_flush(&mut this.io, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.writer.poll_flush(&mut this.io, cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T> fmt::Debug for SecretStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStream")
            .field("remote", &self.remote.node_id())
            .finish_non_exhaustive()
    }
}

/// The read half of a [`SecretStream`].
pub struct ReadHalf<T> {
    io: tokio::io::ReadHalf<T>,
    reader: Reader,
    remote: PublicKey,
}

impl<T> ReadHalf<T> {
    /// The peer's authenticated ed25519 key.
    pub fn remote_public_key(&self) -> &PublicKey {
        &self.remote
    }

    /// Joins the halves again.
    ///
    /// # Panics
    /// If `write` is not the other half of the same stream (tokio's `unsplit` panics then).
    pub fn unsplit(self, write: WriteHalf<T>) -> SecretStream<T>
    where
        T: Unpin,
    {
        SecretStream {
            io: self.io.unsplit(write.io),
            reader: self.reader,
            writer: write.writer,
            remote: self.remote,
        }
    }
}

impl<T: AsyncRead> AsyncRead for ReadHalf<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.reader.poll_read(&mut this.io, cx, buf)
    }
}

impl<T> fmt::Debug for ReadHalf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf")
            .field("remote", &self.remote.node_id())
            .finish_non_exhaustive()
    }
}

/// The write half of a [`SecretStream`]; buffered like the stream (flush to send).
pub struct WriteHalf<T> {
    io: tokio::io::WriteHalf<T>,
    writer: Writer,
    remote: PublicKey,
}

impl<T> WriteHalf<T> {
    /// The peer's authenticated ed25519 key.
    pub fn remote_public_key(&self) -> &PublicKey {
        &self.remote
    }
}

impl<T: AsyncWrite> AsyncWrite for WriteHalf<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.writer.poll_write(&mut this.io, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.writer.poll_flush(&mut this.io, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.writer.poll_flush(&mut this.io, cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T> fmt::Debug for WriteHalf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf")
            .field("remote", &self.remote.node_id())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Handshake driver

async fn run_handshake<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
    node_key: &NodeKey,
    config: &Config,
    handshake: Handshake<AwaitingEphKey>,
) -> Result<SecretStream<T>, Error> {
    // Stage 1: plaintext ephemeral keys, written and read at the same time.
    let ours = handshake.eph_key_message();
    let mut send = SendAll::new(&ours);
    let mut body = [0u8; MAX_EPH_KEY_MSG_LEN];
    let mut recv = RecvDelimited::new(&mut body);
    let len = poll_fn(|cx| {
        let sent = send.poll_raw(&mut io, cx);
        let received = recv.poll(cx, |cx, buf| Pin::new(&mut io).poll_read(cx, buf));
        join_exchange(sent, received)
    })
    .await?;
    #[expect(
        clippy::indexing_slicing,
        reason = "`RecvDelimited` returns a length checked against `body.len()`"
    )]
    let (handshake, sealer, opener) = handshake.recv_eph_key(&body[..len])?;

    // Stage 2: sealed AuthSigMessages, written and read at the same time.
    let mut reader = Reader::new(opener);
    let mut writer = Writer::new(sealer);
    let ours = handshake.auth_sig_message(node_key);
    let mut send = SendAll::new(&ours);
    let mut body = [0u8; MAX_AUTH_SIG_MSG_LEN];
    let mut recv = RecvDelimited::new(&mut body);
    let len = poll_fn(|cx| {
        let sent = send.poll_sealed(&mut writer, &mut io, cx);
        let received = recv.poll(cx, |cx, buf| reader.poll_read(&mut io, cx, buf));
        join_exchange(sent, received)
    })
    .await?;
    #[expect(
        clippy::indexing_slicing,
        reason = "`RecvDelimited` returns a length checked against `body.len()`"
    )]
    let remote = handshake.recv_auth_sig(&body[..len])?;
    if let Some(expected) = config.expected_peer {
        let got = remote.node_id();
        if got != expected {
            return Err(Error::PeerIdMismatch { expected, got });
        }
    }
    Ok(SecretStream {
        io,
        reader,
        writer,
        remote,
    })
}

/// Combines the two halves of a concurrent message exchange. A read error wins over a write
/// error: when the peer hangs up, the reader's `UnexpectedEof` says more than the writer's
/// broken pipe.
fn join_exchange(
    sent: Poll<Result<(), Error>>,
    received: Poll<Result<usize, Error>>,
) -> Poll<Result<usize, Error>> {
    match (sent, received) {
        (_, Poll::Ready(Err(err))) | (Poll::Ready(Err(err)), _) => Poll::Ready(Err(err)),
        (Poll::Ready(Ok(())), Poll::Ready(Ok(len))) => Poll::Ready(Ok(len)),
        _ => Poll::Pending,
    }
}

/// Writes one message completely and flushes, either raw or through the frame writer.
struct SendAll<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> SendAll<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            done: false,
        }
    }

    fn poll_raw<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        while !self.done {
            if self.pos < self.data.len() {
                #[expect(
                    clippy::indexing_slicing,
                    reason = "guarded by `self.pos < self.data.len()`"
                )]
                let n = ready!(Pin::new(&mut *io).poll_write(cx, &self.data[self.pos..]))?;
                if n == 0 {
                    return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())));
                }
                self.pos += n;
            } else {
                ready!(Pin::new(&mut *io).poll_flush(cx))?;
                self.done = true;
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_sealed<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut Writer,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        while !self.done {
            if self.pos < self.data.len() {
                #[expect(
                    clippy::indexing_slicing,
                    reason = "guarded by `self.pos < self.data.len()`"
                )]
                let n = ready!(writer.poll_write(io, cx, &self.data[self.pos..]))?;
                self.pos += n;
            } else {
                ready!(writer.poll_flush(io, cx))?;
                self.done = true;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Reads one `uvarint(len) || body` message without reading past it: the prefix one byte at a
/// time, then exactly `len` bytes into a caller buffer whose size is the length limit.
struct RecvDelimited<'a> {
    varint: proto::LengthPrefix,
    len: Option<usize>,
    filled: usize,
    body: &'a mut [u8],
}

impl<'a> RecvDelimited<'a> {
    fn new(body: &'a mut [u8]) -> Self {
        Self {
            varint: proto::LengthPrefix::default(),
            len: None,
            filled: 0,
            body,
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        mut read: impl FnMut(&mut Context<'_>, &mut ReadBuf<'_>) -> Poll<io::Result<()>>,
    ) -> Poll<Result<usize, Error>> {
        loop {
            match self.len {
                None => {
                    let mut byte = [0u8; 1];
                    let mut buf = ReadBuf::new(&mut byte);
                    ready!(read(cx, &mut buf))?;
                    if buf.filled().is_empty() {
                        return Poll::Ready(Err(Error::UnexpectedEof));
                    }
                    if let Some(len) = self.varint.push(byte[0])? {
                        self.len = Some(proto::LengthPrefix::check(len, self.body.len())?);
                    }
                }
                Some(len) if self.filled < len => {
                    #[expect(
                        clippy::indexing_slicing,
                        reason = "`len` was checked against `body.len()` and `filled < len`"
                    )]
                    let mut buf = ReadBuf::new(&mut self.body[self.filled..len]);
                    ready!(read(cx, &mut buf))?;
                    let n = buf.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(Error::UnexpectedEof));
                    }
                    self.filled += n;
                }
                Some(len) => return Poll::Ready(Ok(len)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frame reader and writer (shared by the stream and its halves): thin drivers of the core's
// `OpenBuffer` and `SealBuffer`.

/// Receive side: the core's [`OpenBuffer`] and whether the session broke.
///
/// The buffer exists only while data is flowing: room for 64 frames is allocated when a read
/// of the transport is needed, and released when the transport has nothing more to give and
/// nothing is left in it, so an idle reader holds no heap.
struct Reader {
    open: OpenBuffer,
    /// Set after a protocol error: the session is over.
    broken: bool,
    /// Reads start small and the buffer is kept while waiting ([`SecretStream::poll_receive`])
    /// rather than 64 frames per burst, released while waiting (`AsyncRead`).
    adaptive: bool,
}

impl Reader {
    fn new(opener: FrameOpener) -> Self {
        let mut open = OpenBuffer::new(opener);
        open.set_min_read(BATCH_FRAMES);
        Self {
            open,
            broken: false,
            adaptive: false,
        }
    }

    /// Reads from the transport into the buffer and opens what arrived: the payload bytes
    /// added (`Ok(0)` for frames with no payload), or `None` at a clean end of stream.
    fn poll_fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
        cap: Option<usize>,
    ) -> Poll<io::Result<Option<usize>>> {
        if self.broken {
            return Poll::Ready(Err(broken()));
        }
        // Frames already received first, and the error of a bad one after the good ones.
        match self.open.open() {
            Ok(0) => {}
            Ok(n) => return Poll::Ready(Ok(Some(n))),
            Err(err) => {
                self.broken = true;
                return Poll::Ready(Err(err.into_io()));
            }
        }
        let read = self.open.read_with(|buf| match cap {
            None => poll_read_buf(io, cx, buf),
            Some(cap) => poll_read_buf(io, cx, &mut bytes::BufMut::limit(buf, cap)),
        });
        match read {
            Poll::Pending => {
                if !self.adaptive {
                    // Idle: the transport has nothing and nothing is buffered.
                    self.open.release();
                }
                Poll::Pending
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Ready(Ok(0)) => {
                let partial = self.open.partial_frame();
                self.open.release();
                if partial == 0 {
                    return Poll::Ready(Ok(None)); // clean end of stream at a frame boundary
                }
                self.broken = true;
                Poll::Ready(Err(Error::TruncatedFrame { received: partial }.into_io()))
            }
            Poll::Ready(Ok(_)) => match self.open.open() {
                Ok(n) => Poll::Ready(Ok(Some(n))),
                Err(err) => {
                    self.broken = true;
                    Poll::Ready(Err(err.into_io()))
                }
            },
        }
    }

    fn poll_read<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.broken {
            return Poll::Ready(Err(broken()));
        }
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // 1. Hand out opened payload (contiguous across frames: one copy).
            let plain = self.open.plaintext();
            if !plain.is_empty() {
                let n = plain.len().min(out.remaining());
                out.put_slice(plain.get(..n).unwrap_or_default());
                plain.advance(n);
                return Poll::Ready(Ok(()));
            }
            // 2. Read and open more; frames with no payload are skipped, never reported as EOF.
            if ready!(self.poll_fill(io, cx, None))?.is_none() {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Reads into the spare capacity of `buf`: the bytes read.
fn poll_read_buf<R: AsyncRead + Unpin, B: bytes::BufMut + Send>(
    io: &mut R,
    cx: &mut Context<'_>,
    buf: &mut B,
) -> Poll<io::Result<usize>> {
    // A fresh `read_buf` future per attempt: it holds no state between polls.
    std::pin::pin!(io.read_buf(buf)).poll(cx)
}

/// Send side: the core's [`SealBuffer`], bounded here to `WRITE_CAP` bytes.
///
/// The buffer is allocated when a write needs it, grown with the writes before a flush (up to
/// `WRITE_CAP`), and released by a flush once every frame is out, so an idle writer holds no
/// heap.
struct Writer {
    seal: SealBuffer,
}

impl Writer {
    fn new(sealer: FrameSealer) -> Self {
        Self {
            seal: SealBuffer::new(sealer),
        }
    }

    fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.seal.len() + SEALED_FRAME_LEN > WRITE_CAP {
            // No room for another frame: push sealed frames to the transport.
            ready!(self.poll_drain(io, cx))?;
        }
        let frames = (WRITE_CAP.saturating_sub(self.seal.len()) / SEALED_FRAME_LEN).max(1);
        let n = data.len().min(frames * DATA_MAX_SIZE);
        self.seal
            .put(data.get(..n).unwrap_or_default())
            .map_err(Error::into_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_send(io, cx))?;
        // Everything is out: release the buffer until the next write.
        self.seal.shrink(0);
        Poll::Ready(Ok(()))
    }

    /// Seals the open frame, writes every sealed frame and flushes the transport; keeps the
    /// buffer.
    fn poll_send<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        self.seal.seal_partial().map_err(Error::into_io)?;
        ready!(self.poll_drain(io, cx))?;
        Pin::new(&mut *io).poll_flush(cx)
    }

    /// Writes every sealed frame to the transport.
    fn poll_drain<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.seal.sealed().is_empty() {
            let n = ready!(Pin::new(&mut *io).poll_write(cx, self.seal.sealed()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.seal.consume(n);
        }
        Poll::Ready(Ok(()))
    }
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "secret connection is broken by an earlier error",
    )
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::*;
    use crate::{
        FRAME_LEN, ProtocolViolation,
        handshake::AwaitingAuthSig,
        proto::{AuthSigMessage, BytesValue, PublicKeyProto, public_key_proto::Sum},
    };

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn key(seed: u8) -> NodeKey {
        NodeKey::from_seed([seed; 32])
    }

    fn hs(seed: u64) -> Handshake<AwaitingEphKey> {
        Handshake::new(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    async fn pair(buf: usize) -> (SecretStream<DuplexStream>, SecretStream<DuplexStream>) {
        let (a, b) = duplex(buf);
        let (ka, kb) = (key(1), key(2));
        let cfg = Config::new(TIMEOUT);
        let (ra, rb) = tokio::join!(
            SecretStream::handshake_with(a, &ka, &cfg, hs(1)),
            SecretStream::handshake_with(b, &kb, &cfg, hs(2)),
        );
        (ra.unwrap(), rb.unwrap())
    }

    /// The handshake future, the stream and its halves can move to other tasks.
    #[test]
    fn futures_and_halves_are_send() {
        fn is_send<T: Send>(_: &T) {}
        let (io, _other) = duplex(16);
        let (node_key, cfg) = (key(1), Config::default());
        let fut = SecretStream::handshake(io, &node_key, &cfg);
        is_send(&fut);
        drop(fut);
        fn halves_are_send<T: AsyncRead + AsyncWrite + Send>(s: SecretStream<T>) {
            is_send(&s);
            let (r, w) = s.split();
            is_send(&r);
            is_send(&w);
        }
        let _ = halves_are_send::<DuplexStream>;
    }

    /// Both handshake messages are written and read concurrently: a 1-byte pipe completes.
    #[tokio::test(start_paused = true)]
    async fn handshake_over_unbuffered_pipe() {
        let (mut a, mut b) = pair(1).await;
        assert_eq!(a.remote_node_id(), key(2).node_id());
        assert_eq!(b.remote_public_key(), &key(1).public_key());
        let mut buf = [0u8; 4];
        let (w, r) = tokio::join!(
            async {
                a.write_all(b"ping").await?;
                a.flush().await
            },
            b.read_exact(&mut buf)
        );
        w.unwrap();
        r.unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test(start_paused = true)]
    async fn expected_peer_id() {
        let (a, b) = duplex(4096);
        let (ka, kb) = (key(1), key(2));
        let good = Config::new(TIMEOUT).expect_peer(kb.node_id());
        let wrong = Config::new(TIMEOUT).expect_peer(key(3).node_id());
        let (ra, rb) = tokio::join!(
            SecretStream::handshake(a, &ka, &good),
            SecretStream::handshake(b, &kb, &wrong),
        );
        assert_eq!(ra.unwrap().remote_node_id(), kb.node_id());
        match rb.unwrap_err() {
            Error::PeerIdMismatch { expected, got } => {
                assert_eq!(expected, key(3).node_id());
                assert_eq!(got, ka.node_id());
            }
            other => panic!("expected PeerIdMismatch, got {other:?}"),
        }
    }

    async fn run_ours(io: DuplexStream) -> Result<SecretStream<DuplexStream>, Error> {
        SecretStream::handshake_with(io, &key(1), &Config::new(TIMEOUT), hs(1)).await
    }

    /// Runs our handshake against a scripted peer that sends `bytes` and then either closes or
    /// stays silent.
    async fn against_script(bytes: &[u8], close: bool) -> Error {
        let (ours, mut theirs) = duplex(1 << 16);
        theirs.write_all(bytes).await.unwrap();
        if close {
            // Half-close: we see EOF, while our own writes still succeed.
            theirs.shutdown().await.unwrap();
        }
        let err = run_ours(ours).await.unwrap_err();
        drop(theirs);
        err
    }

    /// A13: a silent peer is cut off at the timeout.
    #[tokio::test(start_paused = true)]
    async fn stall_times_out() {
        let start = tokio::time::Instant::now();
        assert!(matches!(against_script(&[], false).await, Error::Timeout));
        assert_eq!(start.elapsed(), TIMEOUT);
    }

    /// A14: dripping one byte at a time does not extend the overall deadline.
    #[tokio::test(start_paused = true)]
    async fn slow_drip_hits_the_overall_deadline() {
        let (ours, mut theirs) = duplex(1 << 16);
        let drip = tokio::spawn(async move {
            for b in [0x22u8, 0x0a, 0x20].into_iter().chain([7u8; 32]) {
                tokio::time::sleep(TIMEOUT / 4).await;
                if theirs.write_all(&[b]).await.is_err() {
                    break;
                }
            }
            theirs
        });
        let start = tokio::time::Instant::now();
        assert!(matches!(run_ours(ours).await, Err(Error::Timeout)));
        assert_eq!(start.elapsed(), TIMEOUT);
        drop(drip.await.unwrap());
    }

    /// A1, A7 and a truncated ephemeral message: EOF before the message is complete.
    #[tokio::test(start_paused = true)]
    async fn eof_during_handshake() {
        assert!(matches!(
            against_script(&[], true).await,
            Error::UnexpectedEof
        ));
        assert!(matches!(
            against_script(&[0x22, 0x0a, 0x20, 1, 2, 3], true).await,
            Error::UnexpectedEof
        ));
        // A whole valid ephemeral message, then EOF before the AuthSigMessage.
        let eph = hs(9).eph_key_message();
        assert!(matches!(
            against_script(&eph, true).await,
            Error::UnexpectedEof
        ));
        // ... or in the middle of its first frame.
        let mut part = eph.to_vec();
        part.extend_from_slice(&[0u8; 500]);
        assert!(matches!(
            against_script(&part, true).await,
            Error::TruncatedFrame { received: 500 }
        ));
    }

    /// A15 / A16 and "over 1 MiB" / "not a BytesValue".
    #[tokio::test(start_paused = true)]
    async fn malformed_eph_messages() {
        // Declared length 2 MiB (uvarint 0x80 0x80 0x80 0x01): rejected before any body read.
        assert!(matches!(
            against_script(&[0x80, 0x80, 0x80, 0x01], false).await,
            Error::Protocol(ProtocolViolation::MessageTooLarge {
                len: 2_097_152,
                max: 64
            })
        ));
        // Declared length 2^62.
        let mut huge = vec![0x80u8; 8];
        huge.push(0x40);
        assert!(matches!(
            against_script(&huge, false).await,
            Error::Protocol(ProtocolViolation::MessageTooLarge { .. })
        ));
        // An 11-byte uvarint.
        assert!(matches!(
            against_script(&[0xff; 11], false).await,
            Error::Decode(e) if e.is_varint()
        ));
        // Field 1 as a varint: not a BytesValue.
        assert!(matches!(
            against_script(&[0x02, 0x08, 0x01], false).await,
            Error::Decode(e) if e.is_protobuf()
        ));
        // A 33-byte key.
        let body = BytesValue { value: vec![5; 33] }.encode_length_delimited_to_vec();
        assert!(matches!(
            against_script(&body, false).await,
            Error::Protocol(ProtocolViolation::EphKeyLength { len: 33 })
        ));
    }

    /// A4 / A5 over the wire.
    #[tokio::test(start_paused = true)]
    async fn low_order_eph_key_over_the_wire() {
        let mut msg = vec![0x22, 0x0a, 0x20];
        msg.extend_from_slice(&[0; 32]);
        assert!(matches!(
            against_script(&msg, false).await,
            Error::Protocol(ProtocolViolation::LowOrderEphKey)
        ));
        msg[3] = 1;
        assert!(matches!(
            against_script(&msg, false).await,
            Error::Protocol(ProtocolViolation::LowOrderEphKey)
        ));
        // The production path (ring's X25519) gives the same typed error.
        for first in [0u8, 1] {
            msg[3] = first;
            let (ours, mut theirs) = duplex(1 << 16);
            theirs.write_all(&msg).await.unwrap();
            let err = SecretStream::handshake(ours, &key(1), &Config::new(TIMEOUT))
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::Protocol(ProtocolViolation::LowOrderEphKey)),
                "{err:?}"
            );
            drop(theirs);
        }
    }

    /// A scripted peer that completes the key exchange honestly and then misbehaves.
    struct Evil {
        io: DuplexStream,
        hs: Handshake<AwaitingAuthSig>,
        sealer: FrameSealer,
        node_key: NodeKey,
    }

    impl Evil {
        /// Starts our side in a task and does the evil side's ephemeral exchange.
        async fn start(
            our_cfg: Config,
        ) -> (
            Self,
            tokio::task::JoinHandle<Result<SecretStream<DuplexStream>, Error>>,
        ) {
            let (ours, mut io) = duplex(1 << 16);
            let task = tokio::spawn(async move {
                SecretStream::handshake_with(ours, &key(1), &our_cfg, hs(1)).await
            });
            let mine = hs(2);
            io.write_all(&mine.eph_key_message()).await.unwrap();
            let mut theirs = [0u8; 35];
            io.read_exact(&mut theirs).await.unwrap();
            let (hs, sealer, _opener) = mine.recv_eph_key(&theirs[1..]).unwrap();
            let evil = Self {
                io,
                hs,
                sealer,
                node_key: key(2),
            };
            (evil, task)
        }

        async fn send_plain(&mut self, data: &[u8]) {
            for chunk in data.chunks(DATA_MAX_SIZE) {
                let mut frame = [0u8; SEALED_FRAME_LEN];
                self.sealer.seal(chunk, &mut frame).unwrap();
                self.io.write_all(&frame).await.unwrap();
            }
        }

        fn honest_auth(&self) -> [u8; 103] {
            self.hs.auth_sig_message(&self.node_key)
        }

        fn auth(&self, key: Option<Sum>, sig: Vec<u8>) -> Vec<u8> {
            AuthSigMessage {
                pub_key: PublicKeyProto { sum: key },
                sig,
            }
            .encode_length_delimited_to_vec()
        }
    }

    async fn evil_auth(make: impl FnOnce(&Evil) -> Vec<u8>) -> Error {
        let (mut evil, task) = Evil::start(Config::new(TIMEOUT)).await;
        let msg = make(&evil);
        evil.send_plain(&msg).await;
        let err = task.await.unwrap().unwrap_err();
        drop(evil);
        err
    }

    /// A9–A11 over the wire: each bad AuthSigMessage ends in its own variant.
    #[tokio::test(start_paused = true)]
    async fn bad_auth_sig_messages_over_the_wire() {
        let pk = || Some(Sum::Ed25519(key(2).public_key().as_bytes().to_vec()));
        let err = evil_auth(|e| {
            let mut sig = e.honest_auth()[39..].to_vec();
            sig[0] ^= 0x80;
            e.auth(pk(), sig)
        })
        .await;
        assert!(
            matches!(err, Error::Protocol(ProtocolViolation::InvalidSignature)),
            "{err:?}"
        );
        let err = evil_auth(|e| e.auth(pk(), e.honest_auth()[39..102].to_vec())).await;
        assert!(matches!(
            err,
            Error::Protocol(ProtocolViolation::SignatureLength { len: 63 })
        ));
        let err = evil_auth(|e| {
            e.auth(
                Some(Sum::Secp256k1(vec![3; 33])),
                e.honest_auth()[39..].to_vec(),
            )
        })
        .await;
        assert!(matches!(
            err,
            Error::Protocol(ProtocolViolation::UnsupportedKeyType { tag: 2 })
        ));
        let err = evil_auth(|e| e.auth(None, e.honest_auth()[39..].to_vec())).await;
        assert!(matches!(
            err,
            Error::Protocol(ProtocolViolation::MissingPubKey)
        ));
        // AuthSigMessage declared over the 1 KiB cap.
        let err = evil_auth(|_| vec![0x80, 0x10]).await;
        assert!(matches!(
            err,
            Error::Protocol(ProtocolViolation::MessageTooLarge {
                len: 2048,
                max: 1024
            })
        ));
    }

    /// A8: the auth frame does not authenticate.
    #[tokio::test(start_paused = true)]
    async fn undecryptable_auth_frame() {
        let (mut evil, task) = Evil::start(Config::new(TIMEOUT)).await;
        let mut frame = [0u8; SEALED_FRAME_LEN];
        evil.sealer.seal(&evil.honest_auth(), &mut frame).unwrap();
        frame[17] ^= 0x04;
        evil.io.write_all(&frame).await.unwrap();
        assert!(matches!(task.await.unwrap(), Err(Error::Crypto(_))));
    }

    /// Bytes the peer sends right after its AuthSigMessage, in the same frame and in the same
    /// write as its ephemeral key, reach the reader: nothing is read past and lost.
    #[tokio::test(start_paused = true)]
    async fn bytes_after_each_handshake_message_are_kept() {
        let (ours, mut io) = duplex(1 << 16);
        let task = tokio::spawn(async move {
            SecretStream::handshake_with(ours, &key(1), &Config::new(TIMEOUT), hs(1)).await
        });
        // We know our side's ephemeral key in advance (same seeded RNG).
        let our_eph = hs(1).eph_key_message();
        let mine = hs(2);
        let (evil_hs, mut sealer, _) = mine.recv_eph_key(&our_eph[1..]).unwrap();
        let mut wire = mine_eph(&hs(2));
        let mut payload = evil_hs.auth_sig_message(&key(2)).to_vec();
        payload.extend_from_slice(b"first node-info bytes");
        let mut frame = [0u8; SEALED_FRAME_LEN];
        sealer.seal(&payload, &mut frame).unwrap();
        wire.extend_from_slice(&frame);
        sealer.seal(b" and the next frame", &mut frame).unwrap();
        wire.extend_from_slice(&frame);
        io.write_all(&wire).await.unwrap();

        let mut stream = task.await.unwrap().unwrap();
        assert_eq!(stream.remote_node_id(), key(2).node_id());
        let mut got = vec![0u8; 40];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"first node-info bytes and the next frame");
    }

    fn mine_eph(h: &Handshake<AwaitingEphKey>) -> Vec<u8> {
        h.eph_key_message().to_vec()
    }

    async fn established_with_evil() -> (SecretStream<DuplexStream>, Evil) {
        let (mut evil, task) = Evil::start(Config::new(TIMEOUT)).await;
        let auth = evil.honest_auth();
        evil.send_plain(&auth).await;
        (task.await.unwrap().unwrap(), evil)
    }

    async fn read_err(stream: &mut SecretStream<DuplexStream>) -> Error {
        let mut buf = [0u8; 2048];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => panic!("unexpected clean EOF"),
                Ok(_) => {}
                Err(err) => return Error::from_io(err),
            }
        }
    }

    /// B1: a flipped bit in a data frame.
    #[tokio::test(start_paused = true)]
    async fn flipped_bit_in_data_frame() {
        let (mut stream, mut evil) = established_with_evil().await;
        evil.send_plain(b"good").await;
        let mut frame = [0u8; SEALED_FRAME_LEN];
        evil.sealer.seal(b"bad", &mut frame).unwrap();
        frame[1040] ^= 0x01;
        evil.io.write_all(&frame).await.unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"good");
        assert!(matches!(read_err(&mut stream).await, Error::Crypto(_)));
        // The stream stays broken.
        assert!(stream.read(&mut buf).await.is_err());
    }

    /// B2: an authenticated length prefix over 1024.
    #[tokio::test(start_paused = true)]
    async fn length_field_over_1024() {
        let (mut stream, mut evil) = established_with_evil().await;
        let mut plain = [0u8; FRAME_LEN];
        plain[..4].copy_from_slice(&1025u32.to_le_bytes());
        let frame = evil.sealer.seal_raw(&plain);
        evil.io.write_all(&frame).await.unwrap();
        assert!(matches!(
            read_err(&mut stream).await,
            Error::FrameTooLarge { len: 1025 }
        ));
    }

    /// B3: EOF in the middle of a frame; the partial frame's payload is never delivered.
    #[tokio::test(start_paused = true)]
    async fn eof_mid_frame() {
        let (mut stream, mut evil) = established_with_evil().await;
        let mut frame = [0u8; SEALED_FRAME_LEN];
        evil.sealer.seal(b"never seen", &mut frame).unwrap();
        evil.io.write_all(&frame[..1000]).await.unwrap();
        drop(evil);
        assert!(matches!(
            read_err(&mut stream).await,
            Error::TruncatedFrame { received: 1000 }
        ));
    }

    /// A clean EOF at a frame boundary is end of stream; B7: empty frames are skipped.
    #[tokio::test(start_paused = true)]
    async fn empty_frames_and_clean_eof() {
        let (mut stream, mut evil) = established_with_evil().await;
        let sender = tokio::spawn(async move {
            for _ in 0..100 {
                let mut frame = [0u8; SEALED_FRAME_LEN];
                evil.sealer.seal(&[], &mut frame).unwrap();
                evil.io.write_all(&frame).await.unwrap();
            }
            evil.send_plain(b"after").await;
        });
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"after");
        sender.await.unwrap();
    }

    /// Nonce exhaustion on the write path is a typed error, not a panic.
    #[tokio::test(start_paused = true)]
    async fn write_nonce_exhaustion() {
        let (mut a, _b) = pair(1 << 16).await;
        a.writer.seal = SealBuffer::new(FrameSealer::with_counter(&[0; 32], u64::MAX));
        a.write_all(b"last").await.unwrap();
        a.flush().await.unwrap(); // the frame with counter u64::MAX
        a.write_all(b"one too many").await.unwrap();
        let err = a.flush().await.unwrap_err();
        assert!(matches!(Error::from_io(err), Error::NonceExhausted));
    }

    /// An idle stream holds no buffer: the writer releases its buffer once a flush has sent
    /// everything, the reader once the transport has nothing more to read.
    #[tokio::test(start_paused = true)]
    async fn idle_stream_holds_no_buffers() {
        let (mut a, mut b) = pair(1 << 20).await;
        assert_eq!(a.writer.seal.capacity(), 0, "after the handshake");
        let data = vec![0x11; 100 * 1024];
        a.write_all(&data).await.unwrap();
        assert!(a.writer.seal.capacity() > 0, "held during a burst");
        a.flush().await.unwrap();
        assert_eq!(a.writer.seal.capacity(), 0, "released by the flush");
        let mut got = vec![0; data.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, data);
        // Nothing more to read: the read waits, and the receive buffer is gone.
        let mut one = [0u8; 1];
        let idle = tokio::time::timeout(Duration::from_millis(10), b.read(&mut one)).await;
        assert!(idle.is_err(), "nothing was sent");
        assert_eq!(b.reader.open.capacity(), 0, "released while idle");
        // The next burst allocates again and works.
        a.write_all(b"again").await.unwrap();
        a.flush().await.unwrap();
        let mut again = [0u8; 5];
        b.read_exact(&mut again).await.unwrap();
        assert_eq!(&again, b"again");
    }

    /// Several frames leave in one write to the transport.
    #[tokio::test(start_paused = true)]
    async fn frames_are_batched_per_write() {
        let (a, mut b) = pair(1 << 20).await;
        let mut a = SecretStream {
            io: CountingWriter {
                inner: a.io,
                writes: 0,
            },
            reader: a.reader,
            writer: a.writer,
            remote: a.remote,
        };
        let data = vec![0x5a; 64 * 1024];
        a.write_all(&data).await.unwrap();
        a.flush().await.unwrap();
        // 64 frames in one write.
        assert_eq!(a.io.writes, 64 / BATCH_FRAMES);
        let mut got = vec![0; data.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, data);
    }

    struct CountingWriter {
        inner: DuplexStream,
        writes: usize,
    }

    impl AsyncRead for CountingWriter {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountingWriter {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if r.is_ready() {
                self.writes += 1;
            }
            r
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// B9: the halves work from two tasks at once, full duplex, in both directions.
    #[tokio::test]
    async fn split_halves_from_separate_tasks() {
        let (a, b) = pair(4096).await;
        let (mut ar, mut aw) = a.split();
        let (mut br, mut bw) = b.split();
        const N: usize = 1000;
        let msg = |i: usize| format!("message {i:05}\n").into_bytes();
        let wa = tokio::spawn(async move {
            for i in 0..N {
                aw.write_all(&msg(i)).await.unwrap();
                if i % 7 == 0 {
                    aw.flush().await.unwrap();
                }
            }
            aw.shutdown().await.unwrap();
            aw
        });
        let wb = tokio::spawn(async move {
            for i in 0..N {
                bw.write_all(&msg(i)).await.unwrap();
            }
            bw.shutdown().await.unwrap();
            bw
        });
        let ra = tokio::spawn(async move {
            let mut got = Vec::new();
            ar.read_to_end(&mut got).await.unwrap();
            (ar, got)
        });
        let mut got_b = Vec::new();
        br.read_to_end(&mut got_b).await.unwrap();
        let (ar, got_a) = ra.await.unwrap();
        let expected: Vec<u8> = (0..N).flat_map(msg).collect();
        assert_eq!(got_a, expected);
        assert_eq!(got_b, expected);
        let (aw, bw) = (wa.await.unwrap(), wb.await.unwrap());
        // The halves join back into a working stream.
        let a = ar.unsplit(aw);
        assert_eq!(a.remote_node_id(), key(2).node_id());
        drop((br, bw));
    }
}
