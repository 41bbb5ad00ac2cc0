//! The echo reactor, and the echo-client and stream roles built on it.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mukan_conformance_tests::consensus;
use mukan_node_key::NodeId;

use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Envelope, Network, Peer, Reactor, RecvLease, StopReason,
};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::cfg::Cfg;
use crate::events::Events;
use crate::node::Node;

/// The echo reactor's name in the switch.
pub(crate) const ECHO_REACTOR: &str = "ECHO";

/// Messages waiting to be echoed, per peer.
pub(crate) const ECHO_QUEUE_MESSAGES: usize = 100_000;
/// Bytes waiting to be echoed, per peer. Go's echo reactor blocks its receive path instead
/// (back-pressuring the sender through TCP); ours must not block, so it queues each message
/// with its receive-budget lease (the switch's back-pressure on that channel), and counts a
/// message beyond this bound as an `echo_failed`.
pub(crate) const ECHO_QUEUE_BYTES: usize = 256 << 20;

/// The echo reactor: owns the echo channel and the extra channels (`--channels`). Echo-channel
/// messages go back unchanged, in order, through a bounded per-peer queue and task (the
/// switch's delivery path never blocks); extra-channel messages are counted, consensus ones
/// decoded; peers joining and leaving are printed.
pub(crate) struct EchoReactor {
    pub(crate) ev: Events,
    pub(crate) descriptors: Vec<ChannelDescriptor>,
    pub(crate) echo_channel: ChannelId,
    pub(crate) quiet_echo: bool,
    pub(crate) stream_check: bool,
    /// `--mark-good`: every added peer is marked good in the book (through the switch).
    pub(crate) mark_good: bool,
    pub(crate) switch: Mutex<Option<Weak<dyn Network>>>,
    pub(crate) peers: Mutex<HashMap<NodeId, Arc<EchoPeer>>>,
    /// Echo-client role: the messages coming back from the target peer.
    pub(crate) client: Mutex<Option<ClientTap>>,
    /// The first peer added (echo-client role).
    pub(crate) first_peer: tokio::sync::watch::Sender<Option<NodeId>>,
}

pub(crate) struct ClientTap {
    pub(crate) peer: NodeId,
    pub(crate) tx: mpsc::Sender<Bytes>,
}

/// One peer's state in the echo reactor, from `init_peer` to `remove_peer`.
pub(crate) struct EchoPeer {
    pub(crate) added: std::sync::atomic::AtomicBool,
    /// Echo queue to the peer's sender task; dropped at `remove_peer`, which ends the task.
    pub(crate) echo_tx: mpsc::Sender<(Bytes, RecvLease)>,
    /// Bytes in `echo_tx`.
    pub(crate) queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Messages received per non-echo channel.
    pub(crate) counts: Mutex<HashMap<u8, u64>>,
    /// `--stream-check`: per channel, the next sequence number expected and the number of
    /// messages that were not it.
    pub(crate) streams: Mutex<HashMap<u8, (u64, u64)>>,
    /// Consensus messages per kind.
    pub(crate) consensus: Mutex<consensus::Tally>,
}

impl EchoReactor {
    pub(crate) fn new(cfg: &Cfg, ev: Events) -> Self {
        let echo = ChannelId(cfg.echo_channel);
        let mut descriptors = vec![
            ChannelDescriptor::new(echo, NonZeroU32::MIN)
                .with_send_queue_capacity(NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN))
                .with_recv_message_capacity(
                    NonZeroUsize::new(cfg.echo_max_msg).unwrap_or(NonZeroUsize::MIN),
                ),
        ];
        for &ch in &cfg.channels {
            if ch != cfg.echo_channel {
                descriptors.push(ChannelDescriptor::new(ChannelId(ch), NonZeroU32::MIN));
            }
        }
        let (first_peer, _) = tokio::sync::watch::channel(None);
        Self {
            ev,
            descriptors,
            echo_channel: echo,
            quiet_echo: cfg.quiet_echo,
            stream_check: cfg.stream_check,
            mark_good: cfg.mark_good,
            switch: Mutex::new(None),
            peers: Mutex::new(HashMap::new()),
            client: Mutex::new(None),
            first_peer,
        }
    }

    /// Decodes a consensus message (any of the consensus channels) with the suite's test
    /// decoder (`mukan_conformance_tests::consensus`) and reports the first three of each
    /// kind, then those whose count is a power of ten; the same for messages it does not
    /// understand (`consensus_error`).
    pub(crate) fn report_consensus(
        &self,
        state: &EchoPeer,
        id: NodeId,
        channel: ChannelId,
        message: &[u8],
    ) {
        let result = consensus::decode(message);
        let (count, report) = state.consensus.lock().record(&result);
        if !report {
            return;
        }
        let id = id.to_string();
        let ch = hex::encode([channel.0]);
        match result {
            Ok(d) => {
                let step = d.step.map_or(serde_json::Value::Null, Into::into);
                self.ev.emit(
                    "consensus",
                    kv!["id" => id, "ch" => ch, "type" => d.kind.name(), "height" => d.height,
                        "round" => d.round, "step" => step, "count" => count],
                );
            }
            Err(e) => {
                self.ev.emit(
                    "consensus_error",
                    kv!["id" => id, "ch" => ch, "error" => e.to_string(),
                        "bytes" => message.len(), "count" => count],
                );
            }
        }
    }
}

impl EchoReactor {
    /// `--stream-check`: one message of a `--stream-count` stream (`[seq u64 LE][total u64
    /// LE][padding]`). Counts the messages whose sequence number is not the next expected
    /// one (prints the first as `stream_gap`), and prints `stream_done` when the last one
    /// arrives.
    pub(crate) fn check_stream(
        &self,
        state: &EchoPeer,
        id: NodeId,
        channel: ChannelId,
        message: &[u8],
    ) {
        let field = |at: usize| {
            message
                .get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
        };
        let (Some(seq), Some(total)) = (field(0), field(8)) else {
            self.ev.emit(
                "stream_gap",
                kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                    "error" => "message shorter than 16 bytes"],
            );
            return;
        };
        let (received, bad) = {
            let mut streams = state.streams.lock();
            let entry = streams.entry(channel.0).or_insert((0, 0));
            let expected = entry.0;
            if seq != expected {
                entry.1 += 1;
                if entry.1 == 1 {
                    self.ev.emit(
                        "stream_gap",
                        kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                            "expected" => expected, "got" => seq],
                    );
                }
            }
            entry.0 = seq.saturating_add(1);
            (entry.0, entry.1)
        };
        if seq.saturating_add(1) == total {
            self.ev.emit(
                "stream_done",
                kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                    "total" => total, "next" => received, "out_of_order" => bad],
            );
        }
    }
}

/// Stream role: `--stream-count` sequenced messages on each extra channel to the first peer;
/// prints `stream_sent` at the end (or on the first failed send).
pub(crate) async fn run_stream(node: Arc<Node>) {
    let cfg = &node.cfg;
    let mut first = node.echo.first_peer.subscribe();
    let target = loop {
        if let Some(id) = *first.borrow() {
            break id;
        }
        if first.changed().await.is_err() {
            return;
        }
    };
    let Some(peer) = Network::peer(&*node.switch, &target) else {
        node.ev.emit(
            "stream_sent",
            kv!["ok" => false, "sent" => 0, "error" => "peer gone"],
        );
        return;
    };
    let channels: Vec<u8> = cfg
        .channels
        .iter()
        .copied()
        .filter(|&c| c != cfg.echo_channel)
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.echo_seed);
    let mut tick = tokio::time::interval(cfg.stream_interval.max(Duration::from_millis(1)));
    for seq in 0..cfg.stream_count {
        tick.tick().await;
        for &ch in &channels {
            let pad = rng.gen_range(0..4096usize);
            let mut msg = Vec::with_capacity(16 + pad);
            msg.extend_from_slice(&seq.to_le_bytes());
            msg.extend_from_slice(&cfg.stream_count.to_le_bytes());
            msg.resize(16 + pad, ch);
            if let Err(e) = peer.send(ChannelId(ch), Bytes::from(msg)).await {
                node.ev.emit(
                    "stream_sent",
                    kv!["ok" => false, "sent" => seq, "ch" => hex::encode([ch]),
                        "error" => e.to_string()],
                );
                return;
            }
        }
    }
    node.ev.emit(
        "stream_sent",
        kv!["ok" => true, "sent" => cfg.stream_count, "channels" => hex::encode(&channels),
            "peer" => target.to_string()],
    );
}

pub(crate) fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

impl Reactor for EchoReactor {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        self.descriptors.clone()
    }

    fn set_switch(&self, switch: Weak<dyn Network>) {
        *self.switch.lock() = Some(switch);
    }

    fn init_peer(&self, peer: &Arc<dyn Peer>) {
        let (echo_tx, mut echo_rx) = mpsc::channel::<(Bytes, RecvLease)>(ECHO_QUEUE_MESSAGES);
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queued_in_task = queued.clone();
        let sender = peer.clone();
        let channel = self.echo_channel;
        let ev = self.ev.clone();
        tokio::spawn(async move {
            while let Some((msg, lease)) = echo_rx.recv().await {
                let len = msg.len();
                queued_in_task.fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
                let sent = sender.send(channel, msg).await;
                drop(lease);
                if sent.is_err() {
                    ev.emit(
                        "echo_failed",
                        kv!["id" => sender.id().to_string(), "bytes" => len],
                    );
                    return;
                }
            }
        });
        let state = Arc::new(EchoPeer {
            added: std::sync::atomic::AtomicBool::new(false),
            echo_tx,
            queued,
            counts: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            consensus: Mutex::new(consensus::Tally::default()),
        });
        self.peers.lock().insert(peer.id(), state);
    }

    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        let id = peer.id();
        if let Some(state) = self.peers.lock().get(&id) {
            state
                .added
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let info = peer.node_info();
        let channels: Vec<u8> = info.channels.iter().map(|c| c.0).collect();
        self.ev.emit(
            "peer_added",
            kv![
                "id" => id.to_string(),
                "moniker" => info.moniker,
                "channels" => hex::encode(&channels),
                "network" => info.network,
                "version" => info.version,
                "listen_addr" => info.listen_addr,
                "p2p_version" => info.protocol_version.p2p,
                "block_version" => info.protocol_version.block,
                "app_version" => info.protocol_version.app,
                "tx_index" => info.other.tx_index,
                "rpc_address" => info.other.rpc_address,
                "outbound" => peer.direction().is_outbound(),
                "persistent" => peer.is_persistent(),
                "remote_addr" => peer.socket_addr().dial_string(),
            ],
        );
        if self.mark_good {
            let switch = self.switch.lock().as_ref().and_then(Weak::upgrade);
            if let Some(switch) = switch {
                switch.mark_peer_as_good(&id);
            }
        }
        self.first_peer.send_if_modified(|first| {
            if first.is_none() {
                *first = Some(id);
                true
            } else {
                false
            }
        });
    }

    fn remove_peer(&self, peer: &Arc<dyn Peer>, reason: &StopReason) {
        let id = peer.id();
        let state = self.peers.lock().remove(&id);
        if state.is_some_and(|s| s.added.load(std::sync::atomic::Ordering::Relaxed)) {
            self.ev.emit(
                "peer_removed",
                kv!["id" => id.to_string(), "reason" => reason.to_string()],
            );
        }
    }

    fn receive(&self, envelope: Envelope) -> Result<(), mukan_reactor_api::ReactorError> {
        let Envelope {
            src,
            channel,
            message,
            lease,
        } = envelope;
        let id = src.id();
        let Some(state) = self.peers.lock().get(&id).cloned() else {
            return Ok(());
        };
        if channel != self.echo_channel {
            let count = {
                let mut counts = state.counts.lock();
                let c = counts.entry(channel.0).or_insert(0u64);
                *c += 1;
                *c
            };
            if is_power_of_ten(count) {
                self.ev.emit(
                    "recv",
                    kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]),
                        "bytes" => message.len(), "count" => count],
                );
            }
            if self.stream_check {
                self.check_stream(&state, id, channel, &message);
            }
            if consensus::CHANNELS.contains(&channel.0) {
                self.report_consensus(&state, id, channel, &message);
            }
            return Ok(());
        }
        if let Some(tap) = &*self.client.lock() {
            if tap.peer == id {
                if tap.tx.try_send(message).is_err() {
                    self.ev
                        .emit("error", kv!["error" => "echo client: queue full or closed"]);
                }
                return Ok(());
            }
        }
        if !self.quiet_echo {
            self.ev.emit(
                "echo",
                kv!["id" => id.to_string(), "ch" => hex::encode([channel.0]), "bytes" => message.len()],
            );
        }
        let len = message.len();
        let queued = state
            .queued
            .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        if queued + len > ECHO_QUEUE_BYTES || state.echo_tx.try_send((message, lease)).is_err() {
            state
                .queued
                .fetch_sub(len, std::sync::atomic::Ordering::Relaxed);
            self.ev
                .emit("echo_failed", kv!["id" => id.to_string(), "bytes" => len]);
        }
        Ok(())
    }
}

/// Echo-client role: sends `--echo-client` messages to the first peer (or `--echo-peer`),
/// checks that they come back byte-exact and in order, prints `echo_summary`.
pub(crate) async fn run_client(node: &Arc<Node>) -> bool {
    let ev = &node.ev;
    let cfg = &node.cfg;
    let mut first = node.echo.first_peer.subscribe();
    let wanted: Option<NodeId> = cfg.echo_peer.as_deref().and_then(|s| s.parse().ok());
    let target = tokio::time::timeout(cfg.echo_connect_timeout, async {
        loop {
            if let Some(w) = wanted {
                if Network::peer(&*node.switch, &w).is_some() {
                    return Some(w);
                }
            } else if let Some(id) = *first.borrow() {
                return Some(id);
            }
            if first.changed().await.is_err() {
                return None;
            }
            if wanted.is_some() {
                continue;
            }
        }
    })
    .await
    .ok()
    .flatten();
    let Some(target) = target else {
        ev.emit(
            "echo_summary",
            kv!["ok" => false, "error" => format!("no peer connected within {:?}", cfg.echo_connect_timeout),
                "sent" => 0, "received" => 0],
        );
        return false;
    };
    let Some(peer) = Network::peer(&*node.switch, &target) else {
        return false;
    };
    let (tx, mut rx) = mpsc::channel(cfg.echo_client.max(1));
    *node.echo.client.lock() = Some(ClientTap { peer: target, tx });

    let sizes = echo_sizes(cfg.echo_client, cfg.echo_max_size, cfg.echo_seed);
    let started = Instant::now();
    let channel = ChannelId(cfg.echo_channel);
    let mut mismatches = 0usize;
    let mut first_mismatch: i64 = -1;
    let mut received = 0usize;
    let mut total = 0usize;
    let exchange = async {
        let sender = peer.clone();
        let payloads: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| echo_payload(i, n, cfg.echo_seed))
            .collect();
        let expected = payloads.clone();
        let interval = cfg.echo_interval;
        let send_all = async move {
            for (i, msg) in payloads.into_iter().enumerate() {
                if i > 0 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                sender.send(channel, msg).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        let recv_all = async {
            for (i, want) in expected.iter().enumerate() {
                let Some(got) = rx.recv().await else {
                    return Err("echo stream ended".to_owned());
                };
                received += 1;
                total += got.len();
                if got != *want {
                    mismatches += 1;
                    if first_mismatch < 0 {
                        first_mismatch = i as i64;
                        ev.emit(
                            "echo_mismatch",
                            kv!["index" => i, "want_bytes" => want.len(), "got_bytes" => got.len()],
                        );
                    }
                }
            }
            Ok(())
        };
        let (s, r) = tokio::join!(send_all, recv_all);
        s.and(r)
    };
    let failure = match tokio::time::timeout(cfg.echo_timeout, exchange).await {
        Ok(Ok(())) => String::new(),
        Ok(Err(e)) => e,
        Err(_) => format!("timed out after {:?}", cfg.echo_timeout),
    };
    let ok = failure.is_empty() && mismatches == 0 && received == sizes.len();
    ev.emit(
        "echo_summary",
        kv!["ok" => ok, "peer" => target.to_string(), "sent" => sizes.len(), "received" => received,
            "mismatches" => mismatches, "first_mismatch" => first_mismatch, "bytes" => total,
            "elapsed_ms" => started.elapsed().as_millis() as u64, "error" => failure],
    );
    ok
}

/// Edge sizes first, then seeded random sizes (85% ≤ 2 KiB, 12% ≤ 64 KiB, 3% up to max),
/// shuffled.
pub(crate) fn echo_sizes(n: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let edges = [
        0,
        1,
        2,
        3,
        4,
        1023,
        1024,
        1025,
        2047,
        2048,
        65535,
        65536,
        max.saturating_sub(1),
        max,
    ];
    let mut sizes: Vec<usize> = edges.into_iter().filter(|&e| e <= max).take(n).collect();
    while sizes.len() < n {
        let r = rng.gen_range(0..100);
        let (lo, hi) = match r {
            0..85 => (0, 2048),
            85..97 => (2049, 65536),
            _ => (65537, max),
        };
        let hi = hi.min(max);
        let lo = lo.min(hi);
        sizes.push(rng.gen_range(lo..=hi));
    }
    for i in (1..sizes.len()).rev() {
        let j = rng.gen_range(0..=i);
        sizes.swap(i, j);
    }
    sizes
}

/// Message `i`: its index in the first 4 bytes (little-endian), then seeded random bytes.
pub(crate) fn echo_payload(i: usize, size: usize, seed: u64) -> Bytes {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ ((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    let mut buf = vec![0u8; size];
    rng.fill(buf.as_mut_slice());
    let idx = (i as u32).to_le_bytes();
    let n = size.min(4);
    buf[..n].copy_from_slice(&idx[..n]);
    Bytes::from(buf)
}
