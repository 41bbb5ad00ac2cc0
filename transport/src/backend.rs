//! Where connections come from: TCP sockets, or (feature `test-util`) in-memory pipes.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::upgrade::Io;

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
                let listener = TcpListener::bind(addr).await?;
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
