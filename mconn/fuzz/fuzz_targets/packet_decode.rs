//! The packet decoder on arbitrary bytes: never panics, never buffers more than one packet,
//! and every decoded packet survives an encode/decode round trip.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mukan_mconn::{PacketDecoder, max_packet_size};

fuzz_target!(|data: &[u8]| {
    let max = max_packet_size(1024);
    let mut decoder = PacketDecoder::new(max);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decoder.decode(&mut buf) {
        let mut wire = BytesMut::new();
        packet.encode(&mut wire);
        let again = PacketDecoder::new(usize::MAX)
            .decode(&mut wire)
            .expect("re-encoded packet");
        assert_eq!(again, Some(packet));
        assert!(wire.is_empty());
    }
    // The decoder reserves at most the rest of one announced packet (≤ `max`). When decoded
    // packets still share the buffer's allocation, `BytesMut::reserve` cannot reuse it and
    // allocates the remaining length plus up to the original capacity, so the bound is twice
    // the larger of the input and one packet, never anything an announced length controls.
    assert!(
        buf.capacity() <= 2 * data.len().max(max + 16) + 64,
        "buffered too much"
    );
});
