# f. The switch's persistent peers against real nodes (issue 8): a restarted
# peer is redialed, both ways, for every Go line (lines.sh), in parallel:
#   switch-<v>-node-redials-rust  the node has our peer in persistent_peers; our
#                                 peer is killed (SIGKILL) and started again with
#                                 the same key and port: the node dials it again
#   switch-<v>-rust-redials-node  our peer has the node in --persistent-peers;
#                                 the node is stopped and started again on the
#                                 same home and ports: our switch dials it again

SWITCH_LINES=("${GO_LINES[@]}")

# The node's channels (not PEX), so consensus traffic proves the new link.
# shellcheck disable=SC2054 # the channel list is one argument
SWITCH_PEER_FLAGS=(--log-level info --channels 20,21,22,23,30,38,40,60,61)

case_switch_node_redials() {
    local A=$1 line=$2 pa ida
    node_init node "$(line_bin "$line")" || return
    pa=$(ports 1)
    ida=$(new_key a) || { fail "key generation failed"; return; }
    local flags=("${SWITCH_PEER_FLAGS[@]}" --chain-id "$chain_id" --home "$CASE_DIR/a"
        --listen "tcp://127.0.0.1:$pa")
    start_peer "$A" a "${flags[@]}" --moniker "redial-a-$A"
    local first=$LAST_PID
    expect a 30s event=listening "id=$ida" || return
    # PEX off: its address book (which has our address) must not dial us; the
    # reconnection must be the persistent-peer routine's.
    node_start node --p2p.persistent_peers "$ida@127.0.0.1:$pa" --p2p.pex=false
    expect a 60s event=peer_added "id=$node_id" outbound=false || return
    expect a 30s event=consensus "id=$node_id" type=new_round_step || return
    node_lists "$ida" 30s || fail "the node does not list $ida in /net_info"
    say "    cometbft $line ($node_id) dialed us; killing our peer"
    # A crash: SIGKILL to the peer itself (the child of its `timeout` wrapper).
    local child
    child=$(ps -o pid= --ppid "$first" | tr -d ' ')
    [ -n "$child" ] && kill -KILL "$child" 2>/dev/null
    { stop_pid "$first"; } 2>/dev/null
    # Same key, same port: the node's persistent-peer routine must find us.
    start_peer "$A" a2 "${flags[@]}" --moniker "redial-a2-$A"
    expect a2 30s event=listening "id=$ida" || return
    # Go retries 5 s + up to 3 s after each failed dial (up to 7.5 s seen on a
    # loaded machine; 60 s leaves room for a few missed redials).
    expect a2 60s event=peer_added "id=$node_id" outbound=false || return
    expect a2 30s event=consensus "id=$node_id" type=new_round_step
    node_lists "$ida" 30s || fail "after our restart the node does not list $ida in /net_info"
    grep -q "Reconnecting to peer.*$ida" "$CASE_DIR/node.log" ||
        fail "the node log shows no reconnection to $ida"
    expect_none a2 2s event=peer_removed
}

case_switch_rust_redials() {
    local A=$1 line=$2 pa ida h
    node_init node "$(line_bin "$line")" || return
    node_start node
    node_wait_height 2 90s >/dev/null || { fail "cometbft $line produced no blocks"; return; }
    pa=$(ports 1)
    ida=$(new_key a) || { fail "key generation failed"; return; }
    start_peer "$A" a "${SWITCH_PEER_FLAGS[@]}" --chain-id "$chain_id" --home "$CASE_DIR/a" \
        --listen "tcp://127.0.0.1:$pa" --moniker "redial-$A" \
        --persistent-peers "$node_id@127.0.0.1:$node_p2p"
    expect a 30s event=peer_added "id=$node_id" outbound=true persistent=true || return
    node_lists "$ida" 30s || fail "the node does not list $ida in /net_info"
    say "    connected to cometbft $line ($node_id); restarting it"
    node_stop TERM
    expect a 30s event=peer_removed "id=$node_id" || return
    # Started again on the same home and ports, PEX off: its address book (which
    # has our address) must not make it dial us; the reconnection is ours.
    node_restart node2 --p2p.pex=false
    expect a 90s --count 2 event=peer_added "id=$node_id" outbound=true persistent=true || return
    h=$(node_wait_height 1 60s) || fail "the restarted node does not answer RPC"
    # (Up to 7 s on a loaded machine: the restarted node's RPC and peer set.)
    node_lists "$ida" 60s || fail "the restarted node does not list $ida in /net_info"
    local dials
    dials=$(grep -c "\"event\":\"dialing\".*$node_id" "$CASE_DIR/a.out")
    [ "$dials" -ge 2 ] || fail "our peer dialed the node $dials time(s), expected a redial"
    expect_none a 2s event=peer_added "id=$node_id" outbound=false
    say "    redialed after the restart ($dials dials in all); node at height ${h:-?}"
}

for line in "${SWITCH_LINES[@]}"; do
    wanted=0
    for name in "switch-$line-node-redials-rust" "switch-$line-rust-redials-node"; do
        case_selected "$name" && wanted=1
    done
    [ "$wanted" = 1 ] || continue
    ensure_line "$line"
    run_case_parallel "switch-$line-node-redials-rust" case_switch_node_redials rust "$line"
    run_case_parallel "switch-$line-rust-redials-node" case_switch_rust_redials rust "$line"
done
