//! Reading `config.toml` into the typed [`Config`]: every key checked (unknown keys refused
//! with the nearest known one, keys of other CometBFT lines skipped with a warning), every
//! value parsed, the flags applied.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mukan_reactor_api::{NodeId, ParsedAddress};
use toml::{Table, Value};

use super::{
    Config, ConfigError, LogFormat, Overrides, parse_go_duration, parse_host_port, parse_level,
    split_list,
};

/// Top-level keys we read.
const BASE_USED: &[&str] = &[
    "moniker",
    "log_level",
    "log_format",
    "genesis_file",
    "node_key_file",
];
/// Top-level keys some CometBFT line writes that a p2p node does not use.
const BASE_IGNORED: &[&str] = &[
    "version",
    "proxy_app",
    "fast_sync",
    "block_sync",
    "db_backend",
    "db_dir",
    "priv_validator_key_file",
    "priv_validator_state_file",
    "priv_validator_laddr",
    "abci",
    "filter_peers",
    "event_bus_buffer_capacity",
    "prof_laddr",
];
/// Sections some CometBFT line writes that a p2p node does not use.
const SECTIONS_IGNORED: &[&str] = &[
    "mempool",
    "statesync",
    "fastsync",
    "blocksync",
    "consensus",
    "storage",
    "tx_index",
    "grpc",
];
/// `[p2p]` keys the node reads (the template writes every one of them).
pub(crate) const P2P_USED: &[&str] = &[
    "laddr",
    "external_address",
    "seeds",
    "persistent_peers",
    "addr_book_file",
    "addr_book_strict",
    "max_num_inbound_peers",
    "max_num_outbound_peers",
    "unconditional_peer_ids",
    "persistent_peers_max_dial_period",
    "flush_throttle_timeout",
    "max_packet_msg_payload_size",
    "send_rate",
    "recv_rate",
    "max_send_rate_total",
    "max_recv_rate_total",
    "pex",
    "seed_mode",
    "private_peer_ids",
    "allow_duplicate_ip",
    "handshake_timeout",
    "dial_timeout",
];
/// `[p2p]` keys of other lines (v0.34 `upnp`, v0.40 `[p2p.libp2p]`) and test-only keys.
const P2P_IGNORED: &[&str] = &[
    "upnp",
    "libp2p",
    "test_dial_fail",
    "test_fuzz",
    "test_fuzz_config",
];
const RPC_USED: &[&str] = &["laddr", "allowed_hosts", "show_private_peers"];
const RPC_IGNORED: &[&str] = &[
    "cors_allowed_origins",
    "cors_allowed_methods",
    "cors_allowed_headers",
    "grpc_laddr",
    "grpc_max_open_connections",
    "unsafe",
    "max_open_connections",
    "max_subscription_clients",
    "max_subscriptions_per_client",
    "experimental_subscription_buffer_size",
    "experimental_websocket_write_buffer_size",
    "experimental_close_on_slow_client",
    "timeout_broadcast_tx_commit",
    "max_request_batch_size",
    "max_body_bytes",
    "max_header_bytes",
    "tls_cert_file",
    "tls_key_file",
    "pprof_laddr",
];
const INSTR_USED: &[&str] = &["prometheus", "prometheus_listen_addr", "namespace"];
const INSTR_IGNORED: &[&str] = &["max_open_connections"];

/// The result of a load: the config and what was skipped (for one warning line).
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Keys and sections present but not used (`fast_sync`, `[mempool]`, `[rpc] unsafe`).
    pub ignored: Vec<String>,
}

/// Reads a typed value, naming the key in errors.
struct Reader<'a> {
    file: &'a str,
    flags: &'a BTreeMap<(String, String), &'static str>,
}

impl Reader<'_> {
    fn err(&self, section: &str, key: &str, problem: impl Into<String>) -> ConfigError {
        match self.flags.get(&(section.to_owned(), key.to_owned())) {
            Some(flag) => ConfigError::new("command line", *flag, problem),
            None => ConfigError::new(self.file, key_name(section, key), problem),
        }
    }

    fn string(
        &self,
        t: &Table,
        section: &str,
        key: &str,
        out: &mut String,
    ) -> Result<(), ConfigError> {
        match t.get(key) {
            None => Ok(()),
            Some(Value::String(s)) => {
                out.clone_from(s);
                Ok(())
            }
            Some(v) => Err(self.err(section, key, wrong_type("a string", v))),
        }
    }

    /// A list of strings (a TOML array).
    fn strings(
        &self,
        t: &Table,
        section: &str,
        key: &str,
        out: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        match t.get(key) {
            None => Ok(()),
            Some(Value::Array(items)) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => list.push(s.clone()),
                        v => return Err(self.err(section, key, wrong_type("a string", v))),
                    }
                }
                *out = list;
                Ok(())
            }
            Some(v) => Err(self.err(section, key, wrong_type("a list of strings", v))),
        }
    }

    fn boolean(
        &self,
        t: &Table,
        section: &str,
        key: &str,
        out: &mut bool,
    ) -> Result<(), ConfigError> {
        match t.get(key) {
            None => Ok(()),
            Some(Value::Boolean(b)) => {
                *out = *b;
                Ok(())
            }
            Some(v) => Err(self.err(section, key, wrong_type("true or false", v))),
        }
    }

    fn count(&self, t: &Table, section: &str, key: &str) -> Result<Option<u64>, ConfigError> {
        match t.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => u64::try_from(*i)
                .map(Some)
                .map_err(|_| self.err(section, key, format!("must be 0 or more, got {i}"))),
            Some(v) => Err(self.err(section, key, wrong_type("an integer", v))),
        }
    }

    fn usize(
        &self,
        t: &Table,
        section: &str,
        key: &str,
        out: &mut usize,
    ) -> Result<(), ConfigError> {
        if let Some(v) = self.count(t, section, key)? {
            *out = usize::try_from(v).map_err(|_| self.err(section, key, "too large"))?;
        }
        Ok(())
    }

    fn u64(&self, t: &Table, section: &str, key: &str, out: &mut u64) -> Result<(), ConfigError> {
        if let Some(v) = self.count(t, section, key)? {
            *out = v;
        }
        Ok(())
    }

    fn duration(
        &self,
        t: &Table,
        section: &str,
        key: &str,
        out: &mut Duration,
    ) -> Result<(), ConfigError> {
        match t.get(key) {
            None => Ok(()),
            Some(Value::String(s)) => {
                *out = parse_go_duration(s).map_err(|p| self.err(section, key, p))?;
                Ok(())
            }
            Some(v) => Err(self.err(
                section,
                key,
                wrong_type("a duration string like \"100ms\"", v),
            )),
        }
    }

    fn addresses(
        &self,
        t: &Table,
        section: &str,
        key: &str,
    ) -> Result<Vec<ParsedAddress>, ConfigError> {
        let mut text = String::new();
        self.string(t, section, key, &mut text)?;
        split_list(&text)
            .map(|a| {
                a.parse::<ParsedAddress>()
                    .map_err(|e| self.err(section, key, format!("bad address {a:?}: {e}")))
            })
            .collect()
    }

    fn ids(&self, t: &Table, section: &str, key: &str) -> Result<Vec<NodeId>, ConfigError> {
        let mut text = String::new();
        self.string(t, section, key, &mut text)?;
        split_list(&text)
            .map(|a| {
                a.parse::<NodeId>()
                    .map_err(|e| self.err(section, key, format!("bad node ID {a:?}: {e}")))
            })
            .collect()
    }
}

fn key_name(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_owned()
    } else {
        format!("[{section}] {key}")
    }
}

fn wrong_type(expected: &str, found: &Value) -> String {
    let found = match found {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    };
    format!("expected {expected}, found {found}")
}

/// Checks that every key of `t` is known; collects the ignored ones.
fn check_keys(
    file: &str,
    section: &str,
    t: &Table,
    used: &[&str],
    ignored: &[&str],
    skipped: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for key in t.keys() {
        if used.contains(&key.as_str()) {
            continue;
        }
        if ignored.contains(&key.as_str()) {
            skipped.push(key_name(section, key));
            continue;
        }
        let hint = closest(key, used)
            .map(|c| format!(" (did you mean {c:?}?)"))
            .unwrap_or_default();
        return Err(ConfigError::new(
            file,
            key_name(section, key),
            format!("unknown key{hint}"),
        ));
    }
    Ok(())
}

/// The known key nearest to a misspelt one, if it is close.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    #[cfg_attr(
        not(test),
        expect(
            clippy::indexing_slicing,
            reason = "Levenshtein rows have b.len() + 1 entries and j < b.len()"
        )
    )]
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// Parses the text of `config.toml` (`file` names it in errors) and applies `overrides`.
pub fn parse(text: &str, file: &str, overrides: &Overrides) -> Result<Loaded, ConfigError> {
    let mut root: Table = text.parse::<Table>().map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().to_owned();
        match line {
            Some(l) => ConfigError::new(file, format!("line {l}"), format!("invalid TOML: {msg}")),
            None => ConfigError::new(file, "", format!("invalid TOML: {msg}")),
        }
    })?;

    // Flags go into the table so that they are checked exactly like the file's values.
    let mut flags = BTreeMap::new();
    for (section, key, flag, value) in overrides.entries() {
        let table = if section.is_empty() {
            &mut root
        } else {
            let entry = root
                .entry(section.to_owned())
                .or_insert_with(|| Value::Table(Table::new()));
            match entry {
                Value::Table(t) => t,
                other => {
                    return Err(ConfigError::new(
                        file,
                        section,
                        wrong_type("a table", other),
                    ));
                }
            }
        };
        table.insert(key.to_owned(), value);
        flags.insert((section.to_owned(), key.to_owned()), flag);
    }

    let r = Reader {
        file,
        flags: &flags,
    };
    let mut skipped = Vec::new();
    let mut base = Table::new();
    let mut sections = BTreeMap::new();
    for (key, value) in &root {
        match value {
            Value::Table(t) if ["p2p", "rpc", "instrumentation"].contains(&key.as_str()) => {
                sections.insert(key.as_str(), t);
            }
            Value::Table(_) if SECTIONS_IGNORED.contains(&key.as_str()) => {
                skipped.push(format!("[{key}]"));
            }
            Value::Table(_) if !BASE_USED.contains(&key.as_str()) => {
                // A section no CometBFT line we know writes: not ours to judge.
                skipped.push(format!("[{key}] (unknown section)"));
            }
            v if ["p2p", "rpc", "instrumentation"].contains(&key.as_str()) => {
                return Err(ConfigError::new(file, key, wrong_type("a [section]", v)));
            }
            v => {
                base.insert(key.clone(), v.clone());
            }
        }
    }
    check_keys(file, "", &base, BASE_USED, BASE_IGNORED, &mut skipped)?;
    let empty = Table::new();
    let p2p = sections.get("p2p").copied().unwrap_or(&empty);
    let rpc = sections.get("rpc").copied().unwrap_or(&empty);
    let instr = sections.get("instrumentation").copied().unwrap_or(&empty);
    check_keys(file, "p2p", p2p, P2P_USED, P2P_IGNORED, &mut skipped)?;
    check_keys(file, "rpc", rpc, RPC_USED, RPC_IGNORED, &mut skipped)?;
    check_keys(
        file,
        "instrumentation",
        instr,
        INSTR_USED,
        INSTR_IGNORED,
        &mut skipped,
    )?;

    let mut c = Config::default();
    r.string(&base, "", "moniker", &mut c.moniker)?;
    if c.moniker.trim().is_empty() || !c.moniker.bytes().all(|b| (32..=126).contains(&b)) {
        return Err(r.err(
            "",
            "moniker",
            format!("{:?} must be non-empty printable ASCII", c.moniker),
        ));
    }
    r.string(&base, "", "log_level", &mut c.log_level)?;
    parse_level(&c.log_level).map_err(|p| r.err("", "log_level", p))?;
    let mut format = "plain".to_owned();
    r.string(&base, "", "log_format", &mut format)?;
    c.log_format = match format.as_str() {
        "plain" | "" => LogFormat::Plain,
        "json" => LogFormat::Json,
        other => {
            return Err(r.err(
                "",
                "log_format",
                format!("{other:?}: expected \"plain\" or \"json\""),
            ));
        }
    };
    r.string(&base, "", "genesis_file", &mut c.genesis_file)?;
    r.string(&base, "", "node_key_file", &mut c.node_key_file)?;

    let p = &mut c.p2p;
    r.string(p2p, "p2p", "laddr", &mut p.laddr)?;
    parse_host_port(&p.laddr, false).map_err(|e| r.err("p2p", "laddr", e))?;
    r.string(p2p, "p2p", "external_address", &mut p.external_address)?;
    if !p.external_address.is_empty() {
        parse_host_port(&p.external_address, false)
            .map_err(|e| r.err("p2p", "external_address", e))?;
    }
    p.seeds = r.addresses(p2p, "p2p", "seeds")?;
    p.persistent_peers = r.addresses(p2p, "p2p", "persistent_peers")?;
    r.string(p2p, "p2p", "addr_book_file", &mut p.addr_book_file)?;
    r.boolean(p2p, "p2p", "addr_book_strict", &mut p.addr_book_strict)?;
    r.usize(
        p2p,
        "p2p",
        "max_num_inbound_peers",
        &mut p.max_num_inbound_peers,
    )?;
    r.usize(
        p2p,
        "p2p",
        "max_num_outbound_peers",
        &mut p.max_num_outbound_peers,
    )?;
    p.unconditional_peer_ids = r.ids(p2p, "p2p", "unconditional_peer_ids")?;
    r.duration(
        p2p,
        "p2p",
        "persistent_peers_max_dial_period",
        &mut p.persistent_peers_max_dial_period,
    )?;
    r.duration(
        p2p,
        "p2p",
        "flush_throttle_timeout",
        &mut p.flush_throttle_timeout,
    )?;
    r.usize(
        p2p,
        "p2p",
        "max_packet_msg_payload_size",
        &mut p.max_packet_msg_payload_size,
    )?;
    if p.max_packet_msg_payload_size == 0 {
        return Err(r.err("p2p", "max_packet_msg_payload_size", "must be at least 1"));
    }
    r.u64(p2p, "p2p", "send_rate", &mut p.send_rate)?;
    r.u64(p2p, "p2p", "recv_rate", &mut p.recv_rate)?;
    r.u64(
        p2p,
        "p2p",
        "max_send_rate_total",
        &mut p.max_send_rate_total,
    )?;
    r.u64(
        p2p,
        "p2p",
        "max_recv_rate_total",
        &mut p.max_recv_rate_total,
    )?;
    r.boolean(p2p, "p2p", "pex", &mut p.pex)?;
    r.boolean(p2p, "p2p", "seed_mode", &mut p.seed_mode)?;
    if p.seed_mode && !p.pex {
        return Err(r.err("p2p", "seed_mode", "a seed needs pex = true"));
    }
    p.private_peer_ids = r.ids(p2p, "p2p", "private_peer_ids")?;
    r.boolean(p2p, "p2p", "allow_duplicate_ip", &mut p.allow_duplicate_ip)?;
    r.duration(p2p, "p2p", "handshake_timeout", &mut p.handshake_timeout)?;
    r.duration(p2p, "p2p", "dial_timeout", &mut p.dial_timeout)?;

    r.string(rpc, "rpc", "laddr", &mut c.rpc.laddr)?;
    if !c.rpc.laddr.is_empty() {
        parse_host_port(&c.rpc.laddr, false).map_err(|e| r.err("rpc", "laddr", e))?;
    }
    r.strings(rpc, "rpc", "allowed_hosts", &mut c.rpc.allowed_hosts)?;
    r.boolean(
        rpc,
        "rpc",
        "show_private_peers",
        &mut c.rpc.show_private_peers,
    )?;

    let i = &mut c.instrumentation;
    r.boolean(instr, "instrumentation", "prometheus", &mut i.prometheus)?;
    r.string(
        instr,
        "instrumentation",
        "prometheus_listen_addr",
        &mut i.prometheus_listen_addr,
    )?;
    parse_host_port(&i.prometheus_listen_addr, true)
        .map_err(|e| r.err("instrumentation", "prometheus_listen_addr", e))?;
    r.string(instr, "instrumentation", "namespace", &mut i.namespace)?;
    let valid_name = i
        .namespace
        .starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
        && i.namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !i.namespace.is_empty() && !valid_name {
        return Err(r.err(
            "instrumentation",
            "namespace",
            format!("{:?} is not a valid Prometheus name", i.namespace),
        ));
    }

    // Flags given for a section the file lacks are not "ignored" items.
    let skipped: BTreeSet<String> = skipped.into_iter().collect();
    Ok(Loaded {
        config: c,
        ignored: skipped.into_iter().collect(),
    })
}

/// Reads `path` and parses it; a missing file means every default (as CometBFT).
pub fn load(path: &Path, overrides: &Overrides) -> Result<Loaded, ConfigError> {
    let shown = path.display().to_string();
    let text = match std::fs::read(path) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| ConfigError::new(&shown, "", "not UTF-8 text"))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ConfigError::new(&shown, "", format!("cannot read: {e}"))),
    };
    parse(&text, &shown, overrides)
}

/// `path` relative to `home` unless absolute (CometBFT `rootify`).
pub fn rootify(home: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_owned()
    } else {
        home.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::P2pConfig;

    fn data(version: &str, file: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(version)
            .join(file);
        std::fs::read_to_string(&path).unwrap()
    }

    pub(crate) const VERSIONS: &[&str] = &["v0.34.35", "v0.37.18", "v0.38.25", "v0.40.0", "v1.0.1"];

    #[test]
    fn every_cometbft_init_home_loads_with_cometbft_defaults() {
        for v in VERSIONS {
            let loaded = parse(&data(v, "config.toml"), v, &Overrides::default())
                .unwrap_or_else(|e| panic!("{v}: {e}"));
            let c = &loaded.config;
            let d = P2pConfig::default();
            assert_eq!(c.p2p.laddr, d.laddr, "{v}");
            assert_eq!(c.p2p.max_num_inbound_peers, 40, "{v}");
            assert_eq!(c.p2p.max_num_outbound_peers, 10, "{v}");
            assert_eq!(c.p2p.send_rate, 5_120_000, "{v}");
            assert!(
                c.p2p.pex && !c.p2p.seed_mode && c.p2p.addr_book_strict,
                "{v}"
            );
            assert_eq!(c.p2p.dial_timeout, Duration::from_secs(3), "{v}");
            assert_eq!(c.p2p.handshake_timeout, Duration::from_secs(20), "{v}");
            assert_eq!(c.rpc.laddr, "tcp://127.0.0.1:26657", "{v}");
            assert_eq!(c.instrumentation.namespace, "cometbft", "{v}");
            assert_eq!(c.instrumentation.prometheus_listen_addr, ":26660", "{v}");
            assert!(!c.instrumentation.prometheus, "{v}");
            assert_eq!(c.node_key_file, "config/node_key.json", "{v}");
            assert!(loaded.ignored.contains(&"[mempool]".to_owned()), "{v}");
            assert!(loaded.ignored.contains(&"[consensus]".to_owned()), "{v}");
        }
    }

    #[test]
    fn version_specific_keys_are_ignored_not_refused() {
        let v034 = parse(&data("v0.34.35", "config.toml"), "f", &Overrides::default()).unwrap();
        assert!(v034.ignored.contains(&"fast_sync".to_owned()));
        assert!(v034.ignored.contains(&"[fastsync]".to_owned()));
        assert!(v034.ignored.contains(&"[p2p] upnp".to_owned()));
        let v040 = parse(&data("v0.40.0", "config.toml"), "f", &Overrides::default()).unwrap();
        assert!(v040.ignored.contains(&"[p2p] libp2p".to_owned()));
        // v0.38's flush_throttle_timeout is 100ms; v0.40/v1.0 write 10ms.
        assert_eq!(
            v040.config.p2p.flush_throttle_timeout,
            Duration::from_millis(10)
        );
        let v1 = parse(&data("v1.0.1", "config.toml"), "f", &Overrides::default()).unwrap();
        assert!(v1.ignored.contains(&"[grpc]".to_owned()));
    }

    #[test]
    fn flags_override_the_file_and_are_checked() {
        let o = Overrides {
            moniker: Some("flagged".into()),
            p2p_laddr: Some("tcp://127.0.0.1:1234".into()),
            p2p_pex: Some(true),
            p2p_seed_mode: Some(true),
            p2p_seeds: Some(format!("{}@1.2.3.4:26656, ", "ab".repeat(20))),
            ..Overrides::default()
        };
        let c = parse(&data("v0.38.25", "config.toml"), "f", &o)
            .unwrap()
            .config;
        assert_eq!(c.moniker, "flagged");
        assert_eq!(c.p2p.laddr, "tcp://127.0.0.1:1234");
        assert!(c.p2p.pex && c.p2p.seed_mode);
        assert_eq!(c.p2p.seeds.len(), 1);

        let bad = Overrides {
            p2p_laddr: Some("tcp://127.0.0.1:notaport".into()),
            ..Overrides::default()
        };
        let e = parse(&data("v0.38.25", "config.toml"), "f", &bad).unwrap_err();
        assert_eq!(e.source, "command line");
        assert_eq!(e.key, "--p2p.laddr");
    }

    #[test]
    fn bandwidth_totals_are_off_by_default_and_set_by_the_file_or_a_flag() {
        let none = Overrides::default();
        let c = parse(&data("v0.38.25", "config.toml"), "f", &none)
            .unwrap()
            .config;
        assert_eq!(
            (c.p2p.max_send_rate_total, c.p2p.max_recv_rate_total),
            (0, 0)
        );
        let file = "[p2p]\nmax_send_rate_total = 10000000\nmax_recv_rate_total = 20000000\n";
        let c = parse(file, "f", &none).unwrap().config;
        assert_eq!(
            (c.p2p.max_send_rate_total, c.p2p.max_recv_rate_total),
            (10_000_000, 20_000_000)
        );
        let flags = Overrides {
            p2p_max_send_rate_total: Some(0),
            p2p_max_recv_rate_total: Some(5_000_000),
            ..Overrides::default()
        };
        let c = parse(file, "f", &flags).unwrap().config;
        assert_eq!(
            (c.p2p.max_send_rate_total, c.p2p.max_recv_rate_total),
            (0, 5_000_000)
        );
        let e = parse("[p2p]\nmax_recv_rate_total = -1\n", "f", &none).unwrap_err();
        assert_eq!(e.key, "[p2p] max_recv_rate_total");
        let huge = Overrides {
            p2p_max_send_rate_total: Some(u64::MAX),
            ..Overrides::default()
        };
        let c = parse("", "f", &huge).unwrap().config;
        assert_eq!(c.p2p.max_send_rate_total, i64::MAX as u64);
    }

    #[test]
    fn bad_values_name_the_file_the_key_and_the_problem() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[p2p]\nladdr = \"tcp://0.0.0.0\"\n",
                "[p2p] laddr",
                "host:port",
            ),
            (
                "[p2p]\npex = \"yes\"\n",
                "[p2p] pex",
                "expected true or false",
            ),
            (
                "[p2p]\nmax_num_inbound_peers = -1\n",
                "[p2p] max_num_inbound_peers",
                "0 or more",
            ),
            (
                "[p2p]\nmax_num_inbound_peers = \"40\"\n",
                "[p2p] max_num_inbound_peers",
                "expected an integer",
            ),
            (
                "[p2p]\nflush_throttle_timeout = \"fast\"\n",
                "[p2p] flush_throttle_timeout",
                "not a duration",
            ),
            (
                "[p2p]\nseeds = \"nope@1.2.3.4:1\"\n",
                "[p2p] seeds",
                "bad address",
            ),
            (
                "[p2p]\nprivate_peer_ids = \"xyz\"\n",
                "[p2p] private_peer_ids",
                "bad node ID",
            ),
            (
                "[p2p]\nmax_num_inbund_peers = 3\n",
                "[p2p] max_num_inbund_peers",
                "did you mean \"max_num_inbound_peers\"",
            ),
            (
                "[rpc]\nladdr = \"unix:///tmp/s\"\n",
                "[rpc] laddr",
                "only tcp://",
            ),
            (
                "[instrumentation]\nprometheus_listen_addr = \"x\"\n",
                "[instrumentation] prometheus_listen_addr",
                "host:port",
            ),
            ("monikr = \"a\"\n", "monikr", "unknown key"),
            ("moniker = \"\"\n", "moniker", "non-empty"),
            ("log_level = \"loud\"\n", "log_level", "loud"),
            ("p2p = 3\n", "p2p", "expected a [section]"),
        ];
        for (text, key, needle) in cases {
            let e = parse(text, "home/config/config.toml", &Overrides::default()).unwrap_err();
            assert_eq!(e.source, "home/config/config.toml", "{text}");
            assert_eq!(&e.key, key, "{text}: {e}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let e = parse("[p2p\nx=1", "f", &Overrides::default()).unwrap_err();
        assert_eq!(e.key, "line 1");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}
