//! `mukan-addrbook`: placeholder, filled by its issue.
