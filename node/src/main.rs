//! `mukan-p2p`: the Mukan P2P program.
//!
//! Today it runs a local network on loopback (the default): several nodes, each with its own
//! node key, a TCP transport and MConnection, connect to each other (secret connection,
//! `NodeInfo` exchange and checks), exchange messages on a demo channel, and report what
//! happened. The full node with a switch, PEX and a CometBFT home directory follows the
//! switch and PEX crates.

mod testnet;

use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: mukan-p2p [testnet] [--nodes N] [--messages M] [--size BYTES]
       mukan-p2p show-node-id --key PATH

testnet (default)  run N nodes on 127.0.0.1 (default 4), fully connected, each sending M
                   messages (default 100) of BYTES bytes (default 1024) to every peer;
                   exits 0 when every message arrived intact
show-node-id       print the node ID of a CometBFT node_key.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.first().map(String::as_str) {
        Some(c) if !c.starts_with('-') => (c.to_owned(), &args[1..]),
        _ => ("testnet".to_owned(), &args[..]),
    };
    let result = match command.as_str() {
        "testnet" => parse_testnet(rest).and_then(run_testnet),
        "show-node-id" => show_node_id(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mukan-p2p: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flag_value(args: &[String], i: &mut usize, name: &str) -> Result<String, String> {
    *i += 1;
    args.get(*i)
        .cloned()
        .ok_or_else(|| format!("{name} needs a value"))
}

fn parse_testnet(args: &[String]) -> Result<testnet::Options, String> {
    let mut opts = testnet::Options::default();
    let mut i = 0;
    while i < args.len() {
        let name = args[i].as_str();
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{name}: {e}"));
        match name {
            "--nodes" => opts.nodes = number(flag_value(args, &mut i, name)?)?,
            "--messages" => opts.messages = number(flag_value(args, &mut i, name)?)?,
            "--size" => opts.size = number(flag_value(args, &mut i, name)?)?,
            _ => return Err(format!("unknown flag {name}\n{USAGE}")),
        }
        i += 1;
    }
    if !(2..=64).contains(&opts.nodes) {
        return Err("--nodes must be between 2 and 64".into());
    }
    if opts.size > 1 << 20 {
        return Err("--size must be at most 1 MiB".into());
    }
    Ok(opts)
}

fn run_testnet(opts: testnet::Options) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let report = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), testnet::run(opts))
            .await
            .map_err(|_| "the local network did not finish within 120 s".to_owned())?
    })?;
    println!("{report}");
    Ok(())
}

fn show_node_id(args: &[String]) -> Result<(), String> {
    let [flag, path] = args else {
        return Err(format!("show-node-id needs --key PATH\n{USAGE}"));
    };
    if flag != "--key" {
        return Err(format!("unknown flag {flag}\n{USAGE}"));
    }
    let key = mukan_node_key::NodeKey::load(path).map_err(|e| e.to_string())?;
    println!("{}", key.node_id());
    Ok(())
}
