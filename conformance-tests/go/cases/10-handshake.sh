# a. Handshake: A listens, B dials A; each reports the other's true ID,
# moniker, channels, network and listen address.
case_handshake() {
    local A=$1 B=$2 pa pb ida idb
    read -r pa pb < <(ports 2 | tr '\n' ' ')
    ida=$(new_key a) && idb=$(new_key b) || { fail "key generation failed"; return; }
    start_peer "$A" a "${COMMON[@]}" --home "$CASE_DIR/a" --listen "tcp://127.0.0.1:$pa" \
        --moniker "hs-a-$A" --channels 20,21
    expect a 30s event=listening "id=$ida" || return
    start_peer "$B" b "${COMMON[@]}" --home "$CASE_DIR/b" --listen "tcp://127.0.0.1:$pb" \
        --moniker "hs-b-$B" --channels 22 --persistent-peers "$ida@127.0.0.1:$pa"
    expect b 30s event=peer_added "id=$ida" "moniker=hs-a-$A" channels=7e2021 network=mukan-interop \
        "listen_addr=tcp://127.0.0.1:$pa" outbound=true block_version=11 p2p_version=8
    expect a 30s event=peer_added "id=$idb" "moniker=hs-b-$B" channels=7e22 network=mukan-interop \
        "listen_addr=tcp://127.0.0.1:$pb" outbound=false block_version=11 p2p_version=8
    expect_none a 1s event=peer_removed
    expect_none b 0.1s event=peer_removed
}


for a in "${IMPLS[@]}"; do
    for b in "${IMPLS[@]}"; do
        run_case "handshake-$b-dials-$a" case_handshake "$a" "$b"
    done
done
