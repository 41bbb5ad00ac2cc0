//! Admission of upgraded peers (limits, deny list, one connection per ID and which of two
//! survives) and the accept loop.

use std::sync::Arc;

use mukan_reactor_api::{
    AdmissionRefusal, Direction, ManagedPeer, NetGroup, NodeId, Observer, RejectDetail, StopReason,
    TransportError,
};

use crate::connection::run_conn;
use crate::dial::DialSlot;
use crate::inbound;
use crate::peer_set::{Conn, RunState};
use crate::switch::Inner;

impl Inner {
    /// Admits an upgraded peer: checks, takes its ID's slot (replacing a stopping
    /// connection, or the loser of a simultaneous dial), and starts its task.
    pub(crate) fn admit(
        self: &Arc<Self>,
        peer: Arc<dyn ManagedPeer>,
        dial: Option<&mut DialSlot>,
    ) -> Result<(), AdmissionRefusal> {
        let id = peer.id();
        let direction = peer.direction();
        let socket_addr = peer.socket_addr();
        let unconditional = self.unconditional.contains(&id);
        let persistent = self.persistent_ids.contains(&id);
        // Inbound peers count against the inbound limit and their netgroup's cap, unless
        // unconditional; when the slots are full, one may be evicted for the newcomer.
        let counted = direction == Direction::Inbound && !unconditional;
        let victim = if counted {
            self.eviction_victim(id)
        } else {
            None
        };
        let (conn, replaced, evicted) = {
            let mut t = self.table.lock();
            if t.state != RunState::Running {
                return Err(AdmissionRefusal::NotRunning);
            }
            if self.config.deny_list.denies(&socket_addr) {
                return Err(AdmissionRefusal::Denied);
            }
            let evicted = if counted {
                let newcomer = inbound::Newcomer {
                    id,
                    group: NetGroup::capped(socket_addr.ip()),
                    persistent,
                };
                let decision = inbound::decide(
                    &t,
                    self.config.max_num_inbound_peers,
                    self.config.max_inbound_per_netgroup,
                    &newcomer,
                    victim,
                );
                match decision {
                    inbound::Decision::Admit => None,
                    inbound::Decision::Evict(conn) => Some(conn),
                    inbound::Decision::Refuse(refusal) => return Err(refusal),
                }
            } else {
                None
            };
            let replaced = match t.slots.get(&id) {
                None => None,
                Some(old) if old.is_stopping() || self.keep_new(old.direction, direction, id) => {
                    Some(old.clone())
                }
                Some(_) => return Err(AdmissionRefusal::Duplicate),
            };
            let seq = t.next_seq;
            t.next_seq += 1;
            let conn = Arc::new(Conn::new(
                seq,
                peer,
                &self.observer,
                self.routes.clone(),
                unconditional,
                persistent,
                direction,
                socket_addr,
                id,
            ));
            t.slots.insert(id, conn.clone());
            t.live.insert(seq, conn.clone());
            if let Some(dial) = dial {
                dial.release(&mut t);
            }
            // Stopping counts at once: the victim no longer holds a slot.
            if let Some(victim) = &evicted {
                victim.request_stop(StopReason::Evicted, false);
            }
            (conn, replaced, evicted)
        };
        if let Some(victim) = evicted {
            victim.peer.stop();
        }
        let predecessor = replaced.map(|old| {
            // Replaced by a connection both sides keep: no flush, no redial.
            self.stop_conn(&old, StopReason::Graceful, false);
            old.done()
        });
        tokio::spawn(run_conn(self.clone(), conn, predecessor));
        Ok(())
    }

    /// Which of two connections to peer `their_id` both sides keep. When each side dialed the
    /// other, the connection dialed by the node with the smaller ID wins on both sides, so
    /// exactly one survives. Between two connections in the same direction the newer wins
    /// (the older one is most likely half-open).
    fn keep_new(&self, old: Direction, new: Direction, their_id: NodeId) -> bool {
        if old == new {
            return true;
        }
        let we_dialed_new = new.is_outbound();
        let we_are_smaller = self.our_id < their_id;
        we_dialed_new == we_are_smaller
    }
}

/// Accepts inbound peers until the transport closes (Go `acceptRoutine`).
pub(crate) async fn accept_loop(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            r = inner.transport.accept(inner.peer_config.clone()) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok(peer) => {
                if let Err(refusal) = inner.admit(peer.clone(), None) {
                    inner.observer.inbound_refused(&*peer, refusal);
                    peer.stop();
                }
            }
            Err(TransportError::Closed) => return,
            // One connection failed: report it and keep accepting.
            Err(e) => {
                inner.observer.inbound_failed(&e);
                if let TransportError::Rejected {
                    detail: RejectDetail::SelfConnection,
                    addr: Some(addr),
                } = e
                {
                    inner.saw_self(addr);
                }
            }
        }
    }
}
