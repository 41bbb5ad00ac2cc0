//! Where the payload is copied between the stream and the consumer, and between the sender
//! and the stream (the hop-by-hop walk is in the repository's `ARCHITECTURE.md`): the core
//! takes packets off the receive buffer in place and delivers a message of one packet as a
//! slice of it, marked borrowed (the tokio `Inbox` copies a small one out as it hands it over:
//! `inbox::tests`); it hands a message's bytes to the send buffer as they are, in one piece,
//! after the packet header. (That the secret connection opens frames where they were read is
//! `mukan-secret-conn`'s `payload_is_opened_where_it_was_read`.)
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::num::{NonZeroU32, NonZeroUsize};
use std::ops::Range;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mukan_mconn::{Config, Deliver, MConnState, Packet, PacketMsg, SendBuf};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, InboxItem};

const CH: ChannelId = ChannelId(0x30);

fn state(max_payload: usize) -> MConnState {
    let d = ChannelDescriptor::new(CH, NonZeroU32::MIN)
        .with_recv_message_capacity(NonZeroUsize::new(1 << 20).unwrap());
    let config = Config::default()
        .with_rates(None, None)
        .with_max_packet_msg_payload_size(NonZeroUsize::new(max_payload).unwrap());
    MConnState::new(&[d], config, Instant::now()).unwrap()
}

fn range(b: &[u8]) -> Range<usize> {
    let start = b.as_ptr() as usize;
    start..start + b.len()
}

fn inside(inner: &[u8], outer: &Range<usize>) -> bool {
    let r = range(inner);
    outer.start <= r.start && r.end <= outer.end
}

/// What the core delivers, with the borrowed flag.
#[derive(Default)]
struct Delivered(Vec<(Bytes, bool)>);

impl Deliver for Delivered {
    fn deliver(&mut self, item: InboxItem, borrowed: bool) {
        match item {
            InboxItem::Received { message, .. } => self.0.push((message, borrowed)),
            other => panic!("{other:?}"),
        }
    }
}

/// Receives `messages` (chunked into packets of `max_payload`) from one buffer; returns the
/// buffer's address range and what was delivered.
fn receive(
    s: &mut MConnState,
    messages: &[Bytes],
    max_payload: usize,
) -> (Range<usize>, Delivered) {
    let mut buf = BytesMut::new();
    for m in messages {
        let chunks: Vec<&[u8]> = m.chunks(max_payload).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            Packet::Msg(PacketMsg {
                channel: CH,
                eof: i + 1 == chunks.len(),
                data: Bytes::copy_from_slice(chunk),
            })
            .encode(&mut buf);
        }
    }
    let whole = range(&buf);
    let mut out = Delivered::default();
    let n = buf.len();
    s.handle_received(&mut buf, n, Instant::now(), &mut out)
        .unwrap();
    assert!(buf.is_empty());
    (whole, out)
}

#[test]
fn a_message_of_one_packet_is_delivered_in_place() {
    let mut s = state(1024);
    let sent: Vec<Bytes> = (0..4u8).map(|i| Bytes::from(vec![i; 1024])).collect();
    let (buf, got) = receive(&mut s, &sent, 1024);
    assert_eq!(got.0.len(), 4);
    for ((m, borrowed), want) in got.0.iter().zip(&sent) {
        assert_eq!(m, want);
        // No copy in the core: a slice of the receive buffer, marked so (the consumer's side
        // copies it out once before anybody can keep it).
        assert!(*borrowed && inside(m, &buf));
    }
}

#[test]
fn a_message_of_several_packets_has_its_own_allocation() {
    let mut s = state(1024);
    let sent = vec![Bytes::from(vec![7u8; 3000])];
    let (buf, got) = receive(&mut s, &sent, 1024);
    let (m, borrowed) = &got.0[0];
    assert_eq!(m, &sent[0]);
    assert!(
        !borrowed && !inside(m, &buf),
        "reassembled: its own allocation"
    );
}

#[test]
fn the_simple_api_copies_a_small_message_out() {
    // `handle_read` keeps its own buffer: a small message is copied out of it, a large one
    // (64 KiB packets, not CometBFT's default) is handed over as a slice.
    let mut s = state(64 * 1024);
    let mut wire = BytesMut::new();
    for len in [1024usize, 40_000] {
        Packet::Msg(PacketMsg {
            channel: CH,
            eof: true,
            data: Bytes::from(vec![1u8; len]),
        })
        .encode(&mut wire);
    }
    s.handle_read(&wire, Instant::now()).unwrap();
    let mut got = Vec::new();
    while let Some(InboxItem::Received { message, .. }) = s.poll_event() {
        got.push(message);
    }
    assert_eq!(
        got.iter().map(Bytes::len).collect::<Vec<_>>(),
        [1024, 40_000]
    );
}

/// Records the address ranges of the slices it is given.
#[derive(Default)]
struct Recorder {
    puts: Vec<Range<usize>>,
    bytes: Vec<u8>,
}

impl SendBuf for Recorder {
    fn put_slice(&mut self, data: &[u8]) {
        self.puts.push(range(data));
        self.bytes.extend_from_slice(data);
    }
}

#[test]
fn a_message_goes_to_the_send_buffer_as_it_is() {
    let mut s = state(1024);
    let message = Bytes::from(vec![9u8; 1000]);
    s.send(CH, message.clone()).unwrap();
    let mut out = Recorder::default();
    assert!(s.poll_transmit(Instant::now(), &mut out));
    // The header, then the message's own bytes: the send buffer's copy is the only one.
    assert_eq!(out.puts.len(), 2, "{:?}", out.puts);
    assert_eq!(out.puts[1], range(&message));
    assert_eq!(&out.bytes[out.bytes.len() - 1000..], &message[..]);
}
