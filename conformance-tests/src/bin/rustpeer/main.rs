//! `rustpeer`: the Rust side of the interop harness, the twin of `go/cmd/gopeer`.
//!
//! Same flags (the subset our crates support) and the same JSON-line events on stdout, so
//! `go/run-interop.sh` can run every case as a matrix Go→Go, Go→Rust, Rust→Go, Rust→Rust.
//! Built on our crates only: a `mukan_switch::Switch` over the TCP transport (secret
//! connection + NodeInfo exchange + MConnection), with an echo reactor on the echo channel
//! whose messages are raw bytes (the identity encoding of gopeer's `RawMessage`). The switch
//! keeps the peer set, the limits and the persistent-peer redials (Go's schedule); this
//! program only prints what happens.
//!
//! Flags gopeer does not have, for the network-namespace fault tests (`netns/`):
//! `--ping-interval`/`--pong-timeout` (MConnection timers), `--dial-timeout`,
//! `--handshake-timeout`, `--persistent-peers-max-dial-period`, `--redial-forever`,
//! `--echo-interval` (paced echo client), and sequenced per-channel streams on the extra
//! channels: `--stream-count N --stream-interval D` to send, `--stream-check` to verify
//! (complete and in order per channel, `stream_done` / `stream_gap` events).
//!
//! Layout: `main.rs` runs the node and its roles; `cfg.rs` the flags; `events.rs` the JSON
//! events and the reject tokens; `node.rs` the node (NodeBuilder, the event-printing
//! transport, PEX and its book, one-time dials); `echo.rs` the echo reactor and the
//! echo-client and stream roles; `addrbook_tool.rs` the `addrbook-dump` / `addrbook-write`
//! subcommands.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use mukan_node_key::NodeKey;
use mukan_reactor_api::NetAddress;
use parking_lot::Mutex;

use crate::cfg::Cfg;
use crate::echo::{run_client, run_stream};
use crate::events::Events;
use crate::node::{build, dial_once, save_book, terminate, watch_book};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("addrbook-dump") => return addrbook_tool::dump(&args[1..]),
        Some("addrbook-write") => return addrbook_tool::write(&args[1..]),
        _ => {}
    }
    let cfg = match Cfg::parse(&args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("rustpeer: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rustpeer: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cfg))
}

macro_rules! kv {
    ($($k:literal => $v:expr),* $(,)?) => {
        &[$(($k, serde_json::json!($v))),*]
    };
}

mod addrbook_tool;
mod cfg;
mod echo;
mod events;
mod node;

async fn run(cfg: Cfg) -> ExitCode {
    let ev = Events {
        start: Instant::now(),
        out: Arc::new(Mutex::new(())),
    };
    let key_file = cfg.key_file();
    if let Some(dir) = key_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let key = match NodeKey::load_or_generate(&key_file, &mut rand::rngs::OsRng) {
        Ok(k) => Arc::new(k),
        Err(e) => {
            ev.emit("error", kv!["error" => e.to_string()]);
            return ExitCode::from(2);
        }
    };
    if cfg.show_id {
        println!("{}", key.node_id());
        return ExitCode::SUCCESS;
    }
    let node = match build(&cfg, &ev, key.clone()).await {
        Ok(node) => node,
        Err(e) => {
            ev.emit("error", kv!["error" => e]);
            return ExitCode::from(2);
        }
    };
    let transport = node.switch.transport();
    ev.emit(
        "listening",
        kv![
            "id" => key.node_id().to_string(),
            "addr" => format!("{}@{}", key.node_id(), node.local_addr),
            "listen_addr" => transport.inner.node_info().listen_addr,
            "moniker" => cfg.moniker.clone(),
            "network" => cfg.chain_id.clone(),
            "channels" => hex::encode(node.switch.channel_ids().iter().map(|c| c.0).collect::<Vec<u8>>()),
            "p2p_version" => cfg.p2p_version,
            "block_version" => cfg.block_version,
            "pex" => cfg.pex,
            "seed_mode" => cfg.seed_mode,
            "key_file" => key_file.display().to_string(),
            "addrbook_file" => if cfg.pex { cfg.addrbook_file().display().to_string() } else { String::new() },
            "impl" => "rust",
        ],
    );
    let watcher = tokio::spawn(watch_book(node.clone()));
    // Persistent peers: dialed at once (the switch's dial randomizer is zero here), then
    // redialed by the switch on Go's schedule.
    node.switch.dial_persistent_peers();
    for text in &cfg.dial {
        match text.parse::<NetAddress>() {
            Ok(addr) => {
                tokio::spawn(dial_once(node.clone(), addr));
            }
            Err(e) => ev.emit(
                "rejected",
                kv!["direction" => "outbound", "reason" => "dial_failed", "detail" => "",
                    "addr" => text, "error" => e.to_string()],
            ),
        }
    }

    let mut streamer = (cfg.stream_count > 0).then(|| tokio::spawn(run_stream(node.clone())));
    let code = if cfg.echo_client > 0 {
        let ok = run_client(&node).await;
        // The streams end before the program does (bounded by the echo timeout).
        if let Some(s) = streamer.as_mut() {
            let _ = tokio::time::timeout(cfg.echo_timeout, s).await;
        }
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    } else {
        let exit_after = async {
            match cfg.exit_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => ev.emit("signal", kv!["signal" => "interrupt"]),
            _ = terminate() => ev.emit("signal", kv!["signal" => "terminated"]),
            () = exit_after => {}
        }
        ExitCode::SUCCESS
    };
    // Ordered stop: no more accepts or dials, every peer flushed (bounded) and removed from
    // the reactors, then the reactors stopped.
    if let Some(s) = streamer {
        s.abort();
    }
    node.switch.stop().await;
    watcher.abort();
    if let Some(pex) = &node.pex {
        // The reactor's own last save (started at its stop), then ours, reported.
        if let Some(reactor) = &pex.reactor {
            reactor.wait_saved().await;
        }
        let (book, path) = (pex.book.clone(), pex.path.clone());
        let saved = tokio::task::spawn_blocking(move || save_book(&book, &path)).await;
        match saved {
            Ok(Ok(())) => ev.emit(
                "addrbook_saved",
                kv!["path" => pex.path.display().to_string(), "size" => pex.size()],
            ),
            Ok(Err(e)) => ev.emit(
                "error",
                kv!["error" => format!("saving the address book: {e}")],
            ),
            Err(e) => ev.emit(
                "error",
                kv!["error" => format!("saving the address book: {e}")],
            ),
        }
    }
    ev.emit("stopped", &[]);
    code
}
