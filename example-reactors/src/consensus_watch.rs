//! `consensus-watch`: a read-only reactor on CometBFT's consensus channels that follows a
//! chain live, without RPC.
//!
//! Two parts, as every reactor should be split:
//! - [`Watch`], the sans-IO core: it is fed the messages of a peer and returns what to send
//!   back and what to report. It decodes every kind of every Go line, mirrors each peer's
//!   round state, gathers the votes and block parts of each height and, once the chain has
//!   moved past a height, reports its round, block hash and proposer (from the header the
//!   parts assemble into) and which validators prevoted and precommitted.
//! - [`ConsensusWatch`], the reactor: it runs the core on the switch's delivery task, sends
//!   the announcements with [`Peer::try_send`], and hands reports to a bounded queue that a
//!   printer task drains. Nothing in [`Reactor::receive`] blocks or does I/O.
//!
//! Why announce: a Go node gossips votes and block parts only to peers whose round state
//! (their last `NewRoundStep`) says they need them. The watcher tells each peer that it is at
//! that peer's own height and round, at step `NewHeight`, `NewRound` or `Propose` (never
//! later), so the node sends what any peer at that height gets: the proposal, its parts, the
//! prevotes and precommits of the round, and the last commit while it waits for the next
//! height. Go drops messages for other heights and stops a peer whose state goes backwards,
//! so the announced (height, round, step) only ever increases. Votes are not verified (the
//! watcher knows no validator set): it reports what it was told.

use std::collections::{BTreeMap, HashMap};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Envelope, Peer, Reactor, ReactorError, StopReason,
};
use prost::Message as _;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::proto::{BlockHeaderOnly, Consensus, ConsensusMessage, NewRoundStep, Part};

/// Go's `RoundStepPropose`: the latest step the watcher announces.
const STEP_PROPOSE: u32 = 3;
/// Go's `RoundStepPrevote`.
const STEP_PREVOTE: u32 = 4;
/// Go's `types.MaxVotesCount`: no validator index is above it.
const MAX_VOTES: i32 = 10_000;
/// Part sets gathered per height (a new round may propose another block).
const MAX_PART_SETS: usize = 4;

/// One height as observed, reported once the chain has moved past it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeightReport {
    /// The height.
    pub height: i64,
    /// The round that committed the block (precommits for its hash), else the last round seen.
    pub round: i32,
    /// Hash of the header the block parts assembled into (upper-case hex), if they did.
    pub block_hash: Option<String>,
    /// That header's proposer address (upper-case hex).
    pub proposer: Option<String>,
    /// Validator indexes whose prevote of `round` arrived.
    pub prevotes: Vec<u32>,
    /// Validator indexes whose precommit of `round` arrived.
    pub precommits: Vec<u32>,
}

/// What [`Watch::on_message`] asks of its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this encoded `NewRoundStep` to the peer on the state channel.
    Announce(Bytes),
    /// A height is complete.
    Report(HeightReport),
}

/// A consensus message the watcher does not understand: the peer is stopped for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// Not a valid encoding.
    #[error("undecodable consensus message: {0}")]
    Malformed(prost::DecodeError),
    /// No bytes, or a kind no Go line sends.
    #[error("consensus message of no known kind ({0} bytes)")]
    UnknownKind(usize),
}

/// What the watcher knows of one peer (the reactor keeps it in the peer's data).
#[derive(Debug, Default)]
pub struct PeerView {
    /// The peer's last round state.
    latest: Option<NewRoundStep>,
    /// What it was last told of ours: (height, round, step).
    announced: Option<(i64, i32, u32)>,
}

#[derive(Default)]
struct PartSet {
    total: u32,
    parts: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
}

#[derive(Default)]
struct Height {
    /// (round, vote type) → validator index → block hash voted for.
    votes: BTreeMap<(i32, i32), BTreeMap<u32, Vec<u8>>>,
    /// Merkle root → parts received.
    parts: HashMap<Vec<u8>, PartSet>,
    /// Assembled blocks: header hash → proposer address.
    blocks: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The sans-IO core: every height being gathered and the per-kind counts.
pub struct Watch {
    heights: BTreeMap<i64, Height>,
    /// Heights below this are reported (or were never seen); their messages are dropped.
    next_report: i64,
    /// The highest height a peer said it is at.
    tip: i64,
    max_block_bytes: usize,
    kinds: BTreeMap<&'static str, u64>,
}

impl Watch {
    /// A watcher that assembles blocks up to `max_block_bytes` (larger ones are reported
    /// without hash and proposer).
    pub fn new(max_block_bytes: usize) -> Self {
        Self {
            heights: BTreeMap::new(),
            next_report: 0,
            tip: 0,
            max_block_bytes,
            kinds: BTreeMap::new(),
        }
    }

    /// Messages decoded so far, per kind.
    pub fn kinds(&self) -> &BTreeMap<&'static str, u64> {
        &self.kinds
    }

    /// Feeds one consensus message from the peer seen as `peer`.
    ///
    /// # Errors
    /// The message is undecodable or of no known kind.
    pub fn on_message(
        &mut self,
        peer: &mut PeerView,
        msg: &[u8],
    ) -> Result<Vec<Action>, WatchError> {
        let decoded = ConsensusMessage::decode(msg).map_err(WatchError::Malformed)?;
        let sum = decoded.sum.ok_or(WatchError::UnknownKind(msg.len()))?;
        *self.kinds.entry(sum.name()).or_default() += 1;
        let mut actions = Vec::new();
        match sum {
            Consensus::NewRoundStep(m) => {
                self.tip = self.tip.max(m.height);
                peer.latest = Some(m);
                // A height is past when a peer is two ahead, or one ahead, prevoting, and the
                // block is in (it may still come from the node's store, see `announce`).
                let ready = m.step >= STEP_PREVOTE && self.complete(m.height - 1);
                let bound = if ready { m.height } else { m.height - 1 };
                actions.extend(self.report_below(bound).into_iter().map(Action::Report));
                actions.extend(self.announce(peer));
            }
            Consensus::Vote(m) => {
                let v = m.vote.unwrap_or_default();
                if (0..MAX_VOTES).contains(&v.validator_index) {
                    if let Some(h) = self.height(v.height) {
                        let hash = v.block_id.map(|b| b.hash).unwrap_or_default();
                        let votes = h.votes.entry((v.round, v.r#type)).or_default();
                        votes.insert(v.validator_index.unsigned_abs(), hash);
                    }
                }
            }
            Consensus::BlockPart(m) => {
                let max = self.max_block_bytes;
                if let (Some(h), Some(part)) = (self.height(m.height), m.part) {
                    if h.add_part(part, max) {
                        actions.extend(self.announce(peer));
                    }
                }
            }
            _ => {}
        }
        Ok(actions)
    }

    /// Our round state for `peer`: the peer's own height and round, at a step no later than
    /// `Propose`, if that is newer than what it was told. While the block of the height we
    /// are at is missing and the peer is only one height ahead, we stay behind: the node then
    /// sends that block's parts and its last commit (Go's catch-up gossip).
    fn announce(&self, peer: &mut PeerView) -> Option<Action> {
        let m = peer.latest?;
        let want = (m.height, m.round, m.step.min(STEP_PROPOSE));
        if let Some(last) = peer.announced {
            if want <= last || (m.height == last.0 + 1 && !self.complete(last.0)) {
                return None;
            }
        }
        peer.announced = Some(want);
        let ours = NewRoundStep {
            step: want.2,
            seconds_since_start_time: 0,
            ..m
        };
        let msg = ConsensusMessage {
            sum: Some(Consensus::NewRoundStep(ours)),
        };
        Some(Action::Announce(msg.encode_to_vec().into()))
    }

    /// Whether `height` is reported, or its block assembled.
    fn complete(&self, height: i64) -> bool {
        height < self.next_report
            || self
                .heights
                .get(&height)
                .is_some_and(|h| !h.blocks.is_empty())
    }

    /// The state of `height`, if it is one being gathered (not reported, not far ahead).
    fn height(&mut self, height: i64) -> Option<&mut Height> {
        let open = height >= self.next_report && height <= self.tip + 1;
        open.then(|| self.heights.entry(height).or_default())
    }

    /// Reports every gathered height below `bound`, lowest first.
    fn report_below(&mut self, bound: i64) -> Vec<HeightReport> {
        if bound <= self.next_report {
            return Vec::new();
        }
        self.next_report = bound;
        let rest = self.heights.split_off(&bound);
        let done = std::mem::replace(&mut self.heights, rest);
        done.into_iter().map(|(n, h)| h.report(n)).collect()
    }
}

impl Height {
    /// Adds a part to the part set its proof leads to; true when that completes a block.
    fn add_part(&mut self, part: Part, max_bytes: usize) -> bool {
        let Some(proof) = part.proof.as_ref() else {
            return false;
        };
        let leaf: [u8; 32] = Sha256::new()
            .chain_update([0])
            .chain_update(&part.bytes)
            .finalize()
            .into();
        let Ok(total) = u32::try_from(proof.total) else {
            return false;
        };
        if proof.leaf_hash != leaf || proof.index != i64::from(part.index) || part.index >= total {
            return false;
        }
        let Some(root) = root_from_aunts(part.index.into(), total.into(), leaf, &proof.aunts)
        else {
            return false;
        };
        if !self.parts.contains_key(root.as_slice()) && self.parts.len() >= MAX_PART_SETS {
            return false;
        }
        let set = self.parts.entry(root.to_vec()).or_insert_with(|| PartSet {
            total,
            ..PartSet::default()
        });
        if set.total != total
            || set.bytes + part.bytes.len() > max_bytes
            || set.parts.contains_key(&part.index)
        {
            return false;
        }
        set.bytes += part.bytes.len();
        set.parts.insert(part.index, part.bytes);
        if set.parts.len() == total as usize {
            let block: Vec<u8> = set.parts.values().flatten().copied().collect();
            let header = BlockHeaderOnly::decode(block.as_slice())
                .ok()
                .and_then(|b| b.header);
            if let Some(Ok(header)) = header.map(tendermint::block::Header::try_from) {
                let proposer = header.proposer_address.as_bytes().to_vec();
                self.blocks
                    .insert(header.hash().as_bytes().to_vec(), proposer);
                return true;
            }
        }
        false
    }

    fn report(self, height: i64) -> HeightReport {
        const PREVOTE: i32 = 1;
        const PRECOMMIT: i32 = 2;
        // The committed block: an assembled one that got precommits, in the latest such round.
        let committed = self.votes.iter().rev().find_map(|((round, t), votes)| {
            let hit = votes
                .values()
                .find(|h| *t == PRECOMMIT && self.blocks.contains_key(*h));
            hit.map(|h| (*round, h.clone()))
        });
        let last_round = self.votes.keys().map(|(r, _)| *r).max().unwrap_or(0);
        let (round, hash) = match committed {
            Some((r, h)) => (r, Some(h)),
            None => (last_round, self.blocks.keys().next().cloned()),
        };
        let indexes = |t: i32| -> Vec<u32> {
            self.votes
                .get(&(round, t))
                .map(|v| v.keys().copied().collect())
                .unwrap_or_default()
        };
        HeightReport {
            height,
            round,
            proposer: hash
                .as_ref()
                .and_then(|h| self.blocks.get(h))
                .map(hex::encode_upper),
            block_hash: hash.map(hex::encode_upper),
            prevotes: indexes(PREVOTE),
            precommits: indexes(PRECOMMIT),
        }
    }
}

/// The Merkle root a part's proof leads to (Go `merkle.computeHashFromAunts`, RFC 6962 tree
/// shape: leaves `SHA256(0x00 || leaf)`, inner nodes `SHA256(0x01 || left || right)`).
fn root_from_aunts(index: u64, total: u64, leaf: [u8; 32], aunts: &[Vec<u8>]) -> Option<[u8; 32]> {
    if total <= 1 {
        return aunts.is_empty().then_some(leaf);
    }
    let (last, rest) = aunts.split_last()?;
    let split = 1u64 << (63 - (total - 1).leading_zeros());
    let inner = |l: &[u8], r: &[u8]| {
        Sha256::new()
            .chain_update([1])
            .chain_update(l)
            .chain_update(r)
            .finalize()
            .into()
    };
    if index < split {
        root_from_aunts(index, split, leaf, rest).map(|l| inner(&l, last))
    } else {
        root_from_aunts(index - split, total - split, leaf, rest).map(|r| inner(last, &r))
    }
}

/// The reactor: [`Watch`] on the delivery task, reports to a bounded queue.
pub struct ConsensusWatch {
    watch: Mutex<Watch>,
    reports: mpsc::Sender<HeightReport>,
    /// Reports dropped because the queue was full (the printer fell behind).
    pub dropped: AtomicU64,
    /// Announcements that could not be queued to a peer.
    pub unsent: AtomicU64,
    /// Messages not understood (each stopped its peer), and the last such error.
    pub undecodable: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ConsensusWatch {
    /// A watcher whose reports go to `reports` (bounded: when it is full, reports are dropped
    /// and counted, and nothing else slows down).
    pub fn new(max_block_bytes: usize, reports: mpsc::Sender<HeightReport>) -> Self {
        Self {
            watch: Mutex::new(Watch::new(max_block_bytes)),
            reports,
            dropped: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The last message not understood, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Messages decoded so far, per kind.
    pub fn kinds(&self) -> BTreeMap<&'static str, u64> {
        self.watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .kinds()
            .clone()
    }
}

impl Reactor for ConsensusWatch {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        // Go's priorities and send queues (consensus/reactor.go: GetChannels); 1 MiB per message.
        let n = |v: usize| NonZeroUsize::new(v).unwrap_or(NonZeroUsize::MIN);
        [
            (0x20, 6, 100),
            (0x21, 10, 100),
            (0x22, 7, 100),
            (0x23, 1, 2),
        ]
        .map(|(id, p, q)| {
            let p = NonZeroU32::new(p).unwrap_or(NonZeroU32::MIN);
            ChannelDescriptor::new(ChannelId(id), p)
                .with_send_queue_capacity(n(q))
                .with_recv_message_capacity(n(1 << 20))
        })
        .to_vec()
    }

    fn init_peer(&self, peer: &Arc<dyn Peer>) {
        peer.data().insert(Mutex::new(PeerView::default()));
    }

    fn receive(&self, envelope: Envelope) -> Result<(), ReactorError> {
        let view = envelope
            .src
            .data()
            .get::<Mutex<PeerView>>()
            .unwrap_or_default();
        let mut view = view.lock().unwrap_or_else(PoisonError::into_inner);
        let result = self
            .watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .on_message(&mut view, &envelope.message);
        let channel = envelope.channel;
        let actions = result.map_err(|e| {
            self.undecodable.fetch_add(1, Ordering::Relaxed);
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
            match e {
                WatchError::Malformed(source) => ReactorError::Decode { channel, source },
                WatchError::UnknownKind(_) => {
                    let rule = "consensus message of no known kind";
                    ReactorError::Violation { channel, rule }
                }
            }
        })?;
        for action in actions {
            match action {
                Action::Announce(msg) => {
                    if envelope
                        .src
                        .try_send(ChannelId::CONSENSUS_STATE, msg)
                        .is_err()
                    {
                        self.unsent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Action::Report(r) => {
                    if self.reports.try_send(r).is_err() {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(())
    }

    fn remove_peer(&self, peer: &Arc<dyn Peer>, _reason: &StopReason) {
        peer.data().remove::<Mutex<PeerView>>();
    }
}
