//! The command-line flags (CometBFT's names) applied on top of `config.toml`.

use toml::Value;

/// Command-line values that replace the file's (CometBFT's flag names).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--moniker`.
    pub moniker: Option<String>,
    /// `--p2p.laddr`.
    pub p2p_laddr: Option<String>,
    /// `--p2p.external-address`.
    pub p2p_external_address: Option<String>,
    /// `--p2p.seeds`.
    pub p2p_seeds: Option<String>,
    /// `--p2p.persistent_peers`.
    pub p2p_persistent_peers: Option<String>,
    /// `--p2p.unconditional_peer_ids`.
    pub p2p_unconditional_peer_ids: Option<String>,
    /// `--p2p.private_peer_ids`.
    pub p2p_private_peer_ids: Option<String>,
    /// `--p2p.pex`.
    pub p2p_pex: Option<bool>,
    /// `--p2p.seed_mode`.
    pub p2p_seed_mode: Option<bool>,
    /// `--p2p.max_send_rate_total` (ours).
    pub p2p_max_send_rate_total: Option<u64>,
    /// `--p2p.max_recv_rate_total` (ours).
    pub p2p_max_recv_rate_total: Option<u64>,
    /// `--rpc.laddr`.
    pub rpc_laddr: Option<String>,
    /// `--log_level`.
    pub log_level: Option<String>,
    /// `--log_format`.
    pub log_format: Option<String>,
}

impl Overrides {
    /// `(section, key, flag, value)` for every flag given.
    pub(super) fn entries(&self) -> Vec<(&'static str, &'static str, &'static str, Value)> {
        let mut out = Vec::new();
        let mut s = |sec, key, flag, v: &Option<String>| {
            if let Some(v) = v {
                out.push((sec, key, flag, Value::String(v.clone())));
            }
        };
        s("", "moniker", "--moniker", &self.moniker);
        s("p2p", "laddr", "--p2p.laddr", &self.p2p_laddr);
        s(
            "p2p",
            "external_address",
            "--p2p.external-address",
            &self.p2p_external_address,
        );
        s("p2p", "seeds", "--p2p.seeds", &self.p2p_seeds);
        s(
            "p2p",
            "persistent_peers",
            "--p2p.persistent_peers",
            &self.p2p_persistent_peers,
        );
        s(
            "p2p",
            "unconditional_peer_ids",
            "--p2p.unconditional_peer_ids",
            &self.p2p_unconditional_peer_ids,
        );
        s(
            "p2p",
            "private_peer_ids",
            "--p2p.private_peer_ids",
            &self.p2p_private_peer_ids,
        );
        s("rpc", "laddr", "--rpc.laddr", &self.rpc_laddr);
        s("", "log_level", "--log_level", &self.log_level);
        s("", "log_format", "--log_format", &self.log_format);
        if let Some(b) = self.p2p_pex {
            out.push(("p2p", "pex", "--p2p.pex", Value::Boolean(b)));
        }
        if let Some(b) = self.p2p_seed_mode {
            out.push(("p2p", "seed_mode", "--p2p.seed_mode", Value::Boolean(b)));
        }
        for (key, flag, v) in [
            (
                "max_send_rate_total",
                "--p2p.max_send_rate_total",
                self.p2p_max_send_rate_total,
            ),
            (
                "max_recv_rate_total",
                "--p2p.max_recv_rate_total",
                self.p2p_max_recv_rate_total,
            ),
        ] {
            if let Some(v) = v {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                out.push(("p2p", key, flag, Value::Integer(v)));
            }
        }
        out
    }
}
