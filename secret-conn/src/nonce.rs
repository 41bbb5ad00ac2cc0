//! The per-direction frame counter (Go `incrNonce`).

use crate::Error;

/// Length of a ChaCha20-Poly1305 nonce.
pub(crate) const NONCE_LEN: usize = 12;

/// A 96-bit nonce whose first 4 bytes are always zero and whose last 8 bytes are a little-endian
/// `u64` counter, starting at 0 and advanced after every sealed or opened frame.
///
/// Go panics when the counter would pass `u64::MAX`; here the frame with counter `u64::MAX` is
/// the last one, and every later use returns [`Error::NonceExhausted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nonce {
    /// `None` once the counter is used up.
    next: Option<u64>,
}

impl Nonce {
    pub(crate) const fn new() -> Self {
        Self { next: Some(0) }
    }

    /// A nonce that continues from `counter` (tests and fuzzing only).
    #[cfg(any(test, fuzzing))]
    pub(crate) const fn starting_at(counter: u64) -> Self {
        Self {
            next: Some(counter),
        }
    }

    /// The nonce bytes for the next frame, without consuming it.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`] once `u64::MAX` has been used.
    pub(crate) fn current(&self) -> Result<[u8; NONCE_LEN], Error> {
        let counter = self.next.ok_or(Error::NonceExhausted)?;
        let mut bytes = [0u8; NONCE_LEN];
        bytes[4..].copy_from_slice(&counter.to_le_bytes());
        Ok(bytes)
    }

    /// Consumes the current nonce (after its frame was sealed or opened).
    pub(crate) fn advance(&mut self) {
        self.next = self.next.and_then(|c| c.checked_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(counter: u64) -> [u8; NONCE_LEN] {
        Nonce::starting_at(counter).current().unwrap()
    }

    /// V5: the byte layout checkpoints of tendermint-rs `test_incr_nonce` (counter 0, 1, 510,
    /// 511, 512, 1023), which match Go's `incrNonce`.
    #[test]
    fn layout_checkpoints() {
        assert_eq!(at(0), [0; 12]);
        let mut n = Nonce::new();
        n.advance();
        assert_eq!(n.current().unwrap(), [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(at(510), [0, 0, 0, 0, 0xfe, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(at(511), [0, 0, 0, 0, 0xff, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(at(512), [0, 0, 0, 0, 0x00, 0x02, 0, 0, 0, 0, 0, 0]);
        assert_eq!(at(1023), [0, 0, 0, 0, 0xff, 0x03, 0, 0, 0, 0, 0, 0]);
        assert_eq!(at(1 << 32), [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_wrap() {
        let mut n = Nonce::starting_at(u64::MAX - 1);
        assert_eq!(n.current().unwrap()[4..], (u64::MAX - 1).to_le_bytes());
        n.advance();
        assert_eq!(n.current().unwrap()[4..], [0xff; 8]);
        n.advance();
        assert!(matches!(n.current(), Err(Error::NonceExhausted)));
        n.advance();
        assert!(matches!(n.current(), Err(Error::NonceExhausted)));
    }
}
