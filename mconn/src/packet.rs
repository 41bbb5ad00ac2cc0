//! The packet codec: `uvarint(len) || tendermint.p2p.Packet` (Go `p2p/conn/connection.go`,
//! written by `libs/protoio`); the varint and the message are prost's.

use bytes::{Buf, Bytes, BytesMut};
use mukan_reactor_api::ChannelId;
use prost::Message as _;

use crate::{DecodeError, Error};

/// One unit on the MConnection stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// Keep-alive request (`02 0a 00` on the wire).
    Ping,
    /// Keep-alive answer (`02 12 00` on the wire).
    Pong,
    /// A chunk of a message.
    Msg(PacketMsg),
}

/// A chunk of a message on a channel (`tendermint.p2p.PacketMsg`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketMsg {
    /// The channel.
    pub channel: ChannelId,
    /// Whether this chunk ends the message.
    pub eof: bool,
    /// The chunk (at most `max_packet_msg_payload_size` bytes).
    pub data: Bytes,
}

/// Where encoded packets go: a plain byte buffer, or (in the tokio driver) the frames of a
/// secret connection, sealed as they fill. The core writes each packet as its header and then
/// the message bytes, so that those bytes are copied once, straight into the frame.
pub trait SendBuf {
    /// Appends `data`.
    fn put_slice(&mut self, data: &[u8]);

    /// Room for about `additional` more bytes is wanted (a batch is under way): a hint, so
    /// that the buffer grows once rather than by doublings, each copying what it holds.
    fn reserve(&mut self, additional: usize) {
        let _ = additional;
    }
}

impl SendBuf for BytesMut {
    fn put_slice(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }

    fn reserve(&mut self, additional: usize) {
        Self::reserve(self, additional);
    }
}

impl SendBuf for Vec<u8> {
    fn put_slice(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }

    fn reserve(&mut self, additional: usize) {
        Self::reserve(self, additional);
    }
}

/// The protobuf keys of `tendermint.p2p.Packet` (oneof `ping` = 1, `pong` = 2, `msg` = 3, each
/// length-delimited) and `PacketMsg` (`channel_id` = 1 varint, `eof` = 2 varint, `data` = 3
/// length-delimited).
const KEY_PACKET_MSG: u8 = 0x1a;
const KEY_CHANNEL_ID: u8 = 0x08;
const KEY_EOF: u8 = 0x10;
const KEY_DATA: u8 = 0x1a;
/// Longest `PacketMsg` header: three 10-byte varints, two keys, `channel_id` and `eof`.
const HEADER_MAX: usize = 48;
/// `02 0a 00`: `uvarint(2) || Packet { ping: {} }`.
const PING_WIRE: [u8; 3] = [0x02, 0x0a, 0x00];
/// `02 12 00`: `uvarint(2) || Packet { pong: {} }`.
const PONG_WIRE: [u8; 3] = [0x02, 0x12, 0x00];

impl Packet {
    /// Appends `uvarint(len) || body` to `buf`, byte for byte as Go's `protoio` writer does.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len() + 10);
        self.encode_to(buf);
    }

    /// Writes `uvarint(len) || body` to `out` (what [`Packet::encode`] appends) and returns
    /// its length. A message chunk goes out as its header, then its data in one piece.
    ///
    /// The bytes are those of the prost encoding of `tendermint.p2p.Packet` (fields in tag
    /// order, proto3 defaults omitted), which `header_is_prost_encoding` checks over every
    /// channel, both `eof` values and data lengths across the varint boundaries.
    pub fn encode_to(&self, out: &mut (impl SendBuf + ?Sized)) -> usize {
        let msg = match self {
            Self::Ping => {
                out.put_slice(&PING_WIRE);
                return PING_WIRE.len();
            }
            Self::Pong => {
                out.put_slice(&PONG_WIRE);
                return PONG_WIRE.len();
            }
            Self::Msg(msg) => msg,
        };
        let mut header = [0u8; HEADER_MAX];
        let n = msg_header(msg.channel, msg.eof, msg.data.len(), &mut header);
        out.put_slice(header.get(..n).unwrap_or_default());
        out.put_slice(&msg.data);
        n + msg.data.len()
    }

    /// Length of the body (without the length prefix).
    pub fn encoded_len(&self) -> usize {
        self.to_proto().encoded_len()
    }

    /// Decodes one packet body (without the length prefix).
    ///
    /// # Errors
    /// [`DecodeError::Protobuf`], [`DecodeError::EmptyPacket`] or
    /// [`DecodeError::ChannelOutOfRange`].
    pub fn decode_body(body: Bytes) -> Result<Self, DecodeError> {
        let proto = PacketProto::decode(body).map_err(DecodeError::Protobuf)?;
        match proto.sum {
            None => Err(DecodeError::EmptyPacket),
            Some(Sum::Ping(_)) => Ok(Self::Ping),
            Some(Sum::Pong(_)) => Ok(Self::Pong),
            Some(Sum::Msg(m)) => {
                let Ok(id) = u8::try_from(m.channel_id) else {
                    return Err(DecodeError::ChannelOutOfRange(m.channel_id));
                };
                Ok(Self::Msg(PacketMsg {
                    channel: ChannelId(id),
                    eof: m.eof,
                    data: m.data,
                }))
            }
        }
    }

    fn to_proto(&self) -> PacketProto {
        let sum = match self {
            Self::Ping => Sum::Ping(Empty {}),
            Self::Pong => Sum::Pong(Empty {}),
            Self::Msg(m) => Sum::Msg(PacketMsgProto {
                channel_id: i32::from(m.channel.0),
                eof: m.eof,
                data: m.data.clone(),
            }),
        };
        PacketProto { sum: Some(sum) }
    }
}

/// Writes the bytes of a `PacketMsg` packet that come before its data into `out`: the packet's
/// length prefix, the `msg` key and length, `channel_id` and `eof` (when not their defaults),
/// and the `data` key and length (when there is data). Returns how many bytes it wrote.
fn msg_header(channel: ChannelId, eof: bool, data_len: usize, out: &mut [u8; HEADER_MAX]) -> usize {
    use prost::encoding::{encode_varint, encoded_len_varint};
    let channel_id = u64::from(channel.0);
    let data_len64 = data_len as u64;
    let mut inner = 0usize;
    if channel_id != 0 {
        inner += 1 + encoded_len_varint(channel_id);
    }
    if eof {
        inner += 2;
    }
    if data_len != 0 {
        inner += 1 + encoded_len_varint(data_len64) + data_len;
    }
    let body = 1 + encoded_len_varint(inner as u64) + inner;
    let mut w: &mut [u8] = out.as_mut_slice();
    encode_varint(body as u64, &mut w);
    bytes::BufMut::put_u8(&mut w, KEY_PACKET_MSG);
    encode_varint(inner as u64, &mut w);
    if channel_id != 0 {
        bytes::BufMut::put_u8(&mut w, KEY_CHANNEL_ID);
        encode_varint(channel_id, &mut w);
    }
    if eof {
        bytes::BufMut::put_slice(&mut w, &[KEY_EOF, 1]);
    }
    if data_len != 0 {
        bytes::BufMut::put_u8(&mut w, KEY_DATA);
        encode_varint(data_len64, &mut w);
    }
    let left = w.len();
    out.len() - left
}

/// Go `maxPacketMsgSize`: the body length of a `PacketMsg` on channel 1 with `eof` and a full
/// payload (1034 for a 1024-byte payload). Go uses it as the receive limit of a packet body
/// on every channel, so a sender must keep every packet within it (see [`chunk_size`]).
pub fn max_packet_size(max_payload: usize) -> usize {
    max_packet_size_on(ChannelId(1), max_payload)
}

/// The body length of a `PacketMsg` on `channel` with `eof` and a full payload. A channel ID
/// of 0x80 or more takes two varint bytes, one more than Go's limit allows for.
pub fn max_packet_size_on(channel: ChannelId, max_payload: usize) -> usize {
    Packet::Msg(PacketMsg {
        channel,
        eof: true,
        data: Bytes::from(vec![0u8; max_payload]),
    })
    .encoded_len()
}

/// The payload of the chunks we send on `channel`: `max_payload`, less the extra varint byte
/// of a channel ID of 0x80 or more, so that every packet we send fits the receive limit of a
/// Go peer ([`max_packet_size`], computed on channel 1). Never 0.
pub fn chunk_size(channel: ChannelId, max_payload: usize) -> usize {
    if channel.0 >= 0x80 {
        max_payload.saturating_sub(1).max(1)
    } else {
        max_payload
    }
}

/// Splits a byte stream into packets. Never buffers more than one packet, and checks the
/// announced length against the limit before waiting for (or reserving) the body.
#[derive(Debug)]
pub struct PacketDecoder {
    max_size: usize,
}

impl PacketDecoder {
    /// A decoder accepting packet bodies of at most `max_size` bytes.
    pub fn new(max_size: usize) -> Self {
        Self { max_size }
    }

    /// Takes one packet off the front of `buf`, or returns `Ok(None)` if `buf` does not hold a
    /// whole packet yet.
    ///
    /// # Errors
    /// [`Error::PacketTooLarge`] or [`Error::Decode`]; the stream cannot be resumed after.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, Error> {
        let Some((len, prefix)) = read_uvarint(buf)? else {
            return Ok(None);
        };
        if len > self.max_size as u64 {
            return Err(Error::PacketTooLarge {
                len,
                max: self.max_size,
            });
        }
        // `len <= max_size`, so it fits in usize.
        let len = len as usize;
        if buf.len() < prefix + len {
            // The caller owns the buffer and its growth (a secret connection's frames are
            // opened into it): nothing is reserved here.
            return Ok(None);
        }
        buf.advance(prefix);
        let body = buf.split_to(len).freeze();
        Ok(Some(Packet::decode_body(body)?))
    }
}

/// Reads a Go `binary.Uvarint` from the front of `buf` without consuming it: the value and the
/// prefix length, `None` if incomplete. prost decodes it once its last byte is there.
fn read_uvarint(buf: &[u8]) -> Result<Option<(u64, usize)>, DecodeError> {
    /// Longest valid uvarint (Go `binary.MaxVarintLen64`).
    const MAX_VARINT_LEN: usize = 10;
    let Some(end) = buf.iter().take(MAX_VARINT_LEN).position(|b| b & 0x80 == 0) else {
        return if buf.len() >= MAX_VARINT_LEN {
            Err(DecodeError::Varint)
        } else {
            Ok(None)
        };
    };
    let mut prefix = buf.get(..=end).ok_or(DecodeError::Varint)?;
    let value = prost::encoding::decode_varint(&mut prefix).map_err(|_| DecodeError::Varint)?;
    Ok(Some((value, end + 1)))
}

#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
struct PacketMsgProto {
    #[prost(int32, tag = "1")]
    channel_id: i32,
    #[prost(bool, tag = "2")]
    eof: bool,
    #[prost(bytes = "bytes", tag = "3")]
    data: Bytes,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Sum {
    #[prost(message, tag = "1")]
    Ping(Empty),
    #[prost(message, tag = "2")]
    Pong(Empty),
    #[prost(message, tag = "3")]
    Msg(PacketMsgProto),
}

#[derive(Clone, PartialEq, prost::Message)]
struct PacketProto {
    #[prost(oneof = "Sum", tags = "1, 2, 3")]
    sum: Option<Sum>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(wire: &[u8]) -> Packet {
        let mut buf = BytesMut::from(wire);
        let packet = PacketDecoder::new(1034).decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        let mut out = BytesMut::new();
        packet.encode(&mut out);
        assert_eq!(&out[..], wire, "re-encoding differs");
        packet
    }

    /// The hand-written header equals prost's encoding of the same packet, over every
    /// channel, both `eof` values, and data lengths around the varint boundaries.
    #[test]
    fn header_is_prost_encoding() {
        for channel in 0..=255u8 {
            for eof in [false, true] {
                for len in [0usize, 1, 2, 127, 128, 1023, 1024, 16_383, 16_384, 70_000] {
                    let data = Bytes::from(vec![0xab; len]);
                    let proto = PacketProto {
                        sum: Some(Sum::Msg(PacketMsgProto {
                            channel_id: i32::from(channel),
                            eof,
                            data: data.clone(),
                        })),
                    };
                    let mut want = BytesMut::new();
                    proto.encode_length_delimited(&mut want).unwrap();
                    let packet = Packet::Msg(PacketMsg {
                        channel: ChannelId(channel),
                        eof,
                        data,
                    });
                    let mut got = Vec::new();
                    let n = packet.encode_to(&mut got);
                    assert_eq!(n, got.len());
                    assert_eq!(got, &want[..], "channel {channel} eof {eof} len {len}");
                    assert_eq!(packet.encoded_len() + encoded_len_prefix(&want), want.len());
                }
            }
        }
    }

    fn encoded_len_prefix(wire: &[u8]) -> usize {
        read_uvarint(wire).unwrap().unwrap().1
    }

    #[test]
    fn golden_ping_pong() {
        assert_eq!(roundtrip(&[0x02, 0x0a, 0x00]), Packet::Ping);
        assert_eq!(roundtrip(&[0x02, 0x12, 0x00]), Packet::Pong);
    }

    #[test]
    fn golden_pex_request_on_channel_0() {
        let p = roundtrip(&[0x08, 0x1a, 0x06, 0x10, 0x01, 0x1a, 0x02, 0x0a, 0x00]);
        assert_eq!(
            p,
            Packet::Msg(PacketMsg {
                channel: ChannelId(0),
                eof: true,
                data: Bytes::from_static(&[0x0a, 0x00])
            })
        );
    }

    #[test]
    fn golden_full_payload_on_blocksync() {
        // body = 1a 87 08 | 08 40 | 10 01 | 1a 80 08 | 1024 bytes  = 1034 bytes
        let mut wire = vec![
            0x8a, 0x08, 0x1a, 0x87, 0x08, 0x08, 0x40, 0x10, 0x01, 0x1a, 0x80, 0x08,
        ];
        wire.extend((0..1024u32).map(|i| i as u8));
        assert_eq!(wire.len(), 2 + 1034);
        let Packet::Msg(m) = roundtrip(&wire) else {
            panic!("not a msg")
        };
        assert_eq!(
            (m.channel, m.eof, m.data.len()),
            (ChannelId(0x40), true, 1024)
        );
        assert_eq!(max_packet_size(1024), 1034);
    }

    #[test]
    fn partial_input_waits() {
        let wire = [0x08, 0x1a, 0x06, 0x10, 0x01, 0x1a, 0x02, 0x0a, 0x00];
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert!(
                PacketDecoder::new(1034).decode(&mut buf).unwrap().is_none(),
                "cut {cut}"
            );
            assert_eq!(buf.len(), cut, "nothing consumed");
        }
    }

    #[test]
    fn oversize_is_rejected_before_the_body_arrives() {
        let mut buf = BytesMut::new();
        prost::encoding::encode_varint(1035, &mut buf);
        assert!(matches!(
            PacketDecoder::new(1034).decode(&mut buf),
            Err(Error::PacketTooLarge {
                len: 1035,
                max: 1034
            })
        ));
        // A 2^40 prefix: rejected, and nothing reserved for it.
        let mut buf = BytesMut::new();
        prost::encoding::encode_varint(1 << 40, &mut buf);
        let cap = buf.capacity();
        assert!(matches!(
            PacketDecoder::new(1034).decode(&mut buf),
            Err(Error::PacketTooLarge {
                len: 1_099_511_627_776,
                ..
            })
        ));
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn negative_vectors() {
        let dec = |wire: &[u8]| PacketDecoder::new(1034).decode(&mut BytesMut::from(wire));
        // Garbage varint: 10 continuation bytes.
        assert!(matches!(
            dec(&[0xff; 10]),
            Err(Error::Decode(DecodeError::Varint))
        ));
        // 10th byte > 1 overflows 64 bits.
        let mut v = [0x80u8; 10];
        v[9] = 0x02;
        assert!(matches!(dec(&v), Err(Error::Decode(DecodeError::Varint))));
        // No oneof set.
        assert!(matches!(
            dec(&[0x00]),
            Err(Error::Decode(DecodeError::EmptyPacket))
        ));
        // C1: 01 02 03 04 05 — body `02` is a truncated field key.
        assert!(matches!(
            dec(&[0x01, 0x02, 0x03, 0x04, 0x05]),
            Err(Error::Decode(DecodeError::Protobuf(_)))
        ));
        // C4: channel ids 256, 1025, -1.
        for ch in [256i32, 1025, -1] {
            let proto = PacketProto {
                sum: Some(Sum::Msg(PacketMsgProto {
                    channel_id: ch,
                    eof: true,
                    data: Bytes::new(),
                })),
            };
            let mut buf = BytesMut::new();
            proto.encode_length_delimited(&mut buf).unwrap();
            assert!(
                matches!(dec(&buf), Err(Error::Decode(DecodeError::ChannelOutOfRange(c))) if c == ch)
            );
        }
    }
}
