//! The whole sans-IO `MConnState` driven by an arbitrary sequence of operations on a virtual
//! clock: inbound bytes (raw, through `read_buffer`, or well-formed packets), time advances and
//! timeouts, sends on its own queues or on caller-kept queues (`poll_transmit_from`),
//! transmits, event draining under an event limit, read pauses, status queries and the end of
//! the stream.
//!
//! Invariants:
//! - no panic; every `Err` is the typed error the call documents (the peer's protocol errors
//!   from reads, `PongTimeout` from timers), and the state is not used after one;
//! - received messages are on a registered channel and within its receive capacity, and never
//!   more events wait than the event limit;
//! - buffers stay bounded: what stays in the read buffer after decoding is less than one
//!   packet, one transmit is at most one write batch plus one packet plus the control packets;
//! - the outbound stream decodes with a peer's decoder, packets carry at most
//!   `max_packet_msg_payload_size` bytes, and every channel's messages arrive whole and in
//!   order; at the end, once time runs freely, everything queued is sent (the state goes idle).
#![no_main]

use std::collections::VecDeque;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use mukan_mconn::{
    Config, ConfigError, Error, Event, MConnState, Packet, PacketDecoder, PacketMsg, SendQueues,
    max_packet_size,
};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, TrySendError};

/// Reads the input as a stream of small numbers; zeros once it runs out.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Caller-kept send queues (what the tokio driver does with its shared queues).
struct Queues {
    queues: Vec<VecDeque<Bytes>>,
    capacity: Vec<usize>,
}

impl Queues {
    fn try_send(&mut self, index: usize, message: Bytes) -> Result<(), TrySendError> {
        let (Some(q), Some(&cap)) = (self.queues.get_mut(index), self.capacity.get(index)) else {
            return Err(TrySendError::UnknownChannel(ChannelId(0)));
        };
        if q.len() >= cap {
            return Err(TrySendError::Full);
        }
        q.push_back(message);
        Ok(())
    }
}

impl SendQueues for Queues {
    fn has_message(&self, index: usize) -> bool {
        self.queues.get(index).is_some_and(|q| !q.is_empty())
    }
    fn pop_message(&mut self, index: usize) -> Option<Bytes> {
        self.queues.get_mut(index)?.pop_front()
    }
}

/// The remote end of our outbound stream: decodes it and checks what arrives.
struct Peer {
    decoder: PacketDecoder,
    buf: BytesMut,
    max_payload: usize,
    /// Per channel index: messages queued and not yet fully received, in order.
    expected: Vec<VecDeque<Bytes>>,
    /// Per channel index: the message being reassembled.
    partial: Vec<Vec<u8>>,
    ids: Vec<ChannelId>,
    pings: usize,
    pongs: usize,
}

impl Peer {
    fn receive(&mut self, wire: &[u8]) {
        self.buf.extend_from_slice(wire);
        loop {
            let packet = match self.decoder.decode(&mut self.buf) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => panic!(
                    "our own stream does not decode: {e}: {:02x?}",
                    &self.buf[..]
                ),
            };
            match packet {
                Packet::Ping => self.pings += 1,
                Packet::Pong => self.pongs += 1,
                Packet::Msg(m) => {
                    assert!(m.data.len() <= self.max_payload, "packet above max payload");
                    let i = self
                        .ids
                        .iter()
                        .position(|&c| c == m.channel)
                        .expect("sent on a channel we do not have");
                    self.partial[i].extend_from_slice(&m.data);
                    if m.eof {
                        let whole = std::mem::take(&mut self.partial[i]);
                        let want = self.expected[i].pop_front().expect("message never queued");
                        assert_eq!(&whole[..], &want[..], "message altered or reordered");
                    }
                }
            }
        }
        // Everything we produced is whole packets.
        assert!(self.buf.is_empty(), "a transmit ended inside a packet");
    }
}

fn check_read_error(e: &Error) {
    assert!(
        matches!(
            e,
            Error::Decode(_)
                | Error::PacketTooLarge { .. }
                | Error::UnknownChannel(_)
                | Error::MessageTooLarge { .. }
        ),
        "untyped read error: {e:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input { data };
    let start = Instant::now();

    // --- setup --------------------------------------------------------------------------------
    let flags = inp.byte();
    let mut config = Config::default();
    config.send_rate = if flags & 1 != 0 {
        NonZeroU64::new(1 + u64::from(inp.u16()) * 16)
    } else {
        None
    };
    config.recv_rate = if flags & 2 != 0 {
        NonZeroU64::new(1 + u64::from(inp.u16()) * 16)
    } else {
        None
    };
    let max_payload = [1usize, 7, 64, 1024][usize::from(flags >> 2 & 3)];
    config.max_packet_msg_payload_size = NonZeroUsize::new(max_payload).expect("non-zero");
    config.flush_throttle = Duration::from_millis(u64::from(inp.byte()) * 4);
    config.ping_interval = Duration::from_millis(1 + u64::from(inp.u16()));
    config.pong_timeout = Duration::from_millis(u64::from(inp.u16()));
    config.write_batch_size = NonZeroUsize::new(1 + usize::from(inp.u16())).expect("non-zero");
    let event_limit = NonZeroUsize::new(usize::from(flags >> 4 & 3));
    let external = flags & 0x40 != 0;

    let n_channels = 1 + usize::from(inp.byte() % 4);
    let mut channels = Vec::new();
    for _ in 0..n_channels {
        let id = ChannelId(inp.byte());
        let prio = NonZeroU32::new(1 + u32::from(inp.byte() % 8)).expect("non-zero");
        let shape = inp.byte();
        let sq = NonZeroUsize::new(1 + usize::from(shape % 8)).expect("non-zero");
        let cap = NonZeroUsize::new(1 + usize::from(shape >> 3) * 97).expect("non-zero");
        channels.push(
            ChannelDescriptor::new(id, prio)
                .with_send_queue_capacity(sq)
                .with_recv_buffer_capacity(NonZeroUsize::new(64).expect("non-zero"))
                .with_recv_message_capacity(cap),
        );
    }
    let mut state = match MConnState::new(&channels, config.clone(), start) {
        Ok(s) => s,
        Err(Error::Config(
            ConfigError::DuplicateChannel(_) | ConfigError::PongTimeoutNotBelowPingInterval,
        )) => return,
        Err(e) => panic!("unexpected config error: {e:?}"),
    };
    if let Some(limit) = event_limit {
        state.set_event_limit(limit);
    }
    let ids: Vec<ChannelId> = channels.iter().map(|d| d.id).collect();
    let max_packet = max_packet_size(max_payload);
    let mut queues = Queues {
        queues: vec![VecDeque::new(); ids.len()],
        capacity: channels
            .iter()
            .map(|d| d.send_queue_capacity.get())
            .collect(),
    };
    let mut peer = Peer {
        // Go's receive limit (`max_packet_size`, a full chunk on channel 1). Our chunks on a
        // channel >= 0x80 are one byte shorter so that they fit it, except with a 1-byte
        // payload, where a chunk cannot shrink (`chunk_size`).
        decoder: PacketDecoder::new(if max_payload > 1 {
            max_packet
        } else {
            max_packet + 1
        }),
        buf: BytesMut::new(),
        max_payload,
        expected: vec![VecDeque::new(); ids.len()],
        partial: vec![Vec::new(); ids.len()],
        ids: ids.clone(),
        pings: 0,
        pongs: 0,
    };
    let mut now = start;
    let mut out = BytesMut::new();
    let mut paused = false;
    let mut pings_in = 0usize;

    // Drains the events, checking them; returns how many there were.
    let drain = |state: &mut MConnState| {
        let mut n = 0usize;
        while let Some(ev) = state.poll_event() {
            n += 1;
            match ev {
                Event::Received { channel, message } => {
                    let d = channels
                        .iter()
                        .find(|d| d.id == channel)
                        .expect("message on an unregistered channel");
                    assert!(message.len() <= d.recv_message_capacity.get());
                }
                other => panic!("the state emitted a driver event: {other:?}"),
            }
        }
        if let Some(limit) = event_limit {
            assert!(n <= limit.get(), "{n} events waited, limit {limit}");
        }
        n
    };

    // --- operations ---------------------------------------------------------------------------
    let failed = loop {
        if inp.is_empty() {
            break false;
        }
        let op = inp.byte();
        match op % 12 {
            // Raw bytes from the peer.
            0 | 1 => {
                let n = usize::from(inp.byte());
                let chunk = inp.bytes(n).to_vec();
                if let Err(e) = state.handle_read(&chunk, now) {
                    check_read_error(&e);
                    break true;
                }
            }
            // Raw bytes written straight into the read buffer.
            2 => {
                let n = usize::from(inp.byte());
                let chunk = inp.bytes(n).to_vec();
                state.read_buffer().extend_from_slice(&chunk);
                if let Err(e) = state.handle_buffered(chunk.len(), now) {
                    check_read_error(&e);
                    break true;
                }
            }
            // A well-formed packet from the peer, possibly split in two reads.
            3 | 4 => {
                let kind = inp.byte();
                let packet = match kind % 8 {
                    0 => Packet::Ping,
                    1 => Packet::Pong,
                    _ => {
                        let channel = if kind & 0x80 != 0 {
                            ChannelId(inp.byte())
                        } else {
                            ids[usize::from(inp.byte()) % ids.len()]
                        };
                        let len = usize::from(inp.byte()) * 4;
                        Packet::Msg(PacketMsg {
                            channel,
                            eof: kind & 0x40 == 0,
                            data: Bytes::from(vec![kind; len.min(max_payload + 1)]),
                        })
                    }
                };
                // A ping counts only if it starts at a packet boundary (raw bytes before it
                // may have left a partial packet that swallows it).
                if matches!(packet, Packet::Ping) && state.read_buffer().is_empty() {
                    pings_in += 1;
                }
                let mut wire = BytesMut::new();
                packet.encode(&mut wire);
                let cut = usize::from(inp.byte()) % (wire.len() + 1);
                let r = state
                    .handle_read(&wire[..cut], now)
                    .and_then(|()| state.handle_read(&wire[cut..], now));
                if let Err(e) = r {
                    check_read_error(&e);
                    break true;
                }
            }
            // Time passes.
            5 => {
                let ms = u64::from(inp.u16());
                now += Duration::from_millis(ms);
                match state.handle_timeout(now) {
                    Ok(()) => {}
                    Err(Error::PongTimeout) => break true,
                    Err(e) => panic!("untyped timeout error: {e:?}"),
                }
            }
            // A send on a channel (registered or not).
            6 | 7 => {
                let sel = inp.byte();
                let channel = if sel & 0x80 != 0 {
                    ChannelId(inp.byte())
                } else {
                    ids[usize::from(sel) % ids.len()]
                };
                // At most 64 packets per message: long enough to interleave channels, short enough
                // that an input stays far below the 1 s timeout even on a starved machine.
                let len = usize::from(inp.u16()) % (max_payload * 64).min(4096);
                let fill = inp.byte();
                let message = Bytes::from(vec![fill; len]);
                let index = ids.iter().position(|&c| c == channel);
                if external {
                    let Some(i) = index else { continue };
                    if queues.try_send(i, message.clone()).is_ok() {
                        peer.expected[i].push_back(message);
                    }
                } else {
                    let could = state.can_send(channel);
                    match state.send(channel, message.clone()) {
                        Ok(()) => {
                            assert!(could);
                            peer.expected[index.expect("accepted an unknown channel")]
                                .push_back(message);
                        }
                        Err(TrySendError::Full) => assert!(!could && index.is_some()),
                        Err(TrySendError::UnknownChannel(c)) => {
                            assert!(index.is_none() && c == channel && !could);
                        }
                        Err(e) => panic!("unexpected send error: {e:?}"),
                    }
                }
            }
            // The previous write is done: transmit.
            8 | 9 => {
                let r = if external {
                    state.poll_transmit_from(now, &mut out, &mut queues)
                } else {
                    state.poll_transmit(now, &mut out)
                };
                if let Some(n) = r {
                    assert_eq!(n, out.len());
                    assert!(
                        n <= config.write_batch_size.get() + max_packet + 16,
                        "transmit of {n} bytes"
                    );
                    peer.receive(&out);
                    out.clear();
                }
            }
            // The consumer takes events; the driver decodes what it held back.
            10 => {
                drain(&mut state);
                if let Err(e) = state.decode_buffered() {
                    check_read_error(&e);
                    break true;
                }
            }
            // Queries, read pauses and the deadline.
            _ => {
                let q = inp.byte();
                match q % 4 {
                    0 => {
                        paused = !paused;
                        state.set_read_paused(paused, now);
                    }
                    1 => {
                        let _ = state.read_ready(now);
                        let t = state.poll_timeout().expect("always a deadline");
                        let w = state
                            .poll_timeout_while_writing()
                            .expect("always a deadline");
                        assert!(t <= w);
                    }
                    2 => {
                        let s = state.status(now);
                        let _ = format!("{s:?}");
                    }
                    _ => {
                        let idle = if external {
                            state.is_send_idle_from(&mut queues)
                        } else {
                            state.is_send_idle()
                        };
                        if idle {
                            assert!(peer.expected.iter().all(VecDeque::is_empty));
                        }
                    }
                }
            }
        }
        // Decoding leaves at most one partial packet behind, unless the event limit held it.
        if event_limit.is_none() {
            assert!(
                state.read_buffer().len() < max_packet + 16,
                "read buffer holds {} bytes",
                state.read_buffer().len()
            );
            drain(&mut state);
        }
    };
    if failed {
        return;
    }
    // Every event drained, the rest decoded (the stream may end inside a packet).
    loop {
        if drain(&mut state) == 0 {
            break;
        }
        if let Err(e) = state.decode_buffered() {
            check_read_error(&e);
            return;
        }
    }
    match state.handle_eof() {
        Error::UnexpectedEof | Error::ConnectionClosed => {}
        e => panic!("untyped end of stream: {e:?}"),
    }
    // Time runs freely (no more timers): everything queued goes out, whole and in order.
    for _ in 0..1_000_000 {
        let idle = if external {
            state.is_send_idle_from(&mut queues)
        } else {
            state.is_send_idle()
        };
        if idle {
            break;
        }
        now += Duration::from_secs(3600);
        let r = if external {
            state.poll_transmit_from(now, &mut out, &mut queues)
        } else {
            state.poll_transmit(now, &mut out)
        };
        if r.is_some() {
            peer.receive(&out);
            out.clear();
        }
    }
    assert!(
        peer.expected.iter().all(VecDeque::is_empty),
        "queued messages never sent: {state:#?}"
    );
    assert!(peer.partial.iter().all(Vec::is_empty));
    // A ping we read is answered (pongs are never dropped; several pings may share one).
    if pings_in > 0 {
        assert!(peer.pongs >= 1, "{pings_in} pings, no pong");
    }
});
