//! The ban list: bounded, kept apart from the address table.
//!
//! A ban is keyed by node ID. It holds the entry that was taken out of the buckets (so that
//! it can come back as new when the ban ends) or, for an ID the table never held, only the
//! address it was banned under ("ban only": it never enters the table, not even when the ban
//! ends). At most [`Config::max_bans`](crate::Config::max_bans) bans are kept; when a new
//! one would exceed that, the ban that ends first is dropped. Ended bans are dropped (ban
//! only) or reinstated one per call (see [`AddrBook::reinstate_bad_peers`](
//! mukan_reactor_api::AddressBook::reinstate_bad_peers)), so an attacker who got many IDs
//! banned cannot pour them back into the new buckets at once.

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use mukan_reactor_api::NodeId;

use crate::known_address::KnownAddress;

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ban {
    /// The entry (bucket list empty); its `last_ban_time` is when the ban ends.
    pub(crate) ka: KnownAddress,
    /// The ID was not in the table when banned: it is dropped, not reinstated, at the end.
    pub(crate) ban_only: bool,
}

impl Ban {
    pub(crate) fn until(&self) -> SystemTime {
        self.ka.last_ban_time.unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// The bans, with an index by end time for eviction and reinstatement.
#[derive(Debug, Clone, Default)]
pub(crate) struct BanList {
    by_id: HashMap<NodeId, Ban>,
    by_end: BTreeSet<(SystemTime, NodeId)>,
}

impl PartialEq for BanList {
    fn eq(&self, other: &Self) -> bool {
        self.by_id == other.by_id
    }
}

impl BanList {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&Ban> {
        self.by_id.get(id)
    }

    pub(crate) fn contains(&self, id: &NodeId) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn clear(&mut self) {
        self.by_id.clear();
        self.by_end.clear();
    }

    /// Every ban, in ID order (deterministic file content).
    pub(crate) fn sorted(&self) -> Vec<&Ban> {
        let mut v: Vec<&Ban> = self.by_id.values().collect();
        v.sort_unstable_by_key(|b| b.ka.addr.id());
        v
    }

    pub(crate) fn remove(&mut self, id: &NodeId) -> Option<Ban> {
        let ban = self.by_id.remove(id)?;
        self.by_end.remove(&(ban.until(), *id));
        Some(ban)
    }

    /// Adds `ban`, or extends the existing ban of its ID to the later end. When the list is
    /// over `cap`, the bans that end first are dropped (possibly this one, if it ends
    /// first of all).
    pub(crate) fn insert(&mut self, ban: Ban, cap: usize) {
        let id = ban.ka.addr.id();
        let ban = match self.remove(&id) {
            Some(mut old) => {
                if ban.until() > old.until() {
                    old.ka.last_ban_time = ban.ka.last_ban_time;
                }
                old
            }
            None => ban,
        };
        self.by_end.insert((ban.until(), id));
        self.by_id.insert(id, ban);
        while self.by_id.len() > cap.max(1) {
            let Some(&(_, first)) = self.by_end.first() else {
                break;
            };
            self.remove(&first);
        }
    }

    /// The ban that ended first, if it ended by `now`, taken out of the list.
    pub(crate) fn pop_ended(&mut self, now: SystemTime) -> Option<Ban> {
        let &(end, id) = self.by_end.first()?;
        if end > now {
            return None;
        }
        self.remove(&id)
    }
}
