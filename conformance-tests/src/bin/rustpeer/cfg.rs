//! The command line: gopeer's flags (the subset our crates support) and ours.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub(crate) struct Cfg {
    pub(crate) show_id: bool,
    pub(crate) home: PathBuf,
    pub(crate) key: Option<PathBuf>,
    pub(crate) listen: String,
    pub(crate) external_address: String,
    pub(crate) persistent: Vec<String>,
    pub(crate) dial: Vec<String>,
    pub(crate) chain_id: String,
    pub(crate) moniker: String,
    pub(crate) echo_channel: u8,
    pub(crate) echo_max_msg: usize,
    pub(crate) channels: Vec<u8>,
    pub(crate) allow_duplicate_ip: bool,
    pub(crate) p2p_version: u64,
    pub(crate) block_version: u64,
    pub(crate) app_version: u64,
    pub(crate) node_version: String,
    pub(crate) tx_index: String,
    pub(crate) rpc_address: String,
    pub(crate) quiet_echo: bool,
    pub(crate) exit_after: Option<Duration>,
    pub(crate) echo_client: usize,
    pub(crate) echo_seed: u64,
    pub(crate) echo_max_size: usize,
    pub(crate) echo_peer: Option<String>,
    pub(crate) echo_timeout: Duration,
    pub(crate) echo_connect_timeout: Duration,
    /// MConnection send / receive rate in bytes/s; 0 means unlimited (as in Go).
    pub(crate) send_rate: u64,
    pub(crate) recv_rate: u64,
    pub(crate) flush_throttle: Duration,
    pub(crate) max_inbound: usize,
    pub(crate) max_outbound: usize,
    pub(crate) addrbook: Option<PathBuf>,
    pub(crate) pex: bool,
    pub(crate) seed_mode: bool,
    pub(crate) seeds: Vec<String>,
    pub(crate) addr_book_strict: bool,
    pub(crate) mark_good: bool,
    /// MConnection ping interval and pong timeout (`--ping-interval`, `--pong-timeout`);
    /// `None` keeps the defaults (60 s, 45 s). The netns fault tests scale them down.
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Option<Duration>,
    /// Transport dial and secret-handshake bounds; `None` keeps the defaults (3 s each).
    pub(crate) dial_timeout: Option<Duration>,
    pub(crate) handshake_timeout: Option<Duration>,
    /// Cap on the wait between two dials of a persistent peer (zero: Go's schedule).
    pub(crate) persistent_max_dial_period: Duration,
    /// Keep redialing persistent peers after Go's 30 attempts.
    pub(crate) redial_forever: bool,
    /// Echo-client role: the pause between two sends (zero: send as fast as possible).
    pub(crate) echo_interval: Duration,
    /// Stream role (`--stream-count N`): sends N sequenced messages on each of the extra
    /// channels (`--channels`) to the first peer, one round every `--stream-interval`.
    pub(crate) stream_count: u64,
    pub(crate) stream_interval: Duration,
    /// `--stream-check`: extra-channel messages are checked as such a stream (complete and
    /// in order, per channel); `stream_done` is printed when a channel's last one arrives.
    pub(crate) stream_check: bool,
}

impl Cfg {
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut cfg = Self {
            show_id: false,
            home: PathBuf::from(".rustpeer"),
            key: None,
            listen: "tcp://127.0.0.1:26656".into(),
            external_address: String::new(),
            persistent: Vec::new(),
            dial: Vec::new(),
            chain_id: "mukan-interop".into(),
            moniker: "rustpeer".into(),
            echo_channel: 0x7e,
            echo_max_msg: 1 << 20,
            channels: Vec::new(),
            allow_duplicate_ip: true,
            p2p_version: 8,
            block_version: 11,
            app_version: 0,
            node_version: "0.38.25".into(),
            tx_index: "off".into(),
            rpc_address: String::new(),
            quiet_echo: false,
            exit_after: None,
            echo_client: 0,
            echo_seed: 1,
            echo_max_size: 1 << 20,
            echo_peer: None,
            echo_timeout: Duration::from_secs(120),
            echo_connect_timeout: Duration::from_secs(20),
            send_rate: 5_120_000,
            recv_rate: 5_120_000,
            flush_throttle: Duration::from_millis(100),
            max_inbound: 40,
            max_outbound: 10,
            addrbook: None,
            pex: false,
            seed_mode: false,
            seeds: Vec::new(),
            addr_book_strict: false,
            mark_good: false,
            ping_interval: None,
            pong_timeout: None,
            dial_timeout: None,
            handshake_timeout: None,
            persistent_max_dial_period: Duration::ZERO,
            redial_forever: false,
            echo_interval: Duration::ZERO,
            stream_count: 0,
            stream_interval: Duration::from_millis(100),
            stream_check: false,
        };
        let mut it = args.iter().peekable();
        if it.peek().map(|s| s.as_str()) == Some("show-id") {
            cfg.show_id = true;
            it.next();
        }
        while let Some(arg) = it.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (flag, None),
            };
            let bool_flag = matches!(
                name,
                "quiet-echo"
                    | "allow-duplicate-ip"
                    | "pex"
                    | "seed-mode"
                    | "addr-book-strict"
                    | "mark-good"
                    | "redial-forever"
                    | "stream-check"
            );
            let value = if bool_flag {
                inline.unwrap_or_else(|| "true".into())
            } else if let Some(v) = inline {
                v
            } else {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("--{name} needs a value"))?
            };
            let num = |v: &str| v.parse::<u64>().map_err(|e| format!("--{name}: {e}"));
            let boolean = |v: &str| v.parse::<bool>().map_err(|e| format!("--{name}: {e}"));
            match name {
                "home" => cfg.home = value.into(),
                "key" => cfg.key = Some(value.into()),
                "listen" => cfg.listen = value,
                "external-address" => cfg.external_address = value,
                "persistent-peers" => cfg.persistent = split_list(&value),
                "dial" => cfg.dial = split_list(&value),
                "chain-id" => cfg.chain_id = value,
                "moniker" => cfg.moniker = value,
                "echo-channel" => {
                    let ch = parse_channels(&value)?;
                    let [one] = ch.as_slice() else {
                        return Err("--echo-channel needs one hex byte".into());
                    };
                    cfg.echo_channel = *one;
                }
                "echo-max-msg" => cfg.echo_max_msg = num(&value)? as usize,
                "channels" => cfg.channels = parse_channels(&value)?,
                "allow-duplicate-ip" => cfg.allow_duplicate_ip = boolean(&value)?,
                "p2p-version" => cfg.p2p_version = num(&value)?,
                "block-version" => cfg.block_version = num(&value)?,
                "app-version" => cfg.app_version = num(&value)?,
                "node-version" => cfg.node_version = value,
                "tx-index" => cfg.tx_index = value,
                "rpc-address" => cfg.rpc_address = value,
                "quiet-echo" => cfg.quiet_echo = boolean(&value)?,
                "exit-after" => cfg.exit_after = Some(parse_duration(&value)?),
                "echo-client" => cfg.echo_client = num(&value)? as usize,
                "echo-seed" => cfg.echo_seed = num(&value)?,
                "echo-max-size" => cfg.echo_max_size = num(&value)? as usize,
                "echo-peer" => cfg.echo_peer = Some(value),
                "echo-timeout" => cfg.echo_timeout = parse_duration(&value)?,
                "echo-connect-timeout" => cfg.echo_connect_timeout = parse_duration(&value)?,
                "pex" => cfg.pex = boolean(&value)?,
                "seed-mode" => cfg.seed_mode = boolean(&value)?,
                "seeds" => cfg.seeds = split_list(&value),
                "addrbook" => cfg.addrbook = Some(value.into()),
                "addr-book-strict" => cfg.addr_book_strict = boolean(&value)?,
                "mark-good" => cfg.mark_good = boolean(&value)?,
                "send-rate" => cfg.send_rate = num(&value)?,
                "recv-rate" => cfg.recv_rate = num(&value)?,
                "flush-throttle" => cfg.flush_throttle = parse_duration(&value)?,
                "max-inbound" => cfg.max_inbound = num(&value)? as usize,
                "max-outbound" => cfg.max_outbound = num(&value)? as usize,
                "ping-interval" => cfg.ping_interval = Some(parse_duration(&value)?),
                "pong-timeout" => cfg.pong_timeout = Some(parse_duration(&value)?),
                "dial-timeout" => cfg.dial_timeout = Some(parse_duration(&value)?),
                "handshake-timeout" => cfg.handshake_timeout = Some(parse_duration(&value)?),
                "persistent-peers-max-dial-period" => {
                    cfg.persistent_max_dial_period = parse_duration(&value)?;
                }
                "redial-forever" => cfg.redial_forever = boolean(&value)?,
                "stream-count" => cfg.stream_count = num(&value)?,
                "stream-interval" => cfg.stream_interval = parse_duration(&value)?,
                "stream-check" => cfg.stream_check = boolean(&value)?,
                "echo-interval" => cfg.echo_interval = parse_duration(&value)?,
                // Accepted for flag compatibility with gopeer; no effect here.
                "log-level" => {}
                _ => return Err(format!("unknown flag --{name}")),
            }
        }
        if cfg.seed_mode && !cfg.pex {
            return Err("--seed-mode needs --pex".into());
        }
        cfg.transport_config()
            .mconn
            .validate()
            .map_err(|e| format!("--ping-interval/--pong-timeout: {e}"))?;
        Ok(cfg)
    }

    /// The transport configuration: the defaults with the duplicate-IP rule, the dial and
    /// handshake bounds, and an MConnection configuration with the rates, the flush throttle
    /// and the ping/pong timers given on the command line.
    pub(crate) fn transport_config(&self) -> mukan_transport::Config {
        let mut tconfig = mukan_transport::Config::default();
        tconfig.allow_duplicate_ip = self.allow_duplicate_ip;
        if let Some(d) = self.dial_timeout {
            tconfig.dial_timeout = d;
        }
        if let Some(d) = self.handshake_timeout {
            tconfig.handshake_timeout = d;
        }
        let ping = self.ping_interval.unwrap_or(tconfig.mconn.ping_interval);
        let pong = self.pong_timeout.unwrap_or(tconfig.mconn.pong_timeout);
        tconfig.mconn = tconfig
            .mconn
            .with_rates(
                NonZeroU64::new(self.send_rate),
                NonZeroU64::new(self.recv_rate),
            )
            .with_flush_throttle(self.flush_throttle)
            .with_ping(ping, pong);
        tconfig
    }

    pub(crate) fn addrbook_file(&self) -> PathBuf {
        self.addrbook
            .clone()
            .unwrap_or_else(|| self.home.join("config").join("addrbook.json"))
    }

    pub(crate) fn key_file(&self) -> PathBuf {
        self.key
            .clone()
            .unwrap_or_else(|| self.home.join("config").join("node_key.json"))
    }
}

pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn parse_channels(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in split_list(s) {
        let lower = part.to_lowercase();
        let p = lower.trim_start_matches("0x");
        if p.len() > 2 {
            out.extend(hex::decode(p).map_err(|e| format!("channel list {s:?}: {e}"))?);
        } else {
            out.push(u8::from_str_radix(p, 16).map_err(|e| format!("channel {p:?}: {e}"))?);
        }
    }
    Ok(out)
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|e| format!("duration {s:?}: {e}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("duration {s:?}: unknown unit")),
    };
    Ok(Duration::from_secs_f64(secs))
}
