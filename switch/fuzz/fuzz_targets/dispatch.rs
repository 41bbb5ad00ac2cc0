//! The switch's receive dispatch: a started `Switch` over a scripted transport accepts one
//! inbound peer whose inbox plays back an arbitrary sequence of `(channel, message)` items
//! (and, possibly, a stop report from the connection), to two recording reactors (channels
//! 0x20 and 0x21, and 0x30; the second may refuse its messages).
//!
//! Invariants:
//! - no panic;
//! - each reactor receives exactly the messages on its channels, in order, up to the first
//!   item that ends the connection, and nothing after it;
//! - a message on a channel no reactor owns stops the peer with a protocol violation; a
//!   refused message stops it as reported by the reactor; a stop report from the connection
//!   is passed on as is; the end of the inbox is "closed by peer", and a peer still open when
//!   the switch stops is removed with "switch shut down";
//! - every reactor's call trace follows the reactor call grammar.
//!
//! One current-thread runtime per input.
#![no_main]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mukan_reactor_api::testing::{FakePeer, ReactorCall, RecordingReactor, check_grammar};
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Direction, InboxItem, ManagedPeer, NetAddress, NodeId, NodeInfo,
    Peer, PeerConfig, PeerData, PeerInbox, PeerStatus, ProtocolError, RecvLease, SendError,
    StopReason, TimeoutKind, Transport, TransportError, TrySendError,
};
use mukan_switch::{Builder, Config};

const CHANNELS_A: [ChannelId; 2] = [ChannelId(0x20), ChannelId(0x21)];
const CHANNEL_B: ChannelId = ChannelId(0x30);
const PEER: NodeId = NodeId([0x22; 20]);

#[derive(Clone)]
enum Item {
    Msg(ChannelId, Bytes),
    Stop(u8),
    /// The inbox is empty for a moment (it wakes itself).
    Pause,
}

fn stop_reason(code: u8) -> StopReason {
    match code % 4 {
        0 => StopReason::ClosedByPeer,
        1 => StopReason::Timeout(TimeoutKind::Pong),
        2 => StopReason::Protocol(ProtocolError::UnexpectedEof),
        _ => StopReason::SlowReceiver {
            channel: CHANNELS_A[0],
        },
    }
}

struct ScriptInbox {
    items: std::vec::IntoIter<Item>,
    /// After the script: `Pending` forever instead of the end of the stream.
    hang: bool,
    exhausted: Arc<AtomicBool>,
}

impl PeerInbox for ScriptInbox {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<InboxItem>> {
        match self.items.next() {
            Some(Item::Msg(channel, message)) => Poll::Ready(Some(InboxItem::Received {
                channel,
                message,
                lease: RecvLease::detached(),
            })),
            Some(Item::Stop(code)) => Poll::Ready(Some(InboxItem::Stopped(stop_reason(code)))),
            Some(Item::Pause) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => {
                self.exhausted.store(true, Ordering::SeqCst);
                if self.hang {
                    Poll::Pending
                } else {
                    Poll::Ready(None)
                }
            }
        }
    }
}

struct ScriptPeer {
    fake: FakePeer,
    inbox: Mutex<Option<ScriptInbox>>,
}

impl Peer for ScriptPeer {
    fn id(&self) -> NodeId {
        self.fake.id()
    }
    fn node_info(&self) -> &NodeInfo {
        self.fake.node_info()
    }
    fn direction(&self) -> Direction {
        self.fake.direction()
    }
    fn is_persistent(&self) -> bool {
        false
    }
    fn socket_addr(&self) -> NetAddress {
        self.fake.socket_addr()
    }
    fn status(&self) -> PeerStatus {
        PeerStatus::default()
    }
    fn send(
        &self,
        channel: ChannelId,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + '_>> {
        self.fake.send(channel, message)
    }
    fn try_send(&self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError> {
        self.fake.try_send(channel, message)
    }
    fn data(&self) -> &PeerData {
        self.fake.data()
    }
}

impl ManagedPeer for ScriptPeer {
    fn start(&self) -> Result<Box<dyn PeerInbox>, StopReason> {
        match self.inbox.lock().expect("inbox lock").take() {
            Some(inbox) => Ok(Box::new(inbox)),
            None => Err(StopReason::ClosedByPeer),
        }
    }
    fn stop(&self) {}
    fn flush_stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
    fn as_peer(self: Arc<Self>) -> Arc<dyn Peer> {
        self
    }
}

/// Hands out the one scripted peer, then waits forever (until the switch stops).
struct ScriptTransport {
    peer: Mutex<Option<Arc<ScriptPeer>>>,
}

impl Transport for ScriptTransport {
    fn net_address(&self) -> NetAddress {
        NetAddress::new(NodeId([0x11; 20]), IpAddr::V4(Ipv4Addr::LOCALHOST), 26656)
    }
    fn dial(
        &self,
        _addr: NetAddress,
        _config: PeerConfig,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + '_>>
    {
        Box::pin(std::future::ready(Err(TransportError::Closed)))
    }
    fn accept(
        &self,
        _config: PeerConfig,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn ManagedPeer>, TransportError>> + Send + '_>>
    {
        let peer = self.peer.lock().expect("peer lock").take();
        Box::pin(async move {
            match peer {
                Some(p) => Ok(p as Arc<dyn ManagedPeer>),
                None => std::future::pending().await,
            }
        })
    }
    fn close(&self) {}
}

fn descriptor(id: ChannelId) -> ChannelDescriptor {
    ChannelDescriptor::new(id, std::num::NonZeroU32::MIN)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let refuse_b = flags & 1 != 0;
    let hang = flags & 2 != 0;

    // The script, and what the reactors must see.
    let mut items = Vec::new();
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        match tag % 8 {
            0..=4 => {
                let channel = if tag & 0x80 != 0 {
                    ChannelId(rest.first().copied().unwrap_or(0))
                } else {
                    let known = [CHANNELS_A[0], CHANNELS_A[1], CHANNEL_B];
                    known[usize::from(rest.first().copied().unwrap_or(0)) % 3]
                };
                let len = usize::from(rest.get(1).copied().unwrap_or(0))
                    .min(rest.len().saturating_sub(2));
                let message = Bytes::copy_from_slice(rest.get(2..2 + len).unwrap_or(&[]));
                rest = rest.get(2 + len..).unwrap_or(&[]);
                items.push(Item::Msg(channel, message));
            }
            5 => {
                items.push(Item::Stop(rest.first().copied().unwrap_or(0)));
                rest = rest.get(1..).unwrap_or(&[]);
            }
            _ => items.push(Item::Pause),
        }
    }
    let mut want_a = Vec::new();
    let mut want_b = Vec::new();
    let mut want_reason = if hang {
        StopReason::Shutdown.to_string()
    } else {
        StopReason::ClosedByPeer.to_string()
    };
    for item in &items {
        match item {
            Item::Msg(channel, message) => {
                if CHANNELS_A.contains(channel) {
                    want_a.push((PEER, *channel, message.clone()));
                } else if *channel == CHANNEL_B {
                    want_b.push((PEER, *channel, message.clone()));
                    if refuse_b {
                        want_reason = format!(
                            "reported by a reactor: message refused by RecordingReactor \
                             (channel {channel})"
                        );
                        break;
                    }
                } else {
                    want_reason = format!(
                        "protocol violation: message on channel {channel}, which no reactor owns"
                    );
                    break;
                }
            }
            Item::Stop(code) => {
                want_reason = stop_reason(*code).to_string();
                break;
            }
            Item::Pause => {}
        }
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let a = Arc::new(RecordingReactor::new(
            CHANNELS_A.iter().copied().map(descriptor).collect(),
        ));
        let b = Arc::new(RecordingReactor::new(vec![descriptor(CHANNEL_B)]));
        b.refuse_messages(refuse_b);
        let exhausted = Arc::new(AtomicBool::new(false));
        let fake = FakePeer::new(PEER, vec![CHANNELS_A[0], CHANNELS_A[1], CHANNEL_B])
            .with_direction(Direction::Inbound);
        let peer = Arc::new(ScriptPeer {
            fake,
            inbox: Mutex::new(Some(ScriptInbox {
                items: items.into_iter(),
                hang,
                exhausted: exhausted.clone(),
            })),
        });
        let mut builder = Builder::new(Config::default());
        builder.add_reactor("a", a.clone()).expect("reactor a");
        builder.add_reactor("b", b.clone()).expect("reactor b");
        let sw = builder
            .build(ScriptTransport {
                peer: Mutex::new(Some(peer)),
            })
            .expect("switch");
        sw.start().expect("start");
        let removed = |r: &RecordingReactor| {
            r.calls()
                .iter()
                .any(|c| matches!(c, ReactorCall::RemovePeer(..)))
        };
        let mut settled = false;
        for _ in 0..100_000 {
            // Without `hang` the connection ends by itself; with it, it idles once drained.
            if removed(&a) || (hang && exhausted.load(Ordering::SeqCst)) {
                settled = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(settled, "the switch never drained the peer");
        sw.stop().await;

        assert_eq!(a.received(), want_a, "reactor a");
        assert_eq!(b.received(), want_b, "reactor b");
        for r in [&a, &b] {
            let calls = r.calls();
            if let Err(v) = check_grammar(&calls) {
                panic!("grammar violation {v:?} in {calls:?}");
            }
            let reasons: Vec<&String> = calls
                .iter()
                .filter_map(|c| match c {
                    ReactorCall::RemovePeer(id, reason) if *id == PEER => Some(reason),
                    _ => None,
                })
                .collect();
            assert_eq!(reasons, vec![&want_reason], "stop reasons");
        }
    });
});
