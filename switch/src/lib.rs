//! The switch of the Mukan P2P stack (not implemented yet).
//!
//! Will own the peer set, the reactors, dialing and reconnection. This crate
//! is an empty placeholder until its issue lands: it exports nothing.
