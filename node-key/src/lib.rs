//! `mukan-node-key`: placeholder, filled by its issue.
