//! [`Config`]: the knobs of a connection (Go `MConnConfig`).

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use crate::{Budget, ConfigError};

/// Configuration of one MConnection.
///
/// # Two sets of defaults, on purpose
/// CometBFT v0.38 has two: `p2p/conn/connection.go` `DefaultMConnConfig()` sets
/// `SendRate` / `RecvRate` to 512,000 B/s (500 KB/s), while the node configuration
/// (`config/config.go` `DefaultP2PConfig()`, config.toml `[p2p] send_rate` / `recv_rate`)
/// sets 5,120,000 B/s (5 MB/s), and `node/setup.go` `createTransport` builds every
/// connection's config with `p2p.MConnConfig(config.P2P)` (`p2p/switch.go`), which starts from
/// `DefaultMConnConfig()` and copies the node's rates, flush throttle and packet size. So a Go *node* runs at 5,120,000 B/s; only
/// code that builds an MConnection directly (Go's own tests, tools) gets 512,000.
///
/// - [`Config::default`] is Go's `DefaultMConnConfig()` exactly (512,000 B/s): the library
///   default, used by this crate's tests and benchmarks, so their numbers compare with Go's.
/// - [`Config::node_default`] is what a node runs (5,120,000 B/s): the transport's default
///   (`mukan_transport::Config::default().mconn`) and the node binary's, so that our node
///   neither throttles nor outruns a Go node with default settings. A node that reads
///   `[p2p] send_rate` / `recv_rate` from config.toml applies them with
///   [`Config::with_rates`].
///
/// The other fields (ping 60 s, pong 45 s, 1024-byte packets, 100 ms flush throttle) are the
/// same in both. `recv_stall_timeout` and `flush_timeout` are ours (Go has neither).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Outgoing byte rate limit in bytes per second; `None` = unlimited.
    pub send_rate: Option<NonZeroU64>,
    /// Incoming byte rate limit in bytes per second; `None` = unlimited.
    pub recv_rate: Option<NonZeroU64>,
    /// Largest payload of one `PacketMsg` (1024). Peers must agree on it: a peer that sends
    /// larger packets than ours allows is disconnected.
    pub max_packet_msg_payload_size: NonZeroUsize,
    /// Upper bound on how long written packets may wait unflushed while the connection is
    /// busy (Go `flush_throttle_timeout`, 100 ms). A lone message never waits for it: as
    /// soon as the send queues are empty, what is buffered is flushed.
    pub flush_throttle: Duration,
    /// A ping is sent every `ping_interval` (60 s), whatever the traffic.
    pub ping_interval: Duration,
    /// The connection fails when no pong arrives within `pong_timeout` (45 s) of a ping.
    pub pong_timeout: Duration,
    /// How long [`MConnection::send`](crate::MConnection::send) waits for queue space (10 s).
    pub send_timeout: Duration,
    /// Largest write handed to the stream at once when batching (64 KiB, Go's bufio size).
    pub write_batch_size: NonZeroUsize,
    /// Received messages waiting in the inbox for the consumer to take them (64): one more
    /// waits, and reading pauses, until the consumer takes what is there. Together with the
    /// receive budgets, this bounds the read buffers that delivered messages keep alive until
    /// they are taken (a message of one packet is a slice of one; see the `Inbox`).
    pub event_capacity: NonZeroUsize,
    /// How long a received message may wait for room in its channel's receive budget (or in
    /// the inbox) before the connection ends with [`Error::SlowReceiver`](crate::Error) (10 s).
    /// Reading is paused meanwhile, so the peer's pings go unanswered: keep this well below
    /// the peer's pong timeout (45 s).
    pub recv_stall_timeout: Duration,
    /// How long [`MConnection::flush_stop`](crate::MConnection::flush_stop) may take to send
    /// what is queued before the connection is closed anyway (10 s).
    pub flush_timeout: Duration,
    /// A send budget shared with other connections (a node-wide total), on top of
    /// `send_rate`; `None` (the default): none.
    pub send_total: Option<Budget>,
    /// A receive budget shared with other connections, on top of `recv_rate`; `None` (the
    /// default): none.
    pub recv_total: Option<Budget>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            send_rate: NonZeroU64::new(512_000),
            recv_rate: NonZeroU64::new(512_000),
            max_packet_msg_payload_size: nz(1024),
            flush_throttle: Duration::from_millis(100),
            ping_interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(45),
            send_timeout: Duration::from_secs(10),
            write_batch_size: nz(65_536),
            event_capacity: nz(64),
            recv_stall_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(10),
            send_total: None,
            recv_total: None,
        }
    }
}

impl Config {
    /// What a CometBFT v0.38 node uses: [`Config::default`] with the `[p2p]` defaults of
    /// `send_rate` / `recv_rate` (5120000 B/s).
    pub fn node_default() -> Self {
        Self {
            send_rate: NonZeroU64::new(5_120_000),
            recv_rate: NonZeroU64::new(5_120_000),
            ..Self::default()
        }
    }

    /// Sets both rate limits (`None` = unlimited).
    #[must_use]
    pub fn with_rates(mut self, send: Option<NonZeroU64>, recv: Option<NonZeroU64>) -> Self {
        self.send_rate = send;
        self.recv_rate = recv;
        self
    }

    /// Sets the budgets shared with other connections (`None` = none): every connection made
    /// with clones of this config draws from the same two budgets, fairly, on top of its own
    /// `send_rate` / `recv_rate`. See [`Budget`].
    #[must_use]
    pub fn with_totals(mut self, send: Option<Budget>, recv: Option<Budget>) -> Self {
        self.send_total = send;
        self.recv_total = recv;
        self
    }

    /// Sets the ping interval and pong timeout.
    #[must_use]
    pub fn with_ping(mut self, interval: Duration, pong_timeout: Duration) -> Self {
        self.ping_interval = interval;
        self.pong_timeout = pong_timeout;
        self
    }

    /// Sets the flush throttle.
    #[must_use]
    pub fn with_flush_throttle(mut self, throttle: Duration) -> Self {
        self.flush_throttle = throttle;
        self
    }

    /// Sets the send timeout.
    #[must_use]
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Sets the receive stall timeout.
    #[must_use]
    pub fn with_recv_stall_timeout(mut self, timeout: Duration) -> Self {
        self.recv_stall_timeout = timeout;
        self
    }

    /// Sets the flush timeout of a graceful stop.
    #[must_use]
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Sets the maximum packet payload.
    #[must_use]
    pub fn with_max_packet_msg_payload_size(mut self, size: NonZeroUsize) -> Self {
        self.max_packet_msg_payload_size = size;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`ConfigError::PongTimeoutNotBelowPingInterval`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.pong_timeout >= self.ping_interval {
            return Err(ConfigError::PongTimeoutNotBelowPingInterval);
        }
        Ok(())
    }
}

const fn nz(v: usize) -> NonZeroUsize {
    match NonZeroUsize::new(v) {
        Some(v) => v,
        None => NonZeroUsize::MIN,
    }
}
