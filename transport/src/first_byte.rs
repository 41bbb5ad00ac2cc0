//! [`FirstByte`]: tells the pending pool when an inbound connection's first read finds nothing
//! (from then on it is an idle socket that a newcomer may displace) and when it sends its first
//! byte (from then on it is not).

use std::io;
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::core::Inner;
use crate::pending::Key;
use crate::upgrade::Io;

/// An inbound stream that tells its pending-pool entry what its reads found until the first
/// byte, then only passes bytes through.
pub(crate) struct FirstByte {
    io: Box<dyn Io>,
    /// Until the first byte: whom to tell.
    notify: Option<(Weak<Inner>, Key)>,
    /// A read found nothing, and the pool was told.
    told_idle: bool,
}

impl FirstByte {
    pub(crate) fn new(io: Box<dyn Io>, inner: Weak<Inner>, key: Key) -> Self {
        Self {
            io,
            notify: Some((inner, key)),
            told_idle: false,
        }
    }
}

impl AsyncRead for FirstByte {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.notify.is_some() {
            if buf.filled().len() > before {
                if let Some((inner, key)) = this.notify.take() {
                    if let Some(inner) = inner.upgrade() {
                        inner.pending.lock().heard(key);
                    }
                }
            } else if polled.is_pending() && !this.told_idle {
                this.told_idle = true;
                if let Some((inner, key)) = &this.notify {
                    if let Some(inner) = inner.upgrade() {
                        inner.pending.lock().idle(*key);
                    }
                }
            }
        }
        polled
    }
}

impl AsyncWrite for FirstByte {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
