//! TCP transport for the Mukan P2P stack (not implemented yet).
//!
//! Will own dialing, accepting, connection filters and the upgrade of a raw
//! connection (secret connection, then the NodeInfo exchange) into an
//! MConnection. See `spec/p2p/implementation/transport.md`. This crate is an
//! empty placeholder until its issue lands: it exports nothing.
