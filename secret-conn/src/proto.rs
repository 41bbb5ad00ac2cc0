//! The two handshake messages (hand-written prost structs; Go `p2p/conn/secret_connection.go`)
//! and the `libs/protoio` uvarint length prefix, decoded by prost.

use prost::Message as _;

use crate::{DecodeError, Error, ProtocolViolation};

/// Length of an X25519 public key.
pub(crate) const EPH_KEY_LEN: usize = 32;
/// On-stream length of our ephemeral-key message: `22 0a 20 <32 bytes>`.
pub(crate) const EPH_MSG_LEN: usize = 35;
/// Largest ephemeral-key message body we accept. Go allows 1 MiB; an honest body is 34 bytes
/// (we cap it at 64 before allocating anything).
pub(crate) const MAX_EPH_MSG_BODY: usize = 64;
/// On-stream length of an ed25519 `AuthSigMessage`: `66 0a 22 0a 20 <32> 12 40 <64>`.
pub(crate) const AUTH_SIG_MSG_LEN: usize = 103;
/// Largest `AuthSigMessage` body we accept (an honest one is 102 bytes).
pub(crate) const MAX_AUTH_SIG_MSG_BODY: usize = 1024;
/// Longest valid uvarint (Go `binary.MaxVarintLen64`).
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// `google.protobuf.BytesValue`, carrier of the ephemeral key.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BytesValue {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) value: Vec<u8>,
}

/// `tendermint.p2p.AuthSigMessage`. `pub_key` is gogoproto non-nullable: always encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AuthSigMessage {
    #[prost(message, required, tag = "1")]
    pub(crate) pub_key: PublicKeyProto,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) sig: Vec<u8>,
}

/// `tendermint.crypto.PublicKey`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PublicKeyProto {
    #[prost(oneof = "public_key_proto::Sum", tags = "1, 2")]
    pub(crate) sum: Option<public_key_proto::Sum>,
}

/// The oneof of [`PublicKeyProto`].
pub(crate) mod public_key_proto {
    /// `oneof sum`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Sum {
        #[prost(bytes = "vec", tag = "1")]
        Ed25519(Vec<u8>),
        #[prost(bytes = "vec", tag = "2")]
        Secp256k1(Vec<u8>),
    }
}

/// Our ephemeral-key message, prefix included.
pub(crate) fn encode_eph_msg(eph_pub: &[u8; EPH_KEY_LEN]) -> [u8; EPH_MSG_LEN] {
    let mut out = [0u8; EPH_MSG_LEN];
    // uvarint(34) || field 1, wire type 2 || len 32 || key
    out[..3].copy_from_slice(&[0x22, 0x0a, 0x20]);
    out[3..].copy_from_slice(eph_pub);
    out
}

/// Decodes an ephemeral-key message body (no length prefix) into the 32-byte key.
///
/// # Errors
/// [`Error::Decode`] for invalid protobuf, [`ProtocolViolation::EphKeyLength`] when the key is
/// not 32 bytes.
pub(crate) fn decode_eph_msg(body: &[u8]) -> Result<[u8; EPH_KEY_LEN], Error> {
    let msg = BytesValue::decode(body).map_err(DecodeError::from)?;
    let len = msg.value.len();
    <[u8; EPH_KEY_LEN]>::try_from(msg.value.as_slice())
        .map_err(|_| ProtocolViolation::EphKeyLength { len }.into())
}

/// Our `AuthSigMessage`, prefix included.
pub(crate) fn encode_auth_sig_msg(pub_key: &[u8; 32], sig: &[u8; 64]) -> [u8; AUTH_SIG_MSG_LEN] {
    let mut out = [0u8; AUTH_SIG_MSG_LEN];
    // uvarint(102) || field 1 (len 34) { field 1 (len 32) key } || field 2 (len 64) sig
    out[..5].copy_from_slice(&[0x66, 0x0a, 0x22, 0x0a, 0x20]);
    out[5..37].copy_from_slice(pub_key);
    out[37..39].copy_from_slice(&[0x12, 0x40]);
    out[39..].copy_from_slice(sig);
    out
}

/// A decoded `AuthSigMessage`: the raw ed25519 key bytes and the signature, both unchecked.
#[derive(Debug)]
pub(crate) struct AuthSig {
    pub(crate) ed25519_key: Vec<u8>,
    pub(crate) sig: Vec<u8>,
}

/// Decodes an `AuthSigMessage` body (no length prefix) and checks the key type, as Go's
/// `PubKeyFromProto` plus the `ed25519.PubKey` type assertion do.
///
/// # Errors
/// [`Error::Decode`] for invalid protobuf; [`ProtocolViolation::MissingPubKey`] and
/// [`ProtocolViolation::UnsupportedKeyType`] for a missing or non-ed25519 key.
pub(crate) fn decode_auth_sig_msg(body: &[u8]) -> Result<AuthSig, Error> {
    let msg = AuthSigMessage::decode(body).map_err(DecodeError::from)?;
    match msg.pub_key.sum {
        Some(public_key_proto::Sum::Ed25519(key)) => Ok(AuthSig {
            ed25519_key: key,
            sig: msg.sig,
        }),
        Some(public_key_proto::Sum::Secp256k1(_)) => {
            Err(ProtocolViolation::UnsupportedKeyType { tag: 2 }.into())
        }
        None => Err(ProtocolViolation::MissingPubKey.into()),
    }
}

/// Incremental decoder of the uvarint length prefix of a handshake message, fed one byte at a
/// time so that a reader never consumes a byte past the prefix (Go `binary.ReadUvarint`). For
/// drivers other than the tokio one; check the result against [`MAX_EPH_KEY_MSG_LEN`] or
/// [`MAX_AUTH_SIG_MSG_LEN`] before reading the body.
///
/// [`MAX_EPH_KEY_MSG_LEN`]: crate::MAX_EPH_KEY_MSG_LEN
/// [`MAX_AUTH_SIG_MSG_LEN`]: crate::MAX_AUTH_SIG_MSG_LEN
#[derive(Debug, Default, Clone)]
pub struct LengthPrefix {
    prefix: [u8; MAX_VARINT_LEN],
    bytes: usize,
}

impl LengthPrefix {
    /// A decoder expecting the first byte.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one byte; returns the value once the last byte of the prefix was fed (the
    /// decoding itself is prost's, [`prost::encoding::decode_varint`]).
    ///
    /// # Errors
    /// A [`DecodeError`] for a prefix longer than 10 bytes or one overflowing `u64`.
    pub fn push(&mut self, byte: u8) -> Result<Option<u64>, DecodeError> {
        let Some(slot) = self.prefix.get_mut(self.bytes) else {
            return Err(DecodeError::varint());
        };
        *slot = byte;
        self.bytes += 1;
        if byte & 0x80 != 0 {
            return if self.bytes == MAX_VARINT_LEN {
                Err(DecodeError::varint())
            } else {
                Ok(None)
            };
        }
        let mut prefix = &self.prefix[..self.bytes];
        prost::encoding::decode_varint(&mut prefix)
            .map(Some)
            .map_err(|_| DecodeError::varint())
    }

    /// Checks a declared body length against the limit for the message, before anything is
    /// allocated or read.
    ///
    /// # Errors
    /// [`ProtocolViolation::MessageTooLarge`] if `len > max`.
    pub fn check(len: u64, max: usize) -> Result<usize, Error> {
        match usize::try_from(len) {
            Ok(l) if l <= max => Ok(l),
            _ => Err(ProtocolViolation::MessageTooLarge { len, max }.into()),
        }
    }
}

/// Finds the body of the delimited message at the front of `buf` (for callers holding a whole
/// buffer, such as fuzz targets), or `None` if `buf` ends before the message does.
///
/// # Errors
/// [`Error::Decode`] for a bad prefix; [`ProtocolViolation::MessageTooLarge`] when the declared
/// length exceeds `max`.
#[cfg(any(test, fuzzing))]
pub(crate) fn split_delimited(buf: &[u8], max: usize) -> Result<Option<&[u8]>, Error> {
    let mut dec = LengthPrefix::default();
    for (i, &b) in buf.iter().enumerate() {
        if let Some(len) = dec.push(b)? {
            let len_usize = LengthPrefix::check(len, max)?;
            let rest = &buf[i + 1..];
            if rest.len() < len_usize {
                return Ok(None);
            }
            return Ok(Some(&rest[..len_usize]));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn eph_msg_matches_prost_encoding() {
        let key = [0xabu8; 32];
        let ours = encode_eph_msg(&key);
        let prost = BytesValue {
            value: key.to_vec(),
        }
        .encode_length_delimited_to_vec();
        assert_eq!(ours.as_slice(), prost.as_slice());
        assert_eq!(decode_eph_msg(&ours[1..]).unwrap(), key);
    }

    #[test]
    fn auth_sig_msg_matches_gogoproto_layout() {
        let key = [0x11u8; 32];
        let sig = [0x22u8; 64];
        let ours = encode_auth_sig_msg(&key, &sig);
        let prost = AuthSigMessage {
            pub_key: PublicKeyProto {
                sum: Some(public_key_proto::Sum::Ed25519(key.to_vec())),
            },
            sig: sig.to_vec(),
        }
        .encode_length_delimited_to_vec();
        assert_eq!(ours.as_slice(), prost.as_slice());
        let decoded = decode_auth_sig_msg(&ours[1..]).unwrap();
        assert_eq!(decoded.ed25519_key, key);
        assert_eq!(decoded.sig, sig);
    }

    /// gogoproto emits the non-nullable `pub_key` even when it is empty: `0a 00`.
    #[test]
    fn empty_pub_key_is_still_encoded() {
        let msg = AuthSigMessage {
            pub_key: PublicKeyProto { sum: None },
            sig: vec![],
        };
        assert_eq!(msg.encode_to_vec(), [0x0a, 0x00]);
    }

    #[test]
    fn eph_msg_negative_vectors() {
        // Not a BytesValue: field 1 with wire type varint.
        assert!(matches!(
            decode_eph_msg(&[0x08, 0x01]),
            Err(Error::Decode(e)) if e.is_protobuf()
        ));
        // Truncated protobuf: declares 32 bytes, carries 3.
        assert!(matches!(
            decode_eph_msg(&[0x0a, 0x20, 1, 2, 3]),
            Err(Error::Decode(e)) if e.is_protobuf()
        ));
        for len in [0usize, 31, 33, 64] {
            let body = BytesValue {
                value: vec![9; len],
            }
            .encode_to_vec();
            assert!(matches!(
                decode_eph_msg(&body),
                Err(Error::Protocol(ProtocolViolation::EphKeyLength { len: l })) if l == len
            ));
        }
    }

    #[test]
    fn auth_sig_negative_vectors() {
        let secp = AuthSigMessage {
            pub_key: PublicKeyProto {
                sum: Some(public_key_proto::Sum::Secp256k1(vec![2; 33])),
            },
            sig: vec![0; 64],
        }
        .encode_to_vec();
        assert!(matches!(
            decode_auth_sig_msg(&secp),
            Err(Error::Protocol(ProtocolViolation::UnsupportedKeyType {
                tag: 2
            }))
        ));
        let none = AuthSigMessage {
            pub_key: PublicKeyProto { sum: None },
            sig: vec![0; 64],
        }
        .encode_to_vec();
        assert!(matches!(
            decode_auth_sig_msg(&none),
            Err(Error::Protocol(ProtocolViolation::MissingPubKey))
        ));
        // Field 1 absent altogether also means "no key".
        assert!(matches!(
            decode_auth_sig_msg(&[0x12, 0x00]),
            Err(Error::Protocol(ProtocolViolation::MissingPubKey))
        ));
        assert!(matches!(
            decode_auth_sig_msg(&[0xff]),
            Err(Error::Decode(e)) if e.is_protobuf()
        ));
    }

    #[test]
    fn varint_limits() {
        let mut dec = LengthPrefix::default();
        assert_eq!(dec.push(0x22).unwrap(), Some(34));

        // u64::MAX is 10 bytes: nine 0xff then 0x01.
        let mut dec = LengthPrefix::default();
        for _ in 0..9 {
            assert_eq!(dec.push(0xff).unwrap(), None);
        }
        assert_eq!(dec.push(0x01).unwrap(), Some(u64::MAX));

        // Overflow in the tenth byte, and an eleventh byte.
        let mut dec = LengthPrefix::default();
        for _ in 0..9 {
            dec.push(0xff).unwrap();
        }
        assert!(dec.push(0x02).unwrap_err().is_varint());
        let mut dec = LengthPrefix::default();
        for _ in 0..9 {
            dec.push(0x80).unwrap();
        }
        assert!(dec.push(0x81).unwrap_err().is_varint());
    }

    #[test]
    fn split_delimited_checks_length_before_allocating() {
        // 2^40 declared.
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
        assert!(matches!(
            split_delimited(&huge, 1024),
            Err(Error::Protocol(ProtocolViolation::MessageTooLarge { len, max: 1024 })) if len == 1 << 40
        ));
        assert!(split_delimited(&[0x03, 1, 2], 1024).unwrap().is_none());
        let body = split_delimited(&[0x02, 1, 2, 3], 1024).unwrap().unwrap();
        assert_eq!(body, &[1u8, 2][..]);
    }
}
