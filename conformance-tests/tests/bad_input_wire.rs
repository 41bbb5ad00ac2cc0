//! Bad-input suite, by category (the test names carry the case numbers): A the secret-connection
//! handshake, B sealed frames, C MConnection packets, D the transport's accept path. An evil
//! peer on real loopback TCP misbehaves on purpose against an honest `TcpTransport`. Every case asserts its outcome, that
//! the honest side closed the socket, that nothing panicked, and that open fds and live tokio
//! tasks are back to their baseline. Timeouts are scaled down through `Config`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::evil::{
    Baseline, ECHO, Evil, Honest, SERIAL, delimited, drain, expect_closed, fast_config, node_info,
    open_fds, packet_msg, peer_config,
};
use mukan_node_key::NodeKey;
use mukan_reactor_api::{RejectReason, StopReason, TimeoutKind, Transport, TransportError};
use mukan_transport::TcpTransport;
use tokio::io::AsyncWriteExt;

fn rejected(err: &TransportError) -> RejectReason {
    match err {
        TransportError::Rejected { detail, .. } => detail.reason(),
        other => panic!("not a rejection: {other:?}"),
    }
}

/// Sends `bytes` in place of the ephemeral-key message and expects the handshake to fail with
/// the socket closed.
async fn bad_first_message(bytes: &[u8], eof: bool) -> TransportError {
    let honest = Honest::listen(fast_config()).await;
    let mut tcp = Evil::connect_raw(honest.addr, bytes).await;
    if eof {
        tcp.shutdown().await.unwrap();
    }
    let (err, _) = tokio::join!(honest.transport.accept(peer_config(&[ECHO.0])), async {
        expect_closed(&mut tcp).await
    });
    honest.transport.close();
    err.err().expect("the bad handshake was accepted")
}

#[tokio::test]
async fn a3_a5_eph_keys_of_wrong_length_or_all_zero_are_rejected() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    for (len, fill) in [(0usize, 1u8), (31, 1), (33, 1), (64, 1), (32, 0)] {
        let mut body = vec![0x0a];
        common::evil::varint(len as u64, &mut body);
        body.extend(std::iter::repeat_n(fill, len));
        let err = bad_first_message(&delimited(&body), false).await;
        assert_eq!(
            rejected(&err),
            RejectReason::AuthFailure,
            "len {len}: {err:?}"
        );
    }
    base.assert_restored().await;
}

#[tokio::test]
async fn a2_a15_a16_garbage_and_oversized_varint_prefixes_are_rejected() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let cases: [&[u8]; 5] = [
        &[0x22, 0x0a, 0x20, 0xff],       // wrong wire type, then EOF
        &[0x80, 0x80, 0x80, 0x80, 0x10], // 2^32
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // 2^63
        &[0xff; 11],                     // a varint over 10 bytes
        &[0x80, 0x80],                   // truncated varint, then EOF
    ];
    for bytes in cases {
        let err = bad_first_message(bytes, true).await;
        assert_eq!(
            rejected(&err),
            RejectReason::AuthFailure,
            "{bytes:02x?}: {err:?}"
        );
    }
    base.assert_restored().await;
}

#[tokio::test]
async fn a7_eof_after_the_eph_key_is_rejected() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let ours = mukan_secret_conn::Handshake::from_ephemeral_secret([9; 32]).eph_key_message();
    let err = bad_first_message(&ours, true).await;
    assert_eq!(rejected(&err), RejectReason::AuthFailure, "{err:?}");
    base.assert_restored().await;
}

/// Handshakes honestly, then sends `frames` (sealed by the caller) as the NodeInfo stage.
async fn bad_frames(craft: impl FnOnce(&mut Evil) -> Vec<u8>) -> TransportError {
    let honest = Honest::listen(fast_config()).await;
    let key = NodeKey::from_seed([7; 32]);
    let accept = honest.transport.accept(peer_config(&[ECHO.0]));
    let evil = async {
        let mut evil = Evil::handshake(honest.addr, &key).await;
        let bytes = craft(&mut evil);
        evil.tcp.write_all(&bytes).await.unwrap();
        evil.expect_closed().await
    };
    let (err, _) = tokio::join!(accept, evil);
    honest.transport.close();
    err.err().expect("the bad frames were accepted")
}

fn node_info_msg() -> Vec<u8> {
    delimited(&node_info(&NodeKey::from_seed([7; 32]), &[ECHO.0]).encode_to_vec())
}

#[tokio::test]
async fn b1_a_flipped_bit_in_a_frame_is_rejected() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    for at in [0usize, 500, mukan_secret_conn::SEALED_FRAME_LEN - 1] {
        let err = bad_frames(|evil| {
            let mut frames = evil.seal(&node_info_msg());
            frames[at] ^= 0x01;
            frames
        })
        .await;
        assert_eq!(
            rejected(&err),
            RejectReason::AuthFailure,
            "byte {at}: {err:?}"
        );
    }
    base.assert_restored().await;
}

#[tokio::test]
async fn b4_b5_replayed_and_swapped_frames_are_rejected() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let msg = node_info_msg();
    let (head, tail) = msg.split_at(20);
    // Replay: the first half of the NodeInfo, twice.
    let err = bad_frames(|evil| {
        let first = evil.seal(head);
        [first.clone(), first].concat()
    })
    .await;
    assert_eq!(rejected(&err), RejectReason::AuthFailure, "{err:?}");
    // Swap: the second frame before the first.
    let err = bad_frames(|evil| {
        let first = evil.seal(head);
        let second = evil.seal(tail);
        [second, first].concat()
    })
    .await;
    assert_eq!(rejected(&err), RejectReason::AuthFailure, "{err:?}");
    base.assert_restored().await;
}

/// Upgrades an evil peer, starts the honest side's peer, runs `misbehave`, and returns what the
/// honest side delivered and why it stopped. The socket must end closed.
async fn started(
    cfg: mukan_transport::Config,
    misbehave: impl AsyncFnOnce(&mut Evil),
) -> (
    Vec<(mukan_reactor_api::ChannelId, bytes::Bytes)>,
    StopReason,
) {
    let honest = Honest::listen(cfg).await;
    let key = NodeKey::from_seed([7; 32]);
    let (peer, mut evil) = tokio::join!(
        honest.transport.accept(peer_config(&[ECHO.0])),
        Evil::upgraded(honest.addr, &key, &[ECHO.0]),
    );
    let peer = peer.unwrap();
    let inbox = peer.start().unwrap();
    misbehave(&mut evil).await;
    let ((got, reason), _) = tokio::join!(drain(inbox), evil.expect_closed());
    drop(peer);
    assert_eq!(honest.transport.connection_count(), 0);
    honest.transport.close();
    (got, reason)
}

fn is_protocol(reason: &StopReason) -> bool {
    matches!(reason, StopReason::Protocol(_))
}

#[tokio::test]
async fn c1_garbage_packet_bytes_disconnect() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let (got, reason) = started(fast_config(), async |evil| {
        evil.send_sealed(&[1, 2, 3, 4, 5]).await;
    })
    .await;
    assert!(got.is_empty());
    assert!(is_protocol(&reason), "{reason:?}");
    base.assert_restored().await;
}

#[tokio::test]
async fn c3_c4_unknown_and_out_of_range_channels_disconnect_with_nothing_delivered() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    for channel in [0x20i64, 256, 1025, -1] {
        let (got, reason) = started(fast_config(), async |evil| {
            evil.send_sealed(&packet_msg(channel, true, b"hi")).await;
        })
        .await;
        assert!(got.is_empty(), "channel {channel}");
        assert!(is_protocol(&reason), "channel {channel}: {reason:?}");
    }
    base.assert_restored().await;
}

#[tokio::test]
async fn c5_payload_at_the_limit_is_delivered_one_more_byte_disconnects() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let max = fast_config().mconn.max_packet_msg_payload_size.get();
    let (got, reason) = started(fast_config(), async |evil| {
        evil.send_sealed(&packet_msg(i64::from(ECHO.0), true, &vec![5; max]))
            .await;
        evil.send_sealed(&packet_msg(i64::from(ECHO.0), true, &vec![6; max + 1]))
            .await;
    })
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), max);
    assert!(is_protocol(&reason), "{reason:?}");
    base.assert_restored().await;
}

#[tokio::test]
async fn c12_eof_inside_a_multi_packet_message_discards_it() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let (got, reason) = started(fast_config(), async |evil| {
        evil.send_sealed(&packet_msg(i64::from(ECHO.0), false, &[1; 100]))
            .await;
        evil.tcp.shutdown().await.unwrap();
    })
    .await;
    assert!(got.is_empty(), "a partial message was delivered");
    assert!(
        !matches!(reason, StopReason::ClosedByPeer),
        "a cut message is an error, not a clean close: {reason:?}"
    );
    base.assert_restored().await;
}

#[tokio::test]
async fn c13_an_empty_eof_packet_is_a_zero_byte_message() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let (got, reason) = started(fast_config(), async |evil| {
        evil.send_sealed(&packet_msg(i64::from(ECHO.0), true, &[]))
            .await;
        evil.tcp.shutdown().await.unwrap();
    })
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, got[0].1.len()), (ECHO, 0));
    assert!(matches!(reason, StopReason::ClosedByPeer), "{reason:?}");
    base.assert_restored().await;
}

#[tokio::test]
async fn c8_a_peer_that_never_pongs_is_dropped_for_the_pong_timeout() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    // The evil peer never reads, so never answers the pings (90 ms / 45 ms).
    let (got, reason) = started(fast_config(), async |_| {}).await;
    assert!(got.is_empty());
    assert!(
        matches!(reason, StopReason::Timeout(TimeoutKind::Pong)),
        "{reason:?}"
    );
    base.assert_restored().await;
}

/// Refuses every connection.
struct Refuse;

impl mukan_transport::ConnFilter for Refuse {
    fn check(
        &self,
        _remote: std::net::SocketAddr,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), mukan_reactor_api::FilterRefusal>> + Send>>
    {
        Box::pin(async { Err(mukan_reactor_api::FilterRefusal::Refused("refused")) })
    }
}

#[tokio::test]
async fn d9_a_refusing_filter_closes_the_connection_without_a_leak() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let honest = Honest::listen_with(fast_config(), vec![std::sync::Arc::new(Refuse)]).await;
    for _ in 0..20 {
        let mut tcp = Evil::connect_raw(honest.addr, &[]).await;
        let (err, got) = tokio::join!(honest.transport.accept(peer_config(&[ECHO.0])), async {
            expect_closed(&mut tcp).await
        });
        assert_eq!(rejected(&err.err().unwrap()), RejectReason::Filtered);
        assert_eq!(got, 0, "bytes sent before the filter ran");
    }
    assert_eq!(honest.transport.connection_count(), 0);
    honest.transport.close();
    base.assert_restored().await;
}

#[tokio::test]
async fn d10_the_accept_loop_serves_an_honest_peer_after_failed_upgrades() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let before = open_fds();
    let honest = Honest::listen(fast_config()).await;
    // The leak check sees sockets: the listener is one.
    assert_eq!(open_fds(), before + 1);
    for bytes in [&[1u8, 2, 3][..], &[0xff; 11], &[0x22, 0x0a]] {
        let mut tcp = Evil::connect_raw(honest.addr, bytes).await;
        tcp.shutdown().await.unwrap();
        let (err, _) = tokio::join!(honest.transport.accept(peer_config(&[ECHO.0])), async {
            expect_closed(&mut tcp).await
        });
        assert!(err.is_err());
    }
    let key = std::sync::Arc::new(NodeKey::from_seed([3; 32]));
    let dialer = TcpTransport::new(key.clone(), node_info(&key, &[ECHO.0]), fast_config());
    let (dialed, accepted) = tokio::join!(
        dialer.dial(honest.target(), peer_config(&[ECHO.0])),
        honest.transport.accept(peer_config(&[ECHO.0])),
    );
    assert_eq!(accepted.unwrap().id(), key.node_id());
    drop(dialed.unwrap());
    dialer.close();
    honest.transport.close();
    base.assert_restored().await;
}
