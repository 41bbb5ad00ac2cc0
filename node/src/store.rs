//! The crawl database (`crawl --db FILE`): SQLite through `rusqlite` (SQLite compiled in), in
//! WAL mode, its schema brought up to date by `rusqlite_migration` at every open.
//!
//! Tables:
//! - `crawls`: one row per crawl (chain, seeds, start, end; `finished_at` is NULL while the
//!   crawl runs, and stays NULL for a crawl that was killed).
//! - `sightings`: one row per node per crawl (address, reachable, moniker, version, network,
//!   channels, listen and RPC address, handshake latency, addresses shared, error).
//! - `edges`: who listed whom in its PEX answer, per crawl.
//! - `nodes`: one row per node per chain (last address, moniker, version, network, channels,
//!   first and last seen, last reached, reachable at the last sighting, latency).
//! - `node_addresses`: every address a node was seen at, with first and last seen.
//!
//! A crawl is written in small transactions while it runs, so a `kill -9` at any moment
//! leaves a database that opens with every earlier crawl whole; the crawl that was killed
//! keeps what it wrote and `finished_at` NULL, and the map and exports use finished crawls
//! only. What is kept is bounded: [`Retention`] prunes old crawls and old edges after each
//! crawl; one crawl holds at most the crawler's node limit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

use crate::crawl::Found;
use crate::graph::{Graph, GraphNode};

/// The schema, one step per migration; never edit a step that has shipped, add one.
const MIGRATIONS: &[M<'static>] = &[M::up(
    "CREATE TABLE crawls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chain_id TEXT NOT NULL,
        seeds TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE INDEX crawls_by_chain ON crawls (chain_id, id);
    CREATE TABLE sightings (
        crawl_id INTEGER NOT NULL REFERENCES crawls (id) ON DELETE CASCADE,
        node_id TEXT NOT NULL,
        address TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        reachable INTEGER NOT NULL,
        moniker TEXT,
        version TEXT,
        network TEXT,
        channels TEXT,
        listen_addr TEXT,
        rpc_address TEXT,
        latency_ms REAL,
        addresses_shared INTEGER,
        error TEXT,
        PRIMARY KEY (crawl_id, node_id)
    ) WITHOUT ROWID;
    CREATE TABLE edges (
        crawl_id INTEGER NOT NULL REFERENCES crawls (id) ON DELETE CASCADE,
        from_id TEXT NOT NULL,
        to_id TEXT NOT NULL,
        to_address TEXT NOT NULL,
        PRIMARY KEY (crawl_id, from_id, to_id)
    ) WITHOUT ROWID;
    CREATE TABLE nodes (
        chain_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        address TEXT NOT NULL,
        moniker TEXT,
        version TEXT,
        network TEXT,
        channels TEXT,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        last_reached INTEGER,
        reachable INTEGER NOT NULL,
        latency_ms REAL,
        PRIMARY KEY (chain_id, node_id)
    ) WITHOUT ROWID;
    CREATE TABLE node_addresses (
        chain_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        address TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        PRIMARY KEY (chain_id, node_id, address)
    ) WITHOUT ROWID;",
)];

/// How long a writer waits for another connection's lock (a second `crawl --watch` on the
/// same file, a reader) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A problem with the crawl database.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// It could not be opened or set up.
    #[error("{path}: cannot open the crawl database: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// Its schema could not be brought up to date (e.g. made by a newer version).
    #[error("{path}: cannot update the crawl database's schema: {source}")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite_migration::Error,
    },
    /// A statement failed.
    #[error("crawl database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// What is kept.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retention {
    /// Crawls kept per chain (older ones are deleted with their sightings and edges).
    pub(crate) crawls: usize,
    /// Crawls per chain whose edges are kept (edges are most of the volume).
    pub(crate) edge_crawls: usize,
}

impl Default for Retention {
    fn default() -> Self {
        // A week of crawls every 10 minutes; the edges of the last day.
        Self {
            crawls: 1008,
            edge_crawls: 144,
        }
    }
}

/// One crawl of the history, as the map's table shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct CrawlSummary {
    /// Its ID.
    pub(crate) id: i64,
    /// The chain.
    pub(crate) chain_id: String,
    /// Start (Unix milliseconds).
    pub(crate) started_at: i64,
    /// End (Unix milliseconds); `None` while running, or if it was killed.
    pub(crate) finished_at: Option<i64>,
    /// Nodes that completed the handshake.
    pub(crate) reachable: usize,
    /// Nodes that did not.
    pub(crate) unreachable: usize,
    /// Reachable nodes per version.
    pub(crate) versions: BTreeMap<String, usize>,
}

/// The crawl database.
pub(crate) struct Store {
    conn: Connection,
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Store {
    /// Opens (creating it if needed) and migrates the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // WAL: readers (the map) never block the writer, and a commit is one append.
        // NORMAL sync in WAL mode: a crash or kill never corrupts the file; a power loss may
        // lose the last commits.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self { conn })
    }

    /// Opens a read-only connection (the map's). The file must exist.
    pub(crate) fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        Ok(Self { conn })
    }

    /// Starts a crawl; returns its ID.
    pub(crate) fn begin_crawl(
        &mut self,
        chain_id: &str,
        seeds: &str,
        started: SystemTime,
    ) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO crawls (chain_id, seeds, started_at) VALUES (?1, ?2, ?3)",
            params![chain_id, seeds, millis(started)],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records nodes of crawl `crawl_id` (one transaction).
    pub(crate) fn record(
        &mut self,
        crawl_id: i64,
        chain_id: &str,
        found: &[Found],
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let now = millis(now);
        let tx = self.conn.transaction()?;
        {
            let mut sighting = tx.prepare_cached(
                "INSERT OR REPLACE INTO sightings (crawl_id, node_id, address, seen_at, reachable,
                    moniker, version, network, channels, listen_addr, rpc_address, latency_ms,
                    addresses_shared, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            let mut edge = tx.prepare_cached(
                "INSERT OR IGNORE INTO edges (crawl_id, from_id, to_id, to_address)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut reached = tx.prepare_cached(
                "INSERT INTO nodes (chain_id, node_id, address, moniker, version, network,
                    channels, first_seen, last_seen, last_reached, reachable, latency_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8, 1, ?9)
                 ON CONFLICT (chain_id, node_id) DO UPDATE SET address = excluded.address,
                    moniker = excluded.moniker, version = excluded.version,
                    network = excluded.network, channels = excluded.channels,
                    last_seen = excluded.last_seen, last_reached = excluded.last_reached,
                    reachable = 1, latency_ms = excluded.latency_ms",
            )?;
            let mut unreached = tx.prepare_cached(
                "INSERT INTO nodes (chain_id, node_id, address, first_seen, last_seen, reachable)
                 VALUES (?1, ?2, ?3, ?4, ?4, 0)
                 ON CONFLICT (chain_id, node_id) DO UPDATE SET last_seen = excluded.last_seen,
                    reachable = 0",
            )?;
            let mut address = tx.prepare_cached(
                "INSERT INTO node_addresses (chain_id, node_id, address, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (chain_id, node_id, address) DO UPDATE SET
                    last_seen = excluded.last_seen",
            )?;
            for f in found {
                match f {
                    Found::Reached(r) => {
                        let id = r.info.id.as_str();
                        let addr = r.address.to_string();
                        let channels = hex::encode_upper(
                            r.info.channels.iter().map(|c| c.0).collect::<Vec<u8>>(),
                        );
                        let latency = (r.latency.as_secs_f64() * 1e4).round() / 10.0;
                        sighting.execute(params![
                            crawl_id,
                            id,
                            addr,
                            now,
                            true,
                            r.info.moniker,
                            r.info.version,
                            r.info.network,
                            channels,
                            r.info.listen_addr,
                            r.info.other.rpc_address,
                            latency,
                            r.shared.map(|n| n as i64),
                            Option::<String>::None,
                        ])?;
                        reached.execute(params![
                            chain_id,
                            id,
                            addr,
                            r.info.moniker,
                            r.info.version,
                            r.info.network,
                            channels,
                            now,
                            latency
                        ])?;
                        address.execute(params![chain_id, id, addr, now])?;
                        for to in &r.listed {
                            edge.execute(params![
                                crawl_id,
                                id,
                                to.id().to_string(),
                                to.to_string()
                            ])?;
                        }
                    }
                    Found::Unreached(u) => {
                        let id = u.id.to_string();
                        sighting.execute(params![
                            crawl_id,
                            id,
                            u.address,
                            now,
                            false,
                            Option::<String>::None,
                            Option::<String>::None,
                            Option::<String>::None,
                            Option::<String>::None,
                            Option::<String>::None,
                            Option::<String>::None,
                            Option::<f64>::None,
                            Option::<i64>::None,
                            u.error,
                        ])?;
                        unreached.execute(params![chain_id, id, u.address, now])?;
                        address.execute(params![chain_id, id, u.address, now])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks crawl `crawl_id` finished and prunes what `retention` no longer keeps.
    pub(crate) fn finish_crawl(
        &mut self,
        crawl_id: i64,
        finished: SystemTime,
        retention: Retention,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE crawls SET finished_at = ?2 WHERE id = ?1",
            params![crawl_id, millis(finished)],
        )?;
        let chain: String = tx.query_row(
            "SELECT chain_id FROM crawls WHERE id = ?1",
            [crawl_id],
            |r| r.get(0),
        )?;
        let nth = |n: usize| -> Result<Option<i64>, rusqlite::Error> {
            tx.query_row(
                "SELECT id FROM crawls WHERE chain_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
                params![chain, n.saturating_sub(1) as i64],
                |r| r.get(0),
            )
            .optional()
        };
        if let Some(oldest_kept) = nth(retention.crawls.max(1))? {
            tx.execute(
                "DELETE FROM crawls WHERE chain_id = ?1 AND id < ?2",
                params![chain, oldest_kept],
            )?;
        }
        if let Some(oldest_with_edges) = nth(retention.edge_crawls.max(1))? {
            tx.execute(
                "DELETE FROM edges WHERE crawl_id IN
                    (SELECT id FROM crawls WHERE chain_id = ?1 AND id < ?2)",
                params![chain, oldest_with_edges],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The chains in the database.
    pub(crate) fn chains(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT DISTINCT chain_id FROM crawls ORDER BY chain_id")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The addresses (`id@host:port`) the latest finished crawl of `chain_id` reached, at
    /// most `limit` of them: where the next crawl of the chain looks again.
    pub(crate) fn last_reached(
        &self,
        chain_id: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT address FROM sightings WHERE reachable = 1 AND crawl_id = (
                 SELECT id FROM crawls WHERE chain_id = ?1 AND finished_at IS NOT NULL
                 ORDER BY id DESC LIMIT 1)
             ORDER BY node_id LIMIT ?2",
        )?;
        let rows = st.query_map(params![chain_id, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last `limit` crawls of `chain_id`, newest first.
    pub(crate) fn history(
        &self,
        chain_id: &str,
        limit: usize,
    ) -> Result<Vec<CrawlSummary>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, started_at, finished_at FROM crawls WHERE chain_id = ?1
             ORDER BY id DESC LIMIT ?2",
        )?;
        let crawls = st
            .query_map(params![chain_id, limit as i64], |r| {
                Ok(CrawlSummary {
                    id: r.get(0)?,
                    chain_id: chain_id.to_owned(),
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    reachable: 0,
                    unreachable: 0,
                    versions: BTreeMap::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut counts = self.conn.prepare_cached(
            "SELECT reachable, COALESCE(version, ''), COUNT(*) FROM sightings
             WHERE crawl_id = ?1 GROUP BY reachable, version",
        )?;
        let mut out = Vec::with_capacity(crawls.len());
        for mut c in crawls {
            let rows = counts.query_map([c.id], |r| {
                Ok((
                    r.get::<_, bool>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (reachable, version, n) = row?;
                let n = usize::try_from(n).unwrap_or(0);
                if reachable {
                    c.reachable += n;
                    *c.versions.entry(version).or_insert(0) += n;
                } else {
                    c.unreachable += n;
                }
            }
            out.push(c);
        }
        Ok(out)
    }

    /// The graph of the latest finished crawl of `chain_id` (`None`: none finished yet).
    /// `ours`: node IDs to highlight.
    pub(crate) fn latest_graph(
        &self,
        chain_id: &str,
        ours: &[String],
    ) -> Result<Option<Graph>, StoreError> {
        let latest: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT id, finished_at FROM crawls
                 WHERE chain_id = ?1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
                [chain_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((crawl_id, finished_at)) = latest else {
            return Ok(None);
        };
        let mut st = self.conn.prepare_cached(
            "SELECT node_id, address, COALESCE(moniker, ''), COALESCE(version, ''), reachable,
                latency_ms
             FROM sightings WHERE crawl_id = ?1 ORDER BY node_id",
        )?;
        let nodes = st
            .query_map([crawl_id], |r| {
                let id: String = r.get(0)?;
                Ok(GraphNode {
                    ours: ours.contains(&id),
                    id,
                    address: r.get(1)?,
                    moniker: r.get(2)?,
                    version: r.get(3)?,
                    reachable: r.get(4)?,
                    latency_ms: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut st = self
            .conn
            .prepare_cached("SELECT from_id, to_id FROM edges WHERE crawl_id = ?1")?;
        let edges = st
            .query_map([crawl_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut g = Graph {
            chain_id: chain_id.to_owned(),
            source: format!("crawl {crawl_id}"),
            taken_at: finished_at,
            nodes,
            edges,
        };
        g.prune_edges();
        Ok(Some(g))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use mukan_reactor_api::{ChannelId, NetAddress, NodeId, NodeInfo};

    use super::*;
    use crate::crawl::{Reached, Unreached};

    pub(crate) fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    pub(crate) fn addr(n: u8) -> NetAddress {
        NetAddress::new(
            id(n),
            std::net::Ipv4Addr::new(127, 0, 0, 1).into(),
            20000 + u16::from(n),
        )
    }

    pub(crate) fn reached(n: u8, version: &str, listed: &[u8]) -> Found {
        let mut info: NodeInfo =
            crate::rpc::tests::sample_info(&format!("m{n}"), "tcp://0.0.0.0:1");
        info.id = id(n).to_string();
        info.version = version.into();
        info.channels = vec![ChannelId(0x00), ChannelId(0x20)];
        Found::Reached(Box::new(Reached {
            address: addr(n),
            info,
            latency: Duration::from_micros(1234),
            shared: Some(listed.len()),
            listed: listed.iter().map(|&m| addr(m)).collect(),
        }))
    }

    pub(crate) fn unreached(n: u8) -> Found {
        Found::Unreached(Unreached {
            address: addr(n).to_string(),
            id: id(n),
            error: "connection refused".into(),
        })
    }

    fn count(s: &Store, sql: &str) -> i64 {
        s.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn three_crawls_give_three_sightings_per_node_the_edges_and_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crawl.sqlite");
        let mut s = Store::open(&path).unwrap();
        let t0 = SystemTime::now();
        for round in 0..3u64 {
            let t = t0 + Duration::from_secs(600 * round);
            let c = s.begin_crawl("chain-a", "seeds", t).unwrap();
            // Written in two batches, as the watch loop does.
            s.record(
                c,
                "chain-a",
                &[reached(1, "1.0", &[2, 3]), reached(2, "0.38.25", &[1, 3])],
                t,
            )
            .unwrap();
            s.record(c, "chain-a", &[unreached(3)], t).unwrap();
            s.finish_crawl(c, t + Duration::from_secs(5), Retention::default())
                .unwrap();
        }
        // Another chain in the same file.
        let c = s.begin_crawl("chain-b", "s", t0).unwrap();
        s.record(c, "chain-b", &[reached(9, "1.0", &[])], t0)
            .unwrap();
        s.finish_crawl(c, t0, Retention::default()).unwrap();

        assert_eq!(count(&s, "SELECT COUNT(*) FROM crawls"), 4);
        for n in [1u8, 2, 3] {
            let k: i64 = s
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM sightings JOIN crawls ON crawls.id = crawl_id
                     WHERE chain_id = 'chain-a' AND node_id = ?1",
                    [id(n).to_string()],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(k, 3, "node {n}");
        }
        assert_eq!(count(&s, "SELECT COUNT(*) FROM edges"), 12);
        assert_eq!(
            count(&s, "SELECT COUNT(*) FROM nodes WHERE chain_id = 'chain-a'"),
            3
        );
        assert_eq!(
            count(
                &s,
                "SELECT reachable FROM nodes WHERE node_id = '0303030303030303030303030303030303030303'"
            ),
            0
        );
        assert_eq!(s.chains().unwrap(), ["chain-a", "chain-b"]);
        let h = s.history("chain-a", 10).unwrap();
        assert_eq!(h.len(), 3);
        assert!(h[0].id > h[1].id);
        assert_eq!((h[0].reachable, h[0].unreachable), (2, 1));
        assert_eq!(h[0].versions.get("0.38.25"), Some(&1));
        let g = s
            .latest_graph("chain-a", &[id(1).to_string()])
            .unwrap()
            .unwrap();
        assert_eq!(g.nodes.len(), 3);
        assert_eq!(g.edges.len(), 4);
        assert!(g.nodes.iter().any(|n| n.ours && n.id == id(1).to_string()));
        assert!(g.nodes.iter().any(|n| !n.reachable && n.version.is_empty()));
        assert!(s.latest_graph("none", &[]).unwrap().is_none());
        let ok: String = s
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        drop(s);
        // Reopening runs the migrations again: nothing changes.
        let s = Store::open(&path).unwrap();
        assert_eq!(count(&s, "SELECT COUNT(*) FROM sightings"), 10);
        let journal: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
    }

    #[test]
    fn last_reached_is_the_latest_finished_crawl_s_reachable_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("c.sqlite")).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(s.last_reached("c", 10).unwrap().is_empty());
        let first = s.begin_crawl("c", "", t).unwrap();
        s.record(
            first,
            "c",
            &[reached(1, "v", &[]), reached(2, "v", &[]), unreached(3)],
            t,
        )
        .unwrap();
        s.finish_crawl(first, t, Retention::default()).unwrap();
        // An unfinished crawl and another chain's do not count.
        let running = s.begin_crawl("c", "", t).unwrap();
        s.record(running, "c", &[reached(4, "v", &[])], t).unwrap();
        let other = s.begin_crawl("d", "", t).unwrap();
        s.record(other, "d", &[reached(5, "v", &[])], t).unwrap();
        s.finish_crawl(other, t, Retention::default()).unwrap();
        let mut got = s.last_reached("c", 10).unwrap();
        got.sort();
        let mut want = vec![addr(1).to_string(), addr(2).to_string()];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(s.last_reached("c", 1).unwrap().len(), 1);
    }

    #[test]
    fn retention_prunes_old_crawls_and_old_edges() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("c.sqlite")).unwrap();
        let keep = Retention {
            crawls: 3,
            edge_crawls: 1,
        };
        for _ in 0..5 {
            let c = s.begin_crawl("x", "s", SystemTime::now()).unwrap();
            s.record(
                c,
                "x",
                &[reached(1, "1", &[2]), reached(2, "1", &[1])],
                SystemTime::now(),
            )
            .unwrap();
            s.finish_crawl(c, SystemTime::now(), keep).unwrap();
        }
        assert_eq!(count(&s, "SELECT COUNT(*) FROM crawls"), 3);
        assert_eq!(count(&s, "SELECT COUNT(*) FROM sightings"), 6);
        assert_eq!(count(&s, "SELECT COUNT(*) FROM edges"), 2);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_typed_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.sqlite");
        std::fs::write(&path, vec![0x55u8; 8192]).unwrap();
        let e = Store::open(&path).err().unwrap();
        assert!(e.to_string().contains("junk.sqlite"), "{e}");
        // A schema newer than ours is refused, not silently used.
        let path = dir.path().join("newer.sqlite");
        let s = Store::open(&path).unwrap();
        s.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(s);
        let e = Store::open(&path).err().unwrap();
        assert!(matches!(e, StoreError::Migrate { .. }), "{e}");
    }
}
