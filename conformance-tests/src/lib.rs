//! Shared helpers for the conformance suite (tests live under `tests/`).

pub mod consensus;
pub mod quint;
