//! The RPC endpoints crawlers and dashboards read, in CometBFT's JSON-RPC response format:
//! `/health`, `/status`, `/net_info`, plus `/peers` (JSON, or `?format=persistent_peers` for a
//! ready-to-paste line). `GET /status` and a JSON-RPC `POST /` with `"method":"status"` both
//! work, as on a CometBFT node. A process of several homes (chains) answers each of them:
//! `?chain=ID` picks the chain ([`chains_handler`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use mukan_reactor_api::{NodeInfo, PeerStatus};
use serde_json::{Value, json};

use crate::config::parse_host_port;
use crate::http::{Handler, Req, Resp};

/// A connected peer as the RPC shows it.
#[derive(Clone, Debug)]
pub(crate) struct PeerView {
    /// What it sent in the handshake.
    pub(crate) node_info: NodeInfo,
    /// We dialed it.
    pub(crate) is_outbound: bool,
    /// The IP of its socket.
    pub(crate) remote_ip: std::net::IpAddr,
    /// The port of its socket (the dialed port for outbound peers).
    pub(crate) remote_port: u16,
    /// Connection counters.
    pub(crate) status: PeerStatus,
}

impl PeerView {
    /// `id@host:port` to dial this peer: the dialed address for an outbound peer, else the
    /// address it announced (with its socket IP when it announced an unspecified host).
    pub(crate) fn dial_address(&self) -> String {
        let host_port = if self.is_outbound {
            None
        } else {
            parse_host_port(&self.node_info.listen_addr, true)
                .ok()
                .map(|hp| {
                    let unspecified = hp.host.is_empty()
                        || hp
                            .host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_unspecified());
                    let host = if unspecified {
                        self.remote_ip.to_string()
                    } else {
                        hp.host
                    };
                    (host, hp.port)
                })
        };
        let (host, port) =
            host_port.unwrap_or_else(|| (self.remote_ip.to_string(), self.remote_port));
        if host.contains(':') {
            format!("{}@[{host}]:{port}", self.node_info.id)
        } else {
            format!("{}@{host}:{port}", self.node_info.id)
        }
    }
}

/// What the node shows through the RPC.
pub(crate) trait NodeView: Send + Sync + 'static {
    /// Our `NodeInfo`.
    fn node_info(&self) -> NodeInfo;
    /// Listener descriptions (`Listener(@<addr>)` as CometBFT prints them).
    fn listeners(&self) -> Vec<String>;
    /// Whether the p2p listener is up.
    fn listening(&self) -> bool;
    /// Connected peers.
    fn peers(&self) -> Vec<PeerView>;
}

/// `NodeInfo` as CometBFT's JSON shows it (numbers as strings, channels as upper-case hex).
pub(crate) fn node_info_json(n: &NodeInfo) -> Value {
    let channels: Vec<u8> = n.channels.iter().map(|c| c.0).collect();
    json!({
        "protocol_version": {
            "p2p": n.protocol_version.p2p.to_string(),
            "block": n.protocol_version.block.to_string(),
            "app": n.protocol_version.app.to_string(),
        },
        "id": n.id,
        "listen_addr": n.listen_addr,
        "network": n.network,
        "version": n.version,
        "channels": hex::encode_upper(channels),
        "moniker": n.moniker,
        "other": {
            "tx_index": n.other.tx_index,
            "rpc_address": n.other.rpc_address,
        },
    })
}

/// Go's zero `time.Time` in JSON.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn status_json(view: &dyn NodeView) -> Value {
    json!({
        "node_info": node_info_json(&view.node_info()),
        "sync_info": {
            "latest_block_hash": "",
            "latest_app_hash": "",
            "latest_block_height": "0",
            "latest_block_time": ZERO_TIME,
            "earliest_block_hash": "",
            "earliest_app_hash": "",
            "earliest_block_height": "0",
            "earliest_block_time": ZERO_TIME,
            "catching_up": false,
        },
        // A p2p node has no validator key: empty values of the right types.
        "validator_info": {
            "address": "",
            "pub_key": {"type": "tendermint/PubKeyEd25519", "value": ""},
            "voting_power": "0",
        },
    })
}

fn nanos(d: Duration) -> String {
    d.as_nanos().to_string()
}

fn monitor_json(f: &mukan_reactor_api::FlowStatus, duration: Duration) -> Value {
    json!({
        "Start": ZERO_TIME,
        "Bytes": f.bytes.to_string(),
        "Samples": "0",
        "InstRate": f.cur_rate.to_string(),
        "CurRate": f.cur_rate.to_string(),
        "AvgRate": f.avg_rate.to_string(),
        "PeakRate": f.cur_rate.max(f.avg_rate).to_string(),
        "BytesRem": "0",
        "Duration": nanos(duration),
        "Idle": "0",
        "TimeRem": "0",
        "Progress": 0,
        "Active": true,
    })
}

fn connection_status_json(s: &PeerStatus) -> Value {
    let channels: Vec<Value> = s
        .channels
        .iter()
        .map(|c| {
            json!({
                "ID": c.id.0,
                "SendQueueCapacity": c.send_queue_capacity.to_string(),
                "SendQueueSize": c.send_queue_size.to_string(),
                "Priority": c.priority.to_string(),
                "RecentlySent": c.recently_sent.to_string(),
            })
        })
        .collect();
    json!({
        "Duration": nanos(s.duration),
        "SendMonitor": monitor_json(&s.send, s.duration),
        "RecvMonitor": monitor_json(&s.recv, s.duration),
        "Channels": channels,
    })
}

fn net_info_json(view: &dyn NodeView) -> Value {
    let peers: Vec<Value> = view
        .peers()
        .iter()
        .map(|p| {
            json!({
                "node_info": node_info_json(&p.node_info),
                "is_outbound": p.is_outbound,
                "connection_status": connection_status_json(&p.status),
                "remote_ip": p.remote_ip.to_string(),
            })
        })
        .collect();
    json!({
        "listening": view.listening(),
        "listeners": view.listeners(),
        "n_peers": peers.len().to_string(),
        "peers": peers,
    })
}

fn peers_json(view: &dyn NodeView) -> Value {
    let peers: Vec<Value> = view
        .peers()
        .iter()
        .map(|p| {
            json!({
                "id": p.node_info.id,
                "address": p.dial_address(),
                "moniker": p.node_info.moniker,
                "network": p.node_info.network,
                "version": p.node_info.version,
                "is_outbound": p.is_outbound,
                "remote_ip": p.remote_ip.to_string(),
            })
        })
        .collect();
    json!({ "n_peers": peers.len(), "peers": peers })
}

/// The JSON-RPC envelope CometBFT uses.
fn envelope(id: &Value, result: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

fn rpc_error(id: &Value, code: i64, message: &str, data: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message, "data": data}})
        .to_string()
}

fn method_result(view: &dyn NodeView, method: &str) -> Option<Value> {
    Some(match method {
        "health" => json!({}),
        "status" => status_json(view),
        "net_info" => net_info_json(view),
        _ => return None,
    })
}

const JSON: &str = "application/json";

/// Answers one request.
pub(crate) fn respond(view: &dyn NodeView, req: &Req) -> Resp {
    let no_id = json!(-1);
    if req.method == Method::POST {
        let Ok(call) = serde_json::from_slice::<Value>(&req.body) else {
            return Resp::new(
                StatusCode::OK,
                JSON,
                rpc_error(&no_id, -32700, "Parse error", "invalid JSON"),
            );
        };
        let id = call.get("id").cloned().unwrap_or(Value::Null);
        let method = call.get("method").and_then(Value::as_str).unwrap_or("");
        let body = match method_result(view, method) {
            Some(r) => envelope(&id, r),
            None => rpc_error(&id, -32601, "Method not found", method),
        };
        return Resp::new(StatusCode::OK, JSON, body);
    }
    if req.method != Method::GET && req.method != Method::HEAD {
        return Resp::new(StatusCode::METHOD_NOT_ALLOWED, "text/plain", String::new());
    }
    let path = req.path.trim_start_matches('/');
    if path == "peers" {
        let persistent = req
            .query
            .as_deref()
            .is_some_and(|q| q.split('&').any(|kv| kv == "format=persistent_peers"));
        if persistent {
            let line: Vec<String> = view.peers().iter().map(PeerView::dial_address).collect();
            return Resp::new(
                StatusCode::OK,
                "text/plain",
                format!("{}\n", line.join(",")),
            );
        }
        return Resp::new(StatusCode::OK, JSON, peers_json(view).to_string());
    }
    if path.is_empty() {
        return Resp::new(
            StatusCode::OK,
            "text/plain",
            "mukan-p2p endpoints: /health /status /net_info /peers /peers?format=persistent_peers \
             (add chain=ID for another chain of a multi-chain node)\n"
                .into(),
        );
    }
    match method_result(view, path) {
        Some(r) => Resp::new(StatusCode::OK, JSON, envelope(&no_id, r)),
        None => Resp::new(
            StatusCode::NOT_FOUND,
            "text/plain",
            "404 page not found\n".into(),
        ),
    }
}

/// The HTTP handler over the views of several chains (one per home, the first home's first):
/// `?chain=ID` picks the chain (on every endpoint; default: the first); a chain this process
/// does not serve is a 404 naming those it serves.
pub(crate) fn chains_handler(views: Vec<(String, Arc<dyn NodeView>)>) -> Handler {
    let views = Arc::new(views);
    Arc::new(move |req: Req| {
        let views = views.clone();
        Box::pin(async move {
            let asked = crate::web::chain_param(req.query.as_deref());
            let view = match &asked {
                Some(c) => views.iter().find(|(id, _)| id == c),
                None => views.first(),
            };
            match view {
                Some((_, v)) => respond(v.as_ref(), &req),
                None => {
                    let served: Vec<&str> = views.iter().map(|(id, _)| id.as_str()).collect();
                    Resp::new(
                        StatusCode::NOT_FOUND,
                        "text/plain",
                        format!(
                            "unknown chain {:?}; this node serves: {}\n",
                            asked.unwrap_or_default(),
                            served.join(", ")
                        ),
                    )
                }
            }
        }) as Pin<Box<dyn Future<Output = Resp> + Send>>
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use mukan_reactor_api::{ChannelId, ChannelStatus, FlowStatus, Other, ProtocolVersion};

    use super::*;

    pub(crate) fn sample_info(moniker: &str, listen: &str) -> NodeInfo {
        NodeInfo {
            protocol_version: ProtocolVersion {
                p2p: 8,
                block: 11,
                app: 0,
            },
            id: "ab".repeat(20),
            listen_addr: listen.into(),
            network: "chain-x".into(),
            version: "0.1.0".into(),
            channels: vec![ChannelId(0x00)],
            moniker: moniker.into(),
            other: Other {
                tx_index: "off".into(),
                rpc_address: "tcp://127.0.0.1:26657".into(),
            },
        }
    }

    pub(crate) struct Fixed(pub(crate) Vec<PeerView>);

    impl NodeView for Fixed {
        fn node_info(&self) -> NodeInfo {
            sample_info("me", "tcp://0.0.0.0:26656")
        }
        fn listeners(&self) -> Vec<String> {
            vec!["Listener(@tcp://0.0.0.0:26656)".into()]
        }
        fn listening(&self) -> bool {
            true
        }
        fn peers(&self) -> Vec<PeerView> {
            self.0.clone()
        }
    }

    pub(crate) fn one_peer() -> Fixed {
        let status = PeerStatus::new(
            Duration::from_secs(3),
            FlowStatus::new(100, 10, 5),
            FlowStatus::new(50, 5, 2),
            vec![ChannelStatus::new(ChannelId(0), 10, 0, 1, 34)],
        );
        Fixed(vec![PeerView {
            node_info: sample_info("peer", "tcp://0.0.0.0:36656"),
            is_outbound: false,
            remote_ip: "127.0.0.2".parse().unwrap(),
            remote_port: 51000,
            status,
        }])
    }

    /// Every path of `v` with the JSON type at its end (arrays: their first element).
    fn shape(v: &Value, path: String, out: &mut BTreeMap<String, &'static str>) {
        let ty = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(a) => {
                if let Some(first) = a.first() {
                    shape(first, format!("{path}[]"), out);
                }
                "array"
            }
            Value::Object(o) => {
                for (k, x) in o {
                    shape(x, format!("{path}.{k}"), out);
                }
                "object"
            }
        };
        out.insert(path, ty);
    }

    fn fixture(name: &str) -> Value {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/rpc")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn get(path: &str) -> Value {
        let (p, q) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q.to_owned())));
        let resp = respond(
            &one_peer(),
            &Req {
                method: Method::GET,
                path: p.into(),
                query: q,
                headers: Default::default(),
                body: Default::default(),
            },
        );
        assert_eq!(resp.status, StatusCode::OK);
        serde_json::from_str(&resp.body).unwrap()
    }

    /// Every field we fill has the name and JSON type a real v0.38.25 node uses.
    fn compare(ours: &Value, go: &Value, must_have: &[&str]) {
        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        shape(ours, String::new(), &mut a);
        shape(go, String::new(), &mut b);
        for (path, ty) in &a {
            assert_eq!(
                b.get(path),
                Some(ty),
                "field {path}: ours is {ty}, Go's is {:?}",
                b.get(path)
            );
        }
        for path in must_have {
            assert!(a.contains_key(*path), "we do not fill {path}");
        }
    }

    #[test]
    fn status_has_cometbft_field_names_and_types() {
        compare(
            &get("/status"),
            &fixture("v0.38.25-status.json"),
            &[
                ".jsonrpc",
                ".id",
                ".result.node_info.protocol_version.p2p",
                ".result.node_info.id",
                ".result.node_info.listen_addr",
                ".result.node_info.network",
                ".result.node_info.version",
                ".result.node_info.channels",
                ".result.node_info.moniker",
                ".result.node_info.other.tx_index",
                ".result.node_info.other.rpc_address",
                ".result.sync_info.latest_block_height",
                ".result.sync_info.latest_block_time",
                ".result.sync_info.catching_up",
                ".result.validator_info.voting_power",
            ],
        );
    }

    #[test]
    fn net_info_has_cometbft_field_names_and_types() {
        compare(
            &get("/net_info"),
            &fixture("v0.38.25-net_info.json"),
            &[
                ".result.listening",
                ".result.listeners",
                ".result.n_peers",
                ".result.peers[].node_info.id",
                ".result.peers[].node_info.moniker",
                ".result.peers[].is_outbound",
                ".result.peers[].remote_ip",
                ".result.peers[].connection_status.Duration",
                ".result.peers[].connection_status.SendMonitor.Bytes",
                ".result.peers[].connection_status.Channels[].ID",
            ],
        );
        let v = get("/net_info");
        assert_eq!(v["result"]["n_peers"], "1");
        assert_eq!(v["result"]["peers"][0]["node_info"]["channels"], "00");
        assert_eq!(
            v["result"]["peers"][0]["node_info"]["protocol_version"]["block"],
            "11"
        );
    }

    #[test]
    fn health_and_json_rpc_post() {
        compare(
            &get("/health"),
            &fixture("v0.38.25-health.json"),
            &[".result"],
        );
        let resp = respond(
            &one_peer(),
            &Req {
                method: Method::POST,
                path: "/".into(),
                query: None,
                headers: Default::default(),
                body: br#"{"jsonrpc":"2.0","id":7,"method":"status","params":{}}"#[..].into(),
            },
        );
        let v: Value = serde_json::from_str(&resp.body).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["result"]["node_info"]["moniker"], "me");
        let resp = respond(
            &one_peer(),
            &Req {
                method: Method::POST,
                path: "/".into(),
                query: None,
                headers: Default::default(),
                body: br#"{"id":1,"method":"block"}"#[..].into(),
            },
        );
        assert!(resp.body.contains("-32601"), "{}", resp.body);
    }

    #[test]
    fn peers_list_and_persistent_peers_line() {
        let v = get("/peers");
        let addr = format!("{}@127.0.0.2:36656", "ab".repeat(20));
        assert_eq!(v["peers"][0]["address"], addr.as_str());
        assert_eq!(v["peers"][0]["moniker"], "peer");
        let resp = respond(
            &one_peer(),
            &Req {
                method: Method::GET,
                path: "/peers".into(),
                query: Some("format=persistent_peers".into()),
                headers: Default::default(),
                body: Default::default(),
            },
        );
        assert_eq!(resp.body, format!("{addr}\n"));
    }

    #[tokio::test]
    async fn served_over_http() {
        let listener = crate::http::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(crate::http::serve(
            listener,
            chains_handler(vec![("chain-x".into(), Arc::new(one_peer()))]),
            crate::http::Limits::rpc(),
            crate::http::HostAllow::new("127.0.0.1", &[]),
            stop_rx,
        ));
        let (code, body) = crate::http::client::get(addr, "/status").await;
        assert_eq!(code, 200);
        assert!(body.contains("\"moniker\":\"me\""), "{body}");
        let (code, _) = crate::http::client::get(addr, "/nope").await;
        assert_eq!(code, 404);
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }

    /// A node of `network` with no peers.
    struct OnChain(&'static str);

    impl NodeView for OnChain {
        fn node_info(&self) -> NodeInfo {
            let mut info = sample_info(self.0, "tcp://0.0.0.0:26656");
            info.network = self.0.into();
            info
        }
        fn listeners(&self) -> Vec<String> {
            Vec::new()
        }
        fn listening(&self) -> bool {
            true
        }
        fn peers(&self) -> Vec<PeerView> {
            Vec::new()
        }
    }

    /// `?chain=ID` picks the chain on every endpoint; none: the first; another: a 404 that
    /// names the chains served.
    #[tokio::test]
    async fn the_chain_parameter_picks_the_chain() {
        let h = chains_handler(vec![
            ("chain-a".into(), Arc::new(OnChain("chain-a"))),
            ("chain-b".into(), Arc::new(OnChain("chain-b"))),
        ]);
        let call = |path: &str, method: Method, body: &str| {
            let (p, q) = path
                .split_once('?')
                .map_or((path, None), |(p, q)| (p, Some(q.to_owned())));
            h(Req {
                method,
                path: p.into(),
                query: q,
                headers: Default::default(),
                body: bytes::Bytes::from(body.to_owned()),
            })
        };
        let network = |r: &Resp| {
            let v: Value = serde_json::from_str(&r.body).unwrap();
            v["result"]["node_info"]["network"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(network(&call("/status", Method::GET, "").await), "chain-a");
        assert_eq!(
            network(&call("/status?chain=chain-b", Method::GET, "").await),
            "chain-b"
        );
        let post = r#"{"jsonrpc":"2.0","id":1,"method":"status"}"#;
        assert_eq!(
            network(&call("/?chain=chain-b", Method::POST, post).await),
            "chain-b"
        );
        let peers = call(
            "/peers?chain=chain-b&format=persistent_peers",
            Method::GET,
            "",
        )
        .await;
        assert_eq!((peers.status, peers.body.as_str()), (StatusCode::OK, "\n"));
        let none = call("/peers?chain=chain-c", Method::GET, "").await;
        assert_eq!(none.status, StatusCode::NOT_FOUND);
        assert!(none.body.contains("chain-a, chain-b"), "{}", none.body);
    }
}
