//! Where the payload is copied between the stream and the consumer, and between the sender
//! and the stream (the hop-by-hop walk is in the repository's `ARCHITECTURE.md`): the core
//! takes packets off the receive buffer in place and copies a small message out once; it
//! hands a message's bytes to the send buffer as they are, in one piece, after the packet
//! header. (That the secret connection opens frames where they were read and seals them where
//! they were written is `mukan-secret-conn`'s `payload_is_opened_where_it_was_read`.)
#![allow(clippy::unwrap_used, reason = "test helpers may panic")]

use std::collections::VecDeque;
use std::num::{NonZeroU32, NonZeroUsize};
use std::ops::Range;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use mukan_mconn::{Config, MConnState, Packet, PacketMsg, SendBuf};
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

/// Receives `messages` (each one packet) from one buffer; returns the buffer's address range
/// and what was delivered.
fn receive(s: &mut MConnState, messages: &[Bytes]) -> (Range<usize>, Vec<Bytes>) {
    let mut buf = BytesMut::new();
    for m in messages {
        Packet::Msg(PacketMsg {
            channel: CH,
            eof: true,
            data: m.clone(),
        })
        .encode(&mut buf);
    }
    let whole = range(&buf);
    let mut out = VecDeque::new();
    let n = buf.len();
    s.handle_received(&mut buf, n, Instant::now(), &mut out)
        .unwrap();
    assert!(buf.is_empty());
    let got = out
        .into_iter()
        .map(|item| match item {
            InboxItem::Received { message, .. } => message,
            other => panic!("{other:?}"),
        })
        .collect();
    (whole, got)
}

#[test]
fn a_1_kib_message_is_copied_once_out_of_the_receive_buffer() {
    let mut s = state(1024);
    let sent: Vec<Bytes> = (0..4u8).map(|i| Bytes::from(vec![i; 1024])).collect();
    let (buf, got) = receive(&mut s, &sent);
    assert_eq!(got, sent);
    for m in &got {
        // Its own allocation: one copy, so that a kept message pins 1 KiB, not the buffer.
        assert!(
            !inside(m, &buf),
            "a small message must not pin the receive buffer"
        );
    }
}

#[test]
fn a_large_single_packet_message_is_not_copied_at_all() {
    // With 64 KiB packets (not CometBFT's default), a message of one packet is a slice of the
    // receive buffer: no user-space copy between the stream and the consumer.
    let mut s = state(64 * 1024);
    let sent = vec![Bytes::from(vec![7u8; 40_000])];
    let (buf, got) = receive(&mut s, &sent);
    assert_eq!(got, sent);
    assert!(inside(&got[0], &buf));
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
