
# c. Rejections. L listens, D dials; both must report a refused peer, and
# neither may add the other.
start_pair_for_rejection() { # L D L-flags... -- D-flags...
    local L=$1 D=$2 pl pd idl lflags=() dflags=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do lflags+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    dflags=("$@")
    read -r pl pd < <(ports 2 | tr '\n' ' ')
    idl=$(new_key l) && new_key d >/dev/null || { fail "key generation failed"; return 1; }
    start_peer "$L" l "${COMMON[@]}" --home "$CASE_DIR/l" --listen "tcp://127.0.0.1:$pl" --moniker "rej-l-$L" "${lflags[@]}"
    expect l 30s event=listening || return 1
    DIAL_TARGET="$idl@127.0.0.1:$pl"
    [ -n "${DIAL_ID:-}" ] && DIAL_TARGET="$DIAL_ID@127.0.0.1:$pl"
    start_peer "$D" d "${COMMON[@]}" --home "$CASE_DIR/d" --listen "tcp://127.0.0.1:$pd" --moniker "rej-d-$D" \
        "${dflags[@]}" --dial "$DIAL_TARGET"
}

expect_no_peers() {
    expect_none l 0.5s event=peer_added
    expect_none d 0.1s event=peer_added
}

case_reject_network() {
    DIAL_ID="" start_pair_for_rejection "$1" "$2" --chain-id net-one -- --chain-id net-two || return
    expect d 30s event=rejected direction=outbound reason=incompatible detail=network
    expect l 30s event=rejected direction=inbound reason=incompatible detail=network
    expect_no_peers
}

case_reject_channels() {
    DIAL_ID="" start_pair_for_rejection "$1" "$2" --echo-channel 7e -- --echo-channel 7d || return
    expect d 30s event=rejected direction=outbound reason=incompatible detail=channels
    expect l 30s event=rejected direction=inbound reason=incompatible detail=channels
    expect_no_peers
}

case_reject_block_version() {
    DIAL_ID="" start_pair_for_rejection "$1" "$2" -- --block-version 10 || return
    expect d 30s event=rejected direction=outbound reason=incompatible detail=block_version
    expect l 30s event=rejected direction=inbound reason=incompatible detail=block_version
    expect_no_peers
}

case_reject_wrong_id() {
    local other
    other=$(new_key other) || { fail "key generation failed"; return; }
    DIAL_ID="$other" start_pair_for_rejection "$1" "$2" || return
    expect d 30s event=rejected direction=outbound reason=auth_failure detail=id_mismatch
    # The listener sees the dialer hang up during the NodeInfo exchange.
    expect l 30s event=rejected direction=inbound reason=auth_failure
    expect_no_peers
}

case_reject_self() {
    local A=$1 p id
    p=$(ports 1)
    id=$(new_key a) || { fail "key generation failed"; return; }
    start_peer "$A" a "${COMMON[@]}" --home "$CASE_DIR/a" --listen "tcp://127.0.0.1:$p" --moniker "self-$A" \
        --dial "$id@127.0.0.1:$p"
    expect a 30s event=rejected direction=outbound reason=self
    expect a 30s event=rejected direction=inbound reason=self
    expect_none a 0.5s event=peer_added
}

for a in "${IMPLS[@]}"; do
    for b in "${IMPLS[@]}"; do
        run_case "reject-network-$b-dials-$a" case_reject_network "$a" "$b"
        run_case "reject-channels-$b-dials-$a" case_reject_channels "$a" "$b"
        run_case "reject-block-version-$b-dials-$a" case_reject_block_version "$a" "$b"
        run_case "reject-wrong-id-$b-dials-$a" case_reject_wrong_id "$a" "$b"
    done
done
for a in "${IMPLS[@]}"; do
    run_case "reject-self-$a" case_reject_self "$a"
done
