//! `NetAddress`: `id@host:port` (filled by the address-book work).
