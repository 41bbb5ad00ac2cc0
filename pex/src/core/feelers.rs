//! Feelers: the periodic probe of one address (Bitcoin Core's) that settles the address book's
//! pending promotions and tests addresses it knows but never reached.

use super::*;

impl PexCore {
    /// One feeler (Bitcoin Core's, every 2 minutes): settle the collisions whose test is
    /// done, then probe the old entry a pending promotion would evict, else a random
    /// new-table address. Never more than one probe at a time.
    pub(super) fn feeler(
        &mut self,
        book: &mut dyn AddressBook,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        book.resolve_collisions(wall);
        if self.probing.is_some() {
            return;
        }
        let mut target = book
            .tried_collision()
            .filter(|a| self.probe_target(book, a, now, wall));
        for _ in 0..8 {
            if target.is_some() {
                break;
            }
            target = book
                .pick_address(100)
                .filter(|a| self.probe_target(book, a, now, wall));
        }
        if let Some(addr) = target {
            self.probing = Some(addr);
            out.push(Action::Probe { addr });
        }
    }

    pub(super) fn probe_target(
        &self,
        book: &dyn AddressBook,
        addr: &NetAddress,
        now: Instant,
        wall: SystemTime,
    ) -> bool {
        let id = addr.id();
        !(self.peers.contains_key(&id)
            || self.dialing.contains_key(&id)
            || self.cfg.persistent_ids.contains(&id)
            || self.cfg.our_address.is_some_and(|o| o.id() == id)
            || self.is_banned(&id, now)
            || book.is_banned(addr, wall))
    }

    /// A feeler could not be run (no probe capability, or the runtime is gone): forgotten,
    /// nothing is marked.
    pub fn probe_cancelled(&mut self, addr: NetAddress) {
        if self.probing == Some(addr) {
            self.probing = None;
        }
    }

    /// A feeler ended: `reached` when the handshake and `NodeInfo` exchange completed with
    /// the ID we dialed. Success marks the address good (into the old table, or a
    /// collision to test); failure counts as a failed attempt.
    pub fn probe_finished(
        &mut self,
        book: &mut dyn AddressBook,
        addr: NetAddress,
        reached: bool,
        wall: SystemTime,
    ) {
        if self.probing == Some(addr) {
            self.probing = None;
        }
        if reached {
            book.mark_good(addr.id(), wall);
        } else {
            book.mark_attempt(&addr, wall);
        }
        book.resolve_collisions(wall);
    }
}
