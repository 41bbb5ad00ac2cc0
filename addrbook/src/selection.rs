//! Picking addresses: `pick_address(bias)` (Go `PickAddress`) and the PEX selections (Go
//! `GetSelection`, `GetSelectionWithBias`).

use std::collections::HashSet;

use mukan_reactor_api::NetAddress;
use mukan_reactor_api::NodeId;
use rand::Rng;

use crate::book::{AddrBook, BucketKind};

/// Go `PickAddress`: old with probability `√old·(100−b) / (√old·(100−b) + √new·b)`, then a
/// uniformly random non-empty bucket of that kind, then a uniformly random entry of it.
pub(crate) fn pick_address(book: &mut AddrBook, bias: u8) -> Option<NetAddress> {
    if book.n_new + book.n_old == 0 {
        return None;
    }
    let bias = f64::from(bias.min(100));
    let old_c = (book.n_old as f64).sqrt() * (100.0 - bias);
    let new_c = (book.n_new as f64).sqrt() * bias;
    let pick_old = (old_c + new_c) * book.rng.r#gen::<f64>() < old_c;
    let (kind, count) = if pick_old {
        (BucketKind::Old, book.n_old)
    } else {
        (BucketKind::New, book.n_new)
    };
    if count == 0 {
        return None;
    }
    let buckets = match kind {
        BucketKind::New => book.new_buckets.len(),
        BucketKind::Old => book.old_buckets.len(),
    };
    // Rejection sampling as Go does, bounded; a sparse book falls back to listing the
    // non-empty buckets (same distribution: uniform over non-empty buckets).
    let mut chosen = None;
    for _ in 0..4 * buckets {
        let b = book.random_index(buckets);
        if !book.bucket(kind, b).is_empty() {
            chosen = Some(b);
            break;
        }
    }
    let b = match chosen {
        Some(b) => b,
        None => {
            let non_empty: Vec<usize> = (0..buckets)
                .filter(|&b| !book.bucket(kind, b).is_empty())
                .collect();
            *non_empty.get(book.random_index(non_empty.len().max(1)))?
        }
    };
    let len = book.bucket(kind, b).len();
    let i = book.random_index(len);
    let id = *book.bucket(kind, b).get(i)?;
    book.address(&id)
}

/// Go `GetSelection`: a uniform sample of the stored addresses (partial Fisher–Yates).
/// Unverified (self-reported, not yet reached) addresses are never served.
pub(crate) fn selection(book: &mut AddrBook) -> Vec<NetAddress> {
    let mut all: Vec<NetAddress> = (book.slots.iter())
        .filter(|ka| !ka.unverified)
        .map(|ka| ka.addr)
        .collect();
    let size = all.len();
    let n = AddrBook::selection_size(size);
    for i in 0..n {
        let j = i + book.random_index(size - i);
        all.swap(i, j);
    }
    all.truncate(n);
    all
}

/// Go `GetSelectionWithBias`: `max(round(bias% · n), n − old)` new addresses first, then old
/// ones up to `n` (fewer when the book runs out). Unverified addresses are never served.
pub(crate) fn selection_with_bias(book: &mut AddrBook, bias: u8) -> Vec<NetAddress> {
    let unverified = book.slots.iter().filter(|ka| ka.unverified).count();
    let size = (book.n_new + book.n_old).saturating_sub(unverified);
    if size == 0 {
        return Vec::new();
    }
    let n = AddrBook::selection_size(size);
    let by_bias = (f64::from(bias.min(100)) / 100.0 * n as f64).round() as usize;
    let num_new = by_bias.max(n.saturating_sub(book.n_old));
    let mut out = random_pick(book, BucketKind::New, num_new);
    let rest = n.saturating_sub(out.len());
    out.extend(random_pick(book, BucketKind::Old, rest));
    out
}

/// Up to `num` distinct addresses from the buckets of `kind`, each bucket reference counted
/// once (as Go, an address in several new buckets is proportionally more likely).
fn random_pick(book: &mut AddrBook, kind: BucketKind, num: usize) -> Vec<NetAddress> {
    if num == 0 {
        return Vec::new();
    }
    let buckets = match kind {
        BucketKind::New => &book.new_buckets,
        BucketKind::Old => &book.old_buckets,
    };
    let mut refs: Vec<NodeId> = buckets.iter().flatten().copied().collect();
    let total = refs.len();
    let mut chosen = HashSet::with_capacity(num);
    let mut out = Vec::with_capacity(num.min(total));
    for i in 0..total {
        let j = i + book.rng.gen_range(0..total - i);
        refs.swap(i, j);
        let Some(&id) = refs.get(i) else {
            break;
        };
        if chosen.insert(id) {
            if let Some(ka) = book.entry(&id).filter(|ka| !ka.unverified) {
                out.push(ka.addr);
            }
            if out.len() >= num {
                break;
            }
        }
    }
    out
}
