//! Where connections come from: TCP sockets, or (feature `test-util`) in-memory pipes.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use crate::pending::Look;
use crate::upgrade::Io;

/// Connections the kernel queues for the listener before `accept` takes them. mio's default
/// (128) overflowed under 1,000 simultaneous dials (SYNs dropped, clients retrying after 1 s);
/// Go asks for `net.core.somaxconn`. The kernel caps what we ask at `somaxconn` (4,096 by
/// default on Linux since 5.4), and a queue slot costs nothing until a connection uses it.
pub(crate) const LISTEN_BACKLOG: u32 = 4096;

/// A TCP listener on `addr` with [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (as
/// `TcpListener::bind` sets on Unix, so a restarted node rebinds over TIME_WAIT sockets).
fn tcp_listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How a transport opens and accepts raw connections.
pub(crate) enum Backend {
    Tcp,
    #[cfg(feature = "test-util")]
    Memory(crate::memory::Endpoint),
}

/// A bound listener.
pub(crate) enum Listener {
    Tcp(TcpListener),
    #[cfg(feature = "test-util")]
    Memory(crate::memory::MemoryListener),
}

impl Backend {
    /// Binds `addr`; returns the listener and the bound address.
    pub(crate) async fn bind(&self, addr: SocketAddr) -> io::Result<(Listener, SocketAddr)> {
        match self {
            Self::Tcp => {
                let listener = tcp_listen(addr)?;
                let bound = listener.local_addr()?;
                Ok((Listener::Tcp(listener), bound))
            }
            #[cfg(feature = "test-util")]
            Self::Memory(endpoint) => {
                let (listener, bound) = endpoint.bind(addr)?;
                Ok((Listener::Memory(listener), bound))
            }
        }
    }

    /// Opens a connection to `target`; returns it and the remote address.
    pub(crate) async fn connect(
        &self,
        target: SocketAddr,
        _local: Option<SocketAddr>,
    ) -> io::Result<(Box<dyn Io>, SocketAddr)> {
        match self {
            Self::Tcp => {
                let stream = tokio::net::TcpStream::connect(target).await?;
                let _ = stream.set_nodelay(true);
                let remote = stream.peer_addr().unwrap_or(target);
                Ok((Box::new(stream), remote))
            }
            #[cfg(feature = "test-util")]
            Self::Memory(endpoint) => {
                let stream = endpoint.connect(target).await?;
                Ok((Box::new(stream), target))
            }
        }
    }
}

impl Listener {
    /// The next raw connection, its remote address, our end of it (TCP), and a way to look
    /// at what waits on it.
    pub(crate) async fn accept(&mut self) -> io::Result<Incoming> {
        match self {
            Self::Tcp(listener) => {
                let (stream, remote) = listener.accept().await?;
                let local = stream.local_addr().ok();
                let _ = stream.set_nodelay(true);
                // Without a second descriptor (out of them) nothing is ever seen waiting: the
                // connection is judged by its reads alone.
                let peek = socket2::SockRef::from(&stream)
                    .try_clone()
                    .map_or(Peek::Blind, Peek::Tcp);
                Ok(Incoming {
                    stream: Box::new(stream),
                    remote,
                    local,
                    peek,
                })
            }
            #[cfg(feature = "test-util")]
            Self::Memory(listener) => {
                let (stream, remote) = listener.accept().await?;
                Ok(Incoming {
                    stream: Box::new(stream),
                    remote,
                    local: None,
                    peek: Peek::Blind,
                })
            }
        }
    }
}

/// An accepted raw connection.
pub(crate) struct Incoming {
    pub(crate) stream: Box<dyn Io>,
    pub(crate) remote: SocketAddr,
    /// Our end of the connection (TCP only): with `remote`, the pair of sockets that the
    /// kernel never gives two live connections at once.
    pub(crate) local: Option<SocketAddr>,
    pub(crate) peek: Peek,
}

/// A look at an accepted connection's receive queue that takes nothing from it and leaves its
/// task's wake-ups alone: a second descriptor of the same TCP socket, asked with `MSG_PEEK`
/// (the socket is non-blocking, so the question never waits). While it is held the socket
/// stays open, so it is dropped as soon as it is no longer needed (the connection was heard,
/// its upgrade ended, or it was displaced).
pub(crate) enum Peek {
    Tcp(socket2::Socket),
    /// Nothing to look with (an in-memory pipe, or no descriptor left).
    Blind,
}

impl Peek {
    /// Whether bytes the peer sent wait unread on the connection now. End of stream or an
    /// error (a reset): nothing waits.
    pub(crate) fn look(&self) -> Look {
        match self {
            Self::Tcp(socket) => {
                let mut one = [MaybeUninit::<u8>::uninit()];
                match socket.peek(&mut one) {
                    Ok(n) if n > 0 => Look::Waiting,
                    _ => Look::Nothing,
                }
            }
            Self::Blind => Look::Blind,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    /// More dials than mio's default backlog of 128 all complete their TCP handshake while
    /// the listener takes none of them: the kernel queues them. With a 128 queue the 130th
    /// SYN is dropped and every retry too (nothing drains the queue), so its connect times
    /// out.
    #[tokio::test]
    async fn listener_queues_more_than_128_unaccepted_connections() {
        let (listener, bound) = Backend::Tcp
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dials = tokio::task::spawn_blocking(move || {
            (0..300)
                .map(|i| {
                    std::net::TcpStream::connect_timeout(&bound, std::time::Duration::from_secs(3))
                        .map_err(|e| format!("dial {i}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
        let streams = dials.expect("every dial queued");
        assert_eq!(streams.len(), 300);
        drop(listener);
    }

    /// [`Peek`] sees bytes that wait unread, takes none of them (the connection's own read
    /// still gets them all), and sees nothing on a silent or closed connection.
    #[tokio::test]
    async fn peek_sees_waiting_bytes_without_taking_them() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut listener, bound) = Backend::Tcp
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut client = tokio::net::TcpStream::connect(bound).await.unwrap();
        let Incoming {
            mut stream, peek, ..
        } = listener.accept().await.unwrap();
        assert!(matches!(peek, Peek::Tcp(_)));
        assert_eq!(peek.look(), Look::Nothing, "nothing sent yet");
        client.write_all(b"hello").await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while peek.look() != Look::Waiting {
            assert!(tokio::time::Instant::now() < deadline, "bytes never seen");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(peek.look(), Look::Waiting, "looking again takes nothing");
        let mut got = [0u8; 5];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        assert_eq!(peek.look(), Look::Nothing, "all read");
        drop(client);
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert_eq!(peek.look(), Look::Nothing, "end of stream is not bytes");
    }

    /// While the connection is held by its task and the look alike, dropping the task's
    /// stream alone leaves the socket open; dropping both closes it (the peer sees the end).
    #[tokio::test]
    async fn the_socket_closes_when_stream_and_look_are_both_dropped() {
        use tokio::io::AsyncReadExt;
        let (mut listener, bound) = Backend::Tcp
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut client = tokio::net::TcpStream::connect(bound).await.unwrap();
        let Incoming { stream, peek, .. } = listener.accept().await.unwrap();
        drop(stream);
        let mut one = [0u8; 1];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(200), client.read(&mut one))
                .await;
        assert!(early.is_err(), "closed while the look was held: {early:?}");
        drop(peek);
        let end = tokio::time::timeout(std::time::Duration::from_secs(10), client.read(&mut one))
            .await
            .expect("closed once both are dropped");
        assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
    }
}
