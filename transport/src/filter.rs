//! Connection filters: checks that run on a raw connection before any handshake.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use mukan_reactor_api::FilterRefusal;

/// A user check on an incoming or outgoing connection, run before the secret-connection
/// handshake (Go `ConnFilterFunc`, e.g. the ABCI `/p2p/filter/addr/…` query).
///
/// All filters of a transport run concurrently; each must answer within the transport's
/// filter timeout or the connection is refused with `TransportError::FilterTimeout`. A
/// refusal reaches the caller as `RejectDetail::Filtered`.
pub trait ConnFilter: Send + Sync + 'static {
    /// Decides about a connection with `remote`.
    ///
    /// # Errors
    /// A [`FilterRefusal`] to refuse the connection (`FilterRefusal::Refused` with the
    /// filter's fixed explanation).
    fn check(
        &self,
        remote: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<(), FilterRefusal>> + Send>>;
}
