//! `crawl --db FILE` and `crawl --watch`: crawls written to the crawl database
//! ([`crate::store`]) while they run, one chain after the other, every `--interval`; the
//! map ([`crate::web`]) served from the database on `--rpc.laddr`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mukan_reactor_api::{NetAddress, ParsedAddress};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::crawl::{self, Found, Report};
use crate::graph::Graph;
use crate::store::{CrawlSummary, Retention, Store};
use crate::web::MapSource;

/// Nodes written in one transaction at most.
const BATCH: usize = 256;
/// Nodes waiting for the writer at most (the crawl waits for room beyond).
const QUEUE: usize = 1024;
/// Crawls the map's history shows at most.
const HISTORY: usize = 48;

/// One chain to crawl.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    /// Where to start.
    pub(crate) seeds: Vec<ParsedAddress>,
    /// Its chain ID (learned from the first seed that answers, then kept).
    pub(crate) chain_id: Option<String>,
}

/// What `crawl --watch` runs.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// The chains, crawled one after the other.
    pub(crate) chains: Vec<Chain>,
    /// Time from the start of one round to the start of the next.
    pub(crate) interval: Duration,
    /// Each crawl's timeout.
    pub(crate) timeout: Duration,
    /// The database.
    pub(crate) db: PathBuf,
    /// What the database keeps.
    pub(crate) retention: Retention,
    /// Print each crawl's report as one JSON line (else one summary line).
    pub(crate) json: bool,
    /// Where the map is served (`None`: not served).
    pub(crate) map_addr: Option<SocketAddr>,
    /// Stop after this many rounds (`None`: until stopped).
    pub(crate) rounds: Option<usize>,
    /// Follow non-routable addresses learned from PEX (`--allow-private`).
    pub(crate) allow_private: bool,
}

/// Opens the database on the blocking pool.
pub(crate) async fn open(path: &Path) -> Result<Arc<Mutex<Store>>, String> {
    let path = path.to_owned();
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(Mutex::new(store)))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// One crawl of `chain_id` from `seeds`, written to `store` while it runs. Returns the
/// crawl's ID in the database and the report.
pub(crate) async fn crawl_into(
    store: &Arc<Mutex<Store>>,
    chain_id: &str,
    seeds: &[ParsedAddress],
    timeout: Duration,
    retention: Retention,
    allow_private: bool,
) -> Result<(i64, Report), String> {
    let seed_list = seeds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let crawl_id = {
        let store = store.clone();
        let chain = chain_id.to_owned();
        blocking(move || {
            store
                .lock()
                .begin_crawl(&chain, &seed_list, SystemTime::now())
        })
        .await?
    };
    let (tx, mut rx) = mpsc::channel::<Found>(QUEUE);
    let writer = {
        let store = store.clone();
        let chain = chain_id.to_owned();
        tokio::task::spawn_blocking(move || -> Result<(), crate::store::StoreError> {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(f) => batch.push(f),
                        Err(_) => break,
                    }
                }
                store
                    .lock()
                    .record(crawl_id, &chain, &batch, SystemTime::now())?;
            }
            Ok(())
        })
    };
    // History: what the last finished crawl of this chain reached is looked at again, so a
    // node stays on the map until it stops answering, not until an answer leaves it out.
    let known = {
        let store = store.clone();
        let chain = chain_id.to_owned();
        blocking(move || store.lock().last_reached(&chain, crawl::MAX_NODES))
            .await?
            .iter()
            .filter_map(|a| a.parse::<NetAddress>().ok())
            .collect()
    };
    let report = crawl::crawl(crawl::Options {
        seeds: seeds.to_vec(),
        chain_id: Some(chain_id.to_owned()),
        timeout,
        allow_private,
        known,
        sink: Some(tx),
    })
    .await;
    // The sink is dropped with the crawl's options: the writer drains and ends.
    writer
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let report = report?;
    {
        let store = store.clone();
        blocking(move || {
            store
                .lock()
                .finish_crawl(crawl_id, SystemTime::now(), retention)
        })
        .await?;
    }
    Ok((crawl_id, report))
}

/// The map's view of a crawl database: a read-only connection of its own.
pub(crate) struct StoreSource {
    path: PathBuf,
    reader: Mutex<Option<Store>>,
    /// IDs to highlight: the seeds the crawls start from.
    ours: Vec<String>,
}

impl StoreSource {
    pub(crate) fn new(path: PathBuf, ours: Vec<String>) -> Self {
        Self {
            path,
            reader: Mutex::new(None),
            ours,
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError>,
    ) -> Result<T, String> {
        let mut reader = self.reader.lock();
        if reader.is_none() {
            *reader = Some(Store::open_read_only(&self.path).map_err(|e| e.to_string())?);
        }
        match reader.as_ref() {
            Some(s) => f(s).map_err(|e| e.to_string()),
            None => Err("no database".into()),
        }
    }
}

impl MapSource for StoreSource {
    fn kind(&self) -> &'static str {
        "crawl"
    }

    fn chains(&self) -> Vec<String> {
        self.with(Store::chains).unwrap_or_default()
    }

    fn graph(&self, chain: &str) -> Result<Option<Graph>, String> {
        self.with(|s| s.latest_graph(chain, &self.ours))
    }

    fn history(&self, chain: &str) -> Result<Vec<CrawlSummary>, String> {
        self.with(|s| s.history(chain, HISTORY))
    }

    fn book(&self, _: &str) -> Option<Value> {
        None
    }
}

fn summary(chain: &str, crawl_id: i64, report: &Report, took: Duration) -> String {
    format!(
        "crawl {crawl_id} of {chain}: {} reachable, {} unreachable, {} edges in {:.1} s",
        report.reachable.len(),
        report.unreachable.len(),
        report
            .reachable
            .iter()
            .map(|r| r.listed.len())
            .sum::<usize>(),
        took.as_secs_f64()
    )
}

/// Runs `crawl --watch` until `until` resolves (or `opts.rounds` rounds are done).
pub(crate) async fn run(opts: Options, until: impl Future<Output = ()>) -> Result<(), String> {
    let store = open(&opts.db).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server = None;
    if let Some(addr) = opts.map_addr {
        let listener = crate::http::bind(addr)
            .await
            .map_err(|e| format!("--rpc.laddr: cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let ours = opts
            .chains
            .iter()
            .flat_map(|c| c.seeds.iter())
            .map(|s| match s {
                ParsedAddress::Resolved(a) => a.id().to_string(),
                ParsedAddress::Unresolved(u) => u.id.to_string(),
            })
            .collect();
        let source = Arc::new(StoreSource::new(opts.db.clone(), ours));
        eprintln!("map on http://{local}/ (database {})", opts.db.display());
        // Host headers answered: IP literals and `localhost` (see the node README, "HTTP
        // servers").
        server = Some(tokio::spawn(crate::http::serve(
            listener,
            crate::web::handler(source, None),
            crate::http::Limits::rpc(),
            crate::http::HostAllow::new("", &[]),
            stop_rx,
        )));
    }
    let mut chains = opts.chains.clone();
    tokio::pin!(until);
    let mut round = 0usize;
    let result = loop {
        let started = Instant::now();
        let crawl_all = async {
            for chain in &mut chains {
                if chain.chain_id.is_none() {
                    chain.chain_id = crawl::network_of_seeds(&chain.seeds).await;
                }
                let Some(id) = chain.chain_id.clone() else {
                    eprintln!("{}: {}", seeds_text(&chain.seeds), crawl::NO_NETWORK);
                    continue;
                };
                let t = Instant::now();
                let (crawl_id, report) = crawl_into(
                    &store,
                    &id,
                    &chain.seeds,
                    opts.timeout,
                    opts.retention,
                    opts.allow_private,
                )
                .await?;
                if opts.json {
                    let mut j = report.to_json();
                    if let Some(o) = j.as_object_mut() {
                        o.insert("crawl_id".into(), crawl_id.into());
                    }
                    println!("{j}");
                } else {
                    println!("{}", summary(&id, crawl_id, &report, t.elapsed()));
                }
            }
            Ok::<(), String>(())
        };
        tokio::select! {
            r = crawl_all => if let Err(e) = r { break Err(e) },
            () = &mut until => break Ok(()),
        }
        round += 1;
        if opts.rounds.is_some_and(|n| round >= n) {
            break Ok(());
        }
        let next = started + opts.interval;
        tokio::select! {
            () = tokio::time::sleep_until(next.into()) => {}
            () = &mut until => break Ok(()),
        }
    };
    stop_tx.send_replace(true);
    if let Some(s) = server {
        let _ = s.await;
    }
    result
}

fn seeds_text(seeds: &[ParsedAddress]) -> String {
    seeds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
