//! The receive path of `MConnState` on arbitrary bytes fed in arbitrary pieces: never panics,
//! and never delivers a message above its channel's receive capacity.
#![no_main]

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use mukan_mconn::{Config, MConnState};
use mukan_reactor_api::{ChannelDescriptor, ChannelId, InboxItem};

const CAP: usize = 3000;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let cap = NonZeroUsize::new(CAP).expect("non-zero");
    let channels: Vec<ChannelDescriptor> = [0x00u8, 0x20, 0x40]
        .iter()
        .map(|&id| {
            ChannelDescriptor::new(ChannelId(id), NonZeroU32::MIN).with_recv_message_capacity(cap)
        })
        .collect();
    let config = Config::default().with_rates(None, None);
    let mut state = MConnState::new(&channels, config, now).expect("valid config");
    let piece = usize::from(split).max(1);
    for chunk in rest.chunks(piece) {
        if state.handle_read(chunk, now).is_err() {
            return;
        }
        // Leases are dropped at once, so a held message goes with the next read.
        while let Some(item) = state.poll_event() {
            if let InboxItem::Received { message, .. } = item {
                assert!(message.len() <= CAP);
            }
        }
    }
    let _ = state.handle_eof(0);
});
