//! [`NodeBuilder::from_home`]: the node a CometBFT home describes (what `mukan-p2p start`
//! runs): `config.toml`'s `[p2p]` settings, the node key, the chain ID and `addrbook.json`.

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, Envelope, Reactor, ReactorError, SharedAddressBook,
};
use parking_lot::Mutex;
use rand::SeedableRng;

use crate::NodeSetup;
use crate::builder::NodeBuilder;
use crate::config::{Config, rootify};

/// The address book of a home: the book (for its sizes) and the file it is saved to.
#[derive(Clone, Debug)]
pub struct HomeBook {
    /// The book.
    pub book: Arc<Mutex<mukan_addrbook::AddrBook>>,
    /// Where it is saved (`[p2p] addr_book_file` under the home).
    pub path: PathBuf,
    /// `anchors.json` beside it: the outbound peers a clean stop was connected to longest,
    /// which PEX dials first at the next start. [`NodeBuilder::from_home`] reads it; the
    /// program deletes it once the node has started and writes it at stop
    /// (`mukan_addrbook::remove_anchors` / `save_anchors` with `PexReactor::anchors`).
    pub anchors: PathBuf,
}

impl HomeBook {
    /// Writes the book atomically ([`save_book`]).
    ///
    /// # Errors
    /// The write error.
    pub fn save(&self) -> Result<(), mukan_addrbook::PersistError> {
        save_book(&self.book, &self.path)
    }
}

impl NodeBuilder {
    /// The node `setup` (a loaded CometBFT home) describes, as `mukan-p2p start` runs it:
    /// - our `NodeInfo`: the key's ID, the chain ID, `moniker`, `external_address` (else
    ///   `laddr`) as the listen address, `[rpc] laddr` as the RPC address; listening on
    ///   `[p2p] laddr` (resolved);
    /// - the switch's limits and peer lists from `[p2p]`, the transport's dial timeout, rates,
    ///   flush throttle and packet size from `[p2p]`;
    /// - the address book loaded from `addr_book_file` (an unreadable file is moved aside and
    ///   the node starts with an empty book: a warning), saved by PEX, at stop, and through
    ///   [`HomeBook::save`];
    /// - PEX when `pex = true` (seeds, seed mode, strict book), else a reactor that only holds
    ///   channel `0x00` open (a connection needs a channel).
    ///
    /// Add reactors and observers, then [`NodeBuilder::start`].
    ///
    /// # Errors
    /// `[p2p] laddr` does not resolve.
    pub async fn from_home(setup: &NodeSetup) -> Result<(Self, HomeBook), std::io::Error> {
        let c = &setup.config;
        let p = &c.p2p;
        let bind = match crate::config::parse_host_port(&p.laddr, false) {
            Ok(hp) => crate::config::resolve(&hp).await?,
            Err(e) => return Err(std::io::Error::other(e)),
        };
        let book = load_book(setup);
        let shared: SharedAddressBook = book.book.clone();
        let saver: mukan_pex::SaveCallback = {
            let book = book.clone();
            Arc::new(move || {
                if let Err(e) = book.save() {
                    tracing::warn!(
                        target: "mukan_p2p::run",
                        "cannot save the address book: {e}"
                    );
                }
            })
        };
        let mut builder = Self::new(setup.key.clone(), setup.chain_id.clone())
            .moniker(c.moniker.clone())
            .rpc_address(c.rpc.laddr.clone())
            .external_address(if p.external_address.is_empty() {
                p.laddr.clone()
            } else {
                p.external_address.clone()
            })
            .listen(bind)
            .switch_config(switch_config(c))
            .transport_config(transport_config(c))
            .address_book(shared)
            .save_book_with(saver);
        if p.pex {
            let mut config = mukan_pex::PexConfig::default();
            config.seeds = p.seeds.iter().map(ToString::to_string).collect();
            config.seed_mode = p.seed_mode;
            config.strict_addr_book = p.addr_book_strict;
            config.anchors = read_anchors(&book.anchors);
            builder = builder.pex(config);
        } else {
            tracing::warn!(
                target: "mukan_p2p::run",
                "pex = false: this node only keeps its connections (it runs no other reactor)"
            );
            builder = builder.reactor("PASSIVE", Arc::new(Passive));
        }
        Ok((builder, book))
    }
}

/// The book of `setup`'s home, loaded (an unusable file is moved aside, with a warning).
fn load_book(setup: &NodeSetup) -> HomeBook {
    let c = &setup.config;
    let path = rootify(&setup.home, &c.p2p.addr_book_file);
    let mut book = mukan_addrbook::AddrBook::new(
        mukan_addrbook::Config::with_strict(c.p2p.addr_book_strict),
        rand::rngs::StdRng::from_entropy(),
    );
    match book.load(&path, SystemTime::now()) {
        Ok(report) => tracing::info!(
            target: "mukan_p2p::run",
            "address book {}: {report:?}",
            path.display()
        ),
        Err(e) => match e.moved_aside() {
            Some(to) => tracing::warn!(
                target: "mukan_p2p::run",
                "address book: {e}; starting with an empty book, the unusable file is kept as {}",
                to.display()
            ),
            None => tracing::warn!(
                target: "mukan_p2p::run",
                "address book: {e}; starting with an empty book"
            ),
        },
    }
    HomeBook {
        book: Arc::new(Mutex::new(book)),
        anchors: path.with_file_name("anchors.json"),
        path,
    }
}

/// The anchors saved by the last clean stop (none, with a warning, if the file is unusable).
fn read_anchors(path: &Path) -> Vec<mukan_reactor_api::NetAddress> {
    match mukan_addrbook::read_anchors(path) {
        Ok(anchors) => {
            if !anchors.is_empty() {
                tracing::info!(
                    target: "mukan_p2p::run",
                    "dialing {} anchors first",
                    anchors.len()
                );
            }
            anchors
        }
        Err(e) => {
            tracing::warn!(target: "mukan_p2p::run", "{e}; starting without anchors");
            Vec::new()
        }
    }
}

/// The transport settings of `[p2p]`; the node-wide bandwidth budgets
/// (`max_send_rate_total` / `max_recv_rate_total`, 0 = none) are made here, once: every
/// connection gets a clone of this config, so all of them share one budget per direction.
fn transport_config(c: &Config) -> mukan_transport::Config {
    let p = &c.p2p;
    let mut t = mukan_transport::Config::default();
    t.dial_timeout = p.dial_timeout;
    let budget = |rate: u64| {
        NonZeroU64::new(rate).map(|r| mukan_mconn::Budget::new(r, std::time::Instant::now()))
    };
    let mut m = mukan_mconn::Config::node_default()
        .with_rates(NonZeroU64::new(p.send_rate), NonZeroU64::new(p.recv_rate))
        .with_flush_throttle(p.flush_throttle_timeout)
        .with_totals(budget(p.max_send_rate_total), budget(p.max_recv_rate_total));
    if let Some(size) = NonZeroUsize::new(p.max_packet_msg_payload_size) {
        m = m.with_max_packet_msg_payload_size(size);
    }
    t.mconn = m;
    t
}

fn switch_config(c: &Config) -> mukan_switch::Config {
    let p = &c.p2p;
    let mut s = mukan_switch::Config::default();
    s.max_num_inbound_peers = p.max_num_inbound_peers;
    s.max_num_outbound_peers = p.max_num_outbound_peers;
    s.persistent_peers = p.persistent_peers.clone();
    s.unconditional_peer_ids = p.unconditional_peer_ids.clone();
    s.private_peer_ids = p.private_peer_ids.clone();
    s.persistent_peers_max_dial_period = p.persistent_peers_max_dial_period;
    s.allow_duplicate_ip = p.allow_duplicate_ip;
    // A public network: a seed's or persistent peer's name must not lead inside.
    s.routable_names_only = p.addr_book_strict;
    s
}

/// Writes `book` to `path` atomically through [`mukan_addrbook::AddrBook::save_snapshot`]:
/// the book's lock is held only to serialize it, saves are serialized (PEX saves on its own
/// schedule and on stop; the node saves last), so the newest snapshot is the one left on
/// disk. The directory is created if needed.
///
/// # Errors
/// The write error.
pub fn save_book(
    book: &Mutex<mukan_addrbook::AddrBook>,
    path: &Path,
) -> Result<(), mukan_addrbook::PersistError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| mukan_addrbook::PersistError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    mukan_addrbook::AddrBook::save_snapshot(path, || book.lock().snapshot())
}

/// Holds channel 0x00 open and drops what arrives: what runs when `pex = false` (a connection
/// needs at least one channel; Go always has its other reactors).
struct Passive;

impl Reactor for Passive {
    fn channels(&self) -> Vec<ChannelDescriptor> {
        vec![ChannelDescriptor::new(
            ChannelId(0x00),
            std::num::NonZeroU32::MIN,
        )]
    }

    fn receive(&self, _: Envelope) -> Result<(), ReactorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_totals_are_one_budget_per_direction_shared_by_every_connection() {
        let mut c = Config::default();
        let off = transport_config(&c);
        assert_eq!((off.mconn.send_total, off.mconn.recv_total), (None, None));
        c.p2p.max_send_rate_total = 1_000_000;
        let t = transport_config(&c);
        // Each connection gets a clone of this config: the same budget.
        let cloned = t.clone();
        assert_eq!(cloned.mconn.send_total, t.mconn.send_total);
        assert_eq!(
            t.mconn.send_total.as_ref().map(|b| b.rate().get()),
            Some(1_000_000)
        );
        assert_eq!(t.mconn.recv_total, None);
        // Each connection's own rates still apply.
        assert_eq!(t.mconn.send_rate.map(|r| r.get()), Some(5_120_000));
    }
}
