//! A small HTTP/1.1 server (hyper) for the RPC endpoints and `/metrics`: bounded connections,
//! bounded request bodies, a header timeout, and a stop signal.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// At most this many connections are served at once; more wait in the accept backlog.
const MAX_CONNECTIONS: usize = 64;
/// Request bodies (JSON-RPC POSTs) larger than this are refused.
const MAX_BODY: usize = 64 * 1024;
/// Time allowed for a client to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request as handlers see it.
pub(crate) struct Req {
    /// The method (`GET`, `POST`).
    pub(crate) method: hyper::Method,
    /// The path, without the query.
    pub(crate) path: String,
    /// The query string, if any.
    pub(crate) query: Option<String>,
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
}

/// A request handler.
pub(crate) type Handler =
    Arc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

async fn handle(
    handler: Handler,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(build(Resp::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                "request body too large\n".into(),
            )));
        }
    };
    let resp = handler(Req {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
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

/// Binds `addr`.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Resolves once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves `listener` until `stop` turns true; open connections are then closed.
pub(crate) async fn serve(
    listener: TcpListener,
    handler: Handler,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let (stream, _) = tokio::select! {
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
        // Reap finished connections so the set stays at most MAX_CONNECTIONS long.
        while conns.try_join_next().is_some() {}
        let handler = handler.clone();
        let mut conn_stop = stop.clone();
        conns.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| handle(handler.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
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

#[cfg(test)]
pub(crate) mod client {
    //! A minimal HTTP/1.1 GET for tests.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `GET path` → (status code, body).
    pub(crate) async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
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
