//! [`NodeInfo`]: what two nodes tell each other right after the secret-connection handshake
//! (`p2p/node_info.go`).

use std::fmt;

use mukan_node_key::{NodeId, ParseError};
use prost::Message as _;

use crate::{ChannelId, NetAddressError, ParsedAddress};

/// The self-reported description of a node, exchanged once per connection
/// (Go `DefaultNodeInfo`).
///
/// The fields hold what was on the wire, unvalidated: [`NodeInfo::decode`] only parses the
/// protobuf. Call [`NodeInfo::validate`] on a peer's info before using it, and
/// [`NodeInfo::compatible_with`] on our own info to decide whether to keep the peer.
///
/// The node ID is kept as the string that was sent, because Go compares IDs as strings: a peer
/// that reports its ID in upper-case hex passes `validate` but does not match the lower-case ID
/// derived from its key. [`NodeInfo::node_id`] parses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// Protocol versions (field 1, always on the wire).
    pub protocol_version: ProtocolVersion,
    /// The node's ID as 40 hex characters (`default_node_id`, field 2).
    pub id: String,
    /// Where the node accepts connections, e.g. `tcp://0.0.0.0:26656` (field 3), unresolved.
    pub listen_addr: String,
    /// The chain ID (field 4).
    pub network: String,
    /// Software version, e.g. `0.38.25` (field 5).
    pub version: String,
    /// The channels the node serves (field 6, one byte each).
    pub channels: Vec<ChannelId>,
    /// Human-readable name (field 7).
    pub moniker: String,
    /// Application-specific data (field 8, always on the wire).
    pub other: Other,
}

/// The protocol versions of a node (`tendermint.p2p.ProtocolVersion`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProtocolVersion {
    /// P2P protocol version (8 in CometBFT v0.38). Not compared.
    pub p2p: u64,
    /// Block protocol version (11 in CometBFT v0.38). Must match.
    pub block: u64,
    /// Application version. Not compared.
    pub app: u64,
}

/// Application-specific part of [`NodeInfo`] (`DefaultNodeInfoOther`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Other {
    /// `"on"`, `"off"` or empty.
    pub tx_index: String,
    /// The RPC listen address, e.g. `tcp://127.0.0.1:26657`.
    pub rpc_address: String,
}

/// Why a [`NodeInfo`] could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeInfoDecodeError {
    /// The encoding is longer than [`NodeInfo::MAX_SIZE`].
    #[error("node info too large ({len} > {max})", max = NodeInfo::MAX_SIZE)]
    TooLarge {
        /// Length of the encoding.
        len: usize,
    },
    /// Not a valid `DefaultNodeInfo` protobuf (this includes strings that are not UTF-8,
    /// which Go decodes and then rejects in `Validate` or `CompatibleWith`).
    #[error("invalid node info protobuf: {0}")]
    Protobuf(#[source] prost::DecodeError),
}

/// Why [`NodeInfo::validate`] rejected an info, in the order Go checks.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeInfoError {
    /// The ID and listen address do not form a valid `id@host:port` (Go
    /// `NewNetAddressString(IDAddressString(id, listen_addr))`).
    #[error("invalid node ID or listen address: {0}")]
    Address(#[from] NetAddressError),
    /// `version` is non-empty and not printable ASCII, or only spaces.
    #[error("info.Version must be valid ASCII text without tabs, but got {0}")]
    Version(String),
    /// More than [`NodeInfo::MAX_CHANNELS`] channels.
    #[error("info.Channels is too long ({0}). Max is {max}", max = NodeInfo::MAX_CHANNELS)]
    TooManyChannels(usize),
    /// A channel byte appears twice.
    #[error("info.Channels contains duplicate channel id {}", .0.0)]
    DuplicateChannel(ChannelId),
    /// `moniker` is empty, not printable ASCII, or only spaces.
    #[error("info.Moniker must be valid non-empty ASCII text without tabs, but got {0}")]
    Moniker(String),
    /// `other.tx_index` is not `""`, `"on"` or `"off"`.
    #[error("info.Other.TxIndex should be either 'on', 'off', or empty string, got '{0}'")]
    TxIndex(String),
    /// `other.rpc_address` is non-empty and not printable ASCII, or only spaces.
    #[error("info.Other.RPCAddress={0} must be valid ASCII text without tabs")]
    RpcAddress(String),
}

/// Why [`NodeInfo::compatible_with`] refused a peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IncompatibleError {
    /// The block protocol versions differ.
    #[error("peer is on a different Block version. Got {got}, expected {expected}")]
    BlockVersion {
        /// The peer's.
        got: u64,
        /// Ours.
        expected: u64,
    },
    /// The networks (chain IDs) differ.
    #[error("peer is on a different network. Got {got}, expected {expected}")]
    Network {
        /// The peer's.
        got: String,
        /// Ours.
        expected: String,
    },
    /// We declare channels and the peer has none of them.
    #[error("peer has no common channels. Our channels: {ours:?} ; Peer channels: {theirs:?}")]
    NoCommonChannels {
        /// Ours.
        ours: Vec<ChannelId>,
        /// The peer's.
        theirs: Vec<ChannelId>,
    },
}

impl ProtocolVersion {
    /// The versions CometBFT v0.34–v1.0 nodes announce: p2p 8, block 11, app 0.
    pub const COMETBFT: Self = Self {
        p2p: 8,
        block: 11,
        app: 0,
    };
}

impl NodeInfo {
    /// Largest encoding a node accepts from a peer (Go `maxNodeInfoSize`).
    pub const MAX_SIZE: usize = 10_240;
    /// Most channels an info may list (Go `maxNumChannels`).
    pub const MAX_CHANNELS: usize = 16;

    /// Our own info as node `id` on `network` (the chain ID) named `moniker`, with CometBFT's
    /// protocol versions ([`ProtocolVersion::COMETBFT`]), `tx_index` off, and no listen
    /// address, channels, version or RPC address yet: set them with the `with_*` methods (a
    /// node builder fills the channels from its reactors and the listen address from where it
    /// listens). Check the result with [`NodeInfo::validate`].
    ///
    /// ```
    /// # use mukan_reactor_api::{ChannelId, NodeId, NodeInfo};
    /// let info = NodeInfo::new(NodeId([7; 20]), "test-chain", "alpha")
    ///     .with_listen_addr("tcp://127.0.0.1:26656")
    ///     .with_channels(vec![ChannelId::PEX]);
    /// assert!(info.validate().is_ok());
    /// ```
    pub fn new(id: NodeId, network: impl Into<String>, moniker: impl Into<String>) -> Self {
        Self {
            protocol_version: ProtocolVersion::COMETBFT,
            id: id.to_string(),
            listen_addr: String::new(),
            network: network.into(),
            version: String::new(),
            channels: Vec::new(),
            moniker: moniker.into(),
            other: Other {
                tx_index: "off".to_owned(),
                rpc_address: String::new(),
            },
        }
    }

    /// With `listen_addr` (`tcp://host:port` or `host:port`) as where we accept connections.
    #[must_use]
    pub fn with_listen_addr(mut self, listen_addr: impl Into<String>) -> Self {
        self.listen_addr = listen_addr.into();
        self
    }

    /// With `channels` as the channels we serve.
    #[must_use]
    pub fn with_channels(mut self, channels: Vec<ChannelId>) -> Self {
        self.channels = channels;
        self
    }

    /// With `version` as our software version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// With `rpc_address` as our RPC listen address (`other.rpc_address`).
    #[must_use]
    pub fn with_rpc_address(mut self, rpc_address: impl Into<String>) -> Self {
        self.other.rpc_address = rpc_address.into();
        self
    }

    /// Encodes as a `DefaultNodeInfo` protobuf, byte for byte as gogoproto does (fields 1 and
    /// 8 always present, the others only when non-empty). No length prefix.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// [`Self::encode_to_vec`] behind its uvarint length, as the NodeInfo exchange sends it
    /// (Go `protoio` delimited writer; prost's `encode_length_delimited`).
    pub fn encode_length_delimited_to_vec(&self) -> Vec<u8> {
        self.to_proto().encode_length_delimited_to_vec()
    }

    /// Length of [`Self::encode_to_vec`].
    pub fn encoded_len(&self) -> usize {
        self.to_proto().encoded_len()
    }

    /// Decodes a `DefaultNodeInfo` protobuf (no length prefix). Does not validate.
    ///
    /// # Errors
    /// [`NodeInfoDecodeError::TooLarge`] if `bytes` is longer than [`Self::MAX_SIZE`],
    /// [`NodeInfoDecodeError::Protobuf`] if it is not a valid encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, NodeInfoDecodeError> {
        if bytes.len() > Self::MAX_SIZE {
            return Err(NodeInfoDecodeError::TooLarge { len: bytes.len() });
        }
        let proto = DefaultNodeInfoProto::decode(bytes).map_err(NodeInfoDecodeError::Protobuf)?;
        Ok(Self::from_proto(proto))
    }

    /// Parses [`Self::id`].
    ///
    /// # Errors
    /// The [`ParseError`] of [`NodeId`]'s `FromStr`.
    pub fn node_id(&self) -> Result<NodeId, ParseError> {
        self.id.parse()
    }

    /// The address the node says it accepts connections on: [`Self::id`] `@` the host and
    /// port of [`Self::listen_addr`] (Go `DefaultNodeInfo.NetAddress`). A host name is returned
    /// unresolved; this crate does no IO.
    ///
    /// # Errors
    /// The [`NetAddressError`] of parsing the composed `id@host:port`.
    pub fn net_address(&self) -> Result<ParsedAddress, NetAddressError> {
        // IDAddressString strips the protocol of the listen address; NewNetAddressString
        // strips a protocol once more from the composed string.
        format!("{}@{}", self.id, crate::strip_protocol(&self.listen_addr)).parse()
    }

    /// Whether the info lists `channel`.
    pub fn has_channel(&self, channel: ChannelId) -> bool {
        self.channels.contains(&channel)
    }

    /// Checks a peer's self-reported info exactly as Go `DefaultNodeInfo.Validate` does, and
    /// in the same order.
    ///
    /// Deviation: Go resolves a listen host that is not an IP literal through DNS and rejects
    /// the info when the lookup fails. This crate does no IO, so a host name is accepted when it
    /// is syntactically a DNS name (letters, digits, `-`, `_`, dots; at most 253 bytes).
    ///
    /// # Errors
    /// The first [`NodeInfoError`] found.
    pub fn validate(&self) -> Result<(), NodeInfoError> {
        self.net_address()?;
        if !self.version.is_empty() && !is_ascii_text(&self.version) {
            return Err(NodeInfoError::Version(self.version.clone()));
        }
        if self.channels.len() > Self::MAX_CHANNELS {
            return Err(NodeInfoError::TooManyChannels(self.channels.len()));
        }
        let mut seen = [false; 256];
        for ch in &self.channels {
            #[expect(
                clippy::indexing_slicing,
                reason = "a `u8` channel ID always indexes a 256-entry table"
            )]
            let slot = &mut seen[usize::from(ch.0)];
            if *slot {
                return Err(NodeInfoError::DuplicateChannel(*ch));
            }
            *slot = true;
        }
        if !is_ascii_text(&self.moniker) {
            return Err(NodeInfoError::Moniker(self.moniker.clone()));
        }
        if !matches!(self.other.tx_index.as_str(), "" | "on" | "off") {
            return Err(NodeInfoError::TxIndex(self.other.tx_index.clone()));
        }
        let rpc = &self.other.rpc_address;
        if !rpc.is_empty() && !is_ascii_text(rpc) {
            return Err(NodeInfoError::RpcAddress(rpc.clone()));
        }
        Ok(())
    }

    /// Checks that a peer whose info is `other` can talk to us, `self` being our own info
    /// (Go `DefaultNodeInfo.CompatibleWith`): same block version, same
    /// network, and at least one common channel unless we declare none.
    ///
    /// # Errors
    /// The first [`IncompatibleError`] found.
    pub fn compatible_with(&self, other: &Self) -> Result<(), IncompatibleError> {
        if self.protocol_version.block != other.protocol_version.block {
            return Err(IncompatibleError::BlockVersion {
                got: other.protocol_version.block,
                expected: self.protocol_version.block,
            });
        }
        if self.network != other.network {
            return Err(IncompatibleError::Network {
                got: other.network.clone(),
                expected: self.network.clone(),
            });
        }
        if self.channels.is_empty() || self.channels.iter().any(|c| other.channels.contains(c)) {
            return Ok(());
        }
        Err(IncompatibleError::NoCommonChannels {
            ours: self.channels.clone(),
            theirs: other.channels.clone(),
        })
    }

    fn to_proto(&self) -> DefaultNodeInfoProto {
        DefaultNodeInfoProto {
            protocol_version: Some(ProtocolVersionProto {
                p2p: self.protocol_version.p2p,
                block: self.protocol_version.block,
                app: self.protocol_version.app,
            }),
            default_node_id: self.id.clone(),
            listen_addr: self.listen_addr.clone(),
            network: self.network.clone(),
            version: self.version.clone(),
            channels: self.channels.iter().map(|c| c.0).collect(),
            moniker: self.moniker.clone(),
            other: Some(OtherProto {
                tx_index: self.other.tx_index.clone(),
                rpc_address: self.other.rpc_address.clone(),
            }),
        }
    }

    fn from_proto(p: DefaultNodeInfoProto) -> Self {
        let pv = p.protocol_version.unwrap_or_default();
        let other = p.other.unwrap_or_default();
        Self {
            protocol_version: ProtocolVersion {
                p2p: pv.p2p,
                block: pv.block,
                app: pv.app,
            },
            id: p.default_node_id,
            listen_addr: p.listen_addr,
            network: p.network,
            version: p.version,
            channels: p.channels.into_iter().map(ChannelId).collect(),
            moniker: p.moniker,
            other: Other {
                tx_index: other.tx_index,
                rpc_address: other.rpc_address,
            },
        }
    }
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{} ({}, {})",
            self.id, self.listen_addr, self.moniker, self.network
        )
    }
}

/// Go `IsASCIIText(s) && ASCIITrim(s) != ""`: non-empty, every byte printable ASCII
/// (32..=126), and not only spaces.
fn is_ascii_text(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (32..=126).contains(&b)) && s.bytes().any(|b| b != b' ')
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtocolVersionProto {
    #[prost(uint64, tag = "1")]
    p2p: u64,
    #[prost(uint64, tag = "2")]
    block: u64,
    #[prost(uint64, tag = "3")]
    app: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OtherProto {
    #[prost(string, tag = "1")]
    tx_index: String,
    #[prost(string, tag = "2")]
    rpc_address: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DefaultNodeInfoProto {
    #[prost(message, optional, tag = "1")]
    protocol_version: Option<ProtocolVersionProto>,
    #[prost(string, tag = "2")]
    default_node_id: String,
    #[prost(string, tag = "3")]
    listen_addr: String,
    #[prost(string, tag = "4")]
    network: String,
    #[prost(string, tag = "5")]
    version: String,
    #[prost(bytes = "vec", tag = "6")]
    channels: Vec<u8>,
    #[prost(string, tag = "7")]
    moniker: String,
    #[prost(message, optional, tag = "8")]
    other: Option<OtherProto>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "34750f98bd59fcfc946da45aaabe933be154a4b5";

    fn valid() -> NodeInfo {
        NodeInfo {
            protocol_version: ProtocolVersion {
                p2p: 8,
                block: 11,
                app: 0,
            },
            id: ID.to_owned(),
            listen_addr: "tcp://0.0.0.0:26656".to_owned(),
            network: "test-chain".to_owned(),
            version: "0.38.25".to_owned(),
            channels: vec![ChannelId(0x40), ChannelId(0x20)],
            moniker: "m".to_owned(),
            other: Other {
                tx_index: "on".to_owned(),
                rpc_address: "tcp://127.0.0.1:26657".to_owned(),
            },
        }
    }

    fn hex_of(s: &str) -> String {
        hex::encode(s)
    }

    #[test]
    fn encoding_matches_hand_derived_bytes() {
        let expected = [
            "0a04".to_owned() + "0808" + "100b", // protocol_version {p2p 8, block 11}, app omitted
            "1228".to_owned() + &hex_of(ID),
            "1a13".to_owned() + &hex_of("tcp://0.0.0.0:26656"),
            "220a".to_owned() + &hex_of("test-chain"),
            "2a07".to_owned() + &hex_of("0.38.25"),
            "32024020".to_owned(),
            "3a01".to_owned() + &hex_of("m"),
            "421b".to_owned() + "0a02" + &hex_of("on") + "1215" + &hex_of("tcp://127.0.0.1:26657"),
        ]
        .concat();
        let info = valid();
        let bytes = info.encode_to_vec();
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(info.encoded_len(), bytes.len());
        assert_eq!(NodeInfo::decode(&bytes).unwrap(), info);
    }

    #[test]
    fn empty_info_still_emits_fields_1_and_8() {
        let bytes = NodeInfo::default().encode_to_vec();
        assert_eq!(bytes, [0x0a, 0x00, 0x42, 0x00]);
        assert_eq!(NodeInfo::decode(&bytes).unwrap(), NodeInfo::default());
        // Absent fields 1 and 8 decode to defaults as well.
        assert_eq!(NodeInfo::decode(&[]).unwrap(), NodeInfo::default());
    }

    #[test]
    fn decode_rejects_oversize_and_garbage() {
        assert!(matches!(
            NodeInfo::decode(&vec![0u8; NodeInfo::MAX_SIZE + 1]),
            Err(NodeInfoDecodeError::TooLarge { len: 10_241 })
        ));
        assert!(matches!(
            NodeInfo::decode(&[0x0a, 0x05, 0x08]),
            Err(NodeInfoDecodeError::Protobuf(_))
        ));
        // Invalid UTF-8 in a string field.
        assert!(matches!(
            NodeInfo::decode(&[0x3a, 0x01, 0xff]),
            Err(NodeInfoDecodeError::Protobuf(_))
        ));
    }

    fn with(f: impl FnOnce(&mut NodeInfo)) -> Result<(), NodeInfoError> {
        let mut info = valid();
        f(&mut info);
        info.validate()
    }

    fn is_address_error(r: Result<(), NodeInfoError>) -> bool {
        matches!(r, Err(NodeInfoError::Address(_)))
    }

    #[test]
    fn validate_address_table() {
        let ok: &[(&str, &str)] = &[
            (ID, "tcp://0.0.0.0:26656"),
            (ID, "0.0.0.0:26656"),
            (ID, "1.2.3.4:0"),
            (ID, "1.2.3.4:65535"),
            (ID, "[::1]:26656"),
            (ID, "tcp://[2001:db8::1]:1"),
            (ID, "node.example.com:26656"), // DNS: accepted syntactically (documented deviation)
            (&"AB".repeat(20), "1.2.3.4:1"), // upper-case hex is a valid ID
        ];
        for (id, listen) in ok {
            let r = with(|i| {
                i.id = (*id).to_owned();
                i.listen_addr = (*listen).to_owned();
            });
            assert_eq!(r, Ok(()), "{id}@{listen}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "1.2.3.4:1"),               // no ID
            (&ID[..39], "1.2.3.4:1"),        // odd hex
            (&ID[..38], "1.2.3.4:1"),        // 19 bytes
            (&"ab".repeat(21), "1.2.3.4:1"), // 21 bytes
            (&"zz".repeat(20), "1.2.3.4:1"), // not hex
            (ID, "a@1.2.3.4:1"),             // two '@'
            (ID, "1.2.3.4"),                 // missing port
            (ID, "tcp://1.2.3.4"),           // missing port
            (ID, ":26656"),                  // empty host
            (ID, "::1:26656"),               // too many colons
            (ID, "[::1]26656"),              // missing port after bracket
            (ID, "1.2.3.4:65536"),           // port out of range
            (ID, "1.2.3.4:"),                // empty port
            (ID, "1.2.3.4:+1"),              // sign
            (ID, "1.2.3.4:x"),               // not a number
            (ID, "bad host:1"),              // not a DNS name
            (ID, ""),                        // nothing
        ];
        for (id, listen) in bad {
            let r = with(|i| {
                i.id = (*id).to_owned();
                i.listen_addr = (*listen).to_owned();
            });
            assert!(is_address_error(r.clone()), "{id}@{listen}: {r:?}");
        }
    }

    #[test]
    fn validate_text_fields_table() {
        use NodeInfoError as E;
        // version: empty allowed; printable ASCII 32..=126 allowed; not only spaces.
        assert_eq!(with(|i| i.version = String::new()), Ok(()));
        assert_eq!(with(|i| i.version = "~ !".into()), Ok(()));
        for v in [" ", "   ", "a\tb", "\u{7f}", "é", "\u{1f}"] {
            assert_eq!(
                with(|i| i.version = v.into()),
                Err(E::Version(v.into())),
                "{v:?}"
            );
        }
        // moniker: required.
        assert_eq!(with(|i| i.moniker = " a ".into()), Ok(()));
        for m in ["", " ", "a\nb", "\u{7f}", "ü"] {
            assert_eq!(
                with(|i| i.moniker = m.into()),
                Err(E::Moniker(m.into())),
                "{m:?}"
            );
        }
        // tx_index
        for t in ["", "on", "off"] {
            assert_eq!(with(|i| i.other.tx_index = t.into()), Ok(()), "{t:?}");
        }
        for t in ["On", "null", " on"] {
            assert_eq!(
                with(|i| i.other.tx_index = t.into()),
                Err(E::TxIndex(t.into()))
            );
        }
        // rpc_address: empty allowed.
        assert_eq!(with(|i| i.other.rpc_address = String::new()), Ok(()));
        for r in [" ", "\t", "tcp://\u{7f}"] {
            assert_eq!(
                with(|i| i.other.rpc_address = r.into()),
                Err(E::RpcAddress(r.into()))
            );
        }
        // network is not validated here.
        assert_eq!(with(|i| i.network = "\t".into()), Ok(()));
    }

    #[test]
    fn validate_channels_table() {
        let sixteen: Vec<ChannelId> = (0..16).map(ChannelId).collect();
        assert_eq!(with(|i| i.channels = sixteen.clone()), Ok(()));
        assert_eq!(with(|i| i.channels = vec![]), Ok(()));
        let seventeen: Vec<ChannelId> = (0..17).map(ChannelId).collect();
        assert_eq!(
            with(|i| i.channels = seventeen),
            Err(NodeInfoError::TooManyChannels(17))
        );
        assert_eq!(
            with(|i| i.channels = vec![ChannelId(1), ChannelId(2), ChannelId(1)]),
            Err(NodeInfoError::DuplicateChannel(ChannelId(1)))
        );
        // Go reports the duplicate channel as a decimal byte.
        assert_eq!(
            NodeInfoError::DuplicateChannel(ChannelId(0x20)).to_string(),
            "info.Channels contains duplicate channel id 32"
        );
    }

    #[test]
    fn validate_checks_in_go_order() {
        // Bad address and bad moniker: the address is reported.
        let r = with(|i| {
            i.listen_addr = "nope".into();
            i.moniker = String::new();
        });
        assert!(is_address_error(r));
        // Bad version and too many channels: the version is reported.
        let r = with(|i| {
            i.version = " ".into();
            i.channels = (0..17).map(ChannelId).collect();
        });
        assert_eq!(r, Err(NodeInfoError::Version(" ".into())));
    }

    #[test]
    fn compatible_with_table() {
        let ours = valid();
        assert_eq!(ours.compatible_with(&valid()), Ok(()));
        // Block version must match; p2p and app are ignored.
        let mut t = valid();
        t.protocol_version.p2p = 7;
        t.protocol_version.app = 99;
        assert_eq!(ours.compatible_with(&t), Ok(()));
        for block in [10, 12] {
            let mut t = valid();
            t.protocol_version.block = block;
            assert_eq!(
                ours.compatible_with(&t),
                Err(IncompatibleError::BlockVersion {
                    got: block,
                    expected: 11
                })
            );
        }
        let mut t = valid();
        t.network = "other".into();
        assert_eq!(
            ours.compatible_with(&t),
            Err(IncompatibleError::Network {
                got: "other".into(),
                expected: "test-chain".into()
            })
        );
        // One common channel is enough.
        let mut t = valid();
        t.channels = vec![ChannelId(0x20)];
        assert_eq!(ours.compatible_with(&t), Ok(()));
        // None in common.
        t.channels = vec![ChannelId(0x21)];
        assert!(matches!(
            ours.compatible_with(&t),
            Err(IncompatibleError::NoCommonChannels { .. })
        ));
        t.channels = vec![];
        assert!(matches!(
            ours.compatible_with(&t),
            Err(IncompatibleError::NoCommonChannels { .. })
        ));
        // We declare no channels: anything goes (Go: "we're just testing").
        let mut empty = valid();
        empty.channels = vec![];
        assert_eq!(empty.compatible_with(&t), Ok(()));
    }

    #[test]
    fn error_strings_follow_go() {
        assert_eq!(
            IncompatibleError::BlockVersion {
                got: 10,
                expected: 11
            }
            .to_string(),
            "peer is on a different Block version. Got 10, expected 11"
        );
        assert_eq!(
            NodeInfoError::TooManyChannels(17).to_string(),
            "info.Channels is too long (17). Max is 16"
        );
        assert_eq!(
            NodeInfoError::TxIndex("x".into()).to_string(),
            "info.Other.TxIndex should be either 'on', 'off', or empty string, got 'x'"
        );
    }

    #[test]
    fn net_address_strips_the_protocol() {
        let a = valid().net_address().unwrap();
        assert_eq!(a.to_string(), format!("{ID}@0.0.0.0:26656"));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            p2p in any::<u64>(), block in any::<u64>(), app in any::<u64>(),
            id in ".{0,48}", listen in ".{0,40}", network in ".{0,20}", version in ".{0,20}",
            channels in prop::collection::vec(any::<u8>(), 0..20),
            moniker in ".{0,20}", tx_index in ".{0,4}", rpc in ".{0,30}",
        ) {
            let info = NodeInfo {
                protocol_version: ProtocolVersion { p2p, block, app },
                id, listen_addr: listen, network, version,
                channels: channels.into_iter().map(ChannelId).collect(),
                moniker,
                other: Other { tx_index, rpc_address: rpc },
            };
            let bytes = info.encode_to_vec();
            prop_assert_eq!(bytes.len(), info.encoded_len());
            // Fields 1 and 8 are always present.
            prop_assert_eq!(bytes[0], 0x0a);
            prop_assert!(bytes.contains(&0x42));
            prop_assert_eq!(NodeInfo::decode(&bytes).unwrap(), info);
        }
    }
}
