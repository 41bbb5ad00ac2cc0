//! The whole sans-IO `MConnState` driven by an arbitrary sequence of operations on a virtual
//! clock: inbound bytes (raw or well-formed packets) in a driver-kept buffer
//! (`handle_received`), time advances and timeouts, sends on its own queues or on caller-kept
//! queues (`poll_transmit_from`), transmits, a consumer that keeps or releases the receive
//! leases (so messages are held for budget room), a graceful stop, status queries and the end
//! of the stream.
//!
//! Invariants:
//! - no panic; every `Err` is the typed error the call documents (the peer's protocol errors
//!   from reads; `PongTimeout`, `SlowReceiver`, `FlushTimeout` from timers), and the state is
//!   not used after one;
//! - received messages are on a registered channel and within its receive capacity, and the
//!   leases held never exceed a channel's budget (a message larger than the whole budget
//!   passes alone);
//! - buffers stay bounded: what stays in the read buffer after decoding is less than one
//!   packet (unless a message is held for room), one flush is at most one write batch plus
//!   one packet plus the control packets;
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
    Config, ConfigError, Error, MConnState, Packet, PacketDecoder, PacketMsg, SendQueues,
    max_packet_size,
};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, InboxItem, RecvLease, TrySendError};

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
    config.recv_stall_timeout = Duration::from_millis(u64::from(inp.u16()));
    config.flush_timeout = Duration::from_millis(u64::from(inp.u16()));
    // The consumer keeps the leases of the messages it takes until told to release them.
    let keep_leases = flags & 0x10 != 0;
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
    // The driver's receive buffer and the inbox the state delivers into.
    let mut rbuf = BytesMut::new();
    let mut inbox: VecDeque<InboxItem> = VecDeque::new();
    let mut kept: Vec<RecvLease> = Vec::new();
    let mut pings_in = 0usize;

    // Takes the delivered messages, checking them and keeping or dropping their leases;
    // returns how many there were.
    let drain = |state: &MConnState, inbox: &mut VecDeque<InboxItem>, kept: &mut Vec<RecvLease>| {
        let mut n = 0usize;
        while let Some(item) = inbox.pop_front() {
            n += 1;
            match item {
                InboxItem::Received {
                    channel,
                    message,
                    lease,
                } => {
                    let d = channels
                        .iter()
                        .find(|d| d.id == channel)
                        .expect("message on an unregistered channel");
                    assert!(message.len() <= d.recv_message_capacity.get());
                    assert_eq!(lease.channel(), Some(channel));
                    if keep_leases {
                        kept.push(lease);
                    }
                }
                other => panic!("the state delivered a driver item: {other:?}"),
            }
        }
        for b in state.recv_budgets() {
            let one = kept
                .iter()
                .filter(|l| l.channel() == Some(b.channel()))
                .map(RecvLease::bytes)
                .max()
                .unwrap_or(0);
            assert!(
                b.used() <= b.capacity().max(one),
                "budget of {} overdrawn: {b:?}",
                b.channel()
            );
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
            0..=2 => {
                let n = usize::from(inp.byte());
                let chunk = inp.bytes(n).to_vec();
                rbuf.extend_from_slice(&chunk);
                if let Err(e) = state.handle_received(&mut rbuf, chunk.len(), now, &mut inbox) {
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
                if matches!(packet, Packet::Ping) && rbuf.is_empty() && state.held().is_none() {
                    pings_in += 1;
                }
                let mut wire = BytesMut::new();
                packet.encode(&mut wire);
                let cut = usize::from(inp.byte()) % (wire.len() + 1);
                rbuf.extend_from_slice(&wire[..cut]);
                let r = state.handle_received(&mut rbuf, cut, now, &mut inbox);
                let r = r.and_then(|()| {
                    rbuf.extend_from_slice(&wire[cut..]);
                    state.handle_received(&mut rbuf, wire.len() - cut, now, &mut inbox)
                });
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
                    Err(Error::SlowReceiver { channel }) => {
                        assert!(state.held().is_some_and(|(b, _)| b.channel() == channel));
                        break true;
                    }
                    Err(Error::FlushTimeout) => {
                        assert!(state.is_closing());
                        break true;
                    }
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
                let flush = if external {
                    state.poll_transmit_from(now, &mut out, &mut queues)
                } else {
                    state.poll_transmit(now, &mut out)
                };
                let n = out.len();
                assert!(
                    n <= config.write_batch_size.get() + max_packet + 16,
                    "transmit of {n} bytes"
                );
                if flush {
                    peer.receive(&out);
                    out.clear();
                }
            }
            // The consumer takes what was delivered; the driver retries a held message.
            10 => {
                drain(&state, &mut inbox, &mut kept);
                if let Err(e) = state.handle_received(&mut rbuf, 0, now, &mut inbox) {
                    check_read_error(&e);
                    break true;
                }
            }
            // Queries, read pauses and the deadline.
            _ => {
                let q = inp.byte();
                match q % 4 {
                    0 => {
                        // The consumer releases its leases; or the graceful stop starts.
                        if q & 0x80 != 0 {
                            state.close(now);
                            assert!(state.is_closing());
                        } else {
                            kept.clear();
                        }
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
        // Decoding leaves at most one partial packet behind, unless a message is held.
        if state.held().is_none() {
            assert!(
                rbuf.len() < max_packet + 16,
                "read buffer holds {} bytes",
                rbuf.len()
            );
        } else {
            assert!(!state.read_ready(now), "reading goes on while a message is held");
        }
        if !keep_leases {
            drain(&state, &mut inbox, &mut kept);
        }
    };
    if failed {
        return;
    }
    // Every message taken and its lease released, the rest decoded (the stream may end
    // inside a packet).
    loop {
        let n = drain(&state, &mut inbox, &mut kept);
        kept.clear();
        if let Err(e) = state.handle_received(&mut rbuf, 0, now, &mut inbox) {
            check_read_error(&e);
            return;
        }
        if n == 0 && inbox.is_empty() {
            break;
        }
    }
    assert!(state.held().is_none(), "a message stayed held with every lease released");
    match state.handle_eof(rbuf.len()) {
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
        let flush = if external {
            state.poll_transmit_from(now, &mut out, &mut queues)
        } else {
            state.poll_transmit(now, &mut out)
        };
        if flush {
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
