//! Fakes that record call traces, for testing reactors and switches (feature `test-util`).
//!
//! - [`RecordingReactor`] records every call a switch makes to it; [`check_grammar`] checks
//!   such a trace against the [reactor call grammar](crate#the-reactor-call-grammar).
//! - [`FakePeer`] records what a reactor sends.
//! - [`FakeSwitch`] records what a reactor asks of the switch.
//! - [`Traced`] wraps any reactor and records the switch's calls on it into a [`CallTrace`],
//!   for replaying them in the spec's Quint model (see the [`trace`] module).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;
use mukan_node_key::NodeId;

pub mod trace;
pub use trace::{CallTrace, TRACE_HEADER, TraceEvent, TraceParseError, Traced};

use crate::{
    BroadcastOutcome, BroadcastReport, ChannelDescriptor, ChannelId, DialError, Dialer, Direction,
    Envelope, NetAddress, Network, NodeInfo, ParsedAddress, Peer, PeerCounts, PeerData, PeerStatus,
    Reactor, ReactorError, SendError, StopReason, TrySendError,
};

/// One call made to a [`RecordingReactor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReactorCall {
    /// [`Reactor::channels`].
    Channels,
    /// [`Reactor::set_switch`].
    SetSwitch,
    /// [`Reactor::set_dialer`].
    SetDialer,
    /// [`Reactor::on_start`].
    OnStart,
    /// [`Reactor::on_stop`].
    OnStop,
    /// [`Reactor::init_peer`].
    InitPeer(NodeId),
    /// [`Reactor::add_peer`].
    AddPeer(NodeId),
    /// [`Reactor::remove_peer`], with the reason's `Display`.
    RemovePeer(NodeId, String),
    /// [`Reactor::receive`].
    Receive {
        /// The sender.
        peer: NodeId,
        /// The channel.
        channel: ChannelId,
        /// The message.
        message: Bytes,
    },
}

/// A reactor that records its calls and accepts every message (unless told to refuse).
#[derive(Debug)]
pub struct RecordingReactor {
    channels: Vec<ChannelDescriptor>,
    calls: Mutex<Vec<ReactorCall>>,
    refuse: AtomicBool,
}

impl RecordingReactor {
    /// A reactor owning `channels`.
    pub fn new(channels: Vec<ChannelDescriptor>) -> Self {
        Self {
            channels,
            calls: Mutex::new(Vec::new()),
            refuse: AtomicBool::new(false),
        }
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<ReactorCall> {
        lock(&self.calls).clone()
    }

    /// The calls so far, clearing the record.
    pub fn take_calls(&self) -> Vec<ReactorCall> {
        std::mem::take(&mut *lock(&self.calls))
    }

    /// The messages received so far, in order.
    pub fn received(&self) -> Vec<(NodeId, ChannelId, Bytes)> {
        lock(&self.calls)
            .iter()
            .filter_map(|c| match c {
                ReactorCall::Receive {
                    peer,
                    channel,
                    message,
                } => Some((*peer, *channel, message.clone())),
                _ => None,
            })
            .collect()
    }

    /// Makes [`Reactor::receive`] return an error from now on (or not).
    pub fn refuse_messages(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    fn record(&self, call: ReactorCall) {
        lock(&self.calls).push(call);
    }
}

impl Reactor for RecordingReactor {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        self.record(ReactorCall::Channels);
        self.channels.clone()
    }

    fn set_switch(&self, _switch: Weak<dyn Network>) {
        self.record(ReactorCall::SetSwitch);
    }

    fn set_dialer(&self, _dialer: Weak<dyn Dialer>) {
        self.record(ReactorCall::SetDialer);
    }

    fn on_start(&self) {
        self.record(ReactorCall::OnStart);
    }

    fn on_stop(&self) {
        self.record(ReactorCall::OnStop);
    }

    fn init_peer(&self, peer: &Arc<dyn Peer>) {
        self.record(ReactorCall::InitPeer(peer.id()));
    }

    fn add_peer(&self, peer: &Arc<dyn Peer>) {
        self.record(ReactorCall::AddPeer(peer.id()));
    }

    fn remove_peer(&self, peer: &Arc<dyn Peer>, reason: &StopReason) {
        self.record(ReactorCall::RemovePeer(peer.id(), reason.to_string()));
    }

    fn receive(&self, envelope: Envelope) -> Result<(), ReactorError> {
        let channel = envelope.channel;
        self.record(ReactorCall::Receive {
            peer: envelope.src.id(),
            channel,
            message: envelope.message,
        });
        if self.refuse.load(Ordering::SeqCst) {
            return Err(ReactorError::Violation {
                channel,
                rule: "message refused by RecordingReactor",
            });
        }
        Ok(())
    }
}

/// A call trace that breaks the reactor call grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("call #{index} ({call:?}) breaks the reactor grammar: {rule}")]
pub struct GrammarViolation {
    /// Position of the offending call in the trace.
    pub index: usize,
    /// The offending call.
    pub call: ReactorCall,
    /// The rule it breaks.
    pub rule: &'static str,
}

/// Checks a trace of one reactor against the grammar of `spec/p2p/reactor-api/reactor.md`
/// (see the [crate documentation](crate#the-reactor-call-grammar)). Each peer ID is followed
/// independently; a trace may end in the middle of a peer's management.
///
/// # Errors
/// The first [`GrammarViolation`].
pub fn check_grammar(trace: &[ReactorCall]) -> Result<(), GrammarViolation> {
    #[derive(Clone, Copy, PartialEq)]
    enum Phase {
        Registering,
        Registered,
        Dialer,
        Started,
        Stopped,
    }
    #[derive(Clone, Copy, PartialEq)]
    enum PeerPhase {
        Initialized,
        Added,
    }
    let mut phase = Phase::Registering;
    let mut peers: HashMap<NodeId, PeerPhase> = HashMap::new();
    for (index, call) in trace.iter().enumerate() {
        let fail = |rule| {
            Err(GrammarViolation {
                index,
                call: call.clone(),
                rule,
            })
        };
        match call {
            ReactorCall::Channels => {
                if phase != Phase::Registering {
                    return fail("channels is only asked at registration");
                }
            }
            ReactorCall::SetSwitch => {
                if phase != Phase::Registering {
                    return fail("set_switch comes once, before on_start");
                }
                phase = Phase::Registered;
            }
            ReactorCall::SetDialer => {
                if phase != Phase::Registered {
                    return fail("set_dialer comes once, right after set_switch");
                }
                phase = Phase::Dialer;
            }
            ReactorCall::OnStart => {
                if phase == Phase::Started || phase == Phase::Stopped {
                    return fail("on_start comes once");
                }
                phase = Phase::Started;
            }
            ReactorCall::OnStop => {
                if phase != Phase::Started {
                    return fail("on_stop comes once, after on_start");
                }
                if !peers.is_empty() {
                    return fail("on_stop comes after every peer was removed");
                }
                phase = Phase::Stopped;
            }
            ReactorCall::InitPeer(id) => {
                if phase != Phase::Started {
                    return fail("peer calls come between on_start and on_stop");
                }
                if peers.insert(*id, PeerPhase::Initialized).is_some() {
                    return fail("init_peer for a peer that was not removed");
                }
            }
            ReactorCall::AddPeer(id) => match peers.get_mut(id) {
                Some(p @ PeerPhase::Initialized) => *p = PeerPhase::Added,
                Some(PeerPhase::Added) => return fail("add_peer twice"),
                None => return fail("add_peer without init_peer"),
            },
            ReactorCall::Receive { peer, .. } => {
                if !peers.contains_key(peer) {
                    return fail("receive outside init_peer..remove_peer");
                }
            }
            ReactorCall::RemovePeer(id, _) => {
                if peers.remove(id).is_none() {
                    return fail("remove_peer without init_peer");
                }
            }
        }
    }
    Ok(())
}

/// A peer that records what is sent to it.
#[derive(Debug)]
pub struct FakePeer {
    id: NodeId,
    node_info: NodeInfo,
    direction: Direction,
    persistent: bool,
    socket_addr: NetAddress,
    sent: Mutex<Vec<(ChannelId, Bytes)>>,
    closed: AtomicBool,
    full: AtomicBool,
    data: PeerData,
}

impl FakePeer {
    /// An outbound, non-persistent peer at `127.0.0.1:26656` whose node info lists `channels`.
    pub fn new(id: NodeId, channels: Vec<ChannelId>) -> Self {
        let node_info = NodeInfo {
            id: id.to_string(),
            listen_addr: "tcp://127.0.0.1:26656".to_owned(),
            network: "test-chain".to_owned(),
            moniker: "fake".to_owned(),
            channels,
            ..NodeInfo::default()
        };
        Self {
            id,
            node_info,
            direction: Direction::Outbound,
            persistent: false,
            socket_addr: NetAddress::new(id, IpAddr::V4(Ipv4Addr::LOCALHOST), 26656),
            sent: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            full: AtomicBool::new(false),
            data: PeerData::default(),
        }
    }

    /// Sets the direction.
    #[must_use]
    pub fn with_direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Sets persistence.
    #[must_use]
    pub fn with_persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Sets the socket address.
    #[must_use]
    pub fn with_socket_addr(mut self, addr: NetAddress) -> Self {
        self.socket_addr = addr;
        self
    }

    /// Sets the node info.
    #[must_use]
    pub fn with_node_info(mut self, info: NodeInfo) -> Self {
        self.node_info = info;
        self
    }

    /// Messages accepted so far, in order.
    pub fn sent(&self) -> Vec<(ChannelId, Bytes)> {
        lock(&self.sent).clone()
    }

    /// Makes every send fail with `Closed` from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Makes sends fail as if the queue were full (`try_send`: `Full`, `send`: `Timeout`).
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    fn accept(&self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(TrySendError::Closed);
        }
        if !self.node_info.has_channel(channel) {
            return Err(TrySendError::UnknownChannel(channel));
        }
        if self.full.load(Ordering::SeqCst) {
            return Err(TrySendError::Full);
        }
        lock(&self.sent).push((channel, message));
        Ok(())
    }
}

impl Peer for FakePeer {
    fn id(&self) -> NodeId {
        self.id
    }

    fn node_info(&self) -> &NodeInfo {
        &self.node_info
    }

    fn direction(&self) -> Direction {
        self.direction
    }

    fn is_persistent(&self) -> bool {
        self.persistent
    }

    fn socket_addr(&self) -> NetAddress {
        self.socket_addr
    }

    fn status(&self) -> PeerStatus {
        PeerStatus::default()
    }

    fn send(
        &self,
        channel: ChannelId,
        message: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + '_>> {
        let result = self.accept(channel, message).map_err(|e| match e {
            TrySendError::Closed => SendError::Closed,
            TrySendError::UnknownChannel(c) => SendError::UnknownChannel(c),
            _ => SendError::Timeout,
        });
        Box::pin(std::future::ready(result))
    }

    fn try_send(&self, channel: ChannelId, message: Bytes) -> Result<(), TrySendError> {
        self.accept(channel, message)
    }

    fn data(&self) -> &PeerData {
        &self.data
    }
}

/// One call made to a [`FakeSwitch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchCall {
    /// [`Network::broadcast`].
    Broadcast(ChannelId, Bytes),
    /// [`Network::stop_peer_for_error`], with the reason.
    StopPeerForError(NodeId, ReactorError),
    /// [`Network::stop_peer_gracefully`].
    StopPeerGracefully(NodeId),
    /// [`Network::mark_peer_as_good`].
    MarkPeerAsGood(NodeId),
    /// [`Network::mark_useful`].
    MarkUseful(NodeId),
    /// [`Dialer::dial_peer_with_address`].
    Dial(NetAddress),
}

/// A switch that records what reactors ask of it. Peers and reactors are added by the test;
/// dials succeed without connecting anything; a stopped peer is removed from the peer list.
/// Host names resolve through a table the test sets ([`FakeSwitch::set_host`]), looked up at
/// every [`Dialer::dial_parsed_address`]. It is both the [`Network`] and the [`Dialer`].
pub struct FakeSwitch {
    address: NetAddress,
    hosts: Mutex<HashMap<String, IpAddr>>,
    peers: Mutex<Vec<Arc<dyn Peer>>>,
    reactors: Mutex<HashMap<String, Arc<dyn Reactor>>>,
    calls: Mutex<Vec<SwitchCall>>,
    dialing: Mutex<usize>,
    max_outbound: Mutex<usize>,
}

impl std::fmt::Debug for FakeSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSwitch")
            .field("address", &self.address)
            .field("calls", &*lock(&self.calls))
            .finish_non_exhaustive()
    }
}

impl FakeSwitch {
    /// A switch whose own address is `address`.
    pub fn new(address: NetAddress) -> Self {
        Self {
            address,
            hosts: Mutex::new(HashMap::new()),
            peers: Mutex::new(Vec::new()),
            reactors: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            dialing: Mutex::new(0),
            max_outbound: Mutex::new(10),
        }
    }

    /// Adds a connected peer.
    pub fn add_peer(&self, peer: Arc<dyn Peer>) {
        lock(&self.peers).push(peer);
    }

    /// Registers a reactor under `name`.
    pub fn add_reactor(&self, name: &str, reactor: Arc<dyn Reactor>) {
        lock(&self.reactors).insert(name.to_owned(), reactor);
    }

    /// Sets the number of dials in progress reported by [`Network::num_peers`].
    pub fn set_dialing(&self, n: usize) {
        *lock(&self.dialing) = n;
    }

    /// Sets what [`Dialer::max_num_outbound_peers`] reports (10 by default).
    pub fn set_max_outbound(&self, n: usize) {
        *lock(&self.max_outbound) = n;
    }

    /// Makes `host` resolve to `ip` from now on (`None`: not at all).
    pub fn set_host(&self, host: &str, ip: Option<IpAddr>) {
        let mut hosts = lock(&self.hosts);
        match ip {
            Some(ip) => hosts.insert(host.to_owned(), ip),
            None => hosts.remove(host),
        };
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<SwitchCall> {
        lock(&self.calls).clone()
    }

    /// The calls so far, clearing the record.
    pub fn take_calls(&self) -> Vec<SwitchCall> {
        std::mem::take(&mut *lock(&self.calls))
    }

    fn record(&self, call: SwitchCall) {
        lock(&self.calls).push(call);
    }

    fn remove(&self, id: &NodeId) {
        lock(&self.peers).retain(|p| p.id() != *id);
    }
}

impl Network for FakeSwitch {
    fn net_address(&self) -> NetAddress {
        self.address
    }

    fn peers(&self) -> Vec<Arc<dyn Peer>> {
        lock(&self.peers).clone()
    }

    fn peer(&self, id: &NodeId) -> Option<Arc<dyn Peer>> {
        lock(&self.peers).iter().find(|p| p.id() == *id).cloned()
    }

    fn num_peers(&self) -> PeerCounts {
        let peers = lock(&self.peers);
        let outbound = peers.iter().filter(|p| p.direction().is_outbound()).count();
        PeerCounts {
            outbound,
            inbound: peers.len() - outbound,
            dialing: *lock(&self.dialing),
        }
    }

    fn broadcast(&self, channel: ChannelId, message: Bytes) -> BroadcastReport {
        self.record(SwitchCall::Broadcast(channel, message.clone()));
        let outcomes = self
            .peers()
            .iter()
            .map(|p| {
                let outcome = match p.try_send(channel, message.clone()) {
                    Ok(()) => BroadcastOutcome::Queued,
                    Err(TrySendError::Full) => BroadcastOutcome::Full,
                    Err(TrySendError::UnknownChannel(_)) => BroadcastOutcome::UnknownChannel,
                    Err(_) => BroadcastOutcome::Closed,
                };
                (p.id(), outcome)
            })
            .collect();
        BroadcastReport { outcomes }
    }

    fn stop_peer_for_error(&self, id: &NodeId, reason: ReactorError) {
        self.record(SwitchCall::StopPeerForError(*id, reason));
        self.remove(id);
    }

    fn stop_peer_gracefully(&self, id: &NodeId) {
        self.record(SwitchCall::StopPeerGracefully(*id));
        self.remove(id);
    }

    fn mark_peer_as_good(&self, id: &NodeId) {
        self.record(SwitchCall::MarkPeerAsGood(*id));
    }

    fn mark_useful(&self, id: &NodeId) {
        self.record(SwitchCall::MarkUseful(*id));
    }

    fn reactor(&self, name: &str) -> Option<Arc<dyn Reactor>> {
        lock(&self.reactors).get(name).cloned()
    }
}

impl Dialer for FakeSwitch {
    fn max_num_outbound_peers(&self) -> usize {
        *lock(&self.max_outbound)
    }

    fn is_dialing_or_existing_address(&self, addr: &NetAddress) -> bool {
        lock(&self.peers).iter().any(|p| p.id() == addr.id())
    }

    fn dial_peer_with_address(
        &self,
        addr: NetAddress,
    ) -> Pin<Box<dyn Future<Output = Result<(), DialError>> + Send + '_>> {
        self.record(SwitchCall::Dial(addr));
        Box::pin(std::future::ready(Ok(())))
    }

    /// Resolves a host name through the table of [`FakeSwitch::set_host`], then dials (and
    /// records) the address it resolved to; an unknown name fails, recording nothing.
    fn dial_parsed_address(
        &self,
        addr: ParsedAddress,
    ) -> Pin<Box<dyn Future<Output = Result<(), DialError>> + Send + '_>> {
        match addr {
            ParsedAddress::Resolved(a) => self.dial_peer_with_address(a),
            ParsedAddress::Unresolved(u) => {
                let ip = lock(&self.hosts).get(&u.host).copied();
                match ip {
                    Some(ip) => self.dial_peer_with_address(u.with_ip(ip)),
                    None => {
                        let shown = u.with_ip(Ipv4Addr::UNSPECIFIED.into());
                        Box::pin(std::future::ready(Err(DialError::Unresolved(shown))))
                    }
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        NodeId([b; 20])
    }

    #[test]
    fn grammar_accepts_the_spec_sequences() {
        use ReactorCall::*;
        let recv = |p| Receive {
            peer: id(p),
            channel: ChannelId(1),
            message: Bytes::new(),
        };
        let trace = vec![
            Channels,
            SetSwitch,
            SetDialer,
            OnStart,
            InitPeer(id(1)),
            recv(1),
            AddPeer(id(1)),
            InitPeer(id(2)),
            recv(1),
            RemovePeer(id(2), "start error".into()),
            RemovePeer(id(1), "x".into()),
            InitPeer(id(1)),
            AddPeer(id(1)),
            RemovePeer(id(1), "x".into()),
            OnStop,
        ];
        assert_eq!(check_grammar(&trace), Ok(()));
    }

    #[test]
    fn grammar_rejects_each_violation() {
        use ReactorCall::*;
        let recv = |p| Receive {
            peer: id(p),
            channel: ChannelId(1),
            message: Bytes::new(),
        };
        let bad: Vec<(Vec<ReactorCall>, usize)> = vec![
            (vec![OnStart, AddPeer(id(1))], 1),
            (vec![OnStart, recv(1)], 1),
            (vec![OnStart, InitPeer(id(1)), InitPeer(id(1))], 2),
            (
                vec![OnStart, InitPeer(id(1)), AddPeer(id(1)), AddPeer(id(1))],
                3,
            ),
            (
                vec![
                    OnStart,
                    InitPeer(id(1)),
                    RemovePeer(id(1), String::new()),
                    recv(1),
                ],
                3,
            ),
            (vec![OnStart, RemovePeer(id(1), String::new())], 1),
            (vec![InitPeer(id(1))], 0),
            (vec![OnStart, InitPeer(id(1)), OnStop], 2),
            (vec![OnStart, OnStart], 1),
            (vec![OnStart, SetSwitch], 1),
            (vec![Channels, SetDialer], 1),
            (vec![Channels, SetSwitch, SetDialer, SetDialer], 3),
            (vec![OnStart, OnStop, InitPeer(id(1))], 2),
        ];
        for (trace, at) in bad {
            let err = check_grammar(&trace).unwrap_err();
            assert_eq!(err.index, at, "{trace:?}");
        }
    }

    #[test]
    fn fake_peer_records_and_refuses() {
        let p = FakePeer::new(id(1), vec![ChannelId(0x20)]);
        assert_eq!(
            p.try_send(ChannelId(0x20), Bytes::from_static(b"a")),
            Ok(())
        );
        assert_eq!(
            p.try_send(ChannelId(0x21), Bytes::new()),
            Err(TrySendError::UnknownChannel(ChannelId(0x21)))
        );
        p.set_full(true);
        assert_eq!(
            p.try_send(ChannelId(0x20), Bytes::new()),
            Err(TrySendError::Full)
        );
        p.close();
        assert_eq!(
            p.try_send(ChannelId(0x20), Bytes::new()),
            Err(TrySendError::Closed)
        );
        assert_eq!(p.sent(), vec![(ChannelId(0x20), Bytes::from_static(b"a"))]);
    }

    #[test]
    fn fake_switch_records_and_removes() {
        let addr = NetAddress::new(id(9), IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
        let sw = FakeSwitch::new(addr);
        let p: Arc<dyn Peer> = Arc::new(FakePeer::new(id(1), vec![ChannelId(0)]));
        sw.add_peer(p);
        assert_eq!(
            sw.num_peers(),
            PeerCounts {
                outbound: 1,
                inbound: 0,
                dialing: 0
            }
        );
        let bad = ReactorError::PeerRefused("bad");
        sw.stop_peer_for_error(&id(1), bad.clone());
        assert!(sw.peer(&id(1)).is_none());
        assert_eq!(sw.calls(), vec![SwitchCall::StopPeerForError(id(1), bad)]);
    }
}
