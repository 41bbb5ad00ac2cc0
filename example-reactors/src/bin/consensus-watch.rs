//! `consensus-watch`: follows a CometBFT chain live over p2p, read-only, and prints per
//! height its round, block hash, proposer and which validators prevoted and precommitted.
//!
//! ```text
//! consensus-watch --home DIR [--json] [--peers ID@HOST:PORT,…] [--p2p.laddr tcp://IP:PORT]
//!                 [--stats D] [--exit-after D] [--slow-printer D]
//! ```
//!
//! `DIR` is a CometBFT home: `config/node_key.json`, `config/genesis.json` (the chain ID),
//! `config/config.toml` (`[p2p] persistent_peers`, the peers to follow, and `laddr`, unless
//! the flags say otherwise). Heights go to stdout, one a line (`--json`: one JSON object a line, `"event":
//! "height"`); every `--stats` (default 10 s) and at exit a `stats` line gives the messages
//! decoded per kind, reports dropped, announcements not sent and messages not understood.
//! `--slow-printer D` makes the printer wait `D` before each line (a slow consumer, for
//! tests): the watcher keeps following the chain, its reports queue up (and are dropped,
//! counted, once 1,024 wait).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use mukan_example_reactors::consensus_watch::{ConsensusWatch, HeightReport};
use mukan_example_reactors::node::{self, NodeArgs};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "Follows CometBFT consensus over p2p, read-only")]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// One JSON object a line.
    #[arg(long)]
    json: bool,
    /// How often to print the stats line.
    #[arg(long, default_value = "10s", value_parser = duration)]
    stats: Duration,
    /// Stop after this long (0: on SIGINT / SIGTERM only).
    #[arg(long, default_value = "0s", value_parser = duration)]
    exit_after: Duration,
    /// Wait this long before printing each line (a slow consumer, for tests).
    #[arg(long, default_value = "0s", value_parser = duration)]
    slow_printer: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("not a duration: {s}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("not a duration: {s} (use ms, s or m)")),
    }
}

fn height_line(r: &HeightReport, json: bool) -> String {
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    if json {
        let j = json!({"event": "height", "height": r.height, "round": r.round,
            "hash": r.block_hash, "proposer": r.proposer,
            "prevotes": r.prevotes, "precommits": r.precommits});
        return j.to_string();
    }
    let or_dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    format!(
        "height {} round {} block {} proposer {} prevotes [{}] precommits [{}]",
        r.height,
        r.round,
        or_dash(&r.block_hash),
        or_dash(&r.proposer),
        list(&r.prevotes),
        list(&r.precommits)
    )
}

fn stats_line(w: &ConsensusWatch, json: bool) -> String {
    let (dropped, unsent) = (
        w.dropped.load(Ordering::Relaxed),
        w.unsent.load(Ordering::Relaxed),
    );
    let undecodable = w.undecodable.load(Ordering::Relaxed);
    if json {
        let j = json!({"event": "stats", "kinds": w.kinds(), "dropped": dropped,
            "unsent": unsent, "undecodable": undecodable, "last_error": w.last_error()});
        return j.to_string();
    }
    let kinds: Vec<String> = w.kinds().iter().map(|(k, n)| format!("{k}={n}")).collect();
    format!(
        "stats {} dropped={dropped} unsent={unsent} undecodable={undecodable}",
        kinds.join(" ")
    )
}

/// The printer: the only place that writes, so a slow stdout slows nothing else.
async fn print(mut reports: mpsc::Receiver<HeightReport>, json: bool, slow: Duration) {
    let mut out = tokio::io::stdout();
    while let Some(r) = reports.recv().await {
        tokio::time::sleep(slow).await;
        let line = height_line(&r, json) + "\n";
        if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
            return;
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let (tx, rx) = mpsc::channel(1024);
    let watch = Arc::new(ConsensusWatch::new(32 << 20, tx));
    let printer = tokio::spawn(print(rx, args.json, args.slow_printer));
    let node = node::start(&args.node, "consensus-watch", ("consensus", watch.clone())).await?;
    let mut stats = tokio::time::interval(args.stats);
    stats.tick().await;
    let end = async {
        if args.exit_after.is_zero() {
            std::future::pending().await
        } else {
            tokio::time::sleep(args.exit_after).await
        }
    };
    tokio::pin!(end);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            _ = stats.tick() => println!("{}", stats_line(&watch, args.json)),
            () = &mut end => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    node.stop().await;
    printer.abort();
    println!("{}", stats_line(&watch, args.json));
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consensus-watch: {e}");
            ExitCode::FAILURE
        }
    }
}
