//! `mukan-p2p`: placeholder.
fn main() {}
