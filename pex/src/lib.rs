//! Peer exchange (PEX) reactor for the Mukan P2P stack (not implemented yet).
//!
//! Will own the PEX protocol on channel `0x00`, the peer-manager policy and
//! seed-mode crawling. This crate is an empty placeholder until its issue
//! lands: it exports nothing.
