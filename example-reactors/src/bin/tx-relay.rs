//! `tx-relay`: hands transactions to a CometBFT network over p2p (the mempool channel), and
//! relays the ones its peers gossip.
//!
//! ```text
//! tx-relay --home DIR [--tx KEY=VALUE]… [--stay] [--peers ID@HOST:PORT,…]
//!          [--p2p.laddr tcp://IP:PORT] [--connect-timeout SECONDS]
//! ```
//!
//! `DIR` is a CometBFT home: `config/node_key.json`, `config/genesis.json` (the chain ID),
//! `config/config.toml` (`[p2p] persistent_peers` and `laddr`, unless the flags say
//! otherwise). The relay dials its persistent peers; once one is connected it sends every `--tx` to all connected
//! peers and, without `--stay`, stops gracefully (what is queued is flushed) and exits 0.
//! With `--stay` (or no `--tx`) it keeps running until SIGINT / SIGTERM, relaying and
//! printing the transactions it receives. Events on stdout, one JSON object a line:
//! `tx_sent` (`tx`, `peers`), `tx_received` (`tx`, `from`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use mukan_example_reactors::node::{self, NodeArgs};
use mukan_example_reactors::tx_relay::{ReceivedTx, TxRelay};
use mukan_reactor_api::Network as _;
use serde_json::json;
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "Sends transactions into a CometBFT network over p2p, and relays")]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// A transaction to send (kvstore: `key=value`); repeatable.
    #[arg(long)]
    tx: Vec<String>,
    /// Keep running after sending.
    #[arg(long)]
    stay: bool,
    /// How long to wait for a peer, in seconds.
    #[arg(long, default_value_t = 30)]
    connect_timeout: u64,
}

fn print_received(mut rx: mpsc::Receiver<ReceivedTx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            let tx = String::from_utf8_lossy(&r.tx).into_owned();
            println!(
                "{}",
                json!({"event": "tx_received", "tx": tx, "from": r.from.to_string()})
            );
        }
    })
}

async fn run(args: Args) -> Result<(), String> {
    let (tx, rx) = mpsc::channel(1024);
    let relay = Arc::new(TxRelay::new(tx));
    let printer = print_received(rx);
    let node = node::start(&args.node, "tx-relay", ("mempool", relay.clone())).await?;
    let connected = async {
        while node.switch().peers().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(args.connect_timeout), connected)
        .await
        .is_err()
    {
        node.stop().await;
        return Err(format!(
            "no peer connected within {} s",
            args.connect_timeout
        ));
    }
    for tx in &args.tx {
        let report = relay.broadcast_tx(Bytes::from(tx.clone().into_bytes()));
        println!(
            "{}",
            json!({"event": "tx_sent", "tx": tx, "peers": report.queued()})
        );
        if report.queued() == 0 {
            node.stop().await;
            return Err(format!("{tx}: no peer took it ({:?})", report.outcomes));
        }
    }
    if args.stay || args.tx.is_empty() {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    // A graceful stop flushes what is queued to every peer before closing.
    node.stop().await;
    printer.abort();
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tx-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
