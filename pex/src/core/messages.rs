//! The PEX messages: when we ask a peer for addresses, what we answer (a seed's selection
//! included), what we take from an answer, and the bans and stops for a peer that breaks the
//! rules.

use super::*;

impl PexCore {
    /// Sends a request to `id` if none is in flight and the spacing allows.
    pub(super) fn request(&mut self, id: NodeId, now: Instant, out: &mut Vec<Action>) -> bool {
        let spacing = self.cfg.request_spacing;
        let Some(p) = self.peers.get_mut(&id) else {
            return false;
        };
        if p.in_flight
            || p.last_request_sent
                .is_some_and(|t| now.saturating_duration_since(t) < spacing)
        {
            return false;
        }
        p.in_flight = true;
        p.last_request_sent = Some(now);
        out.push(Action::Send {
            peer: id,
            message: PexMessage::Request,
        });
        true
    }

    /// A request we sent to `id` could not be queued: it is not in flight.
    pub fn send_failed(&mut self, id: &NodeId, message: &PexMessage) {
        if *message == PexMessage::Request {
            if let Some(p) = self.peers.get_mut(id) {
                p.in_flight = false;
            }
        }
    }

    pub(super) fn can_request(&self, p: &PeerState, now: Instant) -> bool {
        p.added
            && !p.in_flight
            && p.last_request_sent
                .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.request_spacing)
    }

    pub(super) fn ban(
        &mut self,
        book: &mut dyn AddressBook,
        info: &PeerInfo,
        now: Instant,
        wall: SystemTime,
    ) {
        // Banned by ID, never added to the table first: the book keeps a bounded ban list
        // apart from its buckets (an ID it does not store is banned all the same).
        let addr = [info.self_addr, Some(info.socket_addr)]
            .into_iter()
            .flatten()
            .find(|a| book.has_address(a))
            .unwrap_or(info.socket_addr);
        book.mark_bad(&addr, DEFAULT_BAN_TIME, wall);
        let until = now + DEFAULT_BAN_TIME;
        while self.ban_order.len() >= MAX_LOCAL_BANS {
            if let Some((old_until, old)) = self.ban_order.pop_front() {
                if self.bans.get(&old) == Some(&old_until) {
                    self.bans.remove(&old);
                }
            }
        }
        self.bans.insert(info.id, until);
        self.ban_order.push_back((until, info.id));
        self.verified.remove(&info.id);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn stop_peer(
        &mut self,
        book: &mut dyn AddressBook,
        info: &PeerInfo,
        reason: PexError,
        ban: bool,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        if ban {
            self.ban(book, info, now, wall);
        }
        self.peers.remove(&info.id);
        out.push(Action::StopPeer {
            peer: info.id,
            reason,
            banned: ban,
        });
    }

    /// A message arrived from `info` on the PEX channel (possibly before `peer_added`).
    pub fn receive(
        &mut self,
        book: &mut dyn AddressBook,
        info: &PeerInfo,
        bytes: &[u8],
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_banned(&info.id, now) && !self.peers.contains_key(&info.id) {
            // Stopped as banned; the switch is removing it.
            return out;
        }
        let msg = match PexMessage::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                let ban = e.is_invalid_address();
                self.stop_peer(book, info, e.into(), ban, now, wall, &mut out);
                return out;
            }
        };
        self.peers
            .entry(info.id)
            .or_insert_with(|| PeerState::new(*info, now));
        match msg {
            PexMessage::Request => self.on_request(book, info, now, wall, &mut out),
            PexMessage::Addrs(addrs) => self.on_addrs(book, info, addrs, now, wall, &mut out),
        }
        out
    }

    pub(super) fn on_request(
        &mut self,
        book: &mut dyn AddressBook,
        info: &PeerInfo,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        let min = self.cfg.min_receive_request_interval();
        let seed_inbound = self.cfg.seed_mode && info.direction == Direction::Inbound;
        let Some(p) = self.peers.get_mut(&info.id) else {
            return;
        };
        if seed_inbound {
            if p.seed_answered {
                return;
            }
            p.seed_answered = true;
            let addrs = self.seed_selection(book, wall);
            out.push(Action::Send {
                peer: info.id,
                message: PexMessage::Addrs(addrs),
            });
            out.push(Action::Disconnect { peer: info.id });
            return;
        }
        match p.recv {
            RecvTrack::None => p.recv = RecvTrack::Free,
            RecvTrack::Free => p.recv = RecvTrack::At(now),
            RecvTrack::At(last) => {
                let elapsed = now.saturating_duration_since(last);
                if elapsed < min {
                    self.stop_peer(
                        book,
                        info,
                        PexError::RequestTooSoon { elapsed, min },
                        true,
                        now,
                        wall,
                        out,
                    );
                    return;
                }
                p.recv = RecvTrack::At(now);
            }
        }
        out.push(Action::Send {
            peer: info.id,
            message: PexMessage::Addrs(book.selection()),
        });
    }

    /// Seed answers: fresh self-verified addresses first, then a biased selection.
    pub(super) fn seed_selection(
        &mut self,
        book: &mut dyn AddressBook,
        wall: SystemTime,
    ) -> Vec<NetAddress> {
        let size = book.size();
        let n = (size * 23 / 100).max(size.min(32)).min(250);
        let mut first: Vec<NetAddress> = self
            .verified
            .values()
            .filter(|(a, t)| self.is_fresh(*t, wall) && book.has_address(a))
            .map(|(a, _)| *a)
            .collect();
        first.sort_unstable();
        first.shuffle(&mut self.rng);
        first.truncate(n);
        let mut ids: HashSet<NodeId> = first.iter().map(NetAddress::id).collect();
        for a in book.selection_with_bias(BIAS_TO_SELECT_NEW_PEERS) {
            if first.len() >= n {
                break;
            }
            if ids.insert(a.id()) {
                first.push(a);
            }
        }
        first
    }

    pub(super) fn on_addrs(
        &mut self,
        book: &mut dyn AddressBook,
        info: &PeerInfo,
        addrs: Vec<NetAddress>,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.peers.get_mut(&info.id) else {
            return;
        };
        if !p.in_flight {
            self.stop_peer(book, info, PexError::Unsolicited, true, now, wall, out);
            return;
        }
        p.in_flight = false;
        let crawled = p.crawled;
        out.push(Action::MarkUseful { peer: info.id });
        // At most 250 addresses per message, and no more than the peer's tokens allow; the
        // rest is dropped (not a ban). Bucketed by the group of the connection's IP, not by
        // the address the peer reports for itself.
        let take = p.take_tokens(addrs.len().min(MAX_ADDRS_PER_MESSAGE), now);
        let src = info.socket_addr;
        // A configured seed is trusted by configuration: its addresses are spread by their
        // own groups, so that one answer is not squeezed into the 32 buckets of its group.
        let from_seed = !self.cfg.seed_mode && self.seed_ids.contains(&info.id);
        let before = book.size();
        for a in addrs.into_iter().take(take) {
            // Individual refusals (invalid, ours, private, non-routable, banned) are skipped.
            let _ = book.add_address(a, if from_seed { a } else { src }, wall);
        }
        self.refresh_interval = if book.size() > before {
            1
        } else {
            (self.refresh_interval.saturating_mul(2)).clamp(1, self.cfg.max_refresh_interval.max(1))
        };
        if self.cfg.seed_mode && crawled && info.direction.is_outbound() && !info.persistent {
            // Crawl done: free the outbound slot.
            out.push(Action::Disconnect { peer: info.id });
        }
        if !self.cfg.seed_mode && self.seed_ids.contains(&info.id) {
            // Dial what a seed returned at once (Go #2093), within the outbound limit.
            self.ensure_peers(book, now, wall, false, out);
        }
    }
}
