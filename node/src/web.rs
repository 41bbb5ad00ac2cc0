//! The network map: a web page on `/` of the RPC address of `seed`, `start` and
//! `crawl --watch`, and the JSON it reads. Every asset is compiled into the binary
//! (`node/web/`: the page, its script and style, and d3-force with its licence), so the page
//! works with no internet; it refreshes itself.
//!
//! | path | answer |
//! |---|---|
//! | `/` | the page |
//! | `/map/app.js`, `/map/style.css`, `/map/vendor/*` | its assets |
//! | `/map/api/chains` | `{"kind", "chains": [...]}`: what the page can show |
//! | `/map/api/graph?chain=ID` | the latest graph ([`Graph`]) |
//! | `/map/api/history?chain=ID` | crawls, newest first ([`CrawlSummary`]) |
//! | `/map/api/book?chain=ID` | a seed's book health (`null` for a crawler) |
//! | `/map/graph.graphml?chain=ID` | the latest graph as GraphML (for Gephi) |
//!
//! Other paths go to the handler behind (the RPC endpoints), so `/status` and the JSON-RPC
//! `POST /` keep working.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::graph::Graph;
use crate::http::{Handler, Req, Resp};
use crate::store::CrawlSummary;

/// What the map shows. Methods may block (SQLite): they run on the blocking pool.
pub(crate) trait MapSource: Send + Sync + 'static {
    /// `crawl`, `seed` or `node`.
    fn kind(&self) -> &'static str;
    /// The chains it can show.
    fn chains(&self) -> Vec<String>;
    /// The latest graph of `chain`.
    fn graph(&self, chain: &str) -> Result<Option<Graph>, String>;
    /// The history of `chain`, newest first.
    fn history(&self, chain: &str) -> Result<Vec<CrawlSummary>, String>;
    /// A seed's book health for `chain` (`None` where there is no book).
    fn book(&self, chain: &str) -> Option<Value>;
}

/// An asset compiled in.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../web/index.html"),
    },
    Asset {
        path: "/map/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/app.js"),
    },
    Asset {
        path: "/map/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../web/style.css"),
    },
    Asset {
        path: "/map/vendor/d3-dispatch.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/vendor/d3-dispatch.min.js"),
    },
    Asset {
        path: "/map/vendor/d3-quadtree.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/vendor/d3-quadtree.min.js"),
    },
    Asset {
        path: "/map/vendor/d3-timer.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/vendor/d3-timer.min.js"),
    },
    Asset {
        path: "/map/vendor/d3-force.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/vendor/d3-force.min.js"),
    },
    Asset {
        path: "/map/vendor/LICENSE",
        content_type: "text/plain; charset=utf-8",
        body: include_str!("../web/vendor/LICENSE"),
    },
];

const JSON: &str = "application/json";

/// The `chain` query parameter (percent-decoding the few characters a chain ID may hold).
pub(crate) fn chain_param(query: Option<&str>) -> Option<String> {
    let q = query?;
    q.split('&').find_map(|kv| {
        let v = kv.strip_prefix("chain=")?;
        Some(percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if c == b'+' { b' ' } else { c });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_found() -> Resp {
    Resp::new(
        StatusCode::NOT_FOUND,
        "text/plain",
        "404 page not found\n".into(),
    )
}

/// The chain a request is about: the one asked for if the source has it, else the first.
fn pick_chain(source: &dyn MapSource, asked: Option<String>) -> Option<String> {
    let chains = source.chains();
    match asked {
        Some(c) => chains.into_iter().find(|x| *x == c),
        None => chains.into_iter().next(),
    }
}

/// Answers an API request (blocking).
fn api(source: &dyn MapSource, path: &str, query: Option<&str>) -> Resp {
    let asked = chain_param(query);
    if path == "/map/api/chains" {
        let body = json!({"kind": source.kind(), "chains": source.chains()});
        return Resp::new(StatusCode::OK, JSON, body.to_string());
    }
    let Some(chain) = pick_chain(source, asked.clone()) else {
        return if asked.is_some() {
            Resp::new(
                StatusCode::NOT_FOUND,
                JSON,
                json!({"error": "unknown chain"}).to_string(),
            )
        } else {
            // Nothing crawled yet.
            match path {
                "/map/api/history" => Resp::new(StatusCode::OK, JSON, "[]".into()),
                "/map/api/graph" | "/map/api/book" => {
                    Resp::new(StatusCode::OK, JSON, "null".into())
                }
                _ => not_found(),
            }
        };
    };
    let fail = |e: String| {
        Resp::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON,
            json!({ "error": e }).to_string(),
        )
    };
    match path {
        "/map/api/graph" => match source.graph(&chain) {
            Ok(g) => Resp::new(StatusCode::OK, JSON, json!(g).to_string()),
            Err(e) => fail(e),
        },
        "/map/api/history" => match source.history(&chain) {
            Ok(h) => Resp::new(StatusCode::OK, JSON, json!(h).to_string()),
            Err(e) => fail(e),
        },
        "/map/api/book" => Resp::new(StatusCode::OK, JSON, json!(source.book(&chain)).to_string()),
        "/map/graph.graphml" => match source.graph(&chain) {
            Ok(Some(g)) => Resp::new(StatusCode::OK, "application/graphml+xml", g.to_graphml()),
            Ok(None) => not_found(),
            Err(e) => fail(e),
        },
        _ => not_found(),
    }
}

/// The map in front of `rest` (the RPC handler, or none).
pub(crate) fn handler(source: Arc<dyn MapSource>, rest: Option<Handler>) -> Handler {
    Arc::new(move |req: Req| {
        let source = source.clone();
        let rest = rest.clone();
        Box::pin(async move {
            let get = req.method == Method::GET || req.method == Method::HEAD;
            if get {
                if let Some(a) = ASSETS.iter().find(|a| a.path == req.path) {
                    return Resp::new(StatusCode::OK, a.content_type, a.body.to_owned());
                }
                if req.path.starts_with("/map/") {
                    let path = req.path.clone();
                    let query = req.query.clone();
                    return tokio::task::spawn_blocking(move || {
                        api(source.as_ref(), &path, query.as_deref())
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Resp::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "text/plain",
                            e.to_string(),
                        )
                    });
                }
            }
            match rest {
                Some(h) => h(req).await,
                None => not_found(),
            }
        }) as Pin<Box<dyn Future<Output = Resp> + Send>>
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphNode;

    struct One;

    impl MapSource for One {
        fn kind(&self) -> &'static str {
            "crawl"
        }
        fn chains(&self) -> Vec<String> {
            vec!["a b".into(), "c".into()]
        }
        fn graph(&self, chain: &str) -> Result<Option<Graph>, String> {
            Ok(Some(Graph {
                chain_id: chain.into(),
                nodes: vec![GraphNode {
                    id: "x".into(),
                    ..GraphNode::default()
                }],
                ..Graph::default()
            }))
        }
        fn history(&self, _: &str) -> Result<Vec<CrawlSummary>, String> {
            Err("boom".into())
        }
        fn book(&self, _: &str) -> Option<Value> {
            None
        }
    }

    fn get(h: &Handler, path: &str) -> Resp {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path.to_owned(), None),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(h(Req {
            method: Method::GET,
            path,
            query,
            body: bytes::Bytes::new(),
            headers: hyper::HeaderMap::new(),
        }))
    }

    #[test]
    fn assets_api_and_fallthrough() {
        let h = handler(Arc::new(One), None);
        let page = get(&h, "/");
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<svg id=\"graph\""));
        // No asset from elsewhere: every script and style is ours.
        assert!(!page.body.contains("http://") && !page.body.contains("https://"));
        for a in ASSETS {
            assert_eq!(get(&h, a.path).status, StatusCode::OK, "{}", a.path);
            if a.path.starts_with("/map/vendor/") && a.path.ends_with(".js") {
                assert!(page.body.contains(a.path), "{} is not loaded", a.path);
            }
        }
        let g = get(&h, "/map/api/graph?chain=a%20b");
        assert!(g.body.contains("\"chain_id\":\"a b\""), "{}", g.body);
        let g = get(&h, "/map/api/graph");
        assert!(g.body.contains("\"chain_id\":\"a b\""), "{}", g.body);
        assert_eq!(
            get(&h, "/map/api/graph?chain=zz").status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&h, "/map/api/history?chain=c").status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(get(&h, "/map/api/book?chain=c").body, "null");
        let x = get(&h, "/map/graph.graphml?chain=c");
        assert!(x.body.contains("<node id=\"x\">"), "{}", x.body);
        assert_eq!(get(&h, "/status").status, StatusCode::NOT_FOUND);
        assert!(
            get(&h, "/map/api/chains")
                .body
                .contains("\"kind\":\"crawl\"")
        );
    }
}
