//! The task of one admitted connection: every reactor call for it, in grammar order, the
//! delivery of its messages, and its stop path.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use mukan_reactor_api::{
    Envelope, InboxItem, Observer, PeerInbox, ProtocolError, ReactorError, StopReason,
};
use tokio::sync::watch;

use crate::peer_set::{Conn, Phase, RunState, StopRequest};
use crate::routing::Routes;
use crate::switch::{Inner, guarded};

/// The task of one admitted connection: every reactor call for it, in grammar order.
pub(crate) async fn run_conn(
    inner: Arc<Inner>,
    conn: Arc<Conn>,
    predecessor: Option<watch::Receiver<bool>>,
) {
    if let Some(mut done) = predecessor {
        // The replaced connection's remove_peer comes before our init_peer.
        let _ = done.wait_for(|d| *d).await;
    }
    if conn.stop_requested().is_some() || !inner.is_running() {
        let request = conn.settle(StopReason::Shutdown);
        finish(&inner, &conn, None, request, false).await;
        return;
    }
    let routes = inner.routes.clone();
    for reactor in routes.reactors() {
        guarded(|| reactor.init_peer(&conn.handle));
    }
    let mut inbox = match conn.peer.start() {
        Ok(inbox) => inbox,
        Err(observed) => {
            let request = conn.settle(observed);
            finish(&inner, &conn, None, request, true).await;
            return;
        }
    };
    if conn.stop_requested().is_none() {
        conn.set_phase(Phase::Added);
        for reactor in routes.reactors() {
            guarded(|| reactor.add_peer(&conn.handle));
        }
    }
    let observed = drain(&routes, &conn, &mut *inbox).await;
    let request = conn.settle(observed);
    finish(&inner, &conn, Some(inbox), request, true).await;
}

/// Delivers the peer's messages to their reactors until the connection ends or a stop is
/// asked; returns what ended it.
async fn drain(routes: &Routes, conn: &Conn, inbox: &mut dyn PeerInbox) -> StopReason {
    loop {
        // Lock-free on the hot path: the stop flag is an atomic, and the task registers for
        // a stop wake-up only when its inbox is empty.
        let next = std::future::poll_fn(|cx| {
            if conn.stop_flagged() {
                return Poll::Ready(None);
            }
            match inbox.poll_next(cx) {
                Poll::Ready(item) => Poll::Ready(Some(item)),
                Poll::Pending if conn.park_drain(cx.waker()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let Some(item) = next else {
            return conn
                .stop_requested()
                .map_or(StopReason::Shutdown, |r| r.reason);
        };
        match item {
            Some(InboxItem::Received {
                channel,
                message,
                lease,
            }) => {
                let Some(reactor) = routes.route(channel) else {
                    return StopReason::Protocol(ProtocolError::UnroutedChannel(channel));
                };
                let message_type = reactor.message_type(channel, &message);
                conn.traffic
                    .observer()
                    .received(channel, message_type, message.len());
                let envelope = Envelope {
                    src: conn.handle.clone(),
                    channel,
                    message,
                    lease,
                };
                let deliver = || {
                    reactor.filter(channel, &envelope.message)?;
                    reactor.receive(envelope)
                };
                match std::panic::catch_unwind(AssertUnwindSafe(deliver)) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return StopReason::Reactor(e),
                    Err(_) => return StopReason::Reactor(ReactorError::Panicked { channel }),
                }
            }
            Some(InboxItem::Stopped(reason)) => return reason,
            Some(_) => {}
            None => return StopReason::ClosedByPeer,
        }
    }
}

/// The stop path of a connection, run once by its task: close (flushing first if asked),
/// `remove_peer` on every reactor if `init_peer` was called, free the slot, then redial a
/// persistent peer if the reason allows it.
async fn finish(
    inner: &Arc<Inner>,
    conn: &Arc<Conn>,
    inbox: Option<Box<dyn PeerInbox>>,
    request: StopRequest,
    initialized: bool,
) {
    conn.set_phase(Phase::Stopping);
    let StopRequest { reason, flush } = request;
    if flush && initialized {
        let _ = tokio::time::timeout(inner.config.flush_timeout, conn.peer.flush_stop()).await;
    }
    conn.peer.stop();
    drop(inbox);
    if initialized {
        for reactor in inner.routes.reactors() {
            guarded(|| reactor.remove_peer(&conn.handle, &reason));
        }
    }
    inner.observer.peer_stopped(&*conn.handle, &reason);
    // Also forgets an old redial position once a connection lasted, whatever ended it.
    let first = conn
        .persistent
        .then(|| inner.redial_start(conn.id, conn.connected_at.elapsed()));
    let redial = {
        let mut t = inner.table.lock();
        let holds_slot = t.slots.get(&conn.id).is_some_and(|c| c.seq == conn.seq);
        if holds_slot {
            t.slots.remove(&conn.id);
        }
        t.live.remove(&conn.seq);
        holds_slot && conn.persistent && reason.redial() && t.state == RunState::Running
    };
    conn.finish();
    if redial {
        inner.spawn_redial(conn.id, first.unwrap_or(0));
    }
}
