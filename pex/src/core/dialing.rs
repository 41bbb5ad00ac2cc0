//! The peer manager: which addresses to dial and when (ensure-peers, the seeds, the backoff
//! after a failed dial) and a seed's crawl.

use super::*;

impl PexCore {
    /// A dial the core asked for ended.
    pub fn dial_finished(
        &mut self,
        book: &mut dyn AddressBook,
        addr: NetAddress,
        outcome: DialOutcome,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.dialing.get(&addr.id()) == Some(&addr) {
            self.dialing.remove(&addr.id());
        }
        let is_seed = self.cfg.seeds.contains(&addr);
        match outcome {
            DialOutcome::Connected => {
                self.attempts.remove(&addr.socket_addr());
                self.seed_queue.clear();
            }
            DialOutcome::AlreadyConnected => {}
            DialOutcome::Failed => {
                if is_seed {
                    // Go dials seeds one after the other until one answers.
                    if let Some(next) = self.next_seed() {
                        self.dial(next, &mut out);
                    }
                } else {
                    let e = self.attempts.entry(addr.socket_addr()).or_insert(Attempts {
                        count: 0,
                        last: now,
                    });
                    e.count += 1;
                    e.last = now;
                    book.mark_attempt(&addr, wall);
                    if self.attempts.len() > MAX_RECORDS {
                        self.attempts.retain(|_, a| a.count > 1);
                    }
                }
            }
        }
        out
    }

    pub(super) fn next_seed(&mut self) -> Option<NetAddress> {
        while let Some(s) = self.seed_queue.pop() {
            if !self.peers.contains_key(&s.id()) && !self.dialing.contains_key(&s.id()) {
                return Some(s);
            }
        }
        None
    }

    pub(super) fn dial(&mut self, addr: NetAddress, out: &mut Vec<Action>) {
        self.dialing.insert(addr.id(), addr);
        out.push(Action::Dial { addr });
    }

    pub(super) fn dial_seeds(&mut self, out: &mut Vec<Action>) {
        if self.cfg.seeds.is_empty() || self.dialing.keys().any(|id| self.seed_ids.contains(id)) {
            return;
        }
        let mut q = self.cfg.seeds.clone();
        q.shuffle(&mut self.rng);
        self.seed_queue = q;
        if let Some(s) = self.next_seed() {
            self.dial(s, out);
        }
    }

    /// Whether `addr` may be dialed now: not us, not connected or dialing, not persistent,
    /// not banned, back-off elapsed. Addresses past the attempt limit are banned here.
    pub(super) fn dialable(
        &mut self,
        book: &mut dyn AddressBook,
        addr: &NetAddress,
        now: Instant,
        wall: SystemTime,
    ) -> bool {
        let id = addr.id();
        if self.peers.contains_key(&id)
            || self.dialing.contains_key(&id)
            || self.cfg.persistent_ids.contains(&id)
            || self.cfg.our_address.is_some_and(|o| o.id() == id)
            || self.is_banned(&id, now)
            || book.is_banned(addr, wall)
        {
            return false;
        }
        let key = addr.socket_addr();
        if let Some(a) = self.attempts.get(&key).copied() {
            if a.count > MAX_ATTEMPTS_TO_DIAL {
                book.mark_bad(addr, DEFAULT_BAN_TIME, wall);
                // Reset, so that the address gets a fresh start once its ban ends.
                self.attempts.remove(&key);
                return false;
            }
            if a.count > 0 {
                let j = self.jitter(Duration::from_secs(1));
                if now.saturating_duration_since(a.last) < backoff(a.count, j) {
                    return false;
                }
            }
        }
        true
    }

    pub(super) fn ensure_peers(
        &mut self,
        book: &mut dyn AddressBook,
        now: Instant,
        wall: SystemTime,
        period_elapsed: bool,
        out: &mut Vec<Action>,
    ) {
        let (outbound, _) = self.num_peers();
        let to_dial = self
            .cfg
            .max_outbound
            .saturating_sub(outbound + self.dialing.len());
        let mut chosen: Vec<NetAddress> = Vec::new();
        if to_dial > 0 {
            let bias = u8::try_from(outbound.min(8) * 10 + 10).unwrap_or(90);
            let mut groups: HashMap<NetGroup, usize> = HashMap::new();
            let current = self
                .peers
                .values()
                .filter(|p| p.added && p.info.direction.is_outbound())
                .map(|p| p.info.socket_addr)
                .chain(self.dialing.values().copied())
                .collect::<Vec<_>>();
            for a in &current {
                if let Some(g) = group_of(a) {
                    *groups.entry(g).or_default() += 1;
                }
            }
            let mut deferred: Vec<NetAddress> = Vec::new();
            let mut seen: HashSet<NodeId> = HashSet::new();
            // Go's budget of picks, then (only while diversity is deferring picks) a longer
            // search for addresses in other groups.
            let base = to_dial * 3;
            let mut found_late = false;
            for i in 0..base + to_dial * 30 {
                if chosen.len() >= to_dial || (i >= base && deferred.is_empty()) {
                    break;
                }
                // The longer search looks mostly in the old buckets: an attacker can flood
                // the new ones with one group, but old entries had to connect first.
                let b = if i >= base && i % 4 != 0 { 0 } else { bias };
                let Some(a) = book.pick_address(b) else {
                    continue;
                };
                if !seen.insert(a.id()) || !self.dialable(book, &a, now, wall) {
                    continue;
                }
                if let Some(g) = group_of(&a).filter(|_| self.cfg.max_outbound_per_group > 0) {
                    let c = groups.entry(g).or_default();
                    if *c >= self.cfg.max_outbound_per_group {
                        deferred.push(a);
                        continue;
                    }
                    *c += 1;
                }
                found_late |= i >= base;
                chosen.push(a);
            }
            // Diversity yields only when the book offers nothing else.
            if !found_late {
                let missing = to_dial - chosen.len();
                chosen.extend(deferred.into_iter().take(missing));
            }
            for a in &chosen {
                self.dial(*a, out);
            }
        }
        if period_elapsed {
            self.runs += 1;
        }
        let refresh = self.cfg.max_refresh_interval > 0
            && self.runs.saturating_sub(self.last_refresh) >= u64::from(self.refresh_interval);
        if book.need_more_addrs() {
            if period_elapsed && (to_dial > 0 || refresh) {
                // Ask outbound peers (we chose them; Bitcoin Core asks only those). Inbound
                // slots are what an attacker fills first: an inbound peer is asked only by a
                // node with no outbound peer and no seed to turn to.
                let outbound_only = !self.cfg.seeds.is_empty()
                    || (self.peers.values()).any(|p| p.added && p.info.direction.is_outbound());
                let mut eligible: Vec<NodeId> = self
                    .peers
                    .values()
                    .filter(|p| self.can_request(p, now))
                    .filter(|p| !outbound_only || p.info.direction.is_outbound())
                    .map(|p| p.info.id)
                    .collect();
                eligible.sort_unstable();
                if let Some(id) = eligible.choose(&mut self.rng).copied() {
                    if self.request(id, now, out) {
                        self.last_refresh = self.runs;
                    }
                }
            }
            if to_dial > 0 && chosen.is_empty() {
                self.dial_seeds(out);
            }
        }
    }

    pub(super) fn crawl(
        &mut self,
        book: &mut dyn AddressBook,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<Action>,
    ) {
        // Disconnect peers held too long, and crawled peers that never answered.
        let wait = self.cfg.seed_disconnect_wait;
        let answer = self.cfg.crawl_answer_timeout;
        let mut stale: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| p.added && !p.info.persistent)
            .filter(|p| {
                let age = now.saturating_duration_since(p.connected_at);
                age >= wait || (p.crawled && p.info.direction.is_outbound() && age >= answer)
            })
            .map(|p| p.info.id)
            .collect();
        stale.sort_unstable();
        for id in stale {
            self.peers.remove(&id);
            out.push(Action::Disconnect { peer: id });
        }
        if book.is_empty() {
            self.dial_seeds(out);
            return;
        }
        let (outbound, _) = self.num_peers();
        let mut slots = self
            .cfg
            .max_outbound
            .saturating_sub(outbound + self.dialing.len());
        for a in book.selection() {
            if slots == 0 {
                break;
            }
            let id = a.id();
            if self
                .crawled
                .get(&id)
                .is_some_and(|t| now.saturating_duration_since(*t) < MIN_TIME_BETWEEN_CRAWLS)
            {
                continue;
            }
            if self.peers.contains_key(&id) {
                self.crawled.insert(id, now);
                if let Some(p) = self.peers.get_mut(&id) {
                    p.crawled = true;
                }
                self.request(id, now, out);
                continue;
            }
            if !self.dialable(book, &a, now, wall) {
                continue;
            }
            self.crawled.insert(id, now);
            self.dial(a, out);
            slots -= 1;
        }
    }
}
