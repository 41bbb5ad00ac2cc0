//! `Switch::dial_parsed_address` (how PEX dials seeds given by host name) resolves the name
//! through the switch's resolver at every call, and dials where it points now.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use mukan_reactor_api::{DialError, Dialer as _, Network as _, ParsedAddress};
use mukan_transport::MemoryNetwork;

const PORT: u16 = 26_656;

#[tokio::test(start_paused = true)]
async fn a_name_is_resolved_at_every_dial() {
    let net = MemoryNetwork::default();
    let resolver = Arc::new(ScriptedResolver::default());
    let mut spec = NodeSpec::new(1);
    spec.resolver = Some(resolver.clone());
    let a = memory_node(&net, spec).await;
    let mut b_spec = NodeSpec::new(9);
    b_spec.port = PORT;
    let b = memory_node(&net, b_spec).await;
    let name: ParsedAddress = format!("{}@seed.example:{PORT}", b.id()).parse().unwrap();

    // Unknown name: a typed failure, nothing dialed.
    let err = a.sw.dial_parsed_address(name.clone()).await.unwrap_err();
    assert!(matches!(err, DialError::Unresolved(_)), "{err:?}");
    assert_eq!(resolver.count(), 1);

    // Pointing nowhere (nothing listens at ip(10)): a failed dial.
    resolver.set("seed.example", vec![ip(10)]);
    let err = a.sw.dial_parsed_address(name.clone()).await.unwrap_err();
    assert!(matches!(err, DialError::Transport(_)), "{err:?}");
    assert_eq!(resolver.count(), 2);

    // The name moved to B: connects there.
    resolver.set("seed.example", vec![ip(9)]);
    a.sw.dial_parsed_address(name).await.unwrap();
    assert_eq!(resolver.count(), 3);
    wait_until("B connected", Duration::from_secs(5), || {
        a.sw.peer(&b.id()).is_some()
    })
    .await;
    assert_eq!(a.sw.peer(&b.id()).unwrap().socket_addr().ip(), ip(9));
    a.sw.stop().await;
    b.sw.stop().await;
}

/// With `routable_names_only` (what `mukan-p2p` sets on a public network), a name that
/// resolves to loopback or private space is not dialed (DNS rebinding); a routable answer
/// after it is taken instead.
#[tokio::test(start_paused = true)]
async fn a_name_that_resolves_inside_is_refused_when_names_must_be_routable() {
    let net = MemoryNetwork::default();
    let resolver = Arc::new(ScriptedResolver::default());
    let mut spec = NodeSpec::new(1);
    spec.resolver = Some(resolver.clone());
    spec.config.routable_names_only = true;
    let a = memory_node(&net, spec).await;
    let mut b_spec = NodeSpec::new(9);
    b_spec.port = PORT;
    let b = memory_node(&net, b_spec).await;
    let name: ParsedAddress = format!("{}@seed.example:{PORT}", b.id()).parse().unwrap();

    // Only inside answers (B listens at ip(9), a loopback address): refused, nothing dialed.
    resolver.set(
        "seed.example",
        vec![ip(9), std::net::Ipv4Addr::new(10, 1, 2, 3).into()],
    );
    let err = a.sw.dial_parsed_address(name.clone()).await.unwrap_err();
    assert!(matches!(err, DialError::Unresolved(_)), "{err:?}");
    assert!(a.sw.peer(&b.id()).is_none());

    // A routable answer after the inside one is the one dialed (nothing listens there).
    resolver.set(
        "seed.example",
        vec![ip(9), std::net::Ipv4Addr::new(8, 8, 4, 4).into()],
    );
    let err = a.sw.dial_parsed_address(name).await.unwrap_err();
    assert!(matches!(err, DialError::Transport(_)), "{err:?}");
    assert!(a.sw.peer(&b.id()).is_none());
    a.sw.stop().await;
    b.sw.stop().await;
}
