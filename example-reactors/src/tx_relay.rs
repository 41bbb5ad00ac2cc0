//! `tx-relay`: a reactor on CometBFT's mempool channel (0x30) that gossips transactions.
//!
//! A transaction handed to [`TxRelay::broadcast_tx`] goes to every connected peer as
//! CometBFT's `mempool.Message{Txs}`; one received from a peer is reported to the program
//! (a bounded queue) and passed on to every other peer, once: the relay remembers the hashes
//! of the last [`SEEN_CAPACITY`] transactions it has seen. A Go node takes such a message
//! into its mempool (`CheckTx`) and, if the application accepts it, into a block.

use std::collections::{HashSet, VecDeque};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, Weak};

use bytes::Bytes;
use mukan_reactor_api::{
    BroadcastReport, ChannelDescriptor, ChannelId, Envelope, Network, NodeId, Reactor, ReactorError,
};
use prost::Message as _;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::proto::{MempoolMessage, MempoolSum, Txs};

/// How many transaction hashes the relay remembers, so that it passes each on once.
pub const SEEN_CAPACITY: usize = 10_000;
/// Go's mempool channel capacity: one message holding a transaction of the default
/// `max_tx_bytes` (1 MiB) and its framing.
const MAX_MESSAGE: usize = (1 << 20) + 16;

/// A transaction received from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedTx {
    /// The peer it came from.
    pub from: NodeId,
    /// The transaction.
    pub tx: Bytes,
}

/// Hashes seen, and the order to forget them in.
type Seen = (HashSet<[u8; 32]>, VecDeque<[u8; 32]>);

/// The relay reactor.
pub struct TxRelay {
    switch: OnceLock<Weak<dyn Network>>,
    seen: Mutex<Seen>,
    received: mpsc::Sender<ReceivedTx>,
    /// Received transactions not reported because the queue was full.
    pub dropped: AtomicU64,
}

/// `mempool.Message{Txs{txs}}`, encoded.
pub fn encode_txs(txs: Vec<Vec<u8>>) -> Bytes {
    let msg = MempoolMessage {
        sum: Some(MempoolSum::Txs(Txs { txs })),
    };
    msg.encode_to_vec().into()
}

impl TxRelay {
    /// A relay that reports received transactions to `received` (bounded: when it is full,
    /// they are still relayed, only not reported).
    pub fn new(received: mpsc::Sender<ReceivedTx>) -> Self {
        Self {
            switch: OnceLock::new(),
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
            received,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `tx` to every connected peer, without waiting (see
    /// [`Network::broadcast`]); an empty report when the relay is not registered.
    pub fn broadcast_tx(&self, tx: Bytes) -> BroadcastReport {
        self.first_sight(&tx);
        match self.switch.get().and_then(Weak::upgrade) {
            Some(sw) => sw.broadcast(ChannelId::MEMPOOL, encode_txs(vec![tx.to_vec()])),
            None => BroadcastReport::default(),
        }
    }

    /// Records `tx` as seen; true the first time.
    fn first_sight(&self, tx: &[u8]) -> bool {
        let hash: [u8; 32] = Sha256::digest(tx).into();
        let mut guard = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if !set.insert(hash) {
            return false;
        }
        order.push_back(hash);
        if order.len() > SEEN_CAPACITY {
            order.pop_front().map(|old| set.remove(&old));
        }
        true
    }
}

impl Reactor for TxRelay {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        let cap = NonZeroUsize::new(MAX_MESSAGE).unwrap_or(NonZeroUsize::MIN);
        let priority = NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN);
        vec![ChannelDescriptor::new(ChannelId::MEMPOOL, priority).with_recv_message_capacity(cap)]
    }

    fn set_switch(&self, switch: Weak<dyn Network>) {
        let _ = self.switch.set(switch);
    }

    fn receive(&self, envelope: Envelope) -> Result<(), ReactorError> {
        let channel = envelope.channel;
        let msg = MempoolMessage::decode(envelope.message.as_ref())
            .map_err(|source| ReactorError::Decode { channel, source })?;
        let Some(MempoolSum::Txs(Txs { txs })) = msg.sum else {
            let rule = "mempool message without Txs";
            return Err(ReactorError::Violation { channel, rule });
        };
        let from = envelope.src.id();
        // Drop the envelope (and its share of the channel's budget) before relaying.
        drop(envelope);
        let fresh: Vec<Vec<u8>> = txs.into_iter().filter(|tx| self.first_sight(tx)).collect();
        if fresh.is_empty() {
            return Ok(());
        }
        for tx in &fresh {
            let report = ReceivedTx {
                from,
                tx: Bytes::copy_from_slice(tx),
            };
            if self.received.try_send(report).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(sw) = self.switch.get().and_then(Weak::upgrade) {
            let msg = encode_txs(fresh);
            for peer in sw.peers().into_iter().filter(|p| p.id() != from) {
                // Never wait on the delivery task: a peer whose queue is full misses it.
                let _ = peer.try_send(ChannelId::MEMPOOL, msg.clone());
            }
        }
        Ok(())
    }
}
