//! [`Wire`]: the byte stream under an [`MConnection`](super::MConnection), seen as a receive
//! buffer and a send buffer, so that packets are parsed and written where the bytes lie.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use bytes::{Buf as _, BytesMut};
use mukan_secret_conn::{SealBuffer, SecretStream};

use crate::SendBuf;

/// The stream an [`MConnection`](super::MConnection) runs over, as its task uses it: bytes
/// arrive in a buffer the core parses in place, and the core writes packets into a buffer that
/// is then sent and flushed in one go.
///
/// Implemented for a [`SecretStream`] (the payload of each frame is opened in place and
/// parsed there; packets are written straight into the frames, which are sealed in place: the
/// message bytes are copied once on each side) and for [`PlainStream`] (any
/// `AsyncRead + AsyncWrite`, unencrypted: tests, or a stream encrypted elsewhere).
pub trait Wire: Send + 'static {
    /// Where the core writes outgoing packets.
    type SendBuf: SendBuf;

    /// Reads what the stream has into [`Wire::received`], at most `cap` bytes from the
    /// transport if given (a node-wide receive budget's credit): the bytes added (`Some(0)`
    /// is possible: a frame with no payload), `None` at the end of the stream.
    ///
    /// # Errors
    /// The stream's.
    fn poll_receive(
        &mut self,
        cx: &mut Context<'_>,
        cap: Option<usize>,
    ) -> Poll<io::Result<Option<usize>>>;

    /// Bytes received and not consumed; the core takes whole packets off its front and never
    /// grows it.
    fn received(&mut self) -> &mut BytesMut;

    /// The buffer the core writes packets into.
    fn send_buf(&mut self) -> &mut Self::SendBuf;

    /// Writes everything in the send buffer and flushes the stream.
    ///
    /// # Errors
    /// The stream's.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Closes the sending side (after [`Wire::poll_send`]).
    ///
    /// # Errors
    /// The stream's.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Lets go of the buffers of the last burst: called when the connection has been quiet
    /// for a while (nothing read or written), so that an idle connection holds little memory
    /// while a busy one keeps its buffers (allocating them for every burst costs page
    /// faults).
    fn shrink_idle(&mut self);
}

impl SendBuf for SealBuffer {
    fn put_slice(&mut self, data: &[u8]) {
        // Fails only after 2^64 frames; the buffer then stays broken, and the next
        // `poll_send` reports it.
        let _ = self.put(data);
    }

    fn reserve(&mut self, additional: usize) {
        Self::reserve(self, additional);
    }
}

impl<T> Wire for SecretStream<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type SendBuf = SealBuffer;

    fn poll_receive(
        &mut self,
        cx: &mut Context<'_>,
        cap: Option<usize>,
    ) -> Poll<io::Result<Option<usize>>> {
        Self::poll_receive_capped(self, cx, cap)
    }

    fn received(&mut self) -> &mut BytesMut {
        Self::received(self)
    }

    fn send_buf(&mut self) -> &mut SealBuffer {
        self.send_buffer()
    }

    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Self::poll_send(self, cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(Self::poll_send(self, cx))?;
        Pin::new(self).poll_shutdown(cx)
    }

    fn shrink_idle(&mut self) {
        self.release_buffers();
    }
}

/// Bytes reserved for a read while the connection is quiet: one small message fits. An idle
/// connection holds only this much receive buffer.
const READ_MIN: usize = 2 * 1024;
/// The largest read: reads that fill the buffer double the next one up to this.
const READ_MAX: usize = 32 * 1024;

/// Any `AsyncRead + AsyncWrite` as a [`Wire`], unencrypted.
///
/// Reads start at 2 KiB, double (up to 32 KiB) while they fill the room and halve while they
/// do not; the buffers are let go when the connection goes quiet.
#[derive(Debug)]
pub struct PlainStream<T> {
    io: T,
    received: BytesMut,
    want: usize,
    send: BytesMut,
}

impl<T> PlainStream<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> Self {
        Self {
            io,
            received: BytesMut::new(),
            want: READ_MIN,
            send: BytesMut::new(),
        }
    }

    /// The stream.
    pub fn into_inner(self) -> T {
        self.io
    }
}

impl<T> Wire for PlainStream<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type SendBuf = BytesMut;

    fn poll_receive(
        &mut self,
        cx: &mut Context<'_>,
        cap: Option<usize>,
    ) -> Poll<io::Result<Option<usize>>> {
        let buf = &mut self.received;
        if buf.capacity() - buf.len() < self.want && !buf.try_reclaim(self.want) {
            let mut fresh = BytesMut::with_capacity(buf.len() + self.want);
            fresh.extend_from_slice(buf);
            *buf = fresh;
        }
        let room = buf.capacity() - buf.len();
        let n = match cap {
            None => std::task::ready!(std::pin::pin!(self.io.read_buf(buf)).poll(cx))?,
            Some(cap) => {
                let mut limited = bytes::BufMut::limit(buf, cap);
                std::task::ready!(std::pin::pin!(self.io.read_buf(&mut limited)).poll(cx))?
            }
        };
        if n == 0 {
            return Poll::Ready(Ok(None));
        }
        self.want = if n >= room {
            (self.want * 2).min(READ_MAX)
        } else {
            (self.want / 2).max(READ_MIN)
        };
        Poll::Ready(Ok(Some(n)))
    }

    fn received(&mut self) -> &mut BytesMut {
        &mut self.received
    }

    fn send_buf(&mut self) -> &mut BytesMut {
        &mut self.send
    }

    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.send.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, &self.send))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.send.advance(n);
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_send(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn shrink_idle(&mut self) {
        if self.send.is_empty() {
            self.send = BytesMut::new();
        }
        if self.received.is_empty() {
            self.received = BytesMut::new();
            self.want = READ_MIN;
        }
    }
}
