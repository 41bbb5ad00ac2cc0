//! Fault injection for the in-memory network (feature `test-util`): a network made with
//! [`MemoryNetwork::with_faults`] runs every connection through a relay of two tasks per
//! direction, which apply the link's [`LinkProfile`], hold bytes while a link is blocked and
//! cut connections on demand.
//!
//! The model is a TCP connection, not a datagram link: bytes inside a connection are never
//! lost, reordered or corrupted. A blocked link (partition, blackhole, frozen host) holds
//! them, as TCP retransmits until the path heals or a timeout gives up; a lost segment
//! ([`LinkProfile::loss`]) delays the bytes behind it by [`LinkProfile::retransmit_delay`].
//! Connection attempts over a blocked link hang (SYN dropped) until the dialer's timeout.
//! Cutting a connection ([`MemoryNetwork::break_connections`], [`MemoryNetwork::crash`]) is
//! an RST: both ends see the end of the stream at once, queued bytes are lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::MemoryNetwork;
use crate::memory::PIPE_CAPACITY;

/// Largest chunk a relay moves at once.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction (bounds a relay's memory with `CHUNK`).
const IN_FLIGHT: usize = 16;

/// How one direction of a link behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct LinkProfile {
    /// One-way delay of every chunk.
    pub latency: Duration,
    /// Uniform jitter in `[-jitter, +jitter]` added to `latency` (order is kept: a chunk
    /// never overtakes the one before it).
    pub jitter: Duration,
    /// Probability (0..=1) that a chunk is "lost" and retransmitted: it arrives
    /// `retransmit_delay` later, and so do the chunks behind it.
    pub loss: f64,
    /// Delay added by one retransmission.
    pub retransmit_delay: Duration,
    /// Bytes per second through this direction (`None`: unlimited): a slow reader.
    pub rate: Option<u64>,
}

impl LinkProfile {
    /// A link with `latency` ± `jitter`.
    pub fn delayed(latency: Duration, jitter: Duration) -> Self {
        Self {
            latency,
            jitter,
            ..Self::default()
        }
    }

    /// With a loss probability and its retransmission delay.
    pub fn with_loss(mut self, loss: f64, retransmit_delay: Duration) -> Self {
        self.loss = loss;
        self.retransmit_delay = retransmit_delay;
        self
    }

    /// With a rate limit in bytes per second.
    pub fn with_rate(mut self, bytes_per_second: u64) -> Self {
        self.rate = Some(bytes_per_second.max(1));
        self
    }
}

/// What happened on a fault-injecting network, in order, with the (virtual) time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetEvent {
    /// `from` tried to connect to `to`; `outcome` is `"open"`, `"refused"` or `"hang"`.
    Connect {
        /// When.
        at: Instant,
        /// The dialer's IP.
        from: IpAddr,
        /// The target.
        to: SocketAddr,
        /// What became of it.
        outcome: &'static str,
        /// The connection's number when it opened.
        conn: u64,
    },
    /// A connection ended (both directions done, or cut).
    Closed {
        /// When.
        at: Instant,
        /// Its number.
        conn: u64,
        /// The dialer's IP.
        from: IpAddr,
        /// The listener's IP.
        to: IpAddr,
        /// Whether it was cut by a fault.
        cut: bool,
    },
}

/// A tiny deterministic PRNG (SplitMix64): the transport needs no RNG dependency for this.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
struct ConnEntry {
    a: IpAddr,
    b: IpAddr,
    kill: watch::Sender<bool>,
}

/// The fault state of a network.
#[derive(Debug)]
pub(crate) struct Faults {
    rng: SplitMix,
    default: LinkProfile,
    links: HashMap<(IpAddr, IpAddr), LinkProfile>,
    blocked: HashSet<(IpAddr, IpAddr)>,
    frozen: HashSet<IpAddr>,
    conns: BTreeMap<u64, ConnEntry>,
    next_conn: u64,
    epoch: watch::Sender<u64>,
    events: Vec<NetEvent>,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix(seed),
            default: LinkProfile::default(),
            links: HashMap::new(),
            blocked: HashSet::new(),
            frozen: HashSet::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            epoch: watch::channel(0).0,
            events: Vec::new(),
        }
    }

    fn blocked(&self, from: IpAddr, to: IpAddr) -> bool {
        self.blocked.contains(&(from, to))
            || self.frozen.contains(&from)
            || self.frozen.contains(&to)
    }

    fn profile(&self, from: IpAddr, to: IpAddr) -> LinkProfile {
        self.links.get(&(from, to)).copied().unwrap_or(self.default)
    }

    fn changed(&mut self) {
        self.epoch.send_modify(|e| *e = e.wrapping_add(1));
    }

    fn cut(&mut self, pred: impl Fn(&ConnEntry) -> bool) -> usize {
        let ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| pred(c))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(c) = self.conns.remove(id) {
                let _ = c.kill.send(true);
                self.events.push(NetEvent::Closed {
                    at: Instant::now(),
                    conn: *id,
                    from: c.a,
                    to: c.b,
                    cut: true,
                });
            }
        }
        ids.len()
    }
}

fn pairs(a: &[IpAddr], b: &[IpAddr]) -> Vec<(IpAddr, IpAddr)> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| (*x, *y)))
        .collect()
}

/// Fault control. Every method is a no-op (returning the neutral value) on a network made
/// without [`MemoryNetwork::with_faults`].
impl MemoryNetwork {
    /// Sets the profile of every link without its own.
    pub fn set_default_link(&self, profile: LinkProfile) {
        self.with_fault_state(|f| {
            f.default = profile;
            f.changed();
        });
    }

    /// Sets the profile of the direction `from` → `to`.
    pub fn set_link(&self, from: IpAddr, to: IpAddr, profile: LinkProfile) {
        self.with_fault_state(|f| {
            f.links.insert((from, to), profile);
            f.changed();
        });
    }

    /// Removes the profile of the direction `from` → `to` (back to the default).
    pub fn clear_link(&self, from: IpAddr, to: IpAddr) {
        self.with_fault_state(|f| {
            f.links.remove(&(from, to));
            f.changed();
        });
    }

    /// Blocks both directions between every host of `a` and every host of `b`.
    pub fn partition(&self, a: &[IpAddr], b: &[IpAddr]) {
        self.partition_one_way(a, b);
        self.partition_one_way(b, a);
    }

    /// Blocks the direction from every host of `from` to every host of `to`: bytes are
    /// held (existing connections stall that way), new connections hang.
    pub fn partition_one_way(&self, from: &[IpAddr], to: &[IpAddr]) {
        self.with_fault_state(|f| {
            f.blocked.extend(pairs(from, to));
            f.changed();
        });
    }

    /// Lifts every partition and unfreezes every host; held bytes flow again.
    pub fn heal(&self) {
        self.with_fault_state(|f| {
            f.blocked.clear();
            f.frozen.clear();
            f.changed();
        });
    }

    /// Freezes (`true`) or thaws a host, as `SIGSTOP`/`SIGCONT` seen from the network:
    /// nothing goes in or out, connection attempts to it hang.
    pub fn set_frozen(&self, ip: IpAddr, frozen: bool) {
        self.with_fault_state(|f| {
            if frozen {
                f.frozen.insert(ip);
            } else {
                f.frozen.remove(&ip);
            }
            f.changed();
        });
    }

    /// Cuts (RST) every open connection between `a` and `b` (`b = None`: every connection
    /// of `a`). Returns how many.
    pub fn break_connections(&self, a: IpAddr, b: Option<IpAddr>) -> usize {
        self.with_fault_state(|f| {
            f.cut(|c| {
                (c.a == a && b.is_none_or(|b| c.b == b)) || (c.b == a && b.is_none_or(|b| c.a == b))
            })
        })
        .unwrap_or(0)
    }

    /// A host dies (`kill -9`): its listeners at `ip` go away and every connection of it is
    /// cut. Returns how many connections were cut.
    pub fn crash(&self, ip: IpAddr, listen_ports: &[u16]) -> usize {
        for p in listen_ports {
            self.kill_listener(SocketAddr::new(ip, *p));
        }
        self.break_connections(ip, None)
    }

    /// Open relayed connections with `ip` at one end.
    pub fn open_connections(&self, ip: IpAddr) -> usize {
        self.with_fault_state(|f| f.conns.values().filter(|c| c.a == ip || c.b == ip).count())
            .unwrap_or(0)
    }

    /// Open relayed connections between `a` and `b` (either direction).
    pub fn connections_between(&self, a: IpAddr, b: IpAddr) -> usize {
        self.with_fault_state(|f| {
            f.conns
                .values()
                .filter(|c| (c.a == a && c.b == b) || (c.a == b && c.b == a))
                .count()
        })
        .unwrap_or(0)
    }

    /// All open relayed connections.
    pub fn total_open_connections(&self) -> usize {
        self.with_fault_state(|f| f.conns.len()).unwrap_or(0)
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<NetEvent> {
        self.with_fault_state(|f| f.events.clone())
            .unwrap_or_default()
    }
}

/// Opens a relayed connection from `ip` to `target`.
pub(crate) async fn connect(
    net: &MemoryNetwork,
    ip: IpAddr,
    target: SocketAddr,
) -> io::Result<DuplexStream> {
    let hang = net.is_unresponsive(&target)
        || net
            .with_fault_state(|f| f.blocked(ip, target.ip()) || f.blocked(target.ip(), ip))
            .unwrap_or(false);
    let record = |outcome: &'static str, conn: u64| {
        net.with_fault_state(|f| {
            f.events.push(NetEvent::Connect {
                at: Instant::now(),
                from: ip,
                to: target,
                outcome,
                conn,
            });
        });
    };
    if hang {
        record("hang", 0);
        return std::future::pending().await;
    }
    let (tx, local) = match net.route(ip, target) {
        Ok(r) => r,
        Err(e) => {
            record("refused", 0);
            return Err(e);
        }
    };
    let (ours, relay_a) = tokio::io::duplex(PIPE_CAPACITY);
    let (relay_b, theirs) = tokio::io::duplex(PIPE_CAPACITY);
    let (kill, _) = watch::channel(false);
    let Some((id, epoch)) = net.with_fault_state(|f| {
        f.next_conn += 1;
        let id = f.next_conn;
        f.conns.insert(
            id,
            ConnEntry {
                a: ip,
                b: target.ip(),
                kill: kill.clone(),
            },
        );
        (id, f.epoch.subscribe())
    }) else {
        return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
    };
    record("open", id);
    let (ar, aw) = tokio::io::split(relay_a);
    let (br, bw) = tokio::io::split(relay_b);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (r, w, from, to) in [(ar, bw, ip, target.ip()), (br, aw, target.ip(), ip)] {
        let dir = Direction {
            net: net.clone(),
            from,
            to,
            kill: kill.subscribe(),
            epoch: epoch.clone(),
            id,
            done: done.clone(),
        };
        tokio::spawn(dir.run(r, w));
    }
    if tx.send((theirs, local)).await.is_err() {
        let _ = kill.send(true);
        return Err(io::Error::from(io::ErrorKind::ConnectionRefused));
    }
    Ok(ours)
}

struct Direction {
    net: MemoryNetwork,
    from: IpAddr,
    to: IpAddr,
    kill: watch::Receiver<bool>,
    epoch: watch::Receiver<u64>,
    id: u64,
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Direction {
    fn blocked(&self) -> bool {
        self.net
            .with_fault_state(|f| f.blocked(self.from, self.to))
            .unwrap_or(false)
    }

    /// Waits until the direction is not blocked.
    async fn unblocked(epoch: &mut watch::Receiver<u64>, blocked: impl Fn() -> bool) {
        loop {
            epoch.borrow_and_update();
            if !blocked() {
                return;
            }
            if epoch.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    async fn run(self, r: ReadHalf<DuplexStream>, w: WriteHalf<DuplexStream>) {
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
        let mut kill = self.kill.clone();
        let cut = tokio::select! {
            biased;
            _ = kill.wait_for(|k| *k) => true,
            () = async {
                tokio::join!(self.read_side(r, tx), self.write_side(w, rx));
            } => false,
        };
        // Both directions done: the connection is closed.
        if self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 || cut {
            let id = self.id;
            self.net.with_fault_state(|f| {
                if let Some(c) = f.conns.remove(&id) {
                    f.events.push(NetEvent::Closed {
                        at: Instant::now(),
                        conn: id,
                        from: c.a,
                        to: c.b,
                        cut,
                    });
                }
            });
        }
    }

    async fn read_side(&self, mut r: ReadHalf<DuplexStream>, tx: mpsc::Sender<(Instant, Vec<u8>)>) {
        let mut epoch = self.epoch.clone();
        let mut last = Instant::now();
        let mut buf = vec![0u8; CHUNK];
        loop {
            Self::unblocked(&mut epoch, || self.blocked()).await;
            let profile = self
                .net
                .with_fault_state(|f| f.profile(self.from, self.to))
                .unwrap_or_default();
            let max = match profile.rate {
                Some(rate) => usize::try_from(rate / 10).unwrap_or(CHUNK).clamp(1, CHUNK),
                None => CHUNK,
            };
            let Some(room) = buf.get_mut(..max) else {
                return;
            };
            let n = match r.read(room).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let Some(data) = buf.get(..n) else {
                return;
            };
            let data = data.to_vec();
            let now = Instant::now();
            let delay = self
                .net
                .with_fault_state(|f| {
                    let mut d = profile.latency;
                    if !profile.jitter.is_zero() {
                        let j = profile.jitter.mul_f64(f.rng.unit() * 2.0);
                        d = (d + j).saturating_sub(profile.jitter);
                    }
                    if profile.loss > 0.0 && f.rng.unit() < profile.loss {
                        d += profile.retransmit_delay;
                    }
                    d
                })
                .unwrap_or_default();
            let mut at = (now + delay).max(last);
            if let Some(rate) = profile.rate {
                // Serialization: the link carries `rate` bytes per second.
                let busy = Duration::from_secs_f64(n as f64 / rate as f64);
                at = at.max(last + busy).max(now + busy);
            }
            last = at;
            if tx.send((at, data)).await.is_err() {
                return;
            }
            if profile.rate.is_some() {
                tokio::time::sleep_until(at).await;
            }
        }
    }

    async fn write_side(
        &self,
        mut w: WriteHalf<DuplexStream>,
        mut rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    ) {
        let mut epoch = self.epoch.clone();
        while let Some((at, data)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            Self::unblocked(&mut epoch, || self.blocked()).await;
            if w.write_all(&data).await.is_err() {
                // The receiving end is gone: reset the whole connection.
                self.net.with_fault_state(|f| {
                    if let Some(c) = f.conns.get(&self.id) {
                        let _ = c.kill.send(true);
                    }
                });
                return;
            }
        }
        let _ = w.shutdown().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::memory::Endpoint;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    /// A connected pair (dialer end, listener end) on a faulty network.
    async fn pair(net: &MemoryNetwork) -> (DuplexStream, DuplexStream) {
        let b = Endpoint::new(net, ip(2));
        let (mut listener, addr) = b.bind(SocketAddr::new(ip(2), 1)).unwrap();
        let a = Endpoint::new(net, ip(1));
        let ours = a.connect(addr).await.unwrap();
        let (theirs, _) = listener.accept().await.unwrap();
        (ours, theirs)
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_and_keeps_order() {
        let net = MemoryNetwork::with_faults(1);
        net.set_link(
            ip(1),
            ip(2),
            LinkProfile::delayed(Duration::from_millis(200), Duration::from_millis(50)),
        );
        let (mut a, mut b) = pair(&net).await;
        let t0 = Instant::now();
        for i in 0..50u8 {
            a.write_all(&[i]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut got = vec![0u8; 50];
        b.read_exact(&mut got).await.unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(150));
        assert_eq!(got, (0..50).collect::<Vec<u8>>());
        // The other direction has no profile: immediate.
        let t1 = Instant::now();
        b.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        a.read_exact(&mut one).await.unwrap();
        assert_eq!(t1.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn partition_holds_bytes_and_hangs_new_connections() {
        let net = MemoryNetwork::with_faults(2);
        let (mut a, mut b) = pair(&net).await;
        net.partition(&[ip(1)], &[ip(2)]);
        a.write_all(b"held").await.unwrap();
        let mut buf = [0u8; 4];
        let r = tokio::time::timeout(Duration::from_secs(5), b.read_exact(&mut buf)).await;
        assert!(r.is_err(), "bytes crossed a partition");
        let c = Endpoint::new(&net, ip(1));
        let r = tokio::time::timeout(Duration::from_secs(1), c.connect(SocketAddr::new(ip(2), 1)))
            .await;
        assert!(r.is_err(), "a connection crossed a partition");
        net.heal();
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"held");
        let events = net.events();
        assert!(events.iter().any(|e| matches!(
            e,
            NetEvent::Connect {
                outcome: "hang",
                ..
            }
        )));
    }

    #[tokio::test(start_paused = true)]
    async fn break_resets_both_ends() {
        let net = MemoryNetwork::with_faults(3);
        let (mut a, mut b) = pair(&net).await;
        assert_eq!(net.connections_between(ip(1), ip(2)), 1);
        assert_eq!(net.break_connections(ip(2), None), 1);
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).await.unwrap_or(0), 0);
        assert_eq!(b.read(&mut buf).await.unwrap_or(0), 0);
        assert_eq!(net.total_open_connections(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limits_a_direction() {
        let net = MemoryNetwork::with_faults(4);
        net.set_link(ip(1), ip(2), LinkProfile::default().with_rate(1_000));
        let (mut a, mut b) = pair(&net).await;
        let t0 = Instant::now();
        let writer = tokio::spawn(async move {
            a.write_all(&[7u8; 5_000]).await.unwrap();
            a
        });
        let mut got = vec![0u8; 5_000];
        b.read_exact(&mut got).await.unwrap();
        assert!(t0.elapsed() >= Duration::from_secs(4), "{:?}", t0.elapsed());
        drop(writer.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_draws_the_same_delays() {
        async fn arrivals(seed: u64) -> Vec<Duration> {
            let net = MemoryNetwork::with_faults(seed);
            net.set_default_link(
                LinkProfile::delayed(Duration::from_millis(100), Duration::from_millis(90))
                    .with_loss(0.3, Duration::from_millis(200)),
            );
            let (mut a, mut b) = pair(&net).await;
            let t0 = Instant::now();
            let mut out = Vec::new();
            for i in 0..20u8 {
                a.write_all(&[i]).await.unwrap();
                let mut one = [0u8; 1];
                b.read_exact(&mut one).await.unwrap();
                assert_eq!(one[0], i);
                out.push(t0.elapsed());
            }
            out
        }
        assert_eq!(arrivals(9).await, arrivals(9).await);
        assert_ne!(arrivals(9).await, arrivals(10).await);
    }
}
