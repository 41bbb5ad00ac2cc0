//! `mukan-mconn`: placeholder, filled by its issue.
