//! The frame codec (Go `SecretConnection.Write` / `Read`).
//!
//! A frame carries up to 1024 payload bytes: the 1028-byte plaintext `LE_u32(len) || payload ||
//! zero padding` sealed with ChaCha20-Poly1305 into 1044 bytes. Each direction has its own key and
//! counter nonce. The AEAD is `ring`'s, chosen by measurement (see the crate README).

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce as RingNonce, UnboundKey};

use crate::{CryptoError, Error, nonce::Nonce};

/// Largest payload of one frame (Go `dataMaxSize`).
pub const DATA_MAX_SIZE: usize = 1024;
/// Length of the frame's little-endian `u32` length prefix (Go `dataLenSize`).
pub(crate) const DATA_LEN_SIZE: usize = 4;
/// Plaintext frame length (Go `totalFrameSize`).
pub const FRAME_LEN: usize = DATA_LEN_SIZE + DATA_MAX_SIZE;
/// Poly1305 tag length (Go `aeadSizeOverhead`).
pub(crate) const TAG_LEN: usize = 16;
/// Length of a sealed frame on the wire; every frame has exactly this size.
pub const SEALED_FRAME_LEN: usize = FRAME_LEN + TAG_LEN;

/// Seals outgoing frames: the send key and the send counter.
///
/// Each call to a sealing method consumes one nonce; frames must reach the peer in the order
/// they were sealed.
pub struct FrameSealer {
    key: LessSafeKey,
    nonce: Nonce,
}

impl FrameSealer {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            key: aead_key(key),
            nonce: Nonce::new(),
        }
    }

    /// Seals the first `min(data.len(), 1024)` bytes of `data` into `out` and returns how many
    /// bytes it took. An empty `data` produces a valid frame with an empty payload.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`] after 2^64 frames; `out` is then left unchanged.
    pub fn seal(&mut self, data: &[u8], out: &mut [u8; SEALED_FRAME_LEN]) -> Result<usize, Error> {
        // Fail before touching `out`.
        self.nonce.current()?;
        let len = data.len().min(DATA_MAX_SIZE);
        #[expect(
            clippy::indexing_slicing,
            reason = "`len <= DATA_MAX_SIZE` and `out` holds a whole sealed frame"
        )]
        out[DATA_LEN_SIZE..DATA_LEN_SIZE + len].copy_from_slice(&data[..len]);
        self.seal_in_place(out, len)?;
        Ok(len)
    }

    /// Seals a frame whose payload the caller already wrote at `frame[4..4 + len]`: writes the
    /// length prefix and the zero padding, then encrypts in place and appends the tag. This is
    /// the copy-free path the stream driver uses.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`] after 2^64 frames.
    ///
    /// # Panics
    /// If `len > 1024` (a caller bug; the length never comes from the network).
    pub fn seal_in_place(
        &mut self,
        frame: &mut [u8; SEALED_FRAME_LEN],
        len: usize,
    ) -> Result<(), Error> {
        assert!(len <= DATA_MAX_SIZE, "frame payload over 1024 bytes");
        let nonce = self.nonce.current()?;
        // `len <= 1024`, so the cast is lossless.
        frame[..DATA_LEN_SIZE].copy_from_slice(&(len as u32).to_le_bytes());
        #[expect(
            clippy::indexing_slicing,
            reason = "constant range inside a fixed-size frame"
        )]
        frame[DATA_LEN_SIZE + len..FRAME_LEN].fill(0);
        let (plain, tag_out) = frame.split_at_mut(FRAME_LEN);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                RingNonce::assume_unique_for_key(nonce),
                Aad::empty(),
                plain,
            )
            // ring fails only for inputs longer than ChaCha20 can encrypt (256 GiB).
            .map_err(|_| Error::Crypto(CryptoError(())))?;
        tag_out.copy_from_slice(tag.as_ref());
        self.nonce.advance();
        Ok(())
    }

    /// Seals a plaintext frame `LE_u32(len) || payload || zeros` in place: writes the length
    /// prefix (`len` payload bytes are at `plain[4..4 + len]`, the rest must be zero), encrypts,
    /// and returns the tag that follows the frame on the wire.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`] after 2^64 frames; `plain` is then left unchanged.
    ///
    /// # Panics
    /// If `len > 1024` (a caller bug; the length never comes from the network).
    pub(crate) fn seal_frame(
        &mut self,
        plain: &mut [u8; FRAME_LEN],
        len: usize,
    ) -> Result<[u8; TAG_LEN], Error> {
        assert!(len <= DATA_MAX_SIZE, "frame payload over 1024 bytes");
        let nonce = self.nonce.current()?;
        // `len <= 1024`, so the cast is lossless.
        plain[..DATA_LEN_SIZE].copy_from_slice(&(len as u32).to_le_bytes());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                RingNonce::assume_unique_for_key(nonce),
                Aad::empty(),
                plain,
            )
            // ring fails only for inputs longer than ChaCha20 can encrypt (256 GiB).
            .map_err(|_| Error::Crypto(CryptoError(())))?;
        self.nonce.advance();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    #[cfg(any(test, fuzzing))]
    pub(crate) fn with_counter(key: &[u8; 32], counter: u64) -> Self {
        Self {
            key: aead_key(key),
            nonce: Nonce::starting_at(counter),
        }
    }

    /// Seals an arbitrary 1028-byte plaintext (any length prefix): evil-peer tests and fuzzing.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn seal_raw(&mut self, plain: &[u8; FRAME_LEN]) -> [u8; SEALED_FRAME_LEN] {
        let mut out = [0u8; SEALED_FRAME_LEN];
        out[..FRAME_LEN].copy_from_slice(plain);
        let Ok(nonce) = self.nonce.current() else {
            return out;
        };
        let (p, t) = out.split_at_mut(FRAME_LEN);
        let Ok(tag) = self.key.seal_in_place_separate_tag(
            RingNonce::assume_unique_for_key(nonce),
            Aad::empty(),
            p,
        ) else {
            return out;
        };
        t.copy_from_slice(tag.as_ref());
        self.nonce.advance();
        out
    }
}

impl std::fmt::Debug for FrameSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSealer")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// Opens incoming frames: the receive key and the receive counter.
pub struct FrameOpener {
    key: LessSafeKey,
    nonce: Nonce,
}

impl FrameOpener {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            key: aead_key(key),
            nonce: Nonce::new(),
        }
    }

    /// Authenticates and decrypts one sealed frame in place and returns its payload (0..=1024
    /// bytes, a sub-slice of `frame`).
    ///
    /// # Errors
    /// - [`Error::Crypto`] if the frame does not authenticate (any bit flipped, replayed,
    ///   reordered); the counter does not advance.
    /// - [`Error::FrameTooLarge`] if the authenticated length prefix exceeds 1024.
    /// - [`Error::NonceExhausted`] after 2^64 frames.
    ///
    /// After an error the session is broken and the opener must not be used again.
    pub fn open<'a>(&mut self, frame: &'a mut [u8; SEALED_FRAME_LEN]) -> Result<&'a [u8], Error> {
        let nonce = self.nonce.current()?;
        let plain = self
            .key
            .open_in_place(
                RingNonce::assume_unique_for_key(nonce),
                Aad::empty(),
                frame.as_mut_slice(),
            )
            .map_err(|_| CryptoError(()))?;
        self.nonce.advance();
        let mut len_bytes = [0u8; DATA_LEN_SIZE];
        #[expect(
            clippy::indexing_slicing,
            reason = "the opened plaintext is `FRAME_LEN` bytes"
        )]
        len_bytes.copy_from_slice(&plain[..DATA_LEN_SIZE]);
        let len = u32::from_le_bytes(len_bytes);
        let payload = usize::try_from(len)
            .ok()
            .filter(|l| *l <= DATA_MAX_SIZE)
            .and_then(|l| plain.get(DATA_LEN_SIZE..DATA_LEN_SIZE + l));
        payload.ok_or(Error::FrameTooLarge { len })
    }

    /// Opens the sealed frame at `in_out[src..]` (exactly [`SEALED_FRAME_LEN`] bytes) and
    /// writes its plaintext `LE_u32(len) || payload || zeros` at the start of `in_out`, moving
    /// it `src` bytes towards the front as it decrypts (no separate copy). Returns the payload
    /// length: the payload is `in_out[4..4 + len]`.
    ///
    /// # Errors
    /// As [`FrameOpener::open`]; on [`Error::Crypto`] `in_out` may hold garbage.
    pub(crate) fn open_within(&mut self, in_out: &mut [u8], src: usize) -> Result<usize, Error> {
        if in_out.len().checked_sub(src) != Some(SEALED_FRAME_LEN) {
            return Err(Error::Crypto(CryptoError(())));
        }
        let nonce = self.nonce.current()?;
        let plain = self
            .key
            .open_within(
                RingNonce::assume_unique_for_key(nonce),
                Aad::empty(),
                in_out,
                src..,
            )
            .map_err(|_| CryptoError(()))?;
        self.nonce.advance();
        let len = plain
            .first_chunk::<DATA_LEN_SIZE>()
            .map_or(u32::MAX, |b| u32::from_le_bytes(*b));
        usize::try_from(len)
            .ok()
            .filter(|l| *l <= DATA_MAX_SIZE)
            .ok_or(Error::FrameTooLarge { len })
    }

    #[cfg(any(test, fuzzing))]
    pub(crate) fn with_counter(key: &[u8; 32], counter: u64) -> Self {
        Self {
            key: aead_key(key),
            nonce: Nonce::starting_at(counter),
        }
    }
}

impl std::fmt::Debug for FrameOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameOpener")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

fn aead_key(key: &[u8; 32]) -> LessSafeKey {
    match UnboundKey::new(&CHACHA20_POLY1305, key) {
        Ok(k) => LessSafeKey::new(k),
        // ring rejects only keys of the wrong length; ours is a `[u8; 32]`.
        Err(_) => unreachable!("ChaCha20-Poly1305 keys are 32 bytes"),
    }
}

#[cfg(test)]
mod tests {
    use chacha20poly1305::{
        ChaCha20Poly1305, KeyInit,
        aead::{Aead, Payload},
    };

    use super::*;

    const KEY: [u8; 32] = [0x42; 32];

    fn pair() -> (FrameSealer, FrameOpener) {
        (FrameSealer::new(&KEY), FrameOpener::new(&KEY))
    }

    #[test]
    fn round_trip_every_size_class() {
        let (mut s, mut o) = pair();
        for len in [0usize, 1, 100, 1023, 1024] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut frame = [0u8; SEALED_FRAME_LEN];
            assert_eq!(s.seal(&data, &mut frame).unwrap(), len);
            assert_eq!(o.open(&mut frame).unwrap(), data.as_slice());
        }
        // Longer input: only the first 1024 bytes go in.
        let mut frame = [0u8; SEALED_FRAME_LEN];
        assert_eq!(s.seal(&[7; 3000], &mut frame).unwrap(), 1024);
        assert_eq!(o.open(&mut frame).unwrap(), &[7u8; 1024][..]);
    }

    /// The wire layout, checked with an independent AEAD (RustCrypto): plaintext is
    /// `LE_u32(len) || data || zeros`, nonce is `0000 || LE_u64(counter)`, no AAD.
    #[test]
    fn wire_layout_matches_an_independent_aead() {
        let mut s = FrameSealer::new(&KEY);
        let rc = ChaCha20Poly1305::new(&KEY.into());
        for counter in 0u64..3 {
            let mut frame = [0u8; SEALED_FRAME_LEN];
            s.seal(b"hello", &mut frame).unwrap();
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_le_bytes());
            let plain = rc
                .decrypt(
                    (&nonce).into(),
                    Payload {
                        msg: &frame,
                        aad: b"",
                    },
                )
                .unwrap();
            assert_eq!(plain.len(), FRAME_LEN);
            assert_eq!(&plain[..9], b"\x05\x00\x00\x00hello");
            assert!(plain[9..].iter().all(|&b| b == 0));
        }
    }

    /// B1: any flipped bit, in ciphertext or tag, is `Error::Crypto`.
    #[test]
    fn flipped_bit_is_crypto_error() {
        for bit in [
            0usize,
            8 * 4,
            8 * 600 + 3,
            8 * 1027 + 7,
            8 * 1028,
            8 * 1043 + 7,
        ] {
            let (mut s, mut o) = pair();
            let mut frame = [0u8; SEALED_FRAME_LEN];
            s.seal(b"payload", &mut frame).unwrap();
            frame[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(o.open(&mut frame), Err(Error::Crypto(_))),
                "bit {bit}"
            );
        }
    }

    /// B4 / B5: a replayed or reordered frame fails because the counter differs.
    #[test]
    fn replay_and_reorder_fail() {
        let (mut s, mut o) = pair();
        let mut f0 = [0u8; SEALED_FRAME_LEN];
        let mut f1 = [0u8; SEALED_FRAME_LEN];
        s.seal(b"zero", &mut f0).unwrap();
        s.seal(b"one", &mut f1).unwrap();
        let mut replay = f0;
        assert!(matches!(o.open(&mut f1.clone()), Err(Error::Crypto(_))));
        assert_eq!(o.open(&mut f0).unwrap(), b"zero");
        assert!(matches!(o.open(&mut replay), Err(Error::Crypto(_))));
    }

    /// B2: an authenticated length above 1024 is `FrameTooLarge`.
    #[test]
    fn length_field_over_1024_is_rejected() {
        for len in [1025u32, 4096, u32::MAX] {
            let mut plain = [0u8; FRAME_LEN];
            plain[..4].copy_from_slice(&len.to_le_bytes());
            let rc = ChaCha20Poly1305::new(&KEY.into());
            let sealed = rc.encrypt(&[0u8; 12].into(), &plain[..]).unwrap();
            let mut frame: [u8; SEALED_FRAME_LEN] = sealed.try_into().unwrap();
            let mut o = FrameOpener::new(&KEY);
            assert!(matches!(
                o.open(&mut frame),
                Err(Error::FrameTooLarge { len: l }) if l == len
            ));
        }
    }

    /// B6: the sealer near `u64::MAX` seals the last frame, then reports exhaustion; the
    /// opener follows the same counter and does the same.
    #[test]
    fn nonce_exhaustion_is_typed() {
        let mut s = FrameSealer::with_counter(&KEY, u64::MAX - 1);
        let mut o = FrameOpener::with_counter(&KEY, u64::MAX - 1);
        for _ in 0..2 {
            let mut frame = [0u8; SEALED_FRAME_LEN];
            s.seal(b"x", &mut frame).unwrap();
            assert_eq!(o.open(&mut frame).unwrap(), b"x");
        }
        let mut frame = [0u8; SEALED_FRAME_LEN];
        let before = frame;
        assert!(matches!(
            s.seal(b"x", &mut frame),
            Err(Error::NonceExhausted)
        ));
        assert_eq!(frame[4..], before[4..], "nothing sealed");
        assert!(matches!(o.open(&mut frame), Err(Error::NonceExhausted)));
    }
}
