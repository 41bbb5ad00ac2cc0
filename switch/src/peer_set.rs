//! The switch's view of its connections: [`Conn`] (one upgraded connection and its stop
//! request), the reactor-facing [`PeerHandle`], and the [`Table`] of peers and dials.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use mukan_reactor_api::{
    ChannelId, Direction, IgnoredPeer, ManagedPeer, NetAddress, NodeId, NodeInfo, Observer, Peer,
    PeerData, PeerObserver, PeerStatus, SendError, StopReason, TrySendError,
};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::routing::Routes;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Admitted; waiting for a replaced connection to finish, or calling `init_peer`.
    Starting = 0,
    /// Started and announced with `add_peer`: listed by `peers()`.
    Added = 1,
    /// The stop path runs.
    Stopping = 2,
    /// `remove_peer` was called (or never needed); the task ended.
    Done = 3,
}

/// A stop asked of a connection's task; the first one wins.
#[derive(Clone, Debug)]
pub(crate) struct StopRequest {
    pub(crate) reason: StopReason,
    /// Flush the send queues before closing (graceful stop, shutdown).
    pub(crate) flush: bool,
}

/// One upgraded connection admitted by the switch, owned by one task that makes every
/// reactor call for it.
pub(crate) struct Conn {
    pub(crate) seq: u64,
    pub(crate) id: NodeId,
    pub(crate) peer: Arc<dyn ManagedPeer>,
    pub(crate) handle: Arc<dyn Peer>,
    /// Where the connection's traffic is reported (shared with the handle).
    pub(crate) traffic: Arc<Traffic>,
    pub(crate) direction: Direction,
    pub(crate) unconditional: bool,
    pub(crate) persistent: bool,
    pub(crate) socket_addr: NetAddress,
    pub(crate) connected_at: Instant,
    /// When a reactor last marked a message of this peer useful
    /// ([`Network::mark_useful`](mukan_reactor_api::Network::mark_useful)).
    last_useful: Mutex<Option<Instant>>,
    phase: AtomicU8,
    stop: Mutex<Option<StopRequest>>,
    /// Set with `stop`, read without a lock on the delivery path.
    stop_flag: AtomicBool,
    /// The delivery task, registered only while its inbox is empty.
    drain_waker: Mutex<Option<Waker>>,
    done: watch::Sender<bool>,
}

impl Conn {
    #[expect(
        clippy::too_many_arguments,
        reason = "a plain constructor of a private type"
    )]
    pub(crate) fn new(
        seq: u64,
        peer: Arc<dyn ManagedPeer>,
        observer: &dyn Observer,
        routes: Arc<Routes>,
        unconditional: bool,
        persistent: bool,
        direction: Direction,
        socket_addr: NetAddress,
        id: NodeId,
    ) -> Self {
        let traffic = Arc::new(Traffic {
            observer: OnceLock::new(),
            routes,
        });
        let handle = Arc::new(PeerHandle {
            peer: peer.clone(),
            traffic: traffic.clone(),
            persistent,
        });
        // The observer sees the reactor-facing handle (with the switch's idea of persistence).
        let _ = traffic.observer.set(observer.peer_connected(&*handle));
        Self {
            seq,
            id,
            peer,
            handle,
            traffic,
            direction,
            unconditional,
            persistent,
            socket_addr,
            connected_at: Instant::now(),
            last_useful: Mutex::new(None),
            phase: AtomicU8::new(Phase::Starting as u8),
            stop: Mutex::new(None),
            stop_flag: AtomicBool::new(false),
            drain_waker: Mutex::new(None),
            done: watch::channel(false).0,
        }
    }

    /// A reactor found a message of this peer useful, now.
    pub(crate) fn mark_useful(&self) {
        *self.last_useful.lock() = Some(Instant::now());
    }

    /// When a reactor last found a message of this peer useful.
    pub(crate) fn last_useful(&self) -> Option<Instant> {
        *self.last_useful.lock()
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Added,
            2 => Phase::Stopping,
            _ => Phase::Done,
        }
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// Asks the connection's task to stop; `false` if a stop was already asked (the first
    /// reason wins).
    pub(crate) fn request_stop(&self, reason: StopReason, flush: bool) -> bool {
        {
            let mut stop = self.stop.lock();
            if stop.is_some() {
                return false;
            }
            *stop = Some(StopRequest { reason, flush });
        }
        self.stop_flag.store(true, Ordering::Release);
        let waker = self.drain_waker.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Whether a stop was asked (lock-free).
    pub(crate) fn stop_flagged(&self) -> bool {
        self.stop_flag.load(Ordering::Acquire)
    }

    /// Registers the delivery task to be woken by a stop request; returns whether a stop was
    /// asked meanwhile (then the task must not wait).
    pub(crate) fn park_drain(&self, waker: &Waker) -> bool {
        {
            let mut slot = self.drain_waker.lock();
            match &*slot {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        self.stop_flagged()
    }

    /// Whether a stop was asked or the stop path runs.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stop.lock().is_some() || matches!(self.phase(), Phase::Stopping | Phase::Done)
    }

    pub(crate) fn stop_requested(&self) -> Option<StopRequest> {
        self.stop.lock().clone()
    }

    /// Settles the reason the connection stops for: the requested one if any, else
    /// `observed`, which is recorded so that later requests are no-ops.
    pub(crate) fn settle(&self, observed: StopReason) -> StopRequest {
        let mut stop = self.stop.lock();
        stop.get_or_insert(StopRequest {
            reason: observed,
            flush: false,
        })
        .clone()
    }

    pub(crate) fn finish(&self) {
        self.set_phase(Phase::Done);
        self.done.send_replace(true);
    }

    /// Resolves once the connection's task has ended.
    pub(crate) fn done(&self) -> watch::Receiver<bool> {
        self.done.subscribe()
    }
}

/// Where one connection's traffic is reported: its observer handle, and the routes that say
/// each message's type.
pub(crate) struct Traffic {
    /// Set once, right after the handle is built (the observer is shown the handle).
    observer: OnceLock<Box<dyn PeerObserver>>,
    routes: Arc<Routes>,
}

impl Traffic {
    /// The connection's observer handle.
    pub(crate) fn observer(&self) -> &dyn PeerObserver {
        match self.observer.get() {
            Some(o) => &**o,
            None => &IgnoredPeer,
        }
    }

    fn sent(&self, channel: ChannelId, message: &Bytes) {
        let message_type = self.routes.message_type(channel, message);
        self.observer().sent(channel, message_type, message.len());
    }
}

/// The [`Peer`] handed to reactors: the transport's peer, with the switch's idea of
/// persistence, reporting every message queued through it to the connection's observer.
struct PeerHandle {
    peer: Arc<dyn ManagedPeer>,
    traffic: Arc<Traffic>,
    persistent: bool,
}

impl Peer for PeerHandle {
    fn id(&self) -> NodeId {
        self.peer.id()
    }

    fn node_info(&self) -> &NodeInfo {
        self.peer.node_info()
    }

    fn direction(&self) -> Direction {
        self.peer.direction()
    }

    fn is_persistent(&self) -> bool {
        self.persistent
    }

    fn socket_addr(&self) -> NetAddress {
        self.peer.socket_addr()
    }

    fn status(&self) -> PeerStatus {
        self.peer.status()
    }

    fn send(
        &self,
        channel: ChannelId,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + '_>> {
        Box::pin(async move {
            let copy = message.clone();
            let result = self.peer.send(channel, message).await;
            if result.is_ok() {
                self.traffic.sent(channel, &copy);
            }
            result
        })
    }

    fn try_send(&self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError> {
        let copy = message.clone();
        let result = self.peer.try_send(channel, message);
        if result.is_ok() {
            self.traffic.sent(channel, &copy);
        }
        result
    }

    fn data(&self) -> &PeerData {
        self.peer.data()
    }
}

/// Whether the switch is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunState {
    Created,
    Starting,
    Running,
    Stopping,
    Stopped,
}

/// Peers and dials, behind the switch's one lock. No reactor or transport code runs while it
/// is held.
pub(crate) struct Table {
    pub(crate) state: RunState,
    /// The connection that holds each peer ID's slot.
    pub(crate) slots: HashMap<NodeId, Arc<Conn>>,
    /// Every connection whose task has not ended (slot holders and replaced ones).
    pub(crate) live: HashMap<u64, Arc<Conn>>,
    pub(crate) dialing_ids: HashSet<NodeId>,
    pub(crate) dialing_addrs: HashSet<String>,
    /// Dials in flight that count against the outbound limit.
    pub(crate) dialing_counted: usize,
    /// Persistent peers with a redial routine.
    pub(crate) reconnecting: HashSet<NodeId>,
    pub(crate) next_seq: u64,
}

impl Table {
    pub(crate) fn new() -> Self {
        Self {
            state: RunState::Created,
            slots: HashMap::new(),
            live: HashMap::new(),
            dialing_ids: HashSet::new(),
            dialing_addrs: HashSet::new(),
            dialing_counted: 0,
            reconnecting: HashSet::new(),
            next_seq: 0,
        }
    }

    /// Connected outbound peers that count against the outbound limit.
    pub(crate) fn outbound_counted(&self) -> usize {
        self.slots
            .values()
            .filter(|c| c.direction.is_outbound() && !c.unconditional && !c.persistent)
            .count()
    }

    /// Connected inbound peers that count against the inbound limit, other than `except`
    /// (those being stopped, an evicted one for instance, no longer count).
    pub(crate) fn inbound_counted(&self, except: NodeId) -> usize {
        self.inbound_slots(except).count()
    }

    /// The inbound connections holding a counted slot, other than `except`.
    pub(crate) fn inbound_slots(&self, except: NodeId) -> impl Iterator<Item = &Arc<Conn>> {
        self.slots.values().filter(move |c| {
            !c.direction.is_outbound() && !c.unconditional && c.id != except && !c.is_stopping()
        })
    }
}

/// A connected peer as `/net_info` lists it ([`Switch::peer_infos`](crate::Switch::peer_infos)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PeerInfo {
    /// What the peer announced in the handshake.
    pub node_info: NodeInfo,
    /// Who dialed.
    pub direction: Direction,
    /// The dialed address (outbound) or the remote socket address (inbound).
    pub socket_addr: NetAddress,
    /// The connection's counters.
    pub status: PeerStatus,
    /// A configured persistent peer.
    pub persistent: bool,
    /// A configured unconditional peer.
    pub unconditional: bool,
    /// Time since the switch admitted the connection.
    pub connected_for: Duration,
}

impl PeerInfo {
    pub(crate) fn of(conn: &Conn) -> Self {
        Self {
            node_info: conn.peer.node_info().clone(),
            direction: conn.direction,
            socket_addr: conn.socket_addr,
            status: conn.peer.status(),
            persistent: conn.persistent,
            unconditional: conn.unconditional,
            connected_for: conn.connected_at.elapsed(),
        }
    }
}
