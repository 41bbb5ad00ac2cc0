//! Network simulations over the sans-IO core and real address books (virtual clock, one
//! thread, fixed seeds).

#[path = "common/sim.rs"]
mod sim;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use mukan_pex::CoreConfig;
use sim::{Behaviour, Sim, SimConfig};

const PERIOD: Duration = Duration::from_secs(30);

fn seed_config() -> CoreConfig {
    let mut c = CoreConfig::default();
    c.seed_mode = true;
    c
}

fn node_config(seeds: Vec<mukan_reactor_api::NetAddress>) -> CoreConfig {
    let mut c = CoreConfig::default();
    c.seeds = seeds;
    c
}

/// A network of one seed (node 0) and `n` nodes that know only the seed, started one after
/// the other over the first ensure-peers period.
fn bootstrap(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(SimConfig {
        seed,
        ..SimConfig::default()
    });
    let s = sim.add_node(seed_config(), Behaviour::Honest);
    let seed_addr = sim.nodes[s].addr;
    for _ in 0..n {
        sim.add_node(node_config(vec![seed_addr]), Behaviour::Honest);
        sim.run_for(PERIOD / u32::try_from(n).unwrap_or(1));
    }
    sim
}

fn below_target(sim: &Sim, nodes: impl Iterator<Item = usize>) -> Vec<(usize, usize)> {
    nodes
        .map(|i| (i, sim.outbound(i)))
        .filter(|(_, o)| *o < 10)
        .collect()
}

#[test]
fn two_hundred_nodes_reach_their_target_fill_their_books_and_connect() {
    let mut sim = bootstrap(200, 1);
    // All started within the first period; 10 periods from the last start.
    sim.run_for(PERIOD * 10);
    let short = below_target(&sim, 1..=200);
    assert!(
        short.is_empty(),
        "nodes below the outbound target: {short:?}"
    );
    assert!(
        sim.connected(|i| i != 0),
        "peer graph of the 200 nodes is not connected"
    );
    // Books keep filling (one request per period while a book holds < 1000 addresses).
    sim.run_for(PERIOD * 10);
    let poor: Vec<(usize, usize)> = (1..=200)
        .map(|i| (i, sim.known_by(i, |j| j != 0)))
        .filter(|(_, k)| *k * 10 < 199 * 9)
        .collect();
    assert!(
        poor.is_empty(),
        "books holding < 90% of the network: {poor:?}"
    );
    // Outbound diversity: at most 1 outbound peer per /16 (every group has others here).
    for i in 1..=200 {
        let mut groups: HashMap<[u8; 2], usize> = HashMap::new();
        for (&p, d) in &sim.nodes[i].peers {
            if d.is_outbound() {
                if let std::net::IpAddr::V4(v4) = sim.nodes[p].addr.ip() {
                    let o = v4.octets();
                    *groups.entry([o[0], o[1]]).or_default() += 1;
                }
            }
        }
        assert!(groups.values().all(|c| *c <= 1), "node {i}: {groups:?}");
    }
}

fn misbehaving_node_is_banned_by_its_neighbours(behaviour: Behaviour) {
    let mut sim = bootstrap(60, 2);
    sim.run_for(PERIOD * 4);
    let seed_addr = sim.nodes[0].addr;
    let bad = sim.add_node(node_config(vec![seed_addr]), behaviour);
    let bad_id = sim.nodes[bad].addr.id();
    sim.run_for(PERIOD * 4);
    let reporters: BTreeSet<usize> = (0..sim.nodes.len())
        .filter(|i| sim.nodes[*i].stopped_for_misbehaviour.contains(&bad))
        .collect();
    assert!(
        reporters.len() >= 3,
        "too few neighbours saw the misbehaviour: {reporters:?}"
    );
    let now = sim.instant();
    let wall = sim.wall();
    for &r in &reporters {
        assert!(
            sim.nodes[r].core.is_banned(&bad_id, now),
            "node {r} did not ban"
        );
        assert!(
            mukan_reactor_api::AddressBook::is_banned(
                &sim.nodes[r].book,
                &sim.nodes[bad].addr,
                wall
            ),
            "node {r}'s book does not hold the ban"
        );
        assert!(
            !sim.nodes[r].peers.contains_key(&bad),
            "node {r} still connected"
        );
    }
    // Honest nodes never ban each other.
    for i in (0..sim.nodes.len()).filter(|i| *i != bad) {
        let others: Vec<usize> = sim.nodes[i]
            .stopped_for_misbehaviour
            .iter()
            .copied()
            .filter(|p| *p != bad)
            .collect();
        assert!(
            others.is_empty(),
            "node {i} stopped honest peers {others:?}"
        );
    }
}

#[test]
fn a_request_flooder_is_banned_by_its_neighbours() {
    misbehaving_node_is_banned_by_its_neighbours(Behaviour::Flooder);
}

#[test]
fn a_sender_of_unsolicited_addresses_is_banned_by_its_neighbours() {
    misbehaving_node_is_banned_by_its_neighbours(Behaviour::Unsolicited);
}

#[test]
fn new_nodes_join_through_others_books_after_the_seed_stops() {
    let mut sim = bootstrap(200, 3);
    sim.run_for(PERIOD * 10);
    sim.set_online(0, false);
    let seed_addr = sim.nodes[0].addr;
    let mut fresh = Vec::new();
    for k in 0..20 {
        // Each newcomer is configured with the dead seed and one existing node.
        let entry = 1 + (k * 37) % 200;
        let entry_addr = sim.nodes[entry].addr;
        fresh.push(sim.add_node(node_config(vec![seed_addr, entry_addr]), Behaviour::Honest));
        sim.run_for(PERIOD / 20);
    }
    sim.run_for(PERIOD * 10);
    let short = below_target(&sim, fresh.iter().copied());
    assert!(
        short.is_empty(),
        "newcomers below the outbound target: {short:?}"
    );
    assert!(
        sim.connected(|i| i != 0),
        "graph with the newcomers is not connected"
    );
    for &f in &fresh {
        let known_by_others = (1..=200)
            .filter(|&i| sim.nodes[i].book.address(&sim.nodes[f].addr.id()).is_some())
            .count();
        assert!(
            known_by_others >= 10,
            "newcomer {f} known by only {known_by_others} nodes"
        );
    }
}

/// 48 h, 200 nodes, 30% offline at any moment: every 5 minutes one offline node comes back
/// (restarted with its book) and one live node goes offline, so the offline set turns over
/// about every 5 hours.
#[test]
fn seed_book_tracks_live_nodes_and_serves_only_verified_live_addresses() {
    let n = 200;
    let mut sim = bootstrap(n, 4);
    sim.run_for(PERIOD * 10);
    let mut offline: Vec<usize> = Vec::new();
    while offline.len() < n * 3 / 10 {
        let i = 1 + sim.rand_below(n);
        if !offline.contains(&i) {
            offline.push(i);
            sim.set_online(i, false);
        }
    }
    // Online intervals per node (virtual time), to check verifications against.
    let mut went_offline: HashMap<usize, Vec<(Duration, Duration)>> = HashMap::new();
    let mut off_since: HashMap<usize, Duration> =
        offline.iter().map(|i| (*i, sim.elapsed())).collect();
    let start = sim.elapsed();
    let epoch = sim.wall() - sim.elapsed();
    let mut worst = 1.0f64;
    for step in 0..(48 * 12) {
        {
            let k = sim.rand_below(offline.len());
            let back = offline.swap_remove(k);
            sim.set_online(back, true);
            if let Some(since) = off_since.remove(&back) {
                went_offline
                    .entry(back)
                    .or_default()
                    .push((since, sim.elapsed()));
            }
            loop {
                let i = 1 + sim.rand_below(n);
                if !offline.contains(&i) && i != back {
                    offline.push(i);
                    sim.set_online(i, false);
                    off_since.insert(i, sim.elapsed());
                    break;
                }
            }
        }
        sim.run_for(Duration::from_secs(300));
        if step % 12 == 11 {
            let live: Vec<usize> = (1..=n).filter(|i| !offline.contains(i)).collect();
            let kept = live
                .iter()
                .filter(|&&i| {
                    mukan_reactor_api::AddressBook::has_address(
                        &sim.nodes[0].book,
                        &sim.nodes[i].addr,
                    )
                })
                .count();
            let ratio = kept as f64 / live.len() as f64;
            worst = worst.min(ratio);
            // Every verified address was a live node's real address at verification time.
            for (addr, at) in sim.nodes[0].core.verified(sim.wall()) {
                let i = sim
                    .index_of(&addr.id())
                    .expect("verified address of a simulated node");
                assert_eq!(
                    sim.nodes[i].addr, addr,
                    "verified address is not the node's"
                );
                let t = at.duration_since(epoch).unwrap_or_default();
                let was_offline = went_offline
                    .get(&i)
                    .is_some_and(|v| v.iter().any(|(a, b)| *a <= t && t < *b))
                    || off_since.get(&i).is_some_and(|s| *s <= t);
                assert!(!was_offline, "node {i} verified at {t:?} while offline");
            }
        }
    }
    let _ = (start, SystemTime::now());
    assert!(
        worst >= 0.9,
        "seed book kept only {:.1}% of live nodes",
        worst * 100.0
    );
}
