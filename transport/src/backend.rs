//! Where connections come from: TCP sockets, or (feature `test-util`) in-memory pipes.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

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
    /// The next raw connection and its remote address.
    pub(crate) async fn accept(&mut self) -> io::Result<(Box<dyn Io>, SocketAddr)> {
        match self {
            Self::Tcp(listener) => {
                let (stream, remote) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok((Box::new(stream), remote))
            }
            #[cfg(feature = "test-util")]
            Self::Memory(listener) => {
                let (stream, remote) = listener.accept().await?;
                Ok((Box::new(stream), remote))
            }
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
}
