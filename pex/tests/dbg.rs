use mukan_pex::CoreConfig;
use mukan_pex::sim::{Behaviour, Sim, SimConfig};
use std::time::Duration;
#[test]
fn dbg() {
    let mut sim = Sim::new(SimConfig::default());
    let mut sc = CoreConfig::default();
    sc.seed_mode = true;
    let s = sim.add_node(sc, Behaviour::Honest);
    let seed_addr = sim.nodes[s].addr;
    for _ in 0..200 {
        let mut c = CoreConfig::default();
        c.seeds = vec![seed_addr];
        sim.add_node(c, Behaviour::Honest);
        sim.run_for(Duration::from_millis(150));
    }
    for k in 0..20 {
        let t = std::time::Instant::now();
        sim.run_for(Duration::from_secs(1800));
        println!(
            "half-hour {k}: delivered {} wall {:?} events {}",
            sim.delivered,
            t.elapsed(),
            sim.events
        );
    }
}
