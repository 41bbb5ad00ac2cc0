//! The local network on loopback.

use std::collections::HashMap;
use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_node_key::{NodeId, NodeKey};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, ManagedPeer, NetAddress, NodeInfo, Other, PeerConfig,
    ProtocolVersion, Transport,
};
use mukan_transport::TcpTransport;
use rand::RngCore;
use tokio::sync::mpsc;

/// The channel the demo talks on.
const DEMO: ChannelId = ChannelId(0x7e);

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) nodes: usize,
    pub(crate) messages: usize,
    pub(crate) size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 4,
            messages: 100,
            size: 1024,
        }
    }
}

/// What happened.
pub(crate) struct Report {
    opts: Options,
    nodes: Vec<(NodeId, std::net::SocketAddr)>,
    connect_time: Duration,
    exchange_time: Duration,
    delivered: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "local network of {} nodes on loopback:", self.opts.nodes)?;
        for (id, addr) in &self.nodes {
            writeln!(f, "  {id}@{addr}")?;
        }
        let links = self.opts.nodes * (self.opts.nodes - 1) / 2;
        writeln!(
            f,
            "{links} connections (secret connection + NodeInfo exchange + MConnection) in {:.1} ms",
            self.connect_time.as_secs_f64() * 1e3
        )?;
        let bytes = self.delivered * self.opts.size;
        write!(
            f,
            "{} messages of {} bytes delivered intact in {:.1} ms ({:.1} MB/s)",
            self.delivered,
            self.opts.size,
            self.exchange_time.as_secs_f64() * 1e3,
            bytes as f64 / self.exchange_time.as_secs_f64().max(1e-9) / 1e6
        )
    }
}

/// Received messages of one node, checked against what the sender put in them.
struct Inbox {
    tx: mpsc::Sender<(NodeId, Bytes)>,
    from: NodeId,
}

impl Inbox {
    /// Drains a started peer's inbox into the node's receiver.
    async fn pump(self, mut inbox: Box<dyn mukan_reactor_api::PeerInbox>) {
        while let Some(item) = inbox.recv().await {
            if let mukan_reactor_api::InboxItem::Received { message, .. } = item {
                // The receiver is sized for every message of the run, so this never drops.
                let _ = self.tx.try_send((self.from, message));
            }
        }
    }
}

/// Runs the network: listen, connect every pair, send, verify.
pub(crate) async fn run(opts: Options) -> Result<Report, String> {
    let n = opts.nodes;
    let descriptor = ChannelDescriptor::new(DEMO, NonZeroU32::MIN)
        .with_send_queue_capacity(NonZeroUsize::new(64).unwrap_or(NonZeroUsize::MIN));
    let peer_config = PeerConfig {
        channels: vec![descriptor],
        is_persistent: Arc::new(|_: &NetAddress| false),
    };
    let mut transports = Vec::with_capacity(n);
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let key = Arc::new(NodeKey::generate(&mut rand::rngs::OsRng));
        let info = NodeInfo {
            protocol_version: ProtocolVersion {
                p2p: 8,
                block: 11,
                app: 0,
            },
            id: key.node_id().to_string(),
            listen_addr: String::new(),
            network: "mukan-local".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            channels: vec![DEMO],
            moniker: format!("node{i}"),
            other: Other {
                tx_index: "off".into(),
                rpc_address: String::new(),
            },
        };
        // Every node is on 127.0.0.1; rate limits off to show what the stack can move.
        let mut config = mukan_transport::Config::default();
        config.allow_duplicate_ip = true;
        config.mconn = config.mconn.with_rates(None, None);
        let transport = TcpTransport::new(key.clone(), info, config);
        let addr = transport
            .listen("127.0.0.1:0".parse().map_err(|e| format!("{e}"))?)
            .await
            .map_err(|e| format!("listen: {e}"))?;
        nodes.push((key.node_id(), addr));
        transports.push(transport);
    }

    // Every node i dials every node j < i, so node i accepts n - 1 - i connections.
    let total_messages = opts.messages * (n - 1);
    let mut peers: Vec<HashMap<NodeId, Arc<dyn ManagedPeer>>> = vec![HashMap::new(); n];
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in transports.iter().enumerate() {
        for (id, addr) in nodes.iter().take(i) {
            let t = t.clone();
            let target = NetAddress::new(*id, addr.ip(), addr.port());
            let config = peer_config.clone();
            tasks.spawn(async move { (i, t.dial(target, config).await) });
        }
        for _ in i + 1..n {
            let t = t.clone();
            let config = peer_config.clone();
            tasks.spawn(async move { (i, t.accept(config).await) });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.map_err(|e| e.to_string())?;
        let peer = result.map_err(|e| format!("node{i}: {e}"))?;
        peers[i].insert(peer.id(), peer);
    }
    let connect_time = started.elapsed();
    for (i, p) in peers.iter().enumerate() {
        if p.len() != n - 1 {
            return Err(format!("node{i} has {} peers, expected {}", p.len(), n - 1));
        }
    }

    // Start every peer with an inbox, then send.
    let mut receivers = Vec::with_capacity(n);
    for node_peers in &peers {
        let (tx, rx) = mpsc::channel(total_messages.max(1));
        for (id, peer) in node_peers {
            let inbox = peer.start().map_err(|e| format!("start: {e}"))?;
            tokio::spawn(
                Inbox {
                    tx: tx.clone(),
                    from: *id,
                }
                .pump(inbox),
            );
        }
        receivers.push(rx);
    }
    let mut payload = vec![0u8; opts.size];
    rand::rngs::OsRng.fill_bytes(&mut payload);
    let payload = Bytes::from(payload);
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for node_peers in &peers {
        for peer in node_peers.values() {
            let peer = peer.clone();
            let payload = payload.clone();
            let count = opts.messages;
            senders.spawn(async move {
                for k in 0..count {
                    let mut msg = payload.to_vec();
                    let stamp = (k as u32).to_le_bytes();
                    let len = msg.len().min(4);
                    msg[..len].copy_from_slice(&stamp[..len]);
                    peer.send(DEMO, Bytes::from(msg))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            });
        }
    }
    let mut delivered = 0;
    let mut counts = HashMap::<(usize, NodeId), usize>::new();
    for (i, rx) in receivers.iter_mut().enumerate() {
        for _ in 0..total_messages {
            let (from, msg) = rx.recv().await.ok_or("a connection closed early")?;
            let k = counts.entry((i, from)).or_insert(0);
            // Messages arrive in order per connection: message k carries k in its head.
            let mut expected = payload.to_vec();
            let stamp = (*k as u32).to_le_bytes();
            let len = expected.len().min(4);
            expected[..len].copy_from_slice(&stamp[..len]);
            if msg[..] != expected[..] {
                return Err(format!(
                    "node{i}: message {k} from {from} is corrupt or out of order"
                ));
            }
            *k += 1;
            delivered += 1;
        }
    }
    while let Some(sent) = senders.join_next().await {
        sent.map_err(|e| e.to_string())??;
    }
    let exchange_time = started.elapsed();
    for node_peers in &peers {
        for peer in node_peers.values() {
            peer.flush_stop().await;
        }
    }
    for t in &transports {
        t.close();
    }
    Ok(Report {
        opts,
        nodes,
        connect_time,
        exchange_time,
        delivered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_pair_connects_and_every_message_arrives() {
        let report = run(Options {
            nodes: 3,
            messages: 20,
            size: 3000,
        })
        .await
        .unwrap();
        assert_eq!(report.nodes.len(), 3);
        assert_eq!(report.delivered, 3 * 2 * 20);
        let text = report.to_string();
        assert!(text.contains("3 connections"), "{text}");
    }
}
