//! The victim with our policy: the real [`PexCore`] and [`AddrBook`], fed what the switch
//! would feed them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use mukan_addrbook::{AddrBook, Config as BookConfig};
use mukan_pex::{Action, CoreConfig, DialOutcome, PeerInfo, PexCore, PexMessage};
use mukan_reactor_api::{AddressBook, NetAddress, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Cmd, OUTBOUND, PeerMeta, Victim};

pub(crate) struct OurVictim {
    cfg: CoreConfig,
    core: PexCore,
    book: AddrBook,
    rng: ChaCha8Rng,
    t0: Instant,
    w0: SystemTime,
    peers: BTreeMap<NodeId, PeerInfo>,
}

impl OurVictim {
    pub(crate) fn new(ours: NetAddress, seeds: Vec<NetAddress>, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut cfg = CoreConfig::default();
        cfg.seeds = seeds;
        cfg.our_address = Some(ours);
        cfg.max_outbound = OUTBOUND;
        let core = PexCore::new(cfg.clone(), ChaCha8Rng::seed_from_u64(rng.r#gen()));
        let book = AddrBook::new(
            BookConfig::with_strict(true),
            ChaCha8Rng::seed_from_u64(rng.r#gen()),
        );
        Self {
            cfg,
            core,
            book,
            rng,
            t0: Instant::now(),
            w0: SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000),
            peers: BTreeMap::new(),
        }
    }

    fn times(&self, at: Duration) -> (Instant, SystemTime) {
        (self.t0 + at, self.w0 + at)
    }

    fn cmds(&mut self, actions: Vec<Action>) -> Vec<Cmd> {
        let mut out = Vec::new();
        for a in actions {
            match a {
                Action::Send { peer, message } => {
                    if message == PexMessage::Request {
                        out.push(Cmd::Request(peer));
                    }
                }
                Action::StopPeer { peer, .. } | Action::Disconnect { peer } => {
                    out.push(Cmd::Disconnect(peer));
                }
                Action::Dial { addr } => out.push(Cmd::Dial(addr)),
                Action::Probe { addr } => out.push(Cmd::Probe(addr)),
                // The simulated victim has no inbound eviction to protect peers from.
                Action::SaveBook | Action::MarkUseful { .. } => {}
            }
        }
        out
    }

    fn info(p: &PeerMeta) -> PeerInfo {
        PeerInfo {
            id: p.id,
            direction: p.direction,
            socket_addr: p.socket,
            self_addr: Some(p.self_addr),
            persistent: false,
        }
    }
}

impl Victim for OurVictim {
    fn start(&mut self, at: Duration) -> Vec<Cmd> {
        let (t, w) = self.times(at);
        let acts = self.core.start(&mut self.book, t, w);
        self.cmds(acts)
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.core
            .next_deadline()
            .map(|d| d.saturating_duration_since(self.t0))
    }

    fn tick(&mut self, at: Duration) -> Vec<Cmd> {
        let (t, w) = self.times(at);
        let acts = self.core.tick(&mut self.book, t, w);
        self.cmds(acts)
    }

    fn connected(&mut self, peer: PeerMeta, at: Duration) -> Vec<Cmd> {
        let (t, w) = self.times(at);
        let info = Self::info(&peer);
        self.peers.insert(peer.id, info);
        let mut acts = self.core.peer_added(&mut self.book, info, t, w);
        if peer.direction.is_outbound() {
            acts.extend(self.core.dial_finished(
                &mut self.book,
                peer.socket,
                DialOutcome::Connected,
                t,
                w,
            ));
        }
        self.cmds(acts)
    }

    fn dial_failed(&mut self, addr: NetAddress, already: bool, at: Duration) -> Vec<Cmd> {
        let (t, w) = self.times(at);
        let outcome = if already {
            DialOutcome::AlreadyConnected
        } else {
            DialOutcome::Failed
        };
        let acts = self.core.dial_finished(&mut self.book, addr, outcome, t, w);
        self.cmds(acts)
    }

    fn disconnected(&mut self, id: NodeId, _at: Duration) {
        self.peers.remove(&id);
        self.core.peer_removed(&id);
    }

    fn addrs(&mut self, from: &PeerMeta, addrs: Vec<NetAddress>, at: Duration) -> Vec<Cmd> {
        let (t, w) = self.times(at);
        let info = Self::info(from);
        let bytes = PexMessage::Addrs(addrs).encode();
        let acts = self.core.receive(&mut self.book, &info, &bytes, t, w);
        self.cmds(acts)
    }

    fn probed(&mut self, addr: NetAddress, reached: bool, at: Duration) -> Vec<Cmd> {
        let (_, w) = self.times(at);
        self.core.probe_finished(&mut self.book, addr, reached, w);
        Vec::new()
    }

    fn restart(&mut self, at: Duration) {
        let (_, w) = self.times(at);
        // Clean stop: anchors and the book are saved; then a new process loads them.
        let anchors = self.core.anchors();
        let _ = self.core.stop();
        let bytes = self.book.to_json();
        let mut book = AddrBook::new(
            BookConfig::with_strict(true),
            ChaCha8Rng::seed_from_u64(self.rng.r#gen()),
        );
        // A book we wrote always loads; an empty one would only make the run harder.
        let _ = book.load_from_slice(&bytes, Path::new("addrbook.json"), w);
        self.book = book;
        let mut cfg = self.cfg.clone();
        cfg.anchors = anchors;
        self.core = PexCore::new(cfg, ChaCha8Rng::seed_from_u64(self.rng.r#gen()));
        self.peers.clear();
    }

    fn entries(&self) -> Vec<(NodeId, bool)> {
        self.book
            .addresses()
            .map(|a| (a.id(), self.book.is_good(&a)))
            .collect()
    }
}
