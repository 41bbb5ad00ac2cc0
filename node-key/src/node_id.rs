//! [`NodeId`]: the 20-byte address of a node.

use std::fmt;
use std::str::FromStr;

use crate::ParseError;

/// The ID of a node: the first 20 bytes of `SHA256(ed25519 public key)`.
///
/// Shown as 40 lower-case hex characters, as CometBFT's `p2p.ID` is. Parsing accepts
/// upper-case hex too, as Go's `hex.DecodeString` does; note that Go compares IDs as strings,
/// so a Go node rejects a dial to an upper-case ID after the handshake, while for us the two
/// spellings are the same ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; Self::LEN]);

impl NodeId {
    /// Length of an ID in bytes.
    pub const LEN: usize = 20;

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; Self::LEN * 2];
        // Infallible: the buffer is exactly twice the input length.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = ParseError;

    /// Parses 40 hex characters (Go `validateID`).
    ///
    /// # Errors
    /// [`ParseError::Empty`], [`ParseError::Hex`] or [`ParseError::Length`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        let bytes = hex::decode(s).map_err(ParseError::Hex)?;
        let arr: [u8; Self::LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ParseError::Length {
                got: bytes.len(),
                expected: Self::LEN,
            })?;
        Ok(Self(arr))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parse_errors() {
        assert_eq!("".parse::<NodeId>(), Err(ParseError::Empty));
        assert!(matches!("zz".parse::<NodeId>(), Err(ParseError::Hex(_))));
        assert!(matches!("abc".parse::<NodeId>(), Err(ParseError::Hex(_))));
        assert_eq!(
            "00".repeat(19).parse::<NodeId>(),
            Err(ParseError::Length {
                got: 19,
                expected: 20
            })
        );
        assert_eq!(
            "00".repeat(21).parse::<NodeId>(),
            Err(ParseError::Length {
                got: 21,
                expected: 20
            })
        );
        assert!("00".repeat(20).parse::<NodeId>().is_ok());
    }

    #[test]
    fn upper_case_parses_to_the_same_id() {
        let lower: NodeId = "34750f98bd59fcfc946da45aaabe933be154a4b5".parse().unwrap();
        let upper: NodeId = "34750F98BD59FCFC946DA45AAABE933BE154A4B5".parse().unwrap();
        assert_eq!(lower, upper);
        assert_eq!(
            upper.to_string(),
            "34750f98bd59fcfc946da45aaabe933be154a4b5"
        );
    }

    proptest! {
        #[test]
        fn text_round_trip(bytes in any::<[u8; 20]>()) {
            let id = NodeId(bytes);
            let text = id.to_string();
            prop_assert_eq!(text.len(), 40);
            prop_assert_eq!(text.to_lowercase(), text.clone());
            prop_assert_eq!(text.parse::<NodeId>().unwrap(), id);
        }
    }
}
