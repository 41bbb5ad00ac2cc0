//! The PEX messages on channel `0x00` (`tendermint.p2p.Message`: `PexRequest`, `PexAddrs`) and their
//! typed decoding.

use std::num::{NonZeroU32, NonZeroUsize};

use mukan_reactor_api::{
    ChannelDescriptor, ChannelId, NetAddress, NetAddressError, NetAddressProto,
};
use prost::Message as _;

/// The PEX channel.
pub const PEX_CHANNEL: ChannelId = ChannelId::PEX;

/// Largest PEX message accepted: 256 bytes per address × 250 addresses (Go `maxMsgSize`).
pub const MAX_MSG_SIZE: usize = 64_000;

/// The descriptor of the PEX channel: priority 1, send queue 10, receive message capacity
/// 64,000 bytes.
pub fn channel_descriptor() -> ChannelDescriptor {
    const ONE: NonZeroU32 = NonZeroU32::MIN;
    let ten = NonZeroUsize::new(10).unwrap_or(NonZeroUsize::MIN);
    let cap = NonZeroUsize::new(MAX_MSG_SIZE).unwrap_or(NonZeroUsize::MIN);
    ChannelDescriptor::new(PEX_CHANNEL, ONE)
        .with_send_queue_capacity(ten)
        .with_recv_message_capacity(cap)
}

/// `tendermint.p2p.PexRequest {}`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PexRequest {}

/// `tendermint.p2p.PexAddrs { repeated NetAddress addrs = 1; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PexAddrs {
    /// The addresses, in wire form.
    #[prost(message, repeated, tag = "1")]
    pub addrs: Vec<NetAddressProto>,
}

/// The `sum` oneof of `tendermint.p2p.Message`.
#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum Sum {
    /// Field 1.
    #[prost(message, tag = "1")]
    PexRequest(PexRequest),
    /// Field 2.
    #[prost(message, tag = "2")]
    PexAddrs(PexAddrs),
}

/// `tendermint.p2p.Message`, the envelope of every PEX message.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Message {
    /// The message; `None` when no known field was set.
    #[prost(oneof = "Sum", tags = "1, 2")]
    pub sum: Option<Sum>,
}

/// A decoded, validated PEX message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PexMessage {
    /// Asks the peer for addresses.
    Request,
    /// Addresses, each with a parsed ID, an IP literal and a port in `1..=65535`.
    Addrs(Vec<NetAddress>),
}

/// Why bytes on the PEX channel are not a [`PexMessage`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Larger than [`MAX_MSG_SIZE`].
    #[error("PEX message of {0} bytes exceeds {MAX_MSG_SIZE}")]
    TooLarge(usize),
    /// Not a `tendermint.p2p.Message`.
    #[error("malformed PEX message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// No known field of the oneof was set (Go: unwrap fails).
    #[error("PEX message with no content")]
    Empty,
    /// An address of a `PexAddrs` is unusable (Go `NetAddressesFromProto` fails; stricter
    /// than Go for the ID and port 0).
    #[error("invalid address #{index} in PexAddrs: {reason}")]
    InvalidAddress {
        /// Its position in the list.
        index: usize,
        /// Why.
        reason: AddressError,
    },
}

impl DecodeError {
    /// Whether the error is an invalid address, for which Go bans the sender.
    pub fn is_invalid_address(&self) -> bool {
        matches!(self, Self::InvalidAddress { .. })
    }
}

/// Why one wire address is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Bad ID, IP text or port ≥ 65536.
    #[error(transparent)]
    Parse(#[from] NetAddressError),
    /// Port 0 cannot be dialed.
    #[error("port 0")]
    PortZero,
}

impl PexMessage {
    /// Encodes the message (`tendermint.p2p.Message`).
    pub fn encode(&self) -> Vec<u8> {
        let sum = match self {
            Self::Request => Sum::PexRequest(PexRequest {}),
            Self::Addrs(addrs) => Sum::PexAddrs(PexAddrs {
                addrs: addrs.iter().map(addr_to_proto).collect(),
            }),
        };
        Message { sum: Some(sum) }.encode_to_vec()
    }

    /// Decodes and validates bytes received on the PEX channel.
    ///
    /// # Errors
    /// A [`DecodeError`]; no input panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MSG_SIZE {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        match Message::decode(bytes)?.sum {
            None => Err(DecodeError::Empty),
            Some(Sum::PexRequest(_)) => Ok(Self::Request),
            Some(Sum::PexAddrs(list)) => list
                .addrs
                .iter()
                .enumerate()
                .map(|(index, pb)| {
                    let addr = addr_from_proto(pb).map_err(|e| DecodeError::InvalidAddress {
                        index,
                        reason: e.into(),
                    })?;
                    if addr.port() == 0 {
                        return Err(DecodeError::InvalidAddress {
                            index,
                            reason: AddressError::PortZero,
                        });
                    }
                    Ok(addr)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Self::Addrs),
        }
    }
}

/// [`NetAddress::to_proto`], with the ID hex-encoded here (the hot path of large answers).
#[cfg_attr(
    not(test),
    expect(
        clippy::indexing_slicing,
        reason = "a nibble indexes a 16-entry table; chunks_exact(2) yields pairs; i < 20 for 40 bytes"
    )
)]
fn addr_to_proto(a: &NetAddress) -> NetAddressProto {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(40);
    for b in a.id().as_bytes() {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    NetAddressProto {
        id,
        ip: a.ip().to_string(),
        port: u32::from(a.port()),
    }
}

/// [`NetAddress::from_proto`], with a fast path for well-formed input; anything else goes to
/// `from_proto` for its exact error.
#[cfg_attr(
    not(test),
    expect(
        clippy::indexing_slicing,
        reason = "a nibble indexes a 16-entry table; chunks_exact(2) yields pairs; i < 20 for 40 bytes"
    )
)]
fn addr_from_proto(pb: &NetAddressProto) -> Result<NetAddress, NetAddressError> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let fast = (|| {
        let text = pb.id.as_bytes();
        if text.len() != 40 {
            return None;
        }
        let mut id = [0u8; 20];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            id[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        let ip = pb.ip.parse::<std::net::IpAddr>().ok()?;
        let port = u16::try_from(pb.port).ok()?;
        Some(NetAddress::new(mukan_reactor_api::NodeId(id), ip, port))
    })();
    match fast {
        Some(a) => Ok(a),
        None => NetAddress::from_proto(pb),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_paths_agree_with_the_contract_crate() {
        let cases = [
            ("34750f98bd59fcfc946da45aaabe933be154a4b5", "1.2.3.4", 26656),
            (
                "34750F98BD59FCFC946DA45AAABE933BE154A4B5",
                "::ffff:1.2.3.4",
                1,
            ),
            (
                "34750f98bd59fcfc946da45aaabe933be154a4b5",
                "2a01:4f8::1",
                65535,
            ),
            ("34750f98bd59fcfc946da45aaabe933be154a4b", "1.2.3.4", 1),
            ("34750f98bd59fcfc946da45aaabe933be154a4bg", "1.2.3.4", 1),
            ("34750f98bd59fcfc946da45aaabe933be154a4b5", "1.2.3", 1),
            ("34750f98bd59fcfc946da45aaabe933be154a4b5", "01.2.3.4", 1),
            ("34750f98bd59fcfc946da45aaabe933be154a4b5", "1.2.3.4", 65536),
            ("", "", 0),
        ];
        for (id, ip, port) in cases {
            let pb = NetAddressProto {
                id: id.to_owned(),
                ip: ip.to_owned(),
                port,
            };
            let ours = addr_from_proto(&pb);
            assert_eq!(ours, NetAddress::from_proto(&pb), "{pb:?}");
            if let Ok(a) = ours {
                assert_eq!(addr_to_proto(&a), a.to_proto());
            }
        }
    }
}
