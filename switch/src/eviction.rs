//! Inbound eviction: which connected peer gives up its slot when the inbound slots are full
//! and a newcomer arrives (after Bitcoin Core's `AttemptToEvictConnection`, adapted to the
//! signals a CometBFT p2p node has).
//!
//! A pure function, [`select_victim`]: the peers' stats in, the victim out. No clock, no RNG
//! (the netgroup key is given), no I/O; the switch gathers the candidates and acts on the
//! answer.
//!
//! The rules, in order:
//! 1. Exempt peers (persistent, unconditional, outbound: [`Candidate::exempt`]) are never
//!    candidates.
//! 2. **Distinct netgroups**: up to [`Protection::by_group`] netgroups are picked by a keyed
//!    hash of the group (the key is secret and per node, so an attacker cannot tell which
//!    groups win), and the longest-connected peer of each is protected.
//! 3. **Lowest ping**: the [`Protection::by_ping`] peers with the lowest measured round trip
//!    (an attacker cannot move closer without moving). Peers without a sample are not
//!    protected by this rule.
//! 4. **Recent useful messages**: the [`Protection::by_useful`] peers that most recently sent
//!    a message a reactor marked useful (an attacker must do useful work for it).
//! 5. **Uptime**: half of the peers still unprotected, those connected longest (an attack
//!    that starts later cannot displace them).
//! 6. Of the peers left, the netgroup with the most of them loses its youngest peer (ties
//!    between groups: the group whose youngest peer is youngest). If no peer is left, there is
//!    no victim and the newcomer is refused.
//!
//! Every tie is broken by a total order (the node ID last), so the answer does not depend on
//! the order of the input.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use mukan_reactor_api::{NetGroup, NodeId};

/// What eviction knows of one connected peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The peer.
    pub id: NodeId,
    /// The netgroup of its socket address ([`NetGroup::of`], non-strict).
    pub group: NetGroup,
    /// When the connection was admitted.
    pub connected_at: Instant,
    /// The lowest ping round trip measured on the connection, if any.
    pub min_ping: Option<Duration>,
    /// When it last sent a message that a reactor marked useful, if ever.
    pub last_useful: Option<Instant>,
    /// Never evicted: persistent, unconditional and outbound peers.
    pub exempt: bool,
}

/// How many peers each protection rule keeps (Bitcoin Core's numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Protection {
    /// Distinct netgroups protected (one peer each): 4.
    pub by_group: usize,
    /// Peers with the lowest ping protected: 8.
    pub by_ping: usize,
    /// Peers with the most recent useful message protected: 4.
    pub by_useful: usize,
}

impl Default for Protection {
    fn default() -> Self {
        Self {
            by_group: 4,
            by_ping: 8,
            by_useful: 4,
        }
    }
}

impl Protection {
    /// The most peers the first three rules protect together; with more non-exempt
    /// candidates than this, [`select_victim`] always finds a victim.
    pub fn fixed_total(&self) -> usize {
        self.by_group
            .saturating_add(self.by_ping)
            .saturating_add(self.by_useful)
    }
}

/// The peer to evict among `candidates`, or `None` when every candidate is exempt or
/// protected. `group_key` is the node's secret key for ranking netgroups (draw it once,
/// at random, when the node starts).
pub fn select_victim(
    candidates: &[Candidate],
    protection: &Protection,
    group_key: u64,
) -> Option<NodeId> {
    let mut pool: Vec<&Candidate> = candidates.iter().filter(|c| !c.exempt).collect();
    // One canonical order first, so that every later step is independent of the input order.
    pool.sort_by_key(|c| (c.connected_at, c.id));

    protect_distinct_groups(&mut pool, protection.by_group, group_key);

    // Lowest measured ping first; ties: longest connected.
    protect_first(&mut pool, protection.by_ping, |c| {
        c.min_ping.map(|p| (p, c.connected_at, c.id))
    });

    // Most recent useful message first; ties: longest connected.
    protect_first(&mut pool, protection.by_useful, |c| {
        c.last_useful.map(|t| (Reverse(t), c.connected_at, c.id))
    });

    // Half of the rest, the longest connected (the pool is sorted oldest first).
    let keep = pool.len() / 2;
    pool.drain(..keep);

    // The group with the most peers left loses its youngest.
    let mut groups: BTreeMap<NetGroup, Vec<&Candidate>> = BTreeMap::new();
    for c in pool {
        groups.entry(c.group).or_default().push(c);
    }
    groups
        .values()
        .filter_map(|members| {
            let youngest = members.iter().max_by_key(|c| (c.connected_at, c.id))?;
            Some((members.len(), youngest.connected_at, youngest.id))
        })
        .max()
        .map(|(_, _, id)| id)
}

/// Protects (removes from `pool`) the longest-connected peer of each of the `n` netgroups
/// ranked highest by the keyed hash. `pool` is sorted oldest first.
fn protect_distinct_groups(pool: &mut Vec<&Candidate>, n: usize, key: u64) {
    let mut oldest: BTreeMap<NetGroup, NodeId> = BTreeMap::new();
    for c in pool.iter() {
        oldest.entry(c.group).or_insert(c.id);
    }
    let mut ranked: Vec<(u64, NetGroup, NodeId)> = oldest
        .into_iter()
        .map(|(group, id)| (keyed_hash(key, &group), group, id))
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    let protected: Vec<NodeId> = ranked.into_iter().take(n).map(|(_, _, id)| id).collect();
    pool.retain(|c| !protected.contains(&c.id));
}

/// Protects the first `n` peers of `pool` by `rank` (smallest first); peers whose rank is
/// `None` are never protected by this rule.
fn protect_first<K: Ord>(
    pool: &mut Vec<&Candidate>,
    n: usize,
    rank: impl Fn(&Candidate) -> Option<K>,
) {
    let mut ranked: Vec<(K, NodeId)> = pool
        .iter()
        .filter_map(|c| rank(c).map(|k| (k, c.id)))
        .collect();
    ranked.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let protected: Vec<NodeId> = ranked.into_iter().take(n).map(|(_, id)| id).collect();
    pool.retain(|c| !protected.contains(&c.id));
}

fn keyed_hash(key: u64, group: &NetGroup) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    group.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::*;

    fn id(n: u32) -> NodeId {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&n.to_be_bytes());
        NodeId(b)
    }

    fn group(ip: &str) -> NetGroup {
        NetGroup::of(ip.parse::<IpAddr>().unwrap(), false)
    }

    /// Peer `n` from `ip`, connected `age` seconds before `now`, no ping, nothing useful.
    fn peer(now: Instant, n: u32, ip: &str, age: u64) -> Candidate {
        Candidate {
            id: id(n),
            group: group(ip),
            connected_at: now - Duration::from_secs(age),
            min_ping: None,
            last_useful: None,
            exempt: false,
        }
    }

    fn base() -> Instant {
        Instant::now() + Duration::from_secs(1_000_000)
    }

    #[test]
    fn no_candidates_or_only_exempt_ones_give_no_victim() {
        let now = base();
        let p = Protection::default();
        assert_eq!(select_victim(&[], &p, 1), None);
        let exempt: Vec<Candidate> = (0..40)
            .map(|n| Candidate {
                exempt: true,
                ..peer(now, n, "1.1.1.1", u64::from(n))
            })
            .collect();
        assert_eq!(select_victim(&exempt, &p, 1), None);
    }

    #[test]
    fn few_candidates_are_all_protected() {
        // Four peers of four groups: the group rule protects each of them.
        let now = base();
        let peers: Vec<Candidate> = (0..4)
            .map(|n| peer(now, n, &format!("{}.1.1.1", n + 1), 10))
            .collect();
        assert_eq!(select_victim(&peers, &Protection::default(), 7), None);
    }

    #[test]
    fn the_crowded_group_loses_its_youngest() {
        let now = base();
        // 30 honest peers, each from its own /16, connected over the last hour.
        let mut peers: Vec<Candidate> = (0..30)
            .map(|n| {
                peer(
                    now,
                    n,
                    &format!("{}.{}.0.1", 20 + n, n),
                    100 + u64::from(n) * 60,
                )
            })
            .collect();
        // 10 sybils from one /16, the youngest of them 5 s old.
        peers.extend((0..10).map(|k| peer(now, 100 + k, &format!("9.9.{k}.1"), 5 + u64::from(k))));
        for key in 0..50 {
            assert_eq!(
                select_victim(&peers, &Protection::default(), key),
                Some(id(100)),
                "key {key}"
            );
        }
    }

    #[test]
    fn a_younger_honest_peer_is_spared_while_a_group_is_crowded() {
        // The youngest peer overall is honest; the group holding ten slots pays instead.
        let now = base();
        let mut peers: Vec<Candidate> = (0..29)
            .map(|n| peer(now, n, &format!("{}.{}.0.1", 20 + n, n), 200 + u64::from(n)))
            .collect();
        peers.push(peer(now, 50, "77.7.0.1", 1));
        peers.extend((0..10).map(|k| peer(now, 100 + k, &format!("9.9.{k}.1"), 10 + u64::from(k))));
        for key in 0..50 {
            assert_eq!(
                select_victim(&peers, &Protection::default(), key),
                Some(id(100)),
                "key {key}"
            );
        }
    }

    #[test]
    fn peers_that_came_first_are_protected_by_uptime() {
        // Ten sybils that have been connected longest keep their slots (an attack that
        // started earlier is not undone by eviction; the per-group cap bounds it); the
        // youngest honest peer goes.
        let now = base();
        let mut peers: Vec<Candidate> = (0..30)
            .map(|n| peer(now, n, &format!("{}.{}.0.1", 20 + n, n), 1 + u64::from(n)))
            .collect();
        peers.extend((0..10).map(|k| peer(now, 100 + k, &format!("9.9.{k}.1"), 500)));
        let victim = select_victim(&peers, &Protection::default(), 3).unwrap();
        assert_eq!(victim, id(0));
    }

    #[test]
    fn exempt_peers_are_never_chosen_even_when_alone_in_a_crowded_group() {
        let now = base();
        // 20 outbound/persistent peers, all in one group and young; 20 inbound, distinct.
        let mut peers: Vec<Candidate> = (0..20)
            .map(|n| Candidate {
                exempt: true,
                ..peer(now, n, "5.5.5.5", 1)
            })
            .collect();
        peers.extend((0..20).map(|n| peer(now, 100 + n, &format!("{}.7.0.1", 30 + n), 50)));
        let victim = select_victim(&peers, &Protection::default(), 11).unwrap();
        assert!(victim.0[3] >= 100, "{victim:?}");
    }

    #[test]
    fn lowest_pings_and_recent_useful_messages_are_protected() {
        let now = base();
        // 40 peers in one group (so the group rule protects only one of them).
        let mut peers: Vec<Candidate> = (0..40)
            .map(|n| peer(now, n, "8.8.0.1", 10 + u64::from(n)))
            .collect();
        // The 4 youngest (n = 0..4) carry the best pings, the next 4 useful messages.
        for (n, p) in peers.iter_mut().enumerate().take(4) {
            p.min_ping = Some(Duration::from_millis(1 + n as u64));
        }
        for p in peers.iter_mut().skip(4).take(4) {
            p.last_useful = Some(now);
        }
        let victim = select_victim(&peers, &Protection::default(), 5).unwrap();
        // Not one of the protected eight: the youngest unprotected is n = 8.
        assert_eq!(victim, id(8));
    }

    #[test]
    fn the_longest_connected_half_is_protected() {
        let now = base();
        // 40 peers in one group, no ping, nothing useful: 1 protected by group, then half of
        // the 39 left (19, the oldest); the victim is the youngest.
        let peers: Vec<Candidate> = (0..40)
            .map(|n| peer(now, n, "8.8.0.1", 1000 - u64::from(n) * 10))
            .collect();
        assert_eq!(
            select_victim(&peers, &Protection::default(), 5),
            Some(id(39))
        );
        // With only 3 unprotected peers of distinct groups, the oldest of them is protected
        // by uptime and the youngest evicted.
        let peers: Vec<Candidate> = (0..7)
            .map(|n| peer(now, n, &format!("{}.1.1.1", n + 1), 100 - u64::from(n)))
            .collect();
        let protection = Protection::default();
        let victim = select_victim(&peers, &protection, 99).unwrap();
        // Whatever the key protected, the victim is younger than at least one unprotected.
        let victim_age = peers.iter().find(|c| c.id == victim).unwrap().connected_at;
        assert!(peers.iter().any(|c| c.connected_at < victim_age));
    }

    #[test]
    fn which_groups_are_protected_depends_on_the_key() {
        // Five peers of five groups: four are protected, which one is left depends on the key.
        let now = base();
        let peers: Vec<Candidate> = (0..5)
            .map(|n| peer(now, n, &format!("{}.1.1.1", n + 1), 10))
            .collect();
        let victims: std::collections::BTreeSet<NodeId> = (0..64)
            .filter_map(|key| select_victim(&peers, &Protection::default(), key))
            .collect();
        assert!(victims.len() >= 3, "{victims:?}");
    }

    // Properties, over random peer sets.

    fn arb_candidate(now: Instant) -> impl Strategy<Value = Candidate> {
        (
            any::<u32>(),
            0u8..6,
            0u64..10_000,
            proptest::option::of(1u64..1_000),
            proptest::option::of(0u64..10_000),
            proptest::bool::weighted(0.2),
        )
            .prop_map(move |(n, g, age, ping, useful, exempt)| Candidate {
                id: id(n),
                group: NetGroup::of(IpAddr::from([g + 1, g, 0, 1]), false),
                connected_at: now - Duration::from_secs(age),
                min_ping: ping.map(Duration::from_millis),
                last_useful: useful.map(|u| now - Duration::from_secs(u)),
                exempt,
            })
    }

    fn arb_peers() -> impl Strategy<Value = Vec<Candidate>> {
        let now = base();
        proptest::collection::vec(arb_candidate(now), 0..60).prop_map(|mut v| {
            // Distinct IDs, as in a peer set.
            let mut seen = std::collections::HashSet::new();
            v.retain(|c| seen.insert(c.id));
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The victim is a non-exempt candidate; there is one whenever the non-exempt
        /// candidates outnumber what the fixed rules protect.
        #[test]
        fn victim_is_a_non_exempt_candidate(peers in arb_peers(), key in any::<u64>()) {
            let p = Protection::default();
            let victim = select_victim(&peers, &p, key);
            let open = peers.iter().filter(|c| !c.exempt).count();
            if let Some(v) = victim {
                let c = peers.iter().find(|c| c.id == v);
                prop_assert!(c.is_some_and(|c| !c.exempt));
            }
            if open > p.fixed_total() {
                prop_assert!(victim.is_some());
            }
        }

        /// The answer does not depend on the order of the input, and exempt peers added or
        /// removed change nothing.
        #[test]
        fn order_and_exempt_peers_do_not_matter(peers in arb_peers(), key in any::<u64>(), seed in any::<u64>()) {
            let p = Protection::default();
            let victim = select_victim(&peers, &p, key);
            let mut shuffled = peers.clone();
            let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
            rand::seq::SliceRandom::shuffle(shuffled.as_mut_slice(), &mut rng);
            prop_assert_eq!(select_victim(&shuffled, &p, key), victim);
            let open: Vec<Candidate> = peers.iter().filter(|c| !c.exempt).cloned().collect();
            prop_assert_eq!(select_victim(&open, &p, key), victim);
        }

        /// A victim with a measured ping has at least `by_ping` other candidates with a ping as
        /// low; one with a useful message has at least `by_useful` others as recent.
        #[test]
        fn protected_signals_outrank_the_victim(peers in arb_peers(), key in any::<u64>()) {
            let p = Protection::default();
            if let Some(v) = select_victim(&peers, &p, key) {
                let victim = peers.iter().find(|c| c.id == v).unwrap();
                let others = || peers.iter().filter(|c| !c.exempt && c.id != v);
                if let Some(ping) = victim.min_ping {
                    let better = others().filter(|c| c.min_ping.is_some_and(|q| q <= ping)).count();
                    prop_assert!(better >= p.by_ping, "{better} pings as low");
                }
                if let Some(t) = victim.last_useful {
                    let newer = others().filter(|c| c.last_useful.is_some_and(|u| u >= t)).count();
                    prop_assert!(newer >= p.by_useful, "{newer} as recent");
                }
            }
        }

        /// One more peer in the victim's group, younger than everyone and without signals, is
        /// the next victim: the crowded group pays, and its youngest first.
        #[test]
        fn a_newcomer_to_the_victims_group_is_the_next_victim(peers in arb_peers(), key in any::<u64>()) {
            let p = Protection::default();
            if let Some(v) = select_victim(&peers, &p, key) {
                let victim = peers.iter().find(|c| c.id == v).unwrap().clone();
                let youngest = peers.iter().map(|c| c.connected_at).max().unwrap();
                let newcomer = Candidate {
                    id: NodeId([0xee; 20]),
                    group: victim.group,
                    connected_at: youngest + Duration::from_secs(1),
                    min_ping: None,
                    last_useful: None,
                    exempt: false,
                };
                prop_assume!(peers.iter().all(|c| c.id != newcomer.id));
                let mut more = peers.clone();
                more.push(newcomer.clone());
                prop_assert_eq!(select_victim(&more, &p, key), Some(newcomer.id));
            }
        }
    }
}
