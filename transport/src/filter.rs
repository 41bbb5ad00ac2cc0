//! Connection filters: checks that run on a raw connection before any handshake.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// A user check on an incoming or outgoing connection, run before the secret-connection
/// handshake (Go `ConnFilterFunc`, e.g. the ABCI `/p2p/filter/addr/…` query).
///
/// All filters of a transport run concurrently; each must answer within the transport's
/// filter timeout or the connection is refused with `TransportError::FilterTimeout`.
pub trait ConnFilter: Send + Sync + 'static {
    /// Decides about a connection with `remote`.
    ///
    /// # Errors
    /// [`Denied`] to refuse the connection.
    fn check(&self, remote: SocketAddr)
    -> Pin<Box<dyn Future<Output = Result<(), Denied>> + Send>>;
}

/// A filter's refusal, with its cause.
#[derive(Debug)]
pub struct Denied {
    cause: Box<dyn Error + Send + Sync>,
}

impl Denied {
    /// A refusal for `cause`.
    pub fn new(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            cause: cause.into(),
        }
    }

    /// The cause, for downcasting.
    pub fn cause(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.cause
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection denied: {}", self.cause)
    }
}

impl Error for Denied {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.cause)
    }
}
