//! The JSON-line events on stdout, and the tokens of a refused connection.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mukan_reactor_api::{IncompatibleError, RejectDetail, TransportError};
use parking_lot::Mutex;

/// Prints one JSON event per line: `"event"` first, then the given keys, then `"t_ms"` (since
/// start) and `"unix_us"` (the wall clock when the event was made). The netns scenarios order
/// events of different processes by `unix_us`: the stamp their log reader adds can lag the
/// event by milliseconds, long enough for a peer's reaction to be stamped before its cause.
#[derive(Clone)]
pub(crate) struct Events {
    pub(crate) start: Instant,
    pub(crate) out: Arc<Mutex<()>>,
}

impl Events {
    pub(crate) fn emit(&self, name: &str, kv: &[(&str, serde_json::Value)]) {
        let mut line = String::from("{\"event\":");
        line.push_str(&serde_json::Value::from(name).to_string());
        for (k, v) in kv {
            line.push(',');
            line.push_str(&serde_json::Value::from(*k).to_string());
            line.push(':');
            line.push_str(&v.to_string());
        }
        // Taken under the lock, so the lines of one process are in `unix_us` order.
        let _guard = self.out.lock();
        let unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        line.push_str(&format!(
            ",\"t_ms\":{},\"unix_us\":{unix_us}}}",
            self.start.elapsed().as_millis()
        ));
        println!("{line}");
    }
}

pub(crate) fn emit_rejected(ev: &Events, direction: &str, err: &TransportError, addr: &str) {
    let (reason, detail) = classify(err);
    let addr = match err {
        TransportError::Rejected { addr: Some(a), .. } if addr.is_empty() => a.to_string(),
        _ => addr.to_owned(),
    };
    ev.emit(
        "rejected",
        kv!["direction" => direction, "reason" => reason, "detail" => detail, "addr" => addr,
            "error" => err.to_string()],
    );
}

/// The same tokens gopeer prints (`go/internal/peer/reject.go`).
pub(crate) fn classify(err: &TransportError) -> (&'static str, &'static str) {
    let TransportError::Rejected { detail, .. } = err else {
        return match err {
            TransportError::FilterTimeout => ("filter_timeout", ""),
            // Go reports these as authentication failures; keep its tokens.
            TransportError::Timeout(mukan_reactor_api::TimeoutKind::Handshake) => {
                ("auth_failure", "secret_conn")
            }
            TransportError::Timeout(mukan_reactor_api::TimeoutKind::NodeInfo) => {
                ("auth_failure", "handshake")
            }
            _ => ("dial_failed", ""),
        };
    };
    // By variant, never by message text.
    match detail {
        RejectDetail::DialedIdMismatch { .. } | RejectDetail::NodeInfoIdMismatch { .. } => {
            ("auth_failure", "id_mismatch")
        }
        RejectDetail::Handshake(_) => ("auth_failure", "secret_conn"),
        RejectDetail::Exchange(_) => ("auth_failure", "handshake"),
        RejectDetail::DuplicateConnection(_) | RejectDetail::DuplicateIp(_) => ("duplicate", ""),
        RejectDetail::Filtered(_) => ("filtered", ""),
        RejectDetail::Incompatible(e) => {
            let detail = match e {
                IncompatibleError::Network { .. } => "network",
                IncompatibleError::NoCommonChannels { .. } => "channels",
                IncompatibleError::BlockVersion { .. } => "block_version",
                _ => "",
            };
            ("incompatible", detail)
        }
        RejectDetail::InvalidNodeInfo(_) => ("invalid_node_info", ""),
        RejectDetail::SelfConnection => ("self", ""),
        _ => ("other", ""),
    }
}
