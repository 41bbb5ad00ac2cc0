# i. Reactors of our own (example-reactors: `tx-relay`, `consensus-watch`) on
# real Go networks, in parallel:
#   tx-relay-<v>                     a tx handed to our relay (key=value, over p2p
#                                    only) reaches a kvstore node of line v, is
#                                    committed, and the node's /abci_query reads it
#   consensus-watch-testnet-v0.38.25 a 4-validator `cometbft testnet` on loopback:
#                                    the watch, dialing one validator, reports the
#                                    precommits of all 4 at >= 5 consecutive heights
#                                    and the block hashes (and proposers) of /block
#   consensus-watch-<v>              one node of every other line, 30 s: heights
#                                    increase, hashes equal /block, nothing
#                                    undecodable (v1.0: HasProposalBlockPart seen)
#   consensus-watch-slow-printer-v0.38.25
#                                    the watch's printer waits 5 s per line for
#                                    STAY_SECONDS_LINES (110 s, a ping/pong round):
#                                    the node never drops it, and the round state it
#                                    holds for the watch follows the chain meanwhile

REACTORS_BIN_DIR=$(dirname "$MUKAN_P2P")
TX_RELAY="$REACTORS_BIN_DIR/tx-relay"
CONSENSUS_WATCH="$REACTORS_BIN_DIR/consensus-watch"

# reactor_home NAME: a CometBFT home for one of our programs in $CASE_DIR/NAME
# (`cometbft init`, then the genesis of the node of node_init). Sets
# reactor_home, reactor_id.
reactor_home() {
    reactor_home="$CASE_DIR/$1"
    "$COMETBFT" init --home "$reactor_home" >"$CASE_DIR/$1-init.log" 2>&1 || { fail "cometbft init failed"; return 1; }
    cp "$node_home/config/genesis.json" "$reactor_home/config/genesis.json" || return 1
    reactor_id=$("$COMETBFT" show-node-id --home "$reactor_home")
}

case_tx_relay() {
    local line=$2 pa key value out
    node_init node "$(line_bin "$line")" || return
    node_start node
    node_wait_height 2 40s >/dev/null || { fail "cometbft $line produced no blocks"; return; }
    reactor_home relay || return
    pa=$(ports 1)
    key="mukan-$line"
    value="relayed-$RANDOM$RANDOM"
    say "    cometbft $line ($node_id) at 127.0.0.1:$node_p2p; relay $reactor_id sends $key=$value"
    # As an operator would: the node and our address in the home's config.toml.
    sed -i -e "s/^persistent_peers = .*/persistent_peers = \"$node_id@127.0.0.1:$node_p2p\"/" \
        -e "s|^laddr = \"tcp://0.0.0.0:26656\"|laddr = \"tcp://127.0.0.1:$pa\"|" "$reactor_home/config/config.toml"
    if ! bg_wait timeout 60 "$TX_RELAY" --home "$reactor_home" --tx "$key=$value" \
        >"$CASE_DIR/relay.out" 2>"$CASE_DIR/relay.err"; then
        fail "tx-relay failed: $(tail -n 3 "$CASE_DIR/relay.err")"
        return
    fi
    expect relay 1s event=tx_sent "tx=$key=$value" peers=1 || return
    # Only p2p carried it: the node's RPC is used to read it back, never to submit.
    if out=$(bg_wait "$GOPEER" abci-query --rpc "$node_rpc" --key "$key" --value "$value" --timeout 30s 2>&1); then
        say "    the node's abci_query: $out"
    else
        fail "$out"
    fi
}

# testnet_start N BIN: `BIN testnet --v N --n 1` in $CASE_DIR/net: validators
# node0..node<N-1>, started on free loopback ports with each other as persistent
# peers (logs net-node<i>.log), and node<N>, a home on the same chain that no
# node runs. Sets tn_ids, tn_p2p, tn_rpc (arrays) and node_home (node<N>).
testnet_start() {
    local n=$1 bin=$2 i j peers pl
    "$bin" testnet --v "$n" --n 1 --o "$CASE_DIR/net" --starting-ip-address 127.0.0.1 \
        >"$CASE_DIR/testnet-init.log" 2>&1 || { fail "cometbft testnet failed"; return 1; }
    read -r -a pl < <(ports $((2 * n)) | tr '\n' ' ')
    tn_ids=() tn_p2p=() tn_rpc=()
    for ((i = 0; i < n; i++)); do
        tn_ids[i]=$("$bin" show-node-id --home "$CASE_DIR/net/node$i")
        tn_p2p[i]=${pl[2 * i]}
        tn_rpc[i]="http://127.0.0.1:${pl[2 * i + 1]}"
    done
    for ((i = 0; i < n; i++)); do
        peers=""
        for ((j = 0; j < n; j++)); do
            [ "$j" = "$i" ] || peers+="${peers:+,}${tn_ids[j]}@127.0.0.1:${tn_p2p[j]}"
        done
        sed -i \
            -e 's/^allow_duplicate_ip = .*/allow_duplicate_ip = true/' \
            -e 's/^addr_book_strict = .*/addr_book_strict = false/' \
            -e 's/^prometheus = .*/prometheus = false/' \
            -e 's/^pprof_laddr = .*/pprof_laddr = ""/' \
            -e 's/^grpc_laddr = .*/grpc_laddr = ""/' \
            "$CASE_DIR/net/node$i/config/config.toml"
        timeout -k 5 "$PROCESS_LIFETIME" "$bin" start --home "$CASE_DIR/net/node$i" --proxy_app=kvstore \
            --p2p.laddr "tcp://127.0.0.1:${tn_p2p[i]}" --rpc.laddr "tcp://127.0.0.1:${pl[2 * i + 1]}" \
            --p2p.pex=true --p2p.seeds "" --p2p.persistent_peers "$peers" >"$CASE_DIR/net-node$i.log" 2>&1 &
        CASE_PIDS+=("$!")
    done
    node_home="$CASE_DIR/net/node$n"
}

# watch_run NAME PEER SECONDS [FLAGS...]: consensus-watch --json on the home of
# reactor_home, dialing PEER, for SECONDS; output in NAME.out.
watch_run() {
    local name=$1 peer=$2 secs=$3 pa
    shift 3
    pa=$(ports 1)
    bg_wait timeout $((secs + 30)) "$CONSENSUS_WATCH" --home "$reactor_home" --peers "$peer" \
        --p2p.laddr "tcp://127.0.0.1:$pa" --json --exit-after "${secs}s" "$@" \
        >"$CASE_DIR/$name.out" 2>"$CASE_DIR/$name.err" ||
        fail "consensus-watch exited with an error: $(tail -n 3 "$CASE_DIR/$name.err")"
}

# check_watch NAME RPC VALIDATORS MIN_RUN [KINDS]: gopeer check-watch on NAME.out.
check_watch() {
    local out kinds=${5:-}
    if out=$(bg_wait "$GOPEER" check-watch --file "$CASE_DIR/$1.out" --rpc "$2" --validators "$3" \
        --min-run "$4" ${kinds:+--kinds "$kinds"} 2>&1); then
        sed 's/^/    /' <<<"$out"
    else
        fail "check-watch: $out"
    fi
}

case_watch_testnet() {
    local line=$2 h
    testnet_start 4 "$(line_bin "$line")" || return
    node_rpc=${tn_rpc[0]}
    h=$(node_wait_height 2 60s) || { fail "the testnet produced no blocks"; return; }
    say "    4 validators of $line at heights >= $h; watching ${tn_ids[0]} (node0)"
    reactor_home=$node_home
    watch_run watch "${tn_ids[0]}@127.0.0.1:${tn_p2p[0]}" 30
    check_watch watch "$node_rpc" 4 5
}

case_watch_line() {
    local line=$2 kinds=""
    node_init node "$(line_bin "$line")" || return
    node_start node
    node_wait_height 2 40s >/dev/null || { fail "cometbft $line produced no blocks"; return; }
    reactor_home watch || return
    say "    cometbft $line ($node_id) at 127.0.0.1:$node_p2p; watching it for 30 s"
    case $line in v1.*) kinds=has_proposal_block_part ;; esac
    watch_run watch "$node_id@127.0.0.1:$node_p2p" 30
    check_watch watch "$node_rpc" 1 5 "$kinds"
}

case_watch_slow() {
    local line=$2 stay=$STAY_SECONDS_LINES pid t0 h ours samples=0 behind=0
    node_init node "$(line_bin "$line")" || return
    node_start node
    node_wait_height 2 40s >/dev/null || { fail "cometbft $line produced no blocks"; return; }
    reactor_home watch || return
    local pa
    pa=$(ports 1)
    # It runs past the checks below (which must see it connected), then gets SIGTERM.
    timeout -k 5 $((stay + 60)) "$CONSENSUS_WATCH" --home "$reactor_home" --peers "$node_id@127.0.0.1:$node_p2p" \
        --p2p.laddr "tcp://127.0.0.1:$pa" --json --slow-printer 5s \
        >"$CASE_DIR/watch.out" 2>"$CASE_DIR/watch.err" &
    pid=$!
    CASE_PIDS+=("$pid")
    t0=$SECONDS
    # Every 10 s: the round state the node holds for the watch (what the watch last
    # announced) is at most 2 heights behind the node's own.
    while [ $((SECONDS - t0)) -lt "$stay" ]; do
        sleep 10
        h=$(node_wait_height 0 5s) || continue
        ours=$(bg_wait "$GOPEER" peer-height --rpc "$node_rpc" --id "$reactor_id" 2>&1) ||
            { fail "after $((SECONDS - t0)) s the node holds no round state for the watch: $ours"; break; }
        samples=$((samples + 1))
        [ "${ours%% *}" -ge $((h - 2)) ] || { behind=$((behind + 1)); say "    at $((SECONDS - t0)) s: node at $h, watch announced $ours"; }
    done
    [ "$samples" -ge $((stay / 20)) ] || fail "only $samples samples of the node's view of the watch in $stay s"
    [ "$behind" = 0 ] || fail "$behind of $samples samples: the watch's round state fell behind the chain"
    node_lists "$reactor_id" || fail "after $stay s the node no longer lists the watch in /net_info"
    grep -E "Stopping peer for error.*$reactor_id|$reactor_id.*Stopping peer for error" "$CASE_DIR/node.log" >"$CASE_DIR/stops" &&
        fail "the node stopped the watch for an error: $(head -n 1 "$CASE_DIR/stops")"
    stop_pid "$pid"
    local printed
    printed=$(grep -c '"event":"height"' "$CASE_DIR/watch.out")
    say "    $stay s with a printer taking 5 s a line: $printed heights printed, node at $(node_wait_height 0 5s); $((samples - behind)) of $samples samples of the node's view of the watch within 2 heights of the chain"
    [ "$printed" -le $((stay / 5 + 3)) ] || fail "$printed lines printed: the printer was not slow"
}

if [ -x "$TX_RELAY" ] && [ -x "$CONSENSUS_WATCH" ] || [ "$RUST_PEER_BUILD" = 1 ]; then
    for line in "${GO_LINES[@]}"; do
        case_selected "tx-relay-$line" || case_selected "consensus-watch-$line" || continue
        ensure_line "$line"
        run_case_parallel "tx-relay-$line" case_tx_relay rust "$line"
        [ "$line" = "$COMETBFT_VERSION" ] ||
            run_case_parallel "consensus-watch-$line" case_watch_line rust "$line"
    done
    run_case_parallel "consensus-watch-testnet-$COMETBFT_VERSION" case_watch_testnet rust "$COMETBFT_VERSION"
    run_case_parallel "consensus-watch-slow-printer-$COMETBFT_VERSION" case_watch_slow rust "$COMETBFT_VERSION"
elif [ "$REQUIRE_RUST" = 1 ]; then
    say "FAIL reactors: $TX_RELAY or $CONSENSUS_WATCH missing (REQUIRE_RUST=1)"
    record_fail reactors
else
    say "SKIP reactors: $TX_RELAY or $CONSENSUS_WATCH not built"
    record_skip
fi
