//! Bad-input suite, second part (cases of conformance-tests/BAD_INPUT.md: A13, A14, C9, C10, C11): an evil peer on
//! real loopback TCP stalls, drips, floods pings and pongs, or stops reading. Every case
//! asserts its outcome, that the honest side closed the socket, that nothing panicked, and
//! that open sockets and live tokio tasks are back to their baseline. Deadlines are scaled
//! down through `Config`; the assertions are on typed outcomes and counts, never on time.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::evil::{
    Baseline, ECHO, Evil, Honest, PING, PONG, SERIAL, drain, expect_closed, fast_config,
    packet_msg, peer_config,
};
use mukan_node_key::NodeKey;
use mukan_reactor_api::{
    SendError, StopReason, TimeoutKind, Transport, TransportError, TrySendError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `fast_config` with the pings of the default config (60 s): in these cases the evil peer
/// does not answer pings, and the case is about something else.
fn quiet_pings() -> mukan_transport::Config {
    let mut c = fast_config();
    c.mconn.ping_interval = Duration::from_secs(60);
    c.mconn.pong_timeout = Duration::from_secs(45);
    c
}

/// `AuthSigMessage{pub_key: PublicKey{<key_field>}, sig}` with `len(body)` in front.
fn auth_msg(key_field: &[u8], sig: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if !key_field.is_empty() {
        body.push(0x0a);
        common::evil::varint(key_field.len() as u64, &mut body);
        body.extend_from_slice(key_field);
    }
    body.push(0x12);
    common::evil::varint(sig.len() as u64, &mut body);
    body.extend_from_slice(sig);
    common::evil::delimited(&body)
}

/// The `PublicKey` field of `k`'s ed25519 key.
fn ed(k: &NodeKey) -> Vec<u8> {
    key_field(0x0a, k.public_key().as_bytes())
}

/// A `PublicKey` oneof field `tag` holding `key`.
fn key_field(tag: u8, key: &[u8]) -> Vec<u8> {
    let mut f = vec![tag];
    common::evil::varint(key.len() as u64, &mut f);
    f.extend_from_slice(key);
    f
}

#[tokio::test]
async fn a8_to_a12_bad_authentication_messages_are_auth_failures() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let key = NodeKey::from_seed([7; 32]);
    // Each case: a name and how to build the sealed authentication stage from the challenge.
    type Craft = Box<dyn Fn(&mut Evil, &[u8; 32]) -> Vec<u8>>;
    let cases: Vec<(&str, Craft)> = vec![
        (
            "A8 undecryptable frame",
            Box::new(|evil, c| {
                let k = NodeKey::from_seed([7; 32]);
                let mut f = evil.seal(&auth_msg(&ed(&k), &k.sign(c)));
                f[3] ^= 0x80;
                f
            }),
        ),
        (
            "A9 no public key",
            Box::new(|evil, c| {
                let k = NodeKey::from_seed([7; 32]);
                evil.seal(&auth_msg(&[], &k.sign(c)))
            }),
        ),
        (
            "A10 secp256k1 key",
            Box::new(|evil, _| evil.seal(&auth_msg(&key_field(0x12, &[2; 33]), &[1; 64]))),
        ),
        (
            "A10 bls12-381 key (oneof field 3)",
            Box::new(|evil, _| evil.seal(&auth_msg(&key_field(0x1a, &[3; 48]), &[1; 96]))),
        ),
        (
            "A10 unknown oneof field 7",
            Box::new(|evil, _| evil.seal(&auth_msg(&key_field(0x3a, &[4; 32]), &[1; 64]))),
        ),
        (
            "A11 signature over other bytes",
            Box::new(|evil, _| {
                let k = NodeKey::from_seed([7; 32]);
                evil.seal(&auth_msg(&ed(&k), &k.sign(b"not the challenge")))
            }),
        ),
        (
            "A11 one signature bit flipped",
            Box::new(|evil, c| {
                let k = NodeKey::from_seed([7; 32]);
                let mut sig = k.sign(c).to_vec();
                sig[17] ^= 0x04;
                evil.seal(&auth_msg(&ed(&k), &sig))
            }),
        ),
        (
            "A11 another node's key with our signature",
            Box::new(|evil, c| {
                let k = NodeKey::from_seed([7; 32]);
                let other = NodeKey::from_seed([8; 32]);
                evil.seal(&auth_msg(&ed(&other), &k.sign(c)))
            }),
        ),
    ];
    for (name, craft) in cases {
        let honest = Honest::listen(fast_config()).await;
        let accept = honest.transport.accept(peer_config(&[ECHO.0]));
        let evil = async {
            let (mut evil, challenge) = Evil::after_eph(honest.addr).await;
            let bytes = craft(&mut evil, &challenge);
            evil.tcp.write_all(&bytes).await.unwrap();
            evil.expect_closed().await
        };
        let (err, _) = tokio::join!(accept, evil);
        honest.transport.close();
        assert!(
            err.as_ref().err().and_then(TransportError::reject_reason)
                == Some(mukan_reactor_api::RejectReason::AuthFailure),
            "{name}: {:?}",
            err.err()
        );
    }
    // Control: the same crafting with a good signature passes authentication (the honest
    // side then waits for a NodeInfo that never comes), so the failures above come from the
    // flaw each case injects, not from the crafting.
    let honest = Honest::listen(fast_config()).await;
    let accept = honest.transport.accept(peer_config(&[ECHO.0]));
    let evil = async {
        let (mut evil, challenge) = Evil::after_eph(honest.addr).await;
        let bytes = evil.seal(&auth_msg(&ed(&key), &key.sign(&challenge)));
        evil.tcp.write_all(&bytes).await.unwrap();
        evil.expect_closed().await
    };
    let (err, _) = tokio::join!(accept, evil);
    honest.transport.close();
    assert!(
        matches!(
            err.as_ref().err(),
            Some(TransportError::Timeout(TimeoutKind::NodeInfo))
        ),
        "control: {:?}",
        err.err()
    );
    // A12: we dial a node expecting one ID and it authenticates as another.
    let honest = Honest::listen(fast_config()).await;
    let dialer_key = std::sync::Arc::new(NodeKey::from_seed([3; 32]));
    let dialer = mukan_transport::TcpTransport::new(
        dialer_key.clone(),
        common::evil::node_info(&dialer_key, &[ECHO.0]),
        fast_config(),
    );
    let wrong = mukan_reactor_api::NetAddress::new(
        NodeKey::from_seed([9; 32]).node_id(),
        honest.addr.ip(),
        honest.addr.port(),
    );
    let (dialed, _accepted) = tokio::join!(
        dialer.dial(wrong, peer_config(&[ECHO.0])),
        honest.transport.accept(peer_config(&[ECHO.0])),
    );
    assert!(
        dialed
            .as_ref()
            .err()
            .and_then(TransportError::reject_reason)
            == Some(mukan_reactor_api::RejectReason::AuthFailure),
        "A12: {:?}",
        dialed.err()
    );
    dialer.close();
    honest.transport.close();
    base.assert_restored().await;
}

#[tokio::test]
async fn a13_a_stalled_handshake_is_a_handshake_timeout() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let honest = Honest::listen(fast_config()).await;
    // Connects and sends nothing at all.
    let mut tcp = Evil::connect_raw(honest.addr, &[]).await;
    let (err, got) = tokio::join!(honest.transport.accept(peer_config(&[ECHO.0])), async {
        expect_closed(&mut tcp).await
    });
    assert!(
        matches!(
            err.as_ref().err(),
            Some(TransportError::Timeout(TimeoutKind::Handshake))
        ),
        "{:?}",
        err.err()
    );
    // Our side did send its own ephemeral key (35 bytes) before the stall.
    assert_eq!(got, 35);
    drop(tcp);
    honest.transport.close();
    base.assert_restored().await;
}

#[tokio::test]
async fn a14_a_slow_drip_is_cut_at_the_overall_handshake_deadline_not_per_read() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let cfg = fast_config();
    let step = cfg.handshake_timeout / 4;
    let honest = Honest::listen(cfg).await;
    // A valid ephemeral-key message, one byte per quarter of the handshake timeout: every
    // single read is well inside the timeout, the whole message (35 bytes) never is.
    let eph = mukan_secret_conn::Handshake::from_ephemeral_secret([9; 32]).eph_key_message();
    let mut tcp = Evil::connect_raw(honest.addr, &[]).await;
    let accept = honest.transport.accept(peer_config(&[ECHO.0]));
    let drip = async {
        let mut sent = 0;
        for b in &eph {
            if tcp.write_all(&[*b]).await.is_err() {
                break;
            }
            sent += 1;
            // Stop dripping as soon as the honest side closed (read returns 0 or fails).
            let mut sink = [0u8; 64];
            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(step, tcp.read(&mut sink)).await {
                break;
            }
        }
        sent
    };
    let (err, sent) = tokio::join!(accept, drip);
    assert!(
        matches!(
            err.as_ref().err(),
            Some(TransportError::Timeout(TimeoutKind::Handshake))
        ),
        "{:?}",
        err.err()
    );
    // Closed long before the key was complete: the deadline covers the whole handshake.
    assert!(sent < eph.len(), "the drip completed ({sent} bytes)");
    expect_closed(&mut tcp).await;
    drop(tcp);
    honest.transport.close();
    base.assert_restored().await;
}

/// Upgrades an evil peer against an honest node running `cfg`, starts the honest peer, runs
/// `misbehave` (which must end by shutting down its writes), and returns what the honest side
/// delivered and why it stopped.
async fn run_started(
    cfg: mukan_transport::Config,
    misbehave: impl AsyncFnOnce(&mut Evil),
) -> (Vec<(mukan_reactor_api::ChannelId, Bytes)>, StopReason) {
    run_started_with(cfg, peer_config(&[ECHO.0]), misbehave).await
}

/// As [`run_started`], with the honest side's channels given.
async fn run_started_with(
    cfg: mukan_transport::Config,
    channels: mukan_reactor_api::PeerConfig,
    misbehave: impl AsyncFnOnce(&mut Evil),
) -> (Vec<(mukan_reactor_api::ChannelId, Bytes)>, StopReason) {
    let honest = Honest::listen(cfg).await;
    let key = NodeKey::from_seed([7; 32]);
    let (peer, mut evil) = tokio::join!(
        honest.transport.accept(channels),
        Evil::upgraded(honest.addr, &key, &[ECHO.0]),
    );
    let peer = peer.unwrap();
    let inbox = peer.start().unwrap();
    let ((got, reason), _) = tokio::join!(drain(inbox), async {
        misbehave(&mut evil).await;
        evil.expect_closed().await
    });
    drop(peer);
    assert_eq!(honest.transport.connection_count(), 0);
    honest.transport.close();
    (got, reason)
}

#[tokio::test]
async fn c9_unsolicited_pongs_keep_the_connection_up() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    // The honest side sends no ping in this case (60 s interval), so every pong is
    // unsolicited; the messages after them arrive only if the pongs did not end the peer.
    let (got, reason) = run_started(quiet_pings(), async |evil| {
        let mut bytes = Vec::new();
        for _ in 0..3 {
            bytes.extend_from_slice(&PONG);
        }
        bytes.extend_from_slice(&packet_msg(i64::from(ECHO.0), true, b"after the pongs"));
        evil.send_sealed(&bytes).await;
        // Three more, one frame each.
        for _ in 0..3 {
            evil.send_sealed(&PONG).await;
        }
        evil.send_sealed(&packet_msg(i64::from(ECHO.0), true, b"still up"))
            .await;
        evil.tcp.shutdown().await.unwrap();
    })
    .await;
    let msgs: Vec<&[u8]> = got.iter().map(|(_, m)| m.as_ref()).collect();
    assert_eq!(msgs, [&b"after the pongs"[..], b"still up"]);
    assert!(matches!(reason, StopReason::ClosedByPeer), "{reason:?}");
    base.assert_restored().await;
}

#[tokio::test]
async fn c10_a_ping_flood_neither_stops_the_peer_nor_holds_up_messages() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    const PINGS: usize = 10_000;
    const MESSAGES: usize = 100;
    let (got, reason) = run_started(quiet_pings(), async |evil| {
        // 10,000 pings with a message after every 100, sealed up front.
        let mut plain = Vec::new();
        for i in 0..PINGS {
            plain.extend_from_slice(&PING);
            if i % (PINGS / MESSAGES) == PINGS / MESSAGES - 1 {
                let n = (i / (PINGS / MESSAGES)) as u32;
                plain.extend_from_slice(&packet_msg(i64::from(ECHO.0), true, &n.to_be_bytes()));
            }
        }
        let sealed = evil.seal(&plain);
        // Write the flood while reading (and discarding) the pongs it provokes, so that
        // neither side's socket buffer blocks the other.
        let (mut rd, mut wr) = evil.tcp.split();
        let reader = async {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        };
        let writer = async {
            wr.write_all(&sealed).await.unwrap();
            wr.shutdown().await.unwrap();
        };
        let (pongs_bytes, ()) = tokio::join!(reader, writer);
        // Pongs did come back (at least one sealed frame), but not one frame per ping.
        assert!(pongs_bytes >= mukan_secret_conn::SEALED_FRAME_LEN);
    })
    .await;
    // Every message arrived, in order, despite the flood.
    assert_eq!(got.len(), MESSAGES);
    for (i, (channel, m)) in got.iter().enumerate() {
        assert_eq!(*channel, ECHO);
        assert_eq!(m.as_ref(), (i as u32).to_be_bytes());
    }
    assert!(matches!(reason, StopReason::ClosedByPeer), "{reason:?}");
    base.assert_restored().await;
}

#[tokio::test]
async fn c11_a_peer_that_stops_reading_fills_only_its_own_queue() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let mut cfg = quiet_pings();
    cfg.mconn.send_timeout = Duration::from_millis(300);
    let honest = Honest::listen(cfg).await;
    let (stalled_key, good_key) = (NodeKey::from_seed([7; 32]), NodeKey::from_seed([8; 32]));
    let (stalled_peer, stalled) =
        tokio::join!(honest.transport.accept(peer_config(&[ECHO.0])), async {
            let tcp = Evil::connect_small(honest.addr, 4096).await;
            Evil::upgraded_over(tcp, &stalled_key, &[ECHO.0]).await
        },);
    let (good_peer, mut good) = tokio::join!(
        honest.transport.accept(peer_config(&[ECHO.0])),
        Evil::upgraded(honest.addr, &good_key, &[ECHO.0]),
    );
    let (stalled_peer, good_peer) = (stalled_peer.unwrap(), good_peer.unwrap());
    let stalled_inbox = stalled_peer.start().unwrap();
    let good_inbox = good_peer.start().unwrap();
    // The stalled peer never reads: try_send turns false after a bounded number of messages
    // (once the socket buffers are full too, it stays false: three refusals in a row, 50 ms
    // apart, mean nothing is moving any more).
    let chunk = Bytes::from(vec![0xabu8; 16 * 1024]);
    let mut accepted = 0usize;
    let mut refusals = 0;
    while refusals < 3 {
        match stalled_peer.try_send(ECHO, chunk.clone()) {
            Ok(()) => {
                accepted += 1;
                refusals = 0;
                tokio::task::yield_now().await;
            }
            Err(TrySendError::Full) => {
                refusals += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("after {accepted} messages: {e}"),
        }
        assert!(accepted < 2_000, "the send queue is not bounded");
    }
    // A blocking send gives up at the send timeout with a typed error.
    assert_eq!(
        stalled_peer.send(ECHO, chunk.clone()).await,
        Err(SendError::Timeout)
    );
    // The other peer is unaffected: its messages arrive while the first one is stalled.
    for i in 0..20u8 {
        good_peer
            .send(ECHO, Bytes::from(vec![i; 100]))
            .await
            .unwrap();
    }
    for i in 0..20u8 {
        let packet = good.read_delimited().await;
        assert!(packet.ends_with(&[i; 100]), "message {i} corrupted");
    }
    assert_eq!(stalled_peer.try_send(ECHO, chunk), Err(TrySendError::Full));
    // Both evil peers go away; the honest side closes both cleanly.
    drop(stalled);
    good.tcp.shutdown().await.unwrap();
    let ((_, stalled_reason), (_, good_reason), _) = tokio::join!(
        drain(stalled_inbox),
        drain(good_inbox),
        good.expect_closed()
    );
    assert!(
        !matches!(stalled_reason, StopReason::Shutdown),
        "{stalled_reason:?}"
    );
    assert!(
        matches!(good_reason, StopReason::ClosedByPeer),
        "{good_reason:?}"
    );
    drop((stalled_peer, good_peer));
    assert_eq!(honest.transport.connection_count(), 0);
    honest.transport.close();
    base.assert_restored().await;
}

/// The honest side's channel with a receive capacity of 4,096 bytes.
fn small_channel() -> mukan_reactor_api::PeerConfig {
    let mut c = peer_config(&[ECHO.0]);
    c.channels[0] =
        c.channels[0].with_recv_message_capacity(std::num::NonZeroUsize::new(4096).unwrap());
    c
}

#[tokio::test]
async fn c6_a_message_over_the_channel_capacity_disconnects_with_nothing_delivered() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    // Four packets of 1,024 without EOF fill the 4,096-byte capacity exactly; one byte more
    // is over, and no EOF ever comes.
    let (got, reason) = run_started_with(quiet_pings(), small_channel(), async |evil| {
        let mut plain = Vec::new();
        for _ in 0..4 {
            plain.extend_from_slice(&packet_msg(i64::from(ECHO.0), false, &[7; 1024]));
        }
        plain.extend_from_slice(&packet_msg(i64::from(ECHO.0), false, &[7; 1]));
        evil.send_sealed(&plain).await;
    })
    .await;
    assert!(got.is_empty(), "part of an oversized message was delivered");
    assert!(matches!(reason, StopReason::Protocol(_)), "{reason:?}");
    base.assert_restored().await;
}

#[tokio::test]
async fn c6_a_message_at_the_channel_capacity_is_delivered() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let (got, reason) = run_started_with(quiet_pings(), small_channel(), async |evil| {
        let mut plain = Vec::new();
        for i in 0..4 {
            plain.extend_from_slice(&packet_msg(i64::from(ECHO.0), i == 3, &[7; 1024]));
        }
        evil.send_sealed(&plain).await;
        evil.tcp.shutdown().await.unwrap();
    })
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), 4096);
    assert!(matches!(reason, StopReason::ClosedByPeer), "{reason:?}");
    base.assert_restored().await;
}

#[tokio::test]
async fn c7_a_packet_length_prefix_of_2_pow_40_disconnects_before_any_body() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let (got, reason) = run_started(quiet_pings(), async |evil| {
        let mut prefix = Vec::new();
        common::evil::varint(1 << 40, &mut prefix);
        // The prefix alone, then silence: the length is refused before any body arrives.
        evil.send_sealed(&prefix).await;
    })
    .await;
    assert!(got.is_empty());
    assert!(matches!(reason, StopReason::Protocol(_)), "{reason:?}");
    base.assert_restored().await;
}

/// Panics inside its check (the upgrade's only user hook), once per connection.
struct PanickingFilter;

impl mukan_transport::ConnFilter for PanickingFilter {
    fn check(
        &self,
        _remote: std::net::SocketAddr,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), mukan_reactor_api::FilterRefusal>> + Send>>
    {
        Box::pin(async { panic!("injected fault in a connection filter") })
    }
}

#[tokio::test]
async fn d10_a_panic_in_the_upgrade_is_a_rejection_and_the_accept_loop_keeps_serving() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let honest =
        Honest::listen_with(fast_config(), vec![std::sync::Arc::new(PanickingFilter)]).await;
    for _ in 0..5 {
        let mut tcp = Evil::connect_raw(honest.addr, &[]).await;
        let (err, got) = tokio::join!(honest.transport.accept(peer_config(&[ECHO.0])), async {
            expect_closed(&mut tcp).await
        });
        assert!(
            err.as_ref().err().and_then(TransportError::reject_reason)
                == Some(mukan_reactor_api::RejectReason::Filtered),
            "{:?}",
            err.err()
        );
        assert_eq!(got, 0, "bytes sent before the filter ran");
    }
    assert_eq!(honest.transport.connection_count(), 0);
    honest.transport.close();
    base.assert_restored_after_panics(5).await;
}

#[tokio::test]
async fn c2_a_valid_message_of_another_proto_type_as_a_packet_disconnects() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    // A NodeInfo (what the peer sent one stage earlier) where a Packet belongs, and a
    // PEX-style envelope whose field 1 is a varint (a Packet's field 1 is a message).
    let node_info =
        common::evil::node_info(&NodeKey::from_seed([7; 32]), &[ECHO.0]).encode_to_vec();
    for (name, body) in [
        ("NodeInfo", node_info),
        ("varint field 1", vec![0x08, 0x96, 0x01]),
    ] {
        let (got, reason) = run_started(quiet_pings(), async |evil| {
            evil.send_sealed(&common::evil::delimited(&body)).await;
        })
        .await;
        assert!(got.is_empty(), "{name}");
        assert!(
            matches!(reason, StopReason::Protocol(_)),
            "{name}: {reason:?}"
        );
    }
    base.assert_restored().await;
}

#[tokio::test]
async fn b7_a_flood_of_empty_frames_still_lets_the_next_message_through() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    const EMPTY: usize = 10_000;
    let (got, reason) = run_started(quiet_pings(), async |evil| {
        let mut frames = Vec::with_capacity((EMPTY + 1) * mukan_secret_conn::SEALED_FRAME_LEN);
        for _ in 0..EMPTY {
            let mut frame = [0u8; mukan_secret_conn::SEALED_FRAME_LEN];
            evil.sealed.sealer.seal(&[], &mut frame).unwrap();
            frames.extend_from_slice(&frame);
        }
        frames.extend(evil.seal(&packet_msg(i64::from(ECHO.0), true, b"after the flood")));
        evil.tcp.write_all(&frames).await.unwrap();
        evil.tcp.shutdown().await.unwrap();
    })
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.as_ref(), b"after the flood");
    assert!(matches!(reason, StopReason::ClosedByPeer), "{reason:?}");
    base.assert_restored().await;
}

/// Panics in `check()` itself, before returning a future, for its first three connections.
struct PanicsBeforeItsFuture(std::sync::atomic::AtomicUsize);

impl mukan_transport::ConnFilter for PanicsBeforeItsFuture {
    fn check(
        &self,
        _remote: std::net::SocketAddr,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), mukan_reactor_api::FilterRefusal>> + Send>>
    {
        if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
            panic!("injected fault before the filter's future");
        }
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn d10_a_filter_panicking_before_its_future_drops_only_that_connection() {
    let _serial = SERIAL.lock().await;
    let base = Baseline::take();
    let filter = PanicsBeforeItsFuture(std::sync::atomic::AtomicUsize::new(0));
    let honest = Honest::listen_with(fast_config(), vec![std::sync::Arc::new(filter)]).await;
    // The upgrade task of each connection dies: the socket is closed with nothing sent.
    // (`accept` hears nothing of these: it waits for the next connection.)
    for _ in 0..3 {
        let mut tcp = Evil::connect_raw(honest.addr, &[]).await;
        assert_eq!(expect_closed(&mut tcp).await, 0);
    }
    // The accept loop still serves an honest peer.
    let key = std::sync::Arc::new(NodeKey::from_seed([3; 32]));
    let dialer = mukan_transport::TcpTransport::new(
        key.clone(),
        common::evil::node_info(&key, &[ECHO.0]),
        fast_config(),
    );
    let (dialed, accepted) = tokio::join!(
        dialer.dial(honest.target(), peer_config(&[ECHO.0])),
        honest.transport.accept(peer_config(&[ECHO.0])),
    );
    assert_eq!(accepted.unwrap().id(), key.node_id());
    drop(dialed.unwrap());
    dialer.close();
    honest.transport.close();
    base.assert_restored_after_panics(3).await;
}
