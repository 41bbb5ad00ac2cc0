//! [`Resolver`]: how the switch turns a host name into IP addresses, injected so that tests
//! count and script resolutions.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

/// Resolves host names (for persistent peers and [`dial_peers_async`] addresses given by
/// name). Called again at every dial, never cached by the switch.
///
/// [`dial_peers_async`]: crate::Switch::dial_peers_async
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host`, in preference order (the switch dials the first, as Go
    /// takes `ips[0]`).
    ///
    /// # Errors
    /// The lookup error; an empty list is treated as a failure too.
    ///
    /// # Cancel safety
    /// The switch drops the future after its resolve timeout.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// The system resolver, through `tokio::net::lookup_host`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioResolver;

impl Resolver for TokioResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, port)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}
