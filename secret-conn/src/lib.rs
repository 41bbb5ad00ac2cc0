//! `mukan-secret-conn`: placeholder, filled by its issue.
