//! `crawl --watch --db` over a local network kept up by `testnet --keep`: every crawl is in
//! the database (one sighting per node per crawl, the edges), the map serves it, and a
//! `kill -9` in the middle of a crawl leaves a database that opens with every earlier crawl.
//! Also the one-shot crawl into the same database and the GraphML export.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Testnet, Watch, bin, http_get};
use rusqlite::{Connection, OpenFlags};

const NODES: usize = 30;

fn read_only(db: &Path) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn finished(db: &Path) -> i64 {
    count(
        &read_only(db),
        "SELECT COUNT(*) FROM crawls WHERE finished_at IS NOT NULL",
    )
}

#[test]
fn watch_keeps_every_crawl_survives_kill_9_and_exports_graphml() {
    let net = Testnet::start(NODES, Duration::from_secs(120));
    let all = NODES as i64 + 1; // and the seed
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crawl.sqlite");

    let mut watch = Watch::start(&db, &net.seed);
    let map = watch.map.clone();
    for i in 0..3 {
        let line = watch.wait_line("reachable", Duration::from_secs(120));
        assert!(
            line.contains(&format!("{all} reachable, 0 unreachable")),
            "crawl {i}: {line}"
        );
    }
    // Three finished crawls: one sighting of every node in each, and the edges.
    {
        let c = read_only(&db);
        let journal: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        let first3 = "(SELECT id FROM crawls WHERE finished_at IS NOT NULL ORDER BY id LIMIT 3)";
        let per_node: Vec<i64> = c
            .prepare(&format!(
                "SELECT COUNT(*) FROM sightings WHERE crawl_id IN {first3} GROUP BY node_id"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(per_node.len() as i64, all, "{per_node:?}");
        assert!(per_node.iter().all(|&n| n == 3), "{per_node:?}");
        let edges = count(
            &c,
            &format!("SELECT COUNT(*) FROM edges WHERE crawl_id IN {first3}"),
        );
        // Every node lists at least one other in each crawl.
        assert!(edges >= 3 * all, "{edges} edges");
        assert_eq!(
            count(&c, "SELECT COUNT(*) FROM nodes WHERE reachable = 1"),
            all
        );
        let moniker_of_seed: String = c
            .query_row(
                "SELECT moniker FROM nodes WHERE node_id = ?1",
                [net.seed.split('@').next().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(moniker_of_seed, "seed");
    }
    // The map of the watcher serves the latest graph.
    let (code, body) = http_get(&map, "/map/api/graph");
    assert_eq!(code, 200, "{body}");
    let g: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(g["nodes"].as_array().unwrap().len() as i64, all);
    assert_eq!(g["chain_id"], net.chain.as_str());
    let (_, page) = http_get(&map, "/");
    assert!(page.contains("<svg id=\"graph\""));

    // kill -9 while a crawl is being written: a crawl row without an end, with some of its
    // sightings already committed.
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed_during = loop {
        assert!(Instant::now() < deadline, "never saw a crawl in progress");
        let c = read_only(&db);
        let open: Option<(i64, i64)> = c
            .query_row(
                "SELECT crawls.id, (SELECT COUNT(*) FROM sightings WHERE crawl_id = crawls.id)
                 FROM crawls WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        drop(c);
        if let Some((id, n)) = open {
            if n > 0 && n < all {
                watch.child.kill().unwrap();
                break (id, n);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    watch.child.wait().unwrap();
    let done_before = {
        let c = Connection::open(&db).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let done = count(
            &c,
            "SELECT COUNT(*) FROM crawls WHERE finished_at IS NOT NULL",
        );
        assert!(done >= 3, "{done} finished crawls");
        // Every finished crawl is whole.
        let whole = count(
            &c,
            &format!(
                "SELECT COUNT(*) FROM crawls WHERE finished_at IS NOT NULL AND
                 (SELECT COUNT(*) FROM sightings WHERE crawl_id = crawls.id) = {all}"
            ),
        );
        assert_eq!(whole, done);
        let unfinished: Option<i64> = c
            .query_row(
                "SELECT finished_at FROM crawls WHERE id = ?1",
                [killed_during.0],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unfinished, None);
        done
    };
    eprintln!(
        "killed during crawl {} with {} of {all} sightings written; {done_before} finished crawls intact",
        killed_during.0, killed_during.1
    );

    // The database goes on: a one-shot crawl into it, then the GraphML export from it.
    let out = bin()
        .args(["crawl", "--json", "--seeds", &net.seed])
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["reachable"].as_array().unwrap().len() as i64, all);
    assert!(j["crawl_id"].as_i64().unwrap() > killed_during.0);
    assert_eq!(finished(&db), done_before + 1);
    let graphml = dir.path().join("net.graphml");
    let out = bin()
        .arg("crawl")
        .arg("--db")
        .arg(&db)
        .arg("--graphml")
        .arg(&graphml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let x = std::fs::read_to_string(&graphml).unwrap();
    assert_eq!(x.matches("<node id=").count() as i64, all);
    assert!(x.matches("<edge id=").count() as i64 >= all);
    assert!(x.contains(&format!("<graph id=\"{}\"", net.chain)));
    net.stop();
}
