//! Frame buffering without IO: [`SealBuffer`] packs outgoing bytes into frames and seals each
//! frame in place; [`OpenBuffer`] opens incoming frames in place and keeps their payloads
//! contiguous, so that a reader above can parse them where they lie.
//!
//! Both are what a driver needs between the frame codec and a socket: the tokio
//! [`SecretStream`](crate::SecretStream) uses them, and so can a driver that parses the
//! plaintext itself (MConnection does, to avoid copying payloads out of the frames).

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};

use crate::frame::{DATA_LEN_SIZE, TAG_LEN};
use crate::{DATA_MAX_SIZE, Error, FRAME_LEN, FrameOpener, FrameSealer, SEALED_FRAME_LEN};

/// Outgoing bytes packed into 1024-byte frames, each sealed as soon as it is full.
///
/// [`SealBuffer::put`] copies bytes into the frame being filled (the only copy between the
/// caller's bytes and the socket: the frame is then encrypted in place);
/// [`SealBuffer::seal_partial`] seals a partly filled frame (what a flush does);
/// [`SealBuffer::sealed`] is what may be written to the socket, [`SealBuffer::consume`] marks
/// it written. The buffer grows as needed: the caller bounds how much it puts before writing.
pub struct SealBuffer {
    sealer: FrameSealer,
    /// `[written | sealed, not yet written | open frame: length slot + payload so far]`.
    buf: Vec<u8>,
    written: usize,
    sealed: usize,
    /// A frame could not be sealed (nonce exhausted): nothing more can be sent.
    broken: bool,
}

impl SealBuffer {
    /// An empty buffer sealing with `sealer` (from the handshake).
    pub fn new(sealer: FrameSealer) -> Self {
        Self {
            sealer,
            buf: Vec::new(),
            written: 0,
            sealed: 0,
            broken: false,
        }
    }

    /// Appends `data`, sealing every frame it fills.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`] after 2^64 frames; the buffer accepts nothing after that.
    pub fn put(&mut self, mut data: &[u8]) -> Result<(), Error> {
        if self.broken {
            return Err(Error::NonceExhausted);
        }
        while !data.is_empty() {
            if !self.has_open_frame() {
                self.open_frame(data.len());
            }
            let open = self.buf.len() - self.sealed - DATA_LEN_SIZE;
            let n = (DATA_MAX_SIZE - open).min(data.len());
            let (now, rest) = data.split_at(n);
            self.buf.extend_from_slice(now);
            data = rest;
            if open + n == DATA_MAX_SIZE {
                self.seal_open()?;
            }
        }
        Ok(())
    }

    /// Seals the partly filled frame, if there is one, so that everything put so far can be
    /// written (a flush).
    ///
    /// # Errors
    /// As [`SealBuffer::put`].
    pub fn seal_partial(&mut self) -> Result<(), Error> {
        if self.broken {
            return Err(Error::NonceExhausted);
        }
        if self.has_open_frame() {
            self.seal_open()?;
        }
        Ok(())
    }

    /// Sealed bytes not yet written.
    pub fn sealed(&self) -> &[u8] {
        self.buf.get(self.written..self.sealed).unwrap_or_default()
    }

    /// Marks the first `n` bytes of [`SealBuffer::sealed`] as written.
    pub fn consume(&mut self, n: usize) {
        self.written = (self.written + n).min(self.sealed);
        if self.written == self.sealed && self.sealed > 0 {
            // Keeps the capacity; a partly filled frame moves to the front.
            if self.has_open_frame() {
                self.buf.drain(..self.sealed);
            } else {
                self.buf.clear();
            }
            self.written = 0;
            self.sealed = 0;
        }
    }

    /// Whether nothing is buffered: no sealed bytes left to write and no open frame.
    pub fn is_empty(&self) -> bool {
        self.written == self.sealed && !self.has_open_frame()
    }

    /// Bytes held: sealed frames not yet written and the open frame.
    pub fn len(&self) -> usize {
        self.buf.len() - self.written
    }

    /// Whether a frame is being filled (it is sealed when full or by
    /// [`SealBuffer::seal_partial`]).
    pub fn has_open_frame(&self) -> bool {
        self.buf.len() > self.sealed
    }

    /// The allocated capacity.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Lets go of the allocation if nothing is buffered and it is larger than `keep` bytes.
    pub fn shrink(&mut self, keep: usize) {
        if self.is_empty() && self.buf.capacity() > keep {
            self.buf = Vec::new();
            self.written = 0;
            self.sealed = 0;
        }
    }

    /// Makes room for `additional` more bytes of payload (and their frames), so that a batch
    /// put piece by piece allocates once.
    pub fn reserve(&mut self, additional: usize) {
        let open = if self.has_open_frame() {
            self.buf.len() - self.sealed - DATA_LEN_SIZE
        } else {
            DATA_MAX_SIZE
        };
        let frames = additional
            .saturating_sub(DATA_MAX_SIZE - open)
            .div_ceil(DATA_MAX_SIZE);
        let need = self.sealed + (frames + 1) * SEALED_FRAME_LEN;
        if self.buf.capacity() < need {
            self.buf.reserve(need - self.buf.len());
        }
    }

    /// Starts a frame, making room for the frames that `coming` more bytes will fill (the
    /// buffer grows geometrically, so a burst allocates a few times at most).
    fn open_frame(&mut self, coming: usize) {
        let frames = coming.div_ceil(DATA_MAX_SIZE).max(1);
        let need = self.sealed + frames * SEALED_FRAME_LEN;
        if self.buf.capacity() < need {
            self.buf.reserve(need - self.buf.len());
        }
        self.buf.extend_from_slice(&[0; DATA_LEN_SIZE]);
    }

    fn seal_open(&mut self) -> Result<(), Error> {
        let len = self.buf.len() - self.sealed - DATA_LEN_SIZE;
        // Zero padding up to the frame length (nothing for a full frame).
        self.buf.resize(self.sealed + FRAME_LEN, 0);
        let Some(frame) = (self.buf.get_mut(self.sealed..)).and_then(<[u8]>::first_chunk_mut)
        else {
            self.broken = true;
            return Err(Error::NonceExhausted);
        };
        match self.sealer.seal_frame(frame, len) {
            Ok(tag) => {
                self.buf.extend_from_slice(&tag);
                self.sealed += SEALED_FRAME_LEN;
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }
}

impl std::fmt::Debug for SealBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealBuffer")
            .field("sealed", &(self.sealed - self.written))
            .field("open", &self.has_open_frame())
            .field("capacity", &self.buf.capacity())
            .finish_non_exhaustive()
    }
}

/// Previous read buffers kept for reuse while their payload is still held.
const STANDBY: usize = 3;

/// The smallest read an [`OpenBuffer`] asks for: two sealed frames.
pub(crate) const READ_MIN: usize = 2 * SEALED_FRAME_LEN;
/// The largest read: 64 sealed frames (66,816 bytes).
pub(crate) const READ_MAX: usize = 64 * SEALED_FRAME_LEN;

/// Incoming sealed frames, opened in place into one contiguous run of payload.
///
/// The caller appends what it read from the socket through [`OpenBuffer::read_with`], then
/// calls [`OpenBuffer::open`]: every whole frame is authenticated and decrypted where it lies,
/// its payload moved towards the front by the decryption itself (no separate copy) so that
/// it follows the previous frame's payload. [`OpenBuffer::plaintext`] is the payload not yet
/// taken; the caller takes bytes off its front (`advance`, `split_to`), nothing else.
///
/// The buffer follows the traffic: a read asks for room for 2 frames (see
/// [`OpenBuffer::set_min_read`]), twice as much after a read that filled the room (up to 64
/// frames), half after one that did not. It is kept while data flows (reallocating it for
/// every burst costs page faults); [`OpenBuffer::release`] lets go of a drained one, what a
/// driver does when the stream goes quiet.
pub struct OpenBuffer {
    opener: FrameOpener,
    /// Opened payload not yet taken.
    plain: BytesMut,
    /// Follows `plain` in memory: `tail[..gap]` are dead bytes (the tags and padding of opened
    /// frames), `tail[gap..]` sealed bytes not opened yet (less than a frame after `open`).
    tail: BytesMut,
    gap: usize,
    /// Previous buffers, while slices of them may still be held (see `read_with`), the most
    /// recent last; at most `STANDBY` of them.
    standby: VecDeque<BytesMut>,
    /// Room to ask for at the next read, between `min` and `READ_MAX`.
    want: usize,
    min: usize,
    broken: bool,
    /// The error that ended the session, reported once the payload before it was taken.
    failed: Option<Error>,
}

impl OpenBuffer {
    /// An empty buffer opening with `opener` (from the handshake).
    pub fn new(opener: FrameOpener) -> Self {
        Self {
            opener,
            plain: BytesMut::new(),
            tail: BytesMut::new(),
            gap: 0,
            standby: VecDeque::new(),
            want: READ_MIN,
            min: READ_MIN,
            broken: false,
            failed: None,
        }
    }

    /// Sets the smallest read (and the next one) to `frames` sealed frames (1 to 64; 2 by
    /// default). A stream
    /// that moves bulk data asks for 64 from the start; one that must hold little memory when
    /// idle keeps the default.
    pub fn set_min_read(&mut self, frames: usize) {
        self.min = frames.clamp(1, READ_MAX / SEALED_FRAME_LEN) * SEALED_FRAME_LEN;
        self.want = self.min;
    }

    /// The opened payload not yet taken. Take bytes off its front only (`advance`,
    /// `split_to`); growing it would move it away from the frames still to open.
    pub fn plaintext(&mut self) -> &mut BytesMut {
        &mut self.plain
    }

    /// Bytes of a frame that has not arrived whole yet.
    pub fn partial_frame(&self) -> usize {
        self.tail.len() - self.gap
    }

    /// Whether nothing is buffered: no payload left and no partial frame.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.partial_frame() == 0
    }

    /// The allocated capacity (payload, opened frames' remains and spare room, and the
    /// standby buffer).
    pub fn capacity(&self) -> usize {
        self.plain.capacity()
            + self.tail.capacity()
            + self.standby.iter().map(BytesMut::capacity).sum::<usize>()
    }

    /// Lets go of the allocation if nothing is buffered (an idle stream holds no buffer), and
    /// starts the next reads at the smallest size again.
    pub fn release(&mut self) {
        if self.is_empty() {
            self.plain = BytesMut::new();
            self.tail = BytesMut::new();
            self.gap = 0;
            self.want = self.min;
        }
        self.standby = VecDeque::new();
    }

    /// Calls `read` with the buffer to append sealed bytes to: it has room for at least the
    /// next read's size (see the type's docs), and `read` must only append. Then adapts the
    /// next read's size to how much was appended. Call [`OpenBuffer::open`] after.
    ///
    /// The payload not taken yet (a packet cut by the end of the last read, or messages the
    /// reader holds back) stays where it is: the next frame is opened right after it, over
    /// the opened frames' remains. It moves only when the buffer is short of room for the
    /// read, and then once (to the front of the buffer, or into another one).
    pub fn read_with<R>(&mut self, read: impl FnOnce(&mut BytesMut) -> R) -> R {
        let plain_len = self.plain.len();
        let mut buf = self.join();
        if self.gap > 0 && plain_len == 0 {
            // Every payload byte was taken: the opened frames' remains go for free.
            buf.advance(self.gap);
            self.gap = 0;
        }
        if buf.capacity() - buf.len() < self.want && self.gap > 0 {
            // Short of room: drop the opened frames' remains (which pile up behind a payload
            // that is never taken whole) by moving the sealed bytes of the partial frame, less
            // than a frame, down onto them; the payload does not move here.
            let sealed = plain_len + self.gap;
            buf.copy_within(sealed.., plain_len);
            buf.truncate(buf.len() - self.gap);
            self.gap = 0;
        }
        if buf.capacity() - buf.len() < self.want && !buf.try_reclaim(self.want) {
            // (`try_reclaim` moves what is left to the front of the allocation when nobody
            // else holds a slice of it.) The buffer is too small, or slices of it are still
            // held (payload handed out and not dropped yet): continue in the standby buffer
            // if it is free by now, else in a new one (see `fresh_size`) with only what is
            // left copied over (growing the old one would copy the consumed bytes in front of
            // it too).
            // The old buffer becomes a standby: once its slices are dropped it is reused, so
            // that a reader whose payload is taken a little later (a few reads later, while a
            // consumer works through what it took) does not allocate, and fault in, a new
            // buffer for every read.
            let need = buf.len() + self.want;
            let free = self
                .standby
                .iter_mut()
                .position(|standby| standby.try_reclaim(need));
            let mut next = match free.and_then(|i| self.standby.remove(i)) {
                Some(standby) => standby,
                None => BytesMut::with_capacity(self.fresh_size(need)),
            };
            next.extend_from_slice(&buf);
            buf.clear();
            if self.standby.len() == STANDBY {
                self.standby.pop_front();
            }
            self.standby.push_back(buf);
            buf = next;
        }
        let before = buf.len();
        let room = buf.capacity() - before;
        let result = read(&mut buf);
        let added = buf.len().saturating_sub(before);
        if added >= room {
            self.want = (self.want * 2).min(READ_MAX);
        } else if added > 0 {
            self.want = (self.want / 2).max(self.min);
        }
        self.split(buf, plain_len);
        result
    }

    /// The size of a new buffer that must hold `need` bytes: exactly that for the smallest
    /// reads (an idle stream holds no more), the largest read's size with some slack once
    /// reads are large (so that the buffer serves every later read, and a little more left
    /// over then still lets it be reclaimed), half a read of slack in between.
    fn fresh_size(&self, need: usize) -> usize {
        if self.want <= self.min {
            need
        } else if self.want >= READ_MAX / 2 {
            need.max(READ_MAX) + 4 * READ_MIN
        } else {
            need + self.want / 2
        }
    }

    /// Opens every whole sealed frame received, appending its payload to
    /// [`OpenBuffer::plaintext`]; returns the payload bytes added (empty frames add none).
    ///
    /// # Errors
    /// [`Error::Crypto`] (a frame that does not authenticate: flipped bit, replay, reorder),
    /// [`Error::FrameTooLarge`], [`Error::NonceExhausted`]. The session is then over: every
    /// later call fails.
    pub fn open(&mut self) -> Result<usize, Error> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        if self.broken {
            return Err(Error::Crypto(crate::CryptoError(())));
        }
        if self.partial_frame() < SEALED_FRAME_LEN {
            return Ok(0);
        }
        let plain_len = self.plain.len();
        let mut buf = self.join();
        let (plain, frames_end, result) = self.open_frames(&mut buf, plain_len);
        self.gap = frames_end - plain;
        self.split(buf, plain);
        let added = plain - plain_len;
        match result {
            Ok(()) => Ok(added),
            Err(err) => {
                self.broken = true;
                // The frames before the bad one authenticated: hand out their payload first.
                if added > 0 {
                    self.failed = Some(err);
                    Ok(added)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Opens the frames of `buf` (`[payload: p | dead: gap | sealed]`); returns the new end of
    /// the payload, the end of the frames opened, and the error that stopped it, if any.
    fn open_frames(&mut self, buf: &mut BytesMut, p: usize) -> (usize, usize, Result<(), Error>) {
        let mut p = p;
        let mut c = p + self.gap;
        while buf.len() - c >= SEALED_FRAME_LEN {
            let end = c + SEALED_FRAME_LEN;
            if p >= DATA_LEN_SIZE {
                // The frame's plaintext starts 4 bytes before the payload's end, so that its
                // payload follows on; the 4 bytes its length prefix overwrites are put back.
                let at = p - DATA_LEN_SIZE;
                let mut saved = [0u8; DATA_LEN_SIZE];
                saved.copy_from_slice(buf.get(at..p).unwrap_or_default());
                let opened = match buf.get_mut(at..end) {
                    Some(in_out) => self.opener.open_within(in_out, c - at),
                    None => Err(Error::Crypto(crate::CryptoError(()))),
                };
                if let Some(dst) = buf.get_mut(at..p) {
                    dst.copy_from_slice(&saved);
                }
                match opened {
                    Ok(len) => p += len,
                    Err(err) => return (p, c, Err(err)),
                }
                c = end;
            } else {
                // Fewer than 4 payload bytes before: open to the front of the buffer, put
                // those bytes right before the new payload, and drop what is in front.
                let mut saved = [0u8; DATA_LEN_SIZE];
                saved
                    .get_mut(..p)
                    .unwrap_or_default()
                    .copy_from_slice(buf.get(..p).unwrap_or_default());
                let opened = match buf.get_mut(..end) {
                    Some(in_out) => self.opener.open_within(in_out, c),
                    None => Err(Error::Crypto(crate::CryptoError(()))),
                };
                let len = match opened {
                    Ok(len) => len,
                    Err(err) => {
                        // Put the payload in front back; nothing after it is handed out.
                        if let (Some(dst), Some(src)) = (buf.get_mut(..p), saved.get(..p)) {
                            dst.copy_from_slice(src);
                        }
                        return (p, c, Err(err));
                    }
                };
                let shift = DATA_LEN_SIZE - p;
                if let (Some(dst), Some(src)) = (buf.get_mut(shift..DATA_LEN_SIZE), saved.get(..p))
                {
                    dst.copy_from_slice(src);
                }
                buf.advance(shift);
                p += len;
                c = end - shift;
            }
        }
        (p, c, Ok(()))
    }

    /// `plain` and `tail` as one buffer (they are contiguous, so this moves no bytes).
    fn join(&mut self) -> BytesMut {
        let mut buf = std::mem::take(&mut self.plain);
        buf.unsplit(std::mem::take(&mut self.tail));
        buf
    }

    /// Splits `buf` back into the payload (its first `plain_len` bytes) and the tail.
    fn split(&mut self, mut buf: BytesMut, plain_len: usize) {
        self.tail = buf.split_off(plain_len);
        self.plain = buf;
    }
}

impl std::fmt::Debug for OpenBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBuffer")
            .field("plaintext", &self.plain.len())
            .field("partial_frame", &self.partial_frame())
            .field("want", &self.want)
            .finish_non_exhaustive()
    }
}

// The tag length is part of the sealed frame length.
const _: () = assert!(SEALED_FRAME_LEN == FRAME_LEN + TAG_LEN);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: [u8; 32] = [0x42; 32];

    fn pair() -> (SealBuffer, OpenBuffer) {
        (
            SealBuffer::new(FrameSealer::new(&KEY)),
            OpenBuffer::new(FrameOpener::new(&KEY)),
        )
    }

    /// Feeds `wire` to `open` in pieces of `sizes` (cycled), taking `take` bytes of payload off
    /// the front after each piece and keeping the last `hold` pieces taken alive (as a
    /// consumer keeps messages it was handed); returns everything taken.
    fn feed(
        open: &mut OpenBuffer,
        wire: &[u8],
        sizes: &[usize],
        take: usize,
        hold: usize,
    ) -> Vec<u8> {
        let mut held = VecDeque::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < wire.len() {
            let n = sizes[i % sizes.len()].min(wire.len() - pos).max(1);
            i += 1;
            open.read_with(|buf| buf.extend_from_slice(&wire[pos..pos + n]));
            pos += n;
            open.open().unwrap();
            let plain = open.plaintext();
            let k = take.min(plain.len());
            let piece = plain.split_to(k);
            out.extend_from_slice(&piece);
            held.push_back(piece);
            if held.len() > hold {
                held.pop_front();
            }
        }
        out.extend_from_slice(open.plaintext());
        out
    }

    #[test]
    fn sealed_bytes_are_frames_an_opener_reads() {
        let (mut seal, _) = pair();
        seal.put(b"hello").unwrap();
        assert!(seal.sealed().is_empty(), "a partly filled frame waits");
        seal.seal_partial().unwrap();
        assert_eq!(seal.sealed().len(), SEALED_FRAME_LEN);
        let mut frame: [u8; SEALED_FRAME_LEN] = seal.sealed().try_into().unwrap();
        let mut opener = FrameOpener::new(&KEY);
        assert_eq!(opener.open(&mut frame).unwrap(), b"hello");
        seal.consume(SEALED_FRAME_LEN);
        assert!(seal.is_empty());
    }

    #[test]
    fn full_frames_are_sealed_at_once() {
        let (mut seal, mut open) = pair();
        let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        seal.put(&data).unwrap();
        assert_eq!(seal.sealed().len(), 2 * SEALED_FRAME_LEN);
        assert!(seal.has_open_frame());
        seal.seal_partial().unwrap();
        let wire = seal.sealed().to_vec();
        assert_eq!(feed(&mut open, &wire, &[wire.len()], usize::MAX, 0), data);
    }

    #[test]
    fn consume_keeps_the_open_frame() {
        let (mut seal, mut open) = pair();
        seal.put(&[1; 1500]).unwrap();
        let first = seal.sealed().to_vec();
        seal.consume(first.len());
        assert!(!seal.is_empty());
        seal.put(&[2; 100]).unwrap();
        seal.seal_partial().unwrap();
        let mut wire = first;
        wire.extend_from_slice(seal.sealed());
        let mut want = vec![1u8; 1500];
        want.extend_from_slice(&[2; 100]);
        assert_eq!(feed(&mut open, &wire, &[7, 1044, 3000], 13, 2), want);
    }

    #[test]
    fn a_bad_frame_breaks_the_buffer() {
        let (mut seal, mut open) = pair();
        seal.put(b"payload").unwrap();
        seal.seal_partial().unwrap();
        let mut wire = seal.sealed().to_vec();
        wire[100] ^= 1;
        open.read_with(|buf| buf.extend_from_slice(&wire));
        assert!(matches!(open.open(), Err(Error::Crypto(_))));
        assert!(open.open().is_err());
    }

    #[test]
    fn reads_grow_while_they_fill_and_a_drained_buffer_can_go() {
        let (mut seal, mut open) = pair();
        let data = vec![9u8; 60 * 1024];
        seal.put(&data).unwrap();
        seal.seal_partial().unwrap();
        let wire = seal.sealed().to_vec();
        let mut pos = 0;
        let mut rooms = Vec::new();
        while pos < wire.len() {
            open.read_with(|buf| {
                let room = buf.capacity() - buf.len();
                rooms.push(room);
                let n = room.min(wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
            });
            open.open().unwrap();
            open.plaintext().clear();
        }
        assert!(rooms[0] >= READ_MIN);
        assert!(rooms.windows(2).all(|w| w[1] >= w[0]), "{rooms:?}");
        assert!(*rooms.last().unwrap() >= 8 * READ_MIN, "{rooms:?}");
        assert!(open.capacity() > READ_MIN);
        open.release();
        assert_eq!(open.capacity(), 0);
    }

    /// The payload is opened where the sealed bytes were read: no copy between the read and
    /// the reader of the plaintext (the decryption moves it to follow the previous frame's).
    #[test]
    fn payload_is_opened_where_it_was_read() {
        let (mut seal, mut open) = pair();
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        seal.put(&data).unwrap();
        seal.seal_partial().unwrap();
        let wire = seal.sealed().to_vec();
        let mut read_into = 0..0;
        open.set_min_read(8);
        open.read_with(|buf| {
            let start = buf.as_ptr() as usize;
            read_into = start..start + buf.capacity();
            buf.extend_from_slice(&wire);
        });
        assert!(read_into.len() >= wire.len(), "read in one go");
        assert_eq!(open.open().unwrap(), data.len());
        let plain = open.plaintext();
        let at = plain.as_ptr() as usize;
        assert!(read_into.contains(&at) && read_into.contains(&(at + plain.len() - 1)));
        assert_eq!(&plain[..], &data[..], "contiguous across the five frames");
    }

    /// The payload left after a read (here the head of a packet cut by the end of the read,
    /// whose consumer took the packets before it) stays where it was opened: the next frame is
    /// opened right after it, so the packet lies in one piece without being moved.
    #[test]
    fn payload_left_stays_where_it_was_opened() {
        let (mut seal, mut open) = pair();
        let data: Vec<u8> = (0..8000u32).map(|i| (i * 13) as u8).collect();
        seal.put(&data).unwrap();
        seal.seal_partial().unwrap();
        let wire = seal.sealed().to_vec();
        // A read that fills its room, so that the next one asks for more (in a new buffer,
        // with room to spare).
        let mut pos = 0;
        open.read_with(|buf| {
            pos = buf.capacity() - buf.len();
            buf.extend_from_slice(&wire[..pos]);
        });
        let first = open.open().unwrap();
        let taken = open.plaintext().split_to(first);
        // Two frames and part of a third; the consumer takes 1,500 bytes (whole packets, kept
        // alive as delivered messages are) and leaves the head of a cut packet.
        let n = 2 * SEALED_FRAME_LEN + 500;
        open.read_with(|buf| buf.extend_from_slice(&wire[pos..pos + n]));
        pos += n;
        assert_eq!(open.open().unwrap(), 2 * DATA_MAX_SIZE);
        let delivered = open.plaintext().split_to(1500);
        let head = open.plaintext().as_ptr() as usize;
        let head_len = open.plaintext().len();
        let mut read_at = 0;
        open.read_with(|buf| {
            read_at = buf.as_ptr() as usize;
            let n = (buf.capacity() - buf.len()).min(wire.len() - pos);
            buf.extend_from_slice(&wire[pos..pos + n]);
        });
        assert_eq!(read_at, head, "the payload left was moved before the read");
        open.open().unwrap();
        let plain = open.plaintext();
        assert_eq!(plain.as_ptr() as usize, head, "the payload left was moved");
        assert!(plain.len() > head_len, "the next frame follows it");
        assert_eq!(&plain[..], &data[first + 1500..first + 1500 + plain.len()]);
        assert_eq!(
            (&taken[..], &delivered[..]),
            (&data[..first], &data[first..first + 1500])
        );
    }

    proptest! {
        /// Any message sizes, any flush points, any read sizes, any consumption pace, payload
        /// taken kept alive or not: the payload comes out intact and in order.
        #[test]
        fn round_trip(
            parts in proptest::collection::vec((0usize..3000, any::<bool>()), 1..20),
            sizes in proptest::collection::vec(1usize..5000, 1..8),
            take in 1usize..4000,
            hold in 0usize..5,
        ) {
            let (mut seal, mut open) = pair();
            let mut data = Vec::new();
            let mut wire = Vec::new();
            for (i, (len, flush)) in parts.iter().enumerate() {
                let part: Vec<u8> = (0..*len).map(|j| (i * 31 + j) as u8).collect();
                seal.put(&part).unwrap();
                data.extend_from_slice(&part);
                if *flush {
                    seal.seal_partial().unwrap();
                }
                let n = seal.sealed().len();
                wire.extend_from_slice(seal.sealed());
                seal.consume(n);
            }
            seal.seal_partial().unwrap();
            wire.extend_from_slice(seal.sealed());
            prop_assert_eq!(feed(&mut open, &wire, &sizes, take, hold), data);
        }
    }
}
