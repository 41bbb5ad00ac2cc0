# d. The real node (v0.38.25, $COMETBFT): cometbft init + start (kvstore) on
# loopback; it must produce blocks; then peer A connects to it as a persistent
# peer, both sides list each other, consensus traffic arrives and the link
# stays up. Parallel: the Rust case stays STAY_SECONDS_RUST (110 s).

case_real_node() {
    local A=$1 pa ida h1 h2 stay=$STAY_SECONDS_GO
    [ "$A" = rust ] && stay=$STAY_SECONDS_RUST
    start_real_node || return
    # (No artifact is written here: the node-key check below runs in the case
    # itself, and the two cases of this file run in parallel, so a shared file
    # written by both would race.)

    pa=$(ports 1)
    ida=$(new_key a) || { fail "key generation failed"; return; }
    # Advertise the node's channels (not PEX: the Rust peer has none yet) so
    # consensus traffic flows to us (the extra channels are counted, not
    # answered).
    start_peer "$A" a --log-level info --chain-id "$chain_id" --home "$CASE_DIR/a" \
        --listen "tcp://127.0.0.1:$pa" --moniker "real-$A" \
        --channels 20,21,22,23,30,38,40,60,61 --persistent-peers "$node_id@127.0.0.1:$node_p2p"
    expect a 30s event=peer_added "id=$node_id" moniker=cometbft-real "network=$chain_id" version=0.38.25 \
        outbound=true block_version=11 p2p_version=8 "channels=$NODE_CHANNELS" || return
    expect a 30s event=recv "id=$node_id" ch=20
    if [ "$A" = rust ]; then
        # Our side decodes the consensus traffic: NewRoundStep messages with heights.
        expect a 30s event=consensus "id=$node_id" type=new_round_step
        # node_key.json written by `cometbft init` loads in node-key with the same ID.
        local rust_id
        rust_id=$("$RUST_PEER" show-id --key "$node_home/config/node_key.json" 2>&1)
        [ "$rust_id" = "$node_id" ] || fail "node-key loads cometbft's node_key.json as $rust_id, cometbft says $node_id"
    fi
    if ! bg_wait "$GOPEER" wait-rpc-peer --rpc "$node_rpc" --id "$ida" --timeout 30s >"$CASE_DIR/net_info_peer.json" 2>&1; then
        fail "the node does not list $ida in /net_info"
    fi
    h1=$(node_wait_height 0 30s)
    expect_none a "${stay}s" event=peer_removed
    h2=$(node_wait_height $((h1 + 1)) 10s) ||
        fail "the node stopped producing blocks while we were connected"
    node_lists "$ida" || fail "after ${stay} s the node no longer lists $ida in /net_info"
    say "    connected for ${stay} s, node went from height $h1 to ${h2:-?}"
}

for a in "${IMPLS[@]}"; do
    run_case_parallel "real-node-$a" case_real_node "$a"
done
