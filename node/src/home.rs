//! The home directory: CometBFT's layout (`config/config.toml`, `config/node_key.json`,
//! `config/genesis.json`, `config/addrbook.json`), read by `start` and written by `init`.

use std::fs;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use mukan_node_key::NodeKey;

use crate::config::{Config, ConfigError, format_go_duration};

/// The home directory's default location: `$CMTHOME`, else `~/.cometbft`.
pub fn default_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CMTHOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    base.join(".cometbft")
}

/// `config/config.toml` under `home`.
pub fn config_path(home: &Path) -> PathBuf {
    home.join("config").join("config.toml")
}

/// Reads `chain_id` from a genesis file (only that field is kept; the file may be large).
pub fn chain_id(path: &Path) -> Result<String, ConfigError> {
    #[derive(serde::Deserialize)]
    struct Genesis {
        chain_id: Option<serde_json::Value>,
    }
    let shown = path.display().to_string();
    let file = fs::File::open(path).map_err(|e| {
        ConfigError::new(
            &shown,
            "",
            format!("cannot read the genesis file: {e} (the chain ID comes from it; `mukan-p2p init --chain-id ID` writes one)"),
        )
    })?;
    let genesis: Genesis = serde_json::from_reader(BufReader::new(file))
        .map_err(|e| ConfigError::new(&shown, "", format!("invalid JSON: {e}")))?;
    match genesis.chain_id {
        None => Err(ConfigError::new(&shown, "chain_id", "missing")),
        Some(serde_json::Value::String(s)) => {
            if s.is_empty() || s.len() > 50 || !s.bytes().all(|b| (33..=126).contains(&b)) {
                Err(ConfigError::new(
                    &shown,
                    "chain_id",
                    format!("{s:?} must be 1 to 50 printable ASCII characters"),
                ))
            } else {
                Ok(s)
            }
        }
        Some(other) => Err(ConfigError::new(
            &shown,
            "chain_id",
            format!("expected a string, found {other}"),
        )),
    }
}

/// Loads the node key; a missing file is an error (`init` creates one).
pub fn node_key(path: &Path) -> Result<NodeKey, ConfigError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(ConfigError::new(
            &shown,
            "",
            "no node key file (`mukan-p2p init` or `cometbft init` creates one)",
        ));
    }
    NodeKey::load(path).map_err(|e| {
        // FileError's text starts with "node key file <path>: ".
        let text = e.to_string();
        let prefix = format!("node key file {shown}: ");
        let problem = text.strip_prefix(&prefix).unwrap_or(&text).to_owned();
        ConfigError::new(&shown, "", problem)
    })
}

/// What `init` did to each file.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written now.
    Created(PathBuf),
    /// Already there: left untouched.
    Kept(PathBuf),
    /// Not written (no chain ID given).
    Skipped(PathBuf),
}

/// Writes `contents` to `path` unless the file exists (never overwrites, even racing).
fn create_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(contents)?;
            f.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates a CometBFT-style home; existing files are kept as they are.
pub fn init(home: &Path, moniker: &str, chain_id: Option<&str>) -> Result<Vec<Outcome>, String> {
    let config_dir = home.join("config");
    fs::create_dir_all(&config_dir)
        .map_err(|e| format!("{}: cannot create: {e}", config_dir.display()))?;
    fs::create_dir_all(home.join("data"))
        .map_err(|e| format!("{}: cannot create: {e}", home.join("data").display()))?;
    let mut out = Vec::new();
    let write = |path: PathBuf, contents: &[u8], mode: u32| -> Result<Outcome, String> {
        let created = create_new(&path, contents, mode)
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        Ok(if created {
            Outcome::Created(path)
        } else {
            Outcome::Kept(path)
        })
    };

    let config = Config {
        moniker: moniker.to_owned(),
        ..Config::default()
    };
    out.push(write(
        config_path(home),
        config_template(&config).as_bytes(),
        0o644,
    )?);

    let key_path = config_dir.join("node_key.json");
    if key_path.exists() {
        // Checked so that `init` reports a broken key file rather than keeping it silently.
        node_key(&key_path).map_err(|e| e.to_string())?;
        out.push(Outcome::Kept(key_path));
    } else {
        let key = NodeKey::generate(&mut rand::rngs::OsRng);
        out.push(write(key_path, key.to_json().as_bytes(), 0o600)?);
    }

    let genesis_path = config_dir.join("genesis.json");
    match chain_id {
        _ if genesis_path.exists() => out.push(Outcome::Kept(genesis_path)),
        Some(id) => {
            if id.is_empty() || id.len() > 50 || !id.bytes().all(|b| (33..=126).contains(&b)) {
                return Err(format!(
                    "--chain-id {id:?}: must be 1 to 50 printable ASCII characters"
                ));
            }
            out.push(write(genesis_path, genesis_json(id).as_bytes(), 0o644)?);
        }
        None => out.push(Outcome::Skipped(genesis_path)),
    }
    Ok(out)
}

/// A minimal genesis document: enough for `mukan-p2p` (the chain ID) and in the shape
/// CometBFT writes.
fn genesis_json(chain_id: &str) -> String {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    let doc = serde_json::json!({
        "genesis_time": now,
        "chain_id": chain_id,
        "initial_height": "1",
        "app_hash": "",
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

fn toml_str(s: &str) -> String {
    // TOML basic strings accept JSON string escapes.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn toml_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The `config.toml` that `init` writes: the keys this program reads, with CometBFT's
/// defaults, explained. CometBFT reads the same file (missing keys take its defaults).
pub fn config_template(c: &Config) -> String {
    let p = &c.p2p;
    format!(
        r#"# mukan-p2p configuration, in CometBFT's config.toml format.
#
# mukan-p2p reads the keys below. A config.toml written by `cometbft init` works too: the
# sections a p2p node has no use for ([mempool], [consensus], ...) are skipped with a warning.
# Relative paths are taken from the home directory (--home, $CMTHOME or ~/.cometbft).

# The name this node shows to its peers and to crawlers.
moniker = {moniker}

# How much to log: "debug", "info", "error", "none", or per module, e.g. "p2p:debug,*:error".
log_level = {log_level}

# "plain" or "json".
log_format = "plain"

# Where the chain ID is read from (its "chain_id" field).
genesis_file = "config/genesis.json"

# The ed25519 key that gives this node its ID.
node_key_file = "config/node_key.json"

[rpc]

# Where /health, /status, /net_info and /peers are served over HTTP ("" turns it off).
laddr = {rpc_laddr}

# Host names the RPC and metrics servers answer to, besides IP addresses, "localhost" and the
# name in laddr (a request naming any other host is refused, so that a web page cannot read
# this node through DNS rebinding). ["*"] answers every name.
allowed_hosts = {allowed_hosts}

# List the peers of [p2p] private_peer_ids in /net_info and /peers (CometBFT does; we
# leave them out unless this is true).
show_private_peers = {show_private}

[p2p]

# Where to accept peer connections.
laddr = {laddr}

# The address peers should dial to reach this node, if not laddr (e.g. behind NAT).
external_address = ""

# Nodes asked for addresses at start, as id@host:port, separated by commas.
seeds = ""

# Nodes to stay connected to, as id@host:port, separated by commas; redialed when lost.
persistent_peers = ""

# Known addresses are kept here between runs.
addr_book_file = {addr_book_file}

# Keep only publicly routable addresses in the address book, and dial a seed or persistent
# peer given by name only where it resolves to a routable address (turn off for private
# networks).
addr_book_strict = {strict}

# The most peers that may dial in.
max_num_inbound_peers = {inbound}

# The most peers this node dials itself (persistent and unconditional peers aside).
max_num_outbound_peers = {outbound}

# Node IDs let in whatever the peer limits say, separated by commas.
unconditional_peer_ids = ""

# Longest pause between two dials of a persistent peer; "0s" means no limit.
persistent_peers_max_dial_period = {max_dial}

# How long small messages wait to be sent together.
flush_throttle_timeout = {flush}

# Largest payload of one packet on the wire, in bytes.
max_packet_msg_payload_size = {payload}

# Bytes per second each connection may send.
send_rate = {send_rate}

# Bytes per second each connection may receive.
recv_rate = {recv_rate}

# Bytes per second the node may send over all its connections together, shared fairly
# between the peers that have something to send; send_rate still applies to each. 0: no
# total (CometBFT has none; it has send_rate only).
max_send_rate_total = {send_total}

# Bytes per second the node may receive over all its connections together: when it is used,
# the node reads its sockets more slowly, fairly across peers (TCP pushes back on them;
# nothing is dropped and pings are still answered); recv_rate still applies to each. 0: no
# total.
max_recv_rate_total = {recv_total}

# Exchange addresses with peers (PEX).
pex = {pex}

# Crawl the network, hand out addresses, and disconnect after a short while.
seed_mode = {seed_mode}

# Node IDs whose addresses are never shared with others, separated by commas.
private_peer_ids = ""

# Accept several peers from the same IP address.
allow_duplicate_ip = {dup_ip}

# Time allowed for the encrypted handshake of a new connection.
handshake_timeout = {handshake}

# Time allowed to open a TCP connection.
dial_timeout = {dial}

[instrumentation]

# Serve Prometheus metrics on prometheus_listen_addr under /metrics.
prometheus = {prometheus}

# Where metrics are served. "127.0.0.1:26660" serves this machine only; ":26660" (what
# `cometbft init` writes) listens on every interface.
prometheus_listen_addr = {prom_addr}

# The prefix of every metric name.
namespace = {namespace}
"#,
        moniker = toml_str(&c.moniker),
        log_level = toml_str(&c.log_level),
        rpc_laddr = toml_str(&c.rpc.laddr),
        allowed_hosts = toml_list(&c.rpc.allowed_hosts),
        show_private = c.rpc.show_private_peers,
        laddr = toml_str(&p.laddr),
        addr_book_file = toml_str(&p.addr_book_file),
        strict = p.addr_book_strict,
        inbound = p.max_num_inbound_peers,
        outbound = p.max_num_outbound_peers,
        max_dial = toml_str(&format_go_duration(p.persistent_peers_max_dial_period)),
        flush = toml_str(&format_go_duration(p.flush_throttle_timeout)),
        payload = p.max_packet_msg_payload_size,
        send_rate = p.send_rate,
        recv_rate = p.recv_rate,
        send_total = p.max_send_rate_total,
        recv_total = p.max_recv_rate_total,
        pex = p.pex,
        seed_mode = p.seed_mode,
        dup_ip = p.allow_duplicate_ip,
        handshake = toml_str(&format_go_duration(p.handshake_timeout)),
        dial = toml_str(&format_go_duration(p.dial_timeout)),
        prometheus = c.instrumentation.prometheus,
        prom_addr = toml_str(&c.instrumentation.prometheus_listen_addr),
        namespace = toml_str(&c.instrumentation.namespace),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, parse};

    #[test]
    fn template_round_trips_every_default_and_has_every_p2p_key() {
        let c = Config {
            moniker: "tmpl \"q\"".into(),
            ..Config::default()
        };
        let text = config_template(&c);
        let loaded = parse(&text, "t", &Overrides::default()).unwrap();
        assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
        let back = loaded.config;
        assert_eq!(back.moniker, c.moniker);
        assert_eq!(format!("{:?}", back.p2p), format!("{:?}", c.p2p));
        assert_eq!(format!("{:?}", back.rpc), format!("{:?}", c.rpc));
        assert_eq!(
            format!("{:?}", back.instrumentation),
            format!("{:?}", c.instrumentation)
        );
        let table: toml::Table = text.parse().unwrap();
        let p2p = table["p2p"].as_table().unwrap();
        for &key in crate::config::P2P_USED {
            assert!(p2p.contains_key(key), "{key}");
        }
        // The same keys and values CometBFT v0.38.25's `init` writes, plus our node-wide
        // totals (off).
        let go: toml::Table = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v0.38.25/config.toml"),
        )
        .unwrap()
        .parse()
        .unwrap();
        let mut ours = p2p.clone();
        for key in ["max_send_rate_total", "max_recv_rate_total"] {
            assert_eq!(ours.remove(key), Some(toml::Value::Integer(0)), "{key}");
        }
        assert_eq!(go["p2p"].as_table(), Some(&ours));
        assert_eq!(go["rpc"]["laddr"], table["rpc"]["laddr"]);
        for k in ["prometheus", "namespace"] {
            assert_eq!(go["instrumentation"][k], table["instrumentation"][k], "{k}");
        }
        // On purpose: metrics on this machine only (Go writes ":26660", every interface).
        assert_eq!(
            go["instrumentation"]["prometheus_listen_addr"].as_str(),
            Some(":26660")
        );
        assert_eq!(
            table["instrumentation"]["prometheus_listen_addr"].as_str(),
            Some("127.0.0.1:26660")
        );
    }

    #[test]
    fn init_creates_a_home_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("h");
        let out = init(&home, "m1", None).unwrap();
        assert!(matches!(&out[0], Outcome::Created(_)));
        assert!(matches!(&out[1], Outcome::Created(_)));
        assert!(matches!(&out[2], Outcome::Skipped(_)));
        let key1 = fs::read(home.join("config/node_key.json")).unwrap();
        node_key(&home.join("config/node_key.json")).unwrap();
        fs::write(config_path(&home), "moniker = \"mine\"\n").unwrap();

        let out = init(&home, "m2", Some("chain-7")).unwrap();
        assert!(matches!(&out[0], Outcome::Kept(_)));
        assert!(matches!(&out[1], Outcome::Kept(_)));
        assert!(matches!(&out[2], Outcome::Created(_)));
        assert_eq!(fs::read(home.join("config/node_key.json")).unwrap(), key1);
        assert_eq!(
            fs::read_to_string(config_path(&home)).unwrap(),
            "moniker = \"mine\"\n"
        );
        assert_eq!(
            chain_id(&home.join("config/genesis.json")).unwrap(),
            "chain-7"
        );

        let genesis = fs::read(home.join("config/genesis.json")).unwrap();
        let out = init(&home, "m3", Some("other")).unwrap();
        assert!(matches!(&out[2], Outcome::Kept(_)));
        assert_eq!(fs::read(home.join("config/genesis.json")).unwrap(), genesis);
    }

    #[test]
    fn cometbft_genesis_and_keys_load() {
        for v in ["v0.34.35", "v0.37.18", "v0.38.25", "v0.40.0", "v1.0.1"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(v);
            let id = chain_id(&dir.join("genesis.json")).unwrap();
            assert!(id.starts_with("test-chain-"), "{v}: {id}");
            node_key(&dir.join("node_key.json")).unwrap();
        }
    }

    #[test]
    fn genesis_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("genesis.json");
        assert!(chain_id(&p).unwrap_err().problem.contains("cannot read"));
        fs::write(&p, "{").unwrap();
        assert!(chain_id(&p).unwrap_err().problem.contains("invalid JSON"));
        fs::write(&p, "{\"chain_id\": 5}").unwrap();
        assert_eq!(chain_id(&p).unwrap_err().key, "chain_id");
        fs::write(&p, "{}").unwrap();
        assert_eq!(chain_id(&p).unwrap_err().problem, "missing");
    }
}
