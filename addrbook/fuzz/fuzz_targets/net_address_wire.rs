//! `NetAddress` from its protobuf and JSON forms: never panics, and an accepted address
//! round-trips through both forms and its text form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mukan_reactor_api::{NetAddress, NetAddressProto};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(pb) = NetAddressProto::decode(data) {
        if let Ok(addr) = NetAddress::from_proto(&pb) {
            assert_eq!(NetAddress::from_proto(&addr.to_proto()), Ok(addr));
            let text: NetAddress = addr.to_string().parse().expect("Display output parses");
            assert_eq!(text, addr);
        }
    }
    if let Ok(addr) = serde_json::from_slice::<NetAddress>(data) {
        let json = serde_json::to_vec(&addr).expect("serializes");
        assert_eq!(
            serde_json::from_slice::<NetAddress>(&json).expect("reparses"),
            addr
        );
    }
});
