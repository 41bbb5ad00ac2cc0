# e. Every Go line in use (lines.sh: v0.34.35, v0.37.18, v0.38.25, v0.40.0,
# v1.0.1): a real node of each, kvstore on loopback, against our peer. All in
# parallel (the dial cases stay STAY_SECONDS_LINES, 110 s, through the node's
# ping/pong round). Per line:
#   line-<v>-rust-dials-node   our peer dials the node (persistent peer)
#   line-<v>-node-dials-rust   the node dials ours (in its persistent_peers)
#   line-<v>-reject-network, line-<v>-reject-block-version
#                              a peer of ours on another chain / with block
#                              protocol 10 dials the node and is dialed by it:
#                              refused by both sides, both ways

# The consensus kinds each line must send us in a dial case (beyond these,
# any kind is fine as long as our decoder knows it): every line sends its
# round steps; v1.0 also announces the block parts it has.
line_expected_kinds() {
    case $1 in
    v1.*) echo new_round_step has_proposal_block_part ;;
    *) echo new_round_step ;;
    esac
}

# case_line_dial IMPL LINE MODE: MODE `dials` (our peer dials the node) or
# `dialed` (the node dials our peer).
case_line_dial() {
    local A=$1 line=$2 mode=$3 pa ida h1 h2 outbound kinds k stay=$STAY_SECONDS_LINES
    node_init node "$(line_bin "$line")" || return
    pa=$(ports 1)
    ida=$(new_key a) || { fail "key generation failed"; return; }
    # Our peer advertises the node's channels (not PEX) so consensus traffic
    # flows to it.
    # shellcheck disable=SC2054 # the channel list is one argument
    local peer_flags=(--log-level info --chain-id "$chain_id" --home "$CASE_DIR/a"
        --listen "tcp://127.0.0.1:$pa" --moniker "line-$A" --channels 20,21,22,23,30,38,40,60,61)
    if [ "$mode" = dials ]; then
        node_start node
        node_wait_height 2 90s >/dev/null || { fail "cometbft $line produced no blocks"; return; }
        start_peer "$A" a "${peer_flags[@]}" --persistent-peers "$node_id@127.0.0.1:$node_p2p"
        outbound=true
    else
        start_peer "$A" a "${peer_flags[@]}"
        expect a 30s event=listening || return
        node_start node --p2p.persistent_peers "$ida@127.0.0.1:$pa"
        outbound=false
    fi
    # The node dials its persistent peers after a random delay of up to 3 s.
    expect a 60s event=peer_added "id=$node_id" moniker=cometbft-real "network=$chain_id" \
        "version=$(line_reported_version "$line")" "outbound=$outbound" block_version=11 \
        "p2p_version=$(line_p2p_version "$line")" "channels=$NODE_CHANNELS" || return
    say "    cometbft $line ($node_id) at 127.0.0.1:$node_p2p, chain $chain_id; $A outbound=$outbound"
    expect a 30s event=consensus "id=$node_id" type=new_round_step
    node_lists "$ida" 30s || fail "the node does not list $ida in /net_info"
    h1=$(node_wait_height 0 30s)
    expect_none a "${stay}s" event=peer_removed
    h2=$(node_wait_height $((h1 + 1)) 10s) || fail "the node stopped producing blocks while we were connected"
    node_lists "$ida" || fail "after ${stay} s the node no longer lists $ida in /net_info"
    # Every consensus message was understood: no empty, unknown or malformed one.
    expect_none a 0.1s event=consensus_error
    for k in $(line_expected_kinds "$line"); do
        grep -q "\"event\":\"consensus\".*\"type\":\"$k\"" "$CASE_DIR/a.out" ||
            fail "no consensus message of kind $k from the node"
    done
    kinds=$(grep '"event":"consensus"' "$CASE_DIR/a.out" | sed -n 's/.*"type":"\([a-z0-9_]*\)".*/\1/p' | sort -u | tr '\n' ' ')
    say "    connected for ${stay} s, node went from height $h1 to ${h2:-?}; consensus kinds decoded: $kinds"
}

# case_line_reject IMPL LINE WHAT: WHAT `network` (our peers are on another
# chain) or `block_version` (ours say block protocol 10). Peer `a` is in the
# node's persistent_peers (the node dials it), peer `b` dials the node.
case_line_reject() {
    local A=$1 line=$2 what=$3 pa pb ida idb flags text
    node_init node "$(line_bin "$line")" || return
    read -r pa pb < <(ports 2 | tr '\n' ' ')
    ida=$(new_key a) && idb=$(new_key b) || { fail "key generation failed"; return; }
    case $what in
    network)
        flags=(--chain-id "other-$chain_id")
        text="peer is on a different network"
        ;;
    block_version)
        flags=(--chain-id "$chain_id" --block-version 10)
        text="peer is on a different Block version"
        ;;
    esac
    # shellcheck disable=SC2054 # the channel list is one argument
    local common=(--log-level info --channels 20,21,22,23,30,38,40,60,61 "${flags[@]}")
    start_peer "$A" a "${common[@]}" --home "$CASE_DIR/a" --listen "tcp://127.0.0.1:$pa" --moniker "rej-a-$A"
    expect a 30s event=listening || return
    node_start node --p2p.persistent_peers "$ida@127.0.0.1:$pa"
    node_wait_height 1 90s >/dev/null || { fail "cometbft $line did not start"; return; }
    start_peer "$A" b "${common[@]}" --home "$CASE_DIR/b" --listen "tcp://127.0.0.1:$pb" --moniker "rej-b-$A" \
        --dial "$node_id@127.0.0.1:$node_p2p"
    # The node dials a: a refuses it (inbound), the node refuses a (outbound).
    expect a 30s event=rejected direction=inbound reason=incompatible "detail=$what"
    # b dials the node: b refuses it (outbound), the node refuses b (inbound).
    expect b 30s event=rejected direction=outbound reason=incompatible "detail=$what"
    wait_until 10s grep -q "Inbound Peer rejected.*$text" "$CASE_DIR/node.log" ||
        fail "the node log shows no inbound rejection \"$text\""
    wait_until 10s grep -Eq "(Error dialing peer|Error reconnecting to peer).*$text" "$CASE_DIR/node.log" ||
        fail "the node log shows no outbound rejection \"$text\""
    expect_none a 0.5s event=peer_added
    expect_none b 0.1s event=peer_added
    WAIT_KIND=none node_lists "$ida" 1s && fail "the node lists $ida in /net_info"
    WAIT_KIND=none node_lists "$idb" 1s && fail "the node lists $idb in /net_info"
    grep -h "$text" "$CASE_DIR/node.log" | head -n 2 | sed 's/^/    node: /'
}

for line in "${GO_LINES[@]}"; do
    line_cases=("line-$line-rust-dials-node" "line-$line-node-dials-rust"
        "line-$line-reject-network" "line-$line-reject-block-version")
    wanted=0
    for name in "${line_cases[@]}"; do case_selected "$name" && wanted=1; done
    [ "$wanted" = 1 ] || continue
    ensure_line "$line"
    # Short cases first, so they are done before the long ones need the CPU.
    run_case_parallel "line-$line-reject-network" case_line_reject rust "$line" network
    run_case_parallel "line-$line-reject-block-version" case_line_reject rust "$line" block_version
    run_case_parallel "line-$line-rust-dials-node" case_line_dial rust "$line" dials
    run_case_parallel "line-$line-node-dials-rust" case_line_dial rust "$line" dialed
done
