//! A small HTTP/1.1 server (hyper) for the RPC endpoints and `/metrics`, hardened against
//! clients that are slow on purpose:
//!
//! - **Every connection is accepted.** Past the connection cap, or past the per-IP cap, the
//!   server answers `503 Service Unavailable` and closes, instead of leaving the client in the
//!   kernel's backlog with no answer (answers to refused clients are themselves bounded: when
//!   too many are in flight, the socket is closed at once).
//! - **Timeouts** (Go's RPC server: 10 s read, 10 s write): the request headers must arrive
//!   within [`Limits::header_timeout`], the body within [`Limits::body_timeout`] (else `408`
//!   and close), a read or a write that makes no progress for [`Limits::read_timeout`] /
//!   [`Limits::write_timeout`] ends the connection (an idle keep-alive connection too).
//! - **Bodies** larger than [`Limits::max_body`] are refused with `413`.
//! - **Host allow list** against DNS rebinding ([`HostAllow`]): a `Host` header naming a host
//!   that is neither an IP literal nor an allowed name gets `403`, so a web page whose name was
//!   rebound to this machine cannot read the answers.
//!
//! Handlers see a [`Req`] and return a [`Resp`]; add endpoints in the handler, not here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Sleep;

/// The bounds of one server.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Connections served at once; past it, `503` and close (Go RPC `max_open_connections`:
    /// 900).
    pub(crate) max_connections: usize,
    /// Connections served at once from one IP address; past it, `503` and close.
    pub(crate) max_per_ip: usize,
    /// Request bodies (JSON-RPC POSTs) larger than this get `413`.
    pub(crate) max_body: usize,
    /// Time allowed for the request headers, from the first byte of the request (or from the
    /// connection's start).
    pub(crate) header_timeout: Duration,
    /// Time allowed for the whole request body once the headers are in; past it, `408` and
    /// close.
    pub(crate) body_timeout: Duration,
    /// A read that receives nothing for this long ends the connection (an idle keep-alive
    /// connection among them).
    pub(crate) read_timeout: Duration,
    /// A write that makes no progress for this long ends the connection (a client that stops
    /// reading its answer).
    pub(crate) write_timeout: Duration,
}

impl Limits {
    /// The RPC server's: Go's 900 connections, 10 s read, 10 s write; 16 per IP; 64 KiB bodies.
    pub(crate) fn rpc() -> Self {
        Self {
            max_connections: 900,
            max_per_ip: 16,
            max_body: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
        }
    }

    /// The metrics server's: the RPC's. (A scraper needs one connection, but a lower cap
    /// would let fewer slow clients lock the scraper out: what holds them off is the per-IP
    /// cap and the timeouts.)
    pub(crate) fn metrics() -> Self {
        Self::rpc()
    }
}

/// Refused clients answered at once (`503`, then a short wait for their request bytes so the
/// close is clean); past this many in flight, further refused sockets are closed at once.
const MAX_REFUSALS_IN_FLIGHT: usize = 128;
/// How long a refused client is given to take its `503`.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Which `Host` headers a server answers (against DNS rebinding).
///
/// Allowed: no `Host` header (not a browser), any IP literal (a rebinding attack needs a
/// name), `localhost`, the host of the listen address when it is a name, and the names of the
/// `[rpc] allowed_hosts` setting (`"*"` allows every name). Names are compared without the
/// port, case-insensitively, with a trailing dot ignored.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostAllow {
    names: Vec<String>,
    any: bool,
}

impl HostAllow {
    /// The default names plus `listen_host` (if a name) and `extra`.
    pub(crate) fn new(listen_host: &str, extra: &[String]) -> Self {
        let mut names = vec!["localhost".to_owned()];
        let mut any = false;
        for name in std::iter::once(listen_host).chain(extra.iter().map(String::as_str)) {
            let name = normalize(name);
            if name == "*" {
                any = true;
            } else if !name.is_empty() && name.parse::<IpAddr>().is_err() {
                names.push(name);
            }
        }
        Self { names, any }
    }

    /// Whether a request with this `Host` header is answered.
    pub(crate) fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        if self.any {
            return true;
        }
        let host = strip_port(host.trim());
        if host.starts_with('[') && host.ends_with(']') {
            // An IPv6 literal; hyper has checked the header's characters.
            return host
                .get(1..host.len() - 1)
                .is_some_and(|h| h.parse::<IpAddr>().is_ok());
        }
        let host = normalize(host);
        host.parse::<IpAddr>().is_ok() || self.names.contains(&host)
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `host:port` → `host` (IPv6 literals keep their brackets); a bare host is returned as is.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => host.get(..=end).unwrap_or(host),
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// A parsed request as handlers see it.
pub(crate) struct Req {
    /// The method (`GET`, `POST`).
    pub(crate) method: hyper::Method,
    /// The path, without the query.
    pub(crate) path: String,
    /// The query string, if any.
    pub(crate) query: Option<String>,
    /// The request headers.
    #[allow(
        dead_code,
        reason = "for handlers that negotiate (the web page); none of today's reads them"
    )]
    pub(crate) headers: hyper::HeaderMap,
    /// The body (empty for GET).
    pub(crate) body: Bytes,
}

/// A response: status, content type, body.
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
}

impl Resp {
    pub(crate) fn new(status: StatusCode, content_type: &'static str, body: String) -> Self {
        Self {
            status,
            content_type,
            body,
        }
    }

    fn text(status: StatusCode, body: &str) -> Self {
        Self::new(status, "text/plain", body.to_owned())
    }
}

/// A request handler.
pub(crate) type Handler =
    Arc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

/// What every connection of one server shares.
struct Shared {
    handler: Handler,
    limits: Limits,
    hosts: HostAllow,
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{0}"));
    if !shared.hosts.allows(host) {
        return Ok(closing(Resp::text(
            StatusCode::FORBIDDEN,
            "host not allowed (see [rpc] allowed_hosts)\n",
        )));
    }
    let limits = &shared.limits;
    let read = Limited::new(body, limits.max_body).collect();
    let body = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return Ok(closing(Resp::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large\n",
            )));
        }
        Err(_) => {
            return Ok(closing(Resp::text(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time\n",
            )));
        }
    };
    let resp = (shared.handler)(Req {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    })
    .await;
    Ok(build(resp))
}

fn build(resp: Resp) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(resp.body)));
    *r.status_mut() = resp.status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(resp.content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A response after which the connection is closed (the rest of the request is not read).
fn closing(resp: Resp) -> Response<Full<Bytes>> {
    let mut r = build(resp);
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

/// Binds `addr`.
pub(crate) async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Resolves once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Open connections per client IP; a slot is given back when its guard drops.
#[derive(Default)]
struct PerIp {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut counts = self.counts.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves `listener` until `stop` turns true; open connections are then closed.
pub(crate) async fn serve(
    listener: TcpListener,
    handler: Handler,
    limits: Limits,
    hosts: HostAllow,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let per_ip = Arc::new(PerIp::default());
    let shared = Arc::new(Shared {
        handler,
        limits,
        hosts,
    });
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, remote) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(target: "mukan_p2p::rpc", "accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        // Reap finished connections so the set stays at most max_connections long (plus the
        // refusals in flight).
        while conns.try_join_next().is_some() {}
        let ip_slot = per_ip.take(remote.ip(), shared.limits.max_per_ip);
        let permit = permits.clone().try_acquire_owned().ok();
        let (Some(ip_slot), Some(permit)) = (ip_slot, permit) else {
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                conns.spawn(async move {
                    let _refusal = refusal;
                    refuse(stream).await;
                });
            }
            continue;
        };
        let shared = shared.clone();
        let mut conn_stop = stop.clone();
        conns.spawn(async move {
            let _permit = permit;
            let _ip_slot = ip_slot;
            let io = Timed::new(
                stream,
                shared.limits.read_timeout,
                shared.limits.write_timeout,
            );
            let header_timeout = shared.limits.header_timeout;
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped(&mut conn_stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
    conns.shutdown().await;
}

/// Answers a client past a cap: `503`, then reads what it sent (briefly) so that the close is
/// orderly and the client reads the answer rather than a reset.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "too many connections\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n{BODY}",
        BODY.len()
    );
    let linger = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, linger).await;
}

/// A stream whose reads and writes fail with `TimedOut` when they make no progress for their
/// timeout. The timer starts when an operation first returns `Pending` and is cleared by any
/// progress.
struct Timed<S> {
    io: S,
    read_timeout: Duration,
    write_timeout: Duration,
    read_stall: Option<Pin<Box<Sleep>>>,
    write_stall: Option<Pin<Box<Sleep>>>,
}

impl<S> Timed<S> {
    fn new(io: S, read_timeout: Duration, write_timeout: Duration) -> Self {
        Self {
            io,
            read_timeout,
            write_timeout,
            read_stall: None,
            write_stall: None,
        }
    }
}

/// After a `Pending` operation: arms `stall` (if not armed) and reports a timeout once it
/// fires.
fn stalled(
    stall: &mut Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    cx: &mut Context<'_>,
    what: &'static str,
) -> Poll<io::Error> {
    let sleep = stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, what)),
        Poll::Pending => Poll::Pending,
    }
}

/// Passes `result` through, clearing `stall` on progress or arming it on `Pending`.
fn track<T>(
    result: Poll<io::Result<T>>,
    stall: &mut Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    cx: &mut Context<'_>,
    what: &'static str,
) -> Poll<io::Result<T>> {
    match result {
        Poll::Ready(r) => {
            *stall = None;
            Poll::Ready(r)
        }
        Poll::Pending => stalled(stall, timeout, cx, what).map(Err),
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        track(
            r,
            &mut this.read_stall,
            this.read_timeout,
            cx,
            "read timed out",
        )
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        track(
            r,
            &mut this.write_stall,
            this.write_timeout,
            cx,
            "write timed out",
        )
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        track(
            r,
            &mut this.write_stall,
            this.write_timeout,
            cx,
            "write timed out",
        )
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        track(
            r,
            &mut this.write_stall,
            this.write_timeout,
            cx,
            "write timed out",
        )
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        track(
            r,
            &mut this.write_stall,
            this.write_timeout,
            cx,
            "write timed out",
        )
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
pub(crate) mod client {
    //! A minimal HTTP/1.1 GET for tests.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `GET path` → (status code, body).
    pub(crate) async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        get_with_host(addr, path, "127.0.0.1").await
    }

    /// `GET path` with `Host: host` → (status code, body).
    pub(crate) async fn get_with_host(
        addr: std::net::SocketAddr,
        path: &str,
        host: &str,
    ) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8(buf).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, body.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::client::{get, get_with_host};
    use super::*;

    fn ok_handler() -> Handler {
        Arc::new(|_req: Req| {
            Box::pin(async { Resp::text(StatusCode::OK, "ok\n") })
                as Pin<Box<dyn Future<Output = Resp> + Send>>
        })
    }

    /// A server on 127.0.0.1 with `limits`; the stop sender ends it.
    async fn server(limits: Limits) -> (SocketAddr, watch::Sender<bool>) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        tokio::spawn(serve(
            listener,
            ok_handler(),
            limits,
            HostAllow::new("127.0.0.1", &[]),
            rx,
        ));
        (addr, tx)
    }

    /// Reads a whole answer (until the server closes) and returns its status code, or `None`
    /// if the connection was reset or closed without one.
    async fn status_of(s: &mut TcpStream) -> Option<u16> {
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        text.split(' ').nth(1)?.parse().ok()
    }

    #[test]
    fn host_allow_list() {
        let a = HostAllow::new("node.example.org", &["Extra.Example.".to_owned()]);
        for ok in [
            None,
            Some("localhost"),
            Some("LOCALHOST:26657"),
            Some("127.0.0.1:26657"),
            Some("10.1.2.3"),
            Some("[::1]:26657"),
            Some("[2001:db8::1]"),
            Some("node.example.org:26657"),
            Some("extra.example"),
            Some("extra.example.:80"),
        ] {
            assert!(a.allows(ok), "{ok:?}");
        }
        for bad in [
            Some("evil.example"),
            Some("evil.example:26657"),
            Some("localhost.evil.example"),
            Some("127.0.0.1.nip.io"),
            Some("[not-an-ip]"),
            Some(""),
        ] {
            assert!(!a.allows(bad), "{bad:?}");
        }
        assert!(HostAllow::new("0.0.0.0", &["*".to_owned()]).allows(Some("evil.example")));
    }

    #[tokio::test]
    async fn a_rebound_name_is_refused_an_ip_or_localhost_is_served() {
        let (addr, _stop) = server(Limits::rpc()).await;
        assert_eq!(get_with_host(addr, "/", "evil.example:26657").await.0, 403);
        assert_eq!(get_with_host(addr, "/", "localhost:26657").await.0, 200);
        assert_eq!(get(addr, "/").await.0, 200);
    }

    #[tokio::test]
    async fn past_the_caps_clients_get_503_not_silence() {
        let limits = Limits {
            max_connections: 4,
            max_per_ip: 2,
            ..Limits::rpc()
        };
        let (addr, _stop) = server(limits).await;
        // Two idle connections from 127.0.0.1 take its per-IP share.
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(5), status_of(&mut third)).await;
        assert_eq!(status.unwrap(), Some(503));
        // Another IP (127.0.0.2) is still served.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut other = sock.connect(addr).await.unwrap();
        other
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(status_of(&mut other).await, Some(200));
        // Freeing a slot lets 127.0.0.1 in again.
        held.pop();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(addr, "/").await.0, 200);
    }

    #[tokio::test]
    async fn a_dripping_body_is_cut_at_the_body_timeout() {
        let limits = Limits {
            body_timeout: Duration::from_millis(600),
            read_timeout: Duration::from_secs(5),
            ..Limits::rpc()
        };
        let (addr, _stop) = server(limits).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nx")
            .await
            .unwrap();
        let start = Instant::now();
        let (mut r, mut w) = s.into_split();
        // One byte every 100 ms: the read never stalls, the body never completes.
        let drip = tokio::spawn(async move {
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if w.write_all(b"x").await.is_err() {
                    return;
                }
            }
        });
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut buf)).await;
        let took = start.elapsed();
        drip.abort();
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_at_the_read_timeout() {
        let limits = Limits {
            header_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_millis(500),
            ..Limits::rpc()
        };
        let (addr, _stop) = server(limits).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let start = Instant::now();
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(r.is_ok(), "still open after 5 s");
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_client_that_never_reads_is_dropped_at_the_write_timeout() {
        // A handler with a large answer and a client that sends requests but never reads:
        // the server's writes stall and the connection ends.
        let big: Handler = Arc::new(|_req: Req| {
            Box::pin(async { Resp::new(StatusCode::OK, "text/plain", "y".repeat(1 << 20)) })
                as Pin<Box<dyn Future<Output = Resp> + Send>>
        });
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_tx, rx) = watch::channel(false);
        let limits = Limits {
            write_timeout: Duration::from_millis(500),
            ..Limits::rpc()
        };
        let task = tokio::spawn(serve(listener, big, limits, HostAllow::default(), rx));
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut s = sock.connect(addr).await.unwrap();
        let start = Instant::now();
        // Pipelined requests whose answers (1 MiB each) fill every buffer.
        for _ in 0..8 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
        }
        // Wait until the server gives up, then read: the stream ends before 8 MiB arrived.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
        assert!(drained.is_ok(), "the server kept the connection open");
        assert!(total < 8 << 20, "all {total} bytes were written");
        assert!(start.elapsed() < Duration::from_secs(10));
        task.abort();
    }
}
