//! `mukan-reactor-api`: the contract of the Mukan P2P stack (being filled by its issue).
//!
//! `net_address.rs` and `addr_book.rs` are written by the address-book work; the rest of
//! the crate by the reactor-contract work.

mod addr_book;
mod net_address;

pub use addr_book::*;
pub use net_address::*;
