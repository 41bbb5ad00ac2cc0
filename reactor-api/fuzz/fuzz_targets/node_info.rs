//! NodeInfo decode + validate + compatible_with + re-encode: never panics, and a decoded info
//! re-encodes to bytes that decode to the same info.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mukan_reactor_api::NodeInfo;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = NodeInfo::decode(data) else {
        return;
    };
    let _ = info.validate();
    let _ = info.net_address();
    let _ = info.compatible_with(&info);
    let again = NodeInfo::decode(&info.encode_to_vec()).expect("re-encoded info decodes");
    assert_eq!(again, info);
});
