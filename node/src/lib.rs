//! `mukan-node`: a CometBFT-compatible node assembled from the Mukan P2P crates, as a library
//! (this crate) and as the program `mukan-p2p` (feature `program`, on by default).
//!
//! The library assembles a node: [`NodeBuilder`] wires a transport, the switch, an address
//! book, reactors (PEX among them) and observers into a running [`Node`], from parts or from
//! a CometBFT home ([`load_node`], [`NodeBuilder::from_home`]; [`config`] and [`home`] read
//! the home's files). Every program of this repository that runs a node (`mukan-p2p`, the
//! Go-interop peer, the fault simulation, the load and bench tools, the crawler's transport)
//! assembles it here.
//!
//! # Features
//! - `program` (default): the `mukan-p2p` binary and its dependencies (CLI, HTTP, metrics).
//! - `memory`: [`BindTransport`] for `mukan_transport::MemoryTransport` (in-memory networks
//!   for simulations and tests).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

/// The code in `README.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod builder;
pub mod config;
mod from_home;
pub mod home;

pub use builder::{BindTransport, BuildError, Node, NodeBuilder, TransportParts, feeler_probe};
pub use from_home::{HomeBook, save_book};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mukan_node_key::NodeKey;

use crate::config::{ConfigError, Overrides};

/// The version this crate reports (`NodeInfo.version`, `/status`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything `start` reads from a home, checked before anything is started or written.
pub struct NodeSetup {
    /// The home directory.
    pub home: PathBuf,
    /// `config/config.toml`, with the flags applied.
    pub config: config::Config,
    /// Keys and sections of the file a p2p node does not use (skipped).
    pub ignored: Vec<String>,
    /// The node key (`node_key.json`).
    pub key: Arc<NodeKey>,
    /// The chain ID (`genesis.json`).
    pub chain_id: String,
}

/// Reads config.toml (with flags applied), the node key and the chain ID. Writes nothing.
///
/// # Errors
/// The first problem, naming the file and the key.
pub fn load_node(home: &Path, overrides: &Overrides) -> Result<NodeSetup, ConfigError> {
    let loaded = config::load(&home::config_path(home), overrides)?;
    let key = Arc::new(home::node_key(&config::rootify(
        home,
        &loaded.config.node_key_file,
    ))?);
    let chain_id = home::chain_id(&config::rootify(home, &loaded.config.genesis_file))?;
    Ok(NodeSetup {
        home: home.to_owned(),
        config: loaded.config,
        ignored: loaded.ignored,
        key,
        chain_id,
    })
}
