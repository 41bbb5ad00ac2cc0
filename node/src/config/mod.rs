//! `config/config.toml`: the part of CometBFT's configuration this program uses, read into
//! typed structs, with command-line flags applied on top.
//!
//! The model is here; `read.rs` reads `config.toml` into it, `overrides.rs` holds the
//! command-line flags applied on top, `values.rs` the value syntaxes (Go durations, lists,
//! host:port through `mukan-reactor-api`'s parser), `log_level.rs` CometBFT's log levels.
//!
//! Sections and keys that some CometBFT line (v0.34 … v1.0) writes but that a p2p node has no
//! use for are skipped with one warning. A key we do not know in a section we use, a value of
//! the wrong type or an address that does not parse ends the load with a [`ConfigError`]
//! naming the file, the key and the problem.

use std::fmt;
use std::time::Duration;

use mukan_reactor_api::{NodeId, ParsedAddress};

mod log_level;
mod overrides;
mod read;
mod values;

pub use log_level::parse_level;
pub use overrides::Overrides;
#[cfg(test)]
pub(crate) use read::P2P_USED;
pub use read::{Loaded, load, parse, rootify};
pub use values::{format_go_duration, parse_go_duration, parse_host_port, resolve, split_list};

/// One configuration problem: where, which key, what is wrong. Shown on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or "command line").
    pub source: String,
    /// The key, as the user wrote it (`[p2p] laddr`, `--p2p.laddr`).
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl ConfigError {
    /// A problem with `key` of `source` (a file path or a flag).
    pub fn new(
        source: impl Into<String>,
        key: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            source: source.into(),
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never more than one line, whatever the problem text holds.
        let problem = self.problem.replace(['\n', '\r'], " ");
        if self.key.is_empty() {
            write!(f, "{}: {problem}", self.source)
        } else {
            write!(f, "{}: {}: {problem}", self.source, self.key)
        }
    }
}

impl std::error::Error for ConfigError {}

/// How logs are written (`log_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The whole configuration the node uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's name in its `NodeInfo`.
    pub moniker: String,
    /// CometBFT-style log level (`info`, `p2p:debug,*:error`).
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Path of `genesis.json`, relative to the home unless absolute.
    pub genesis_file: String,
    /// Path of `node_key.json`, relative to the home unless absolute.
    pub node_key_file: String,
    /// `[p2p]`.
    pub p2p: P2pConfig,
    /// `[rpc]`.
    pub rpc: RpcConfig,
    /// `[instrumentation]`.
    pub instrumentation: InstrumentationConfig,
}

/// `[p2p]` of `config.toml`, at CometBFT v0.38's defaults.
#[derive(Clone, Debug)]
pub struct P2pConfig {
    /// `laddr`, verbatim (it goes into `NodeInfo.listen_addr`).
    pub laddr: String,
    /// `external_address`, verbatim; empty for none.
    pub external_address: String,
    /// `seeds`.
    pub seeds: Vec<ParsedAddress>,
    /// `persistent_peers`.
    pub persistent_peers: Vec<ParsedAddress>,
    /// `addr_book_file`, relative to the home unless absolute.
    pub addr_book_file: String,
    /// `addr_book_strict`: only routable addresses enter the book.
    pub addr_book_strict: bool,
    /// `max_num_inbound_peers`.
    pub max_num_inbound_peers: usize,
    /// `max_num_outbound_peers`.
    pub max_num_outbound_peers: usize,
    /// `unconditional_peer_ids`.
    pub unconditional_peer_ids: Vec<NodeId>,
    /// `persistent_peers_max_dial_period` (zero: no cap).
    pub persistent_peers_max_dial_period: Duration,
    /// `flush_throttle_timeout`.
    pub flush_throttle_timeout: Duration,
    /// `max_packet_msg_payload_size`.
    pub max_packet_msg_payload_size: usize,
    /// `send_rate`, bytes per second.
    pub send_rate: u64,
    /// `recv_rate`, bytes per second.
    pub recv_rate: u64,
    /// `max_send_rate_total` (ours): bytes per second over all connections, shared fairly
    /// between peers; 0 = no total.
    pub max_send_rate_total: u64,
    /// `max_recv_rate_total` (ours): as `max_send_rate_total`, received.
    pub max_recv_rate_total: u64,
    /// `pex`.
    pub pex: bool,
    /// `seed_mode`.
    pub seed_mode: bool,
    /// `private_peer_ids`.
    pub private_peer_ids: Vec<NodeId>,
    /// `allow_duplicate_ip`.
    pub allow_duplicate_ip: bool,
    /// `handshake_timeout`.
    pub handshake_timeout: Duration,
    /// `dial_timeout`.
    pub dial_timeout: Duration,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            laddr: "tcp://0.0.0.0:26656".into(),
            external_address: String::new(),
            seeds: Vec::new(),
            persistent_peers: Vec::new(),
            addr_book_file: "config/addrbook.json".into(),
            addr_book_strict: true,
            max_num_inbound_peers: 40,
            max_num_outbound_peers: 10,
            unconditional_peer_ids: Vec::new(),
            persistent_peers_max_dial_period: Duration::ZERO,
            flush_throttle_timeout: Duration::from_millis(100),
            max_packet_msg_payload_size: 1024,
            send_rate: 5_120_000,
            recv_rate: 5_120_000,
            max_send_rate_total: 0,
            max_recv_rate_total: 0,
            pex: true,
            seed_mode: false,
            private_peer_ids: Vec::new(),
            allow_duplicate_ip: false,
            handshake_timeout: Duration::from_secs(20),
            dial_timeout: Duration::from_secs(3),
        }
    }
}

/// `[rpc]`: the listen address and what the HTTP servers answer.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// `laddr`, verbatim; empty: no HTTP server.
    pub laddr: String,
    /// `allowed_hosts` (ours, not CometBFT's): host names the RPC and metrics servers answer
    /// besides IP literals, `localhost` and the listen address's name; `"*"`: any.
    pub allowed_hosts: Vec<String>,
    /// `show_private_peers` (ours): list the peers of `[p2p] private_peer_ids` in
    /// `/net_info` and `/peers` too (CometBFT lists them).
    pub show_private_peers: bool,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            laddr: "tcp://127.0.0.1:26657".into(),
            allowed_hosts: Vec::new(),
            show_private_peers: false,
        }
    }
}

/// `[instrumentation]`.
#[derive(Clone, Debug)]
pub struct InstrumentationConfig {
    /// `prometheus`: serve metrics.
    pub prometheus: bool,
    /// `prometheus_listen_addr` (`:26660`, what `cometbft init` writes, means every
    /// interface; ours defaults to `127.0.0.1:26660`).
    pub prometheus_listen_addr: String,
    /// `namespace`: the metric name prefix.
    pub namespace: String,
}

impl Default for InstrumentationConfig {
    fn default() -> Self {
        Self {
            prometheus: false,
            prometheus_listen_addr: "127.0.0.1:26660".into(),
            namespace: "cometbft".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            moniker: default_moniker(),
            log_level: "info".into(),
            log_format: LogFormat::Plain,
            genesis_file: "config/genesis.json".into(),
            node_key_file: "config/node_key.json".into(),
            p2p: P2pConfig::default(),
            rpc: RpcConfig::default(),
            instrumentation: InstrumentationConfig::default(),
        }
    }
}

/// CometBFT's default moniker is the host name.
pub fn default_moniker() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or_else(|| "mukan-p2p".into())
}
