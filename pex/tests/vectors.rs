//! Golden bytes of the PEX messages (tests/data/pex_vectors.txt): decode, re-encode
//! byte-exact; negative vectors give the expected typed error.

use mukan_pex::msg::{MAX_MSG_SIZE, channel_descriptor};
use mukan_pex::{DecodeError, PexMessage};
use mukan_reactor_api::ChannelId;

const VECTORS: &str = include_str!("data/pex_vectors.txt");

fn bytes(hex_text: &str) -> Vec<u8> {
    if hex_text == "-" {
        return Vec::new();
    }
    hex::decode(hex_text).expect("vector hex")
}

#[test]
fn golden_vectors_round_trip_byte_exact() {
    let mut ok = 0;
    for line in VECTORS.lines().filter(|l| l.starts_with("ok ")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [_, name, hex_text] = parts[..] else {
            panic!("bad vector line {line}");
        };
        let wire = bytes(hex_text);
        let msg = PexMessage::decode(&wire).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.encode(), wire, "{name} re-encodes differently");
        ok += 1;
    }
    assert_eq!(ok, 4);
}

#[test]
fn golden_vectors_mean_what_they_say() {
    let find = |name: &str| {
        VECTORS
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .and_then(|l| l.split_whitespace().last())
            .map(bytes)
            .expect("vector present")
    };
    assert_eq!(
        PexMessage::decode(&find("pex_request")),
        Ok(PexMessage::Request)
    );
    assert_eq!(
        PexMessage::decode(&find("pex_addrs_empty")),
        Ok(PexMessage::Addrs(Vec::new()))
    );
    let PexMessage::Addrs(two) = PexMessage::decode(&find("pex_addrs_two_v4_v6")).expect("ok")
    else {
        panic!("not addrs");
    };
    let text: Vec<String> = two.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "34750f98bd59fcfc946da45aaabe933be154a4b5@1.2.3.4:26656",
            "0123456789abcdef0123456789abcdef01234567@[2a01:4f8::1]:443",
        ]
    );
}

#[test]
fn negative_vectors_give_typed_errors() {
    let mut n = 0;
    for line in VECTORS.lines().filter(|l| l.starts_with("bad ")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [_, name, kind, hex_text] = parts[..] else {
            panic!("bad vector line {line}");
        };
        let err = PexMessage::decode(&bytes(hex_text)).expect_err(name);
        let got = match err {
            DecodeError::Empty => "empty",
            DecodeError::Protobuf(_) => "protobuf",
            DecodeError::InvalidAddress { .. } => "invalid_address",
            DecodeError::TooLarge(_) => "too_large",
            _ => "other",
        };
        assert_eq!(got, kind, "{name}: {err}");
        n += 1;
    }
    assert_eq!(n, 8);
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let big = vec![0u8; MAX_MSG_SIZE + 1];
    assert_eq!(
        PexMessage::decode(&big),
        Err(DecodeError::TooLarge(MAX_MSG_SIZE + 1))
    );
}

#[test]
fn channel_descriptor_matches_go() {
    let d = channel_descriptor();
    assert_eq!(d.id, ChannelId(0x00));
    assert_eq!(d.priority.get(), 1);
    assert_eq!(d.send_queue_capacity.get(), 10);
    assert_eq!(d.recv_message_capacity.get(), 64_000);
}
