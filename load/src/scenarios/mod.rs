//! The scenarios L1–L8, one file each (L9 and L10 are in `budget.rs`, the flood and evil-peer
//! scenarios in `flood.rs` and `evil.rs`).

use std::time::Duration;

use crate::net::MIB;

mod l1;
mod l2;
mod l3;
mod l4;
mod l5;
mod l6;
mod l7;
mod l8;

pub(crate) use l1::l1;
pub(crate) use l2::l2;
pub(crate) use l3::{l3, l3_client};
pub(crate) use l4::l4;
pub(crate) use l5::l5;
pub(crate) use l6::l6;
pub(crate) use l7::l7;
pub(crate) use l8::l8;

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(super) fn mib(b: u64) -> f64 {
    b as f64 / MIB
}

pub(super) fn nzu(v: usize) -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(v).unwrap_or(std::num::NonZeroUsize::MIN)
}
