//! Inbound admission when slots are scarce: the per-netgroup cap, and eviction when every
//! inbound slot is taken ([`select_victim`] over the connected inbound peers).
//!
//! Admission asks [`Inner::eviction_victim`] first, outside the switch's lock (it reads each
//! candidate's connection status), then decides under the lock with [`decide`], which checks
//! that the victim still holds its slot.

use std::sync::Arc;

use mukan_reactor_api::{AdmissionRefusal, NetGroup, NodeId};

use crate::eviction::{Candidate, Protection, select_victim};
use crate::peer_set::{Conn, Table};
use crate::switch::Inner;

/// What admission does with an inbound newcomer that counts against the inbound limit.
pub(crate) enum Decision {
    /// There is room.
    Admit,
    /// Admit it, and stop this peer to make room.
    Evict(Arc<Conn>),
    /// Refuse it.
    Refuse(AdmissionRefusal),
}

/// The newcomer, as admission sees it.
pub(crate) struct Newcomer {
    pub(crate) id: NodeId,
    /// `None` when exempt from the netgroup cap (unroutable address).
    pub(crate) group: Option<NetGroup>,
    /// A persistent peer: exempt from the netgroup cap.
    pub(crate) persistent: bool,
}

/// Decides about `newcomer` under the switch's lock: the netgroup cap first (a newcomer of a
/// full netgroup never evicts anyone), then the inbound limit, with `victim` (chosen by
/// [`Inner::eviction_victim`] just before) evicted if it still holds its slot.
pub(crate) fn decide(
    t: &Table,
    max_inbound: usize,
    max_per_group: usize,
    newcomer: &Newcomer,
    victim: Option<NodeId>,
) -> Decision {
    if let (Some(group), false) = (newcomer.group, newcomer.persistent) {
        let in_group = t
            .inbound_slots(newcomer.id)
            .filter(|c| NetGroup::capped(c.socket_addr.ip()) == Some(group))
            .count();
        if in_group >= max_per_group {
            return Decision::Refuse(AdmissionRefusal::NetgroupLimit);
        }
    }
    if t.inbound_counted(newcomer.id) < max_inbound {
        return Decision::Admit;
    }
    let held = victim.and_then(|v| t.inbound_slots(newcomer.id).find(|c| c.id == v));
    match held {
        Some(conn) if !conn.persistent => Decision::Evict(conn.clone()),
        _ => Decision::Refuse(AdmissionRefusal::InboundLimit),
    }
}

impl Inner {
    /// When the inbound slots are full, the peer that should make room for `newcomer`
    /// (None when there is room, or when every inbound peer is protected). Takes the
    /// switch's lock only to list the peers; their status is read outside it.
    pub(crate) fn eviction_victim(&self, newcomer: NodeId) -> Option<NodeId> {
        let conns: Vec<Arc<Conn>> = {
            let t = self.table.lock();
            if t.inbound_counted(newcomer) < self.config.max_num_inbound_peers {
                return None;
            }
            t.inbound_slots(newcomer).cloned().collect()
        };
        let candidates: Vec<Candidate> = conns
            .iter()
            .map(|c| Candidate {
                id: c.id,
                group: NetGroup::of(c.socket_addr.ip(), false),
                connected_at: c.connected_at.into_std(),
                min_ping: c.peer.status().min_ping,
                last_useful: c.last_useful().map(tokio::time::Instant::into_std),
                exempt: c.persistent,
            })
            .collect();
        select_victim(&candidates, &Protection::default(), self.group_key)
    }
}
