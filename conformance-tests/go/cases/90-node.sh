# h. The node program `mukan-p2p` (package mukan-node) against Go, in parallel:
#   node-start-on-cometbft-home   `mukan-p2p start` on a home made by `cometbft
#                                 init` (v0.38.25, genesis of a running node):
#                                 same node ID as cometbft reads; it dials one
#                                 real node (persistent peer) and is dialed by
#                                 another made the same way; all list each other
#                                 in /net_info; SIGTERM stops it with exit 0
#   node-crawl-mixed-network      `mukan-p2p crawl --json` from one seed of a
#                                 local network of 5 Go peers (gopeer, PEX) and 5
#                                 of our nodes (`mukan-p2p start`): all 10
#                                 reachable, each with its ID and moniker
#   node-addrbook-to-go           the addrbook.json our node saves on SIGTERM goes
#                                 into the home of a fresh real node, which starts,
#                                 and dials the addresses it holds

# ours_home NAME: `cometbft init` (v0.38.25) in $CASE_DIR/NAME with the genesis
# of the node of node_init, configured for loopback like node_init does. Sets
# ours_home, ours_id.
ours_home() {
    ours_home="$CASE_DIR/$1"
    "$COMETBFT" init --home "$ours_home" >"$CASE_DIR/$1-init.log" 2>&1 || { fail "cometbft init failed"; return 1; }
    cp "$node_home/config/genesis.json" "$ours_home/config/genesis.json" || return 1
    sed -i \
        -e 's/^allow_duplicate_ip = .*/allow_duplicate_ip = true/' \
        -e 's/^addr_book_strict = .*/addr_book_strict = false/' \
        -e 's/^prometheus = .*/prometheus = false/' \
        "$ours_home/config/config.toml"
    ours_id=$("$MUKAN_P2P" show-node-id --home "$ours_home" 2>"$CASE_DIR/$1-id.err") ||
        { fail "mukan-p2p show-node-id failed: $(cat "$CASE_DIR/$1-id.err")"; return 1; }
    local go_id
    go_id=$("$COMETBFT" show-node-id --home "$ours_home")
    [ "$ours_id" = "$go_id" ] || { fail "mukan-p2p reads node ID $ours_id, cometbft $go_id"; return 1; }
}

# ours_start NAME HOME MONIKER [FLAGS...]: `mukan-p2p start` on free loopback
# ports (P2P and RPC), log in $CASE_DIR/NAME.log. Sets ours_p2p, ours_rpc,
# ours_pid (its `timeout` wrapper, which passes SIGTERM on).
ours_start() {
    local name=$1 home=$2 moniker=$3 pp pr
    shift 3
    read -r pp pr < <(ports 2 | tr '\n' ' ')
    ours_p2p=$pp
    ours_rpc="http://127.0.0.1:$pr"
    timeout -k 5 "$PROCESS_LIFETIME" "$MUKAN_P2P" start --home "$home" --moniker "$moniker" \
        --p2p.laddr "tcp://127.0.0.1:$pp" --rpc.laddr "tcp://127.0.0.1:$pr" "$@" \
        >"$CASE_DIR/$name.log" 2>&1 &
    ours_pid=$!
    CASE_PIDS+=("$ours_pid")
}

# rpc_lists RPC ID [TIMEOUT]: the node at RPC lists peer ID in /net_info.
rpc_lists() {
    bg_wait "$GOPEER" wait-rpc-peer --rpc "$1" --id "$2" --timeout "${3:-15s}" >/dev/null 2>&1
}

# ours_stop PID NAME: SIGTERM, then the exit code must be 0 within 15 s.
ours_stop() {
    local pid=$1 name=$2 rc
    kill -TERM "$pid" 2>/dev/null
    if ! wait_until 15s pid_gone "$pid"; then
        fail "mukan-p2p ($name) did not stop within 15 s of SIGTERM"
        stop_pid "$pid"
        return 1
    fi
    wait "$pid"
    rc=$?
    [ "$rc" = 0 ] || { fail "mukan-p2p ($name) exited with $rc after SIGTERM"; return 1; }
}

case_node_start() {
    local n1_id n1_p2p n1_rpc n2_id n2_rpc
    node_init node "$COMETBFT" || return
    node_start node
    node_wait_height 1 90s >/dev/null || { fail "cometbft did not start"; return; }
    n1_id=$node_id n1_p2p=$node_p2p n1_rpc=$node_rpc
    ours_home ours || return
    ours_start ours "$ours_home" mukan-ours --p2p.persistent_peers "$n1_id@127.0.0.1:$n1_p2p"
    local pid=$ours_pid rpc=$ours_rpc p2p=$ours_p2p
    rpc_lists "$rpc" "$n1_id" 60s || { fail "our node does not list the Go node $n1_id in /net_info"; return; }
    rpc_lists "$n1_rpc" "$ours_id" 30s || fail "the Go node does not list ours ($ours_id) in /net_info"
    say "    mukan-p2p ($ours_id) on a cometbft-init home dialed cometbft $n1_id"
    # A second Go node, made the same way (cometbft init + the chain's genesis),
    # with ours as its persistent peer: ours accepts it.
    local chain_genesis="$node_home/config/genesis.json"
    node_init node2 "$COMETBFT" || return
    cp "$chain_genesis" "$node_home/config/genesis.json"
    node_start node2 --p2p.persistent_peers "$ours_id@127.0.0.1:$p2p"
    n2_id=$node_id n2_rpc=$node_rpc
    rpc_lists "$rpc" "$n2_id" 60s || fail "our node does not list the second Go node $n2_id in /net_info"
    rpc_lists "$n2_rpc" "$ours_id" 30s || fail "the second Go node does not list ours in /net_info"
    ours_stop "$pid" ours || return
    [ -s "$ours_home/config/addrbook.json" ] || fail "no addrbook.json saved on SIGTERM"
    say "    the second node ($n2_id) dialed ours; SIGTERM: exit 0, address book saved"
}

case_node_crawl() {
    local pts i ids=() monikers=() seed
    mapfile -t pts < <(ports 5)
    # g1: the Go hub; g2..g5 dial it. r1: our node, dials g1; r2..r5 dial r1.
    for i in 1 2 3 4 5; do
        ids[i]=$(new_key "g$i") || { fail "key generation failed"; return; }
        monikers[i]="crawl-go-$i"
    done
    start_peer go g1 "${COMMON[@]}" --home "$CASE_DIR/g1" --listen "tcp://127.0.0.1:${pts[0]}" --moniker "${monikers[1]}" --pex
    expect g1 30s event=listening || return
    seed="${ids[1]}@127.0.0.1:${pts[0]}"
    for i in 2 3 4 5; do
        start_peer go "g$i" "${COMMON[@]}" --home "$CASE_DIR/g$i" --listen "tcp://127.0.0.1:${pts[$((i - 1))]}" \
            --moniker "${monikers[i]}" --pex --persistent-peers "$seed"
    done
    local r1="" r1_rpc=""
    for i in 1 2 3 4 5; do
        local home="$CASE_DIR/r$i"
        "$MUKAN_P2P" init --home "$home" --chain-id mukan-interop --moniker "crawl-rust-$i" >"$CASE_DIR/r$i-init.log" 2>&1 ||
            { fail "mukan-p2p init failed"; return; }
        sed -i -e 's/^allow_duplicate_ip = .*/allow_duplicate_ip = true/' \
            -e 's/^addr_book_strict = .*/addr_book_strict = false/' "$home/config/config.toml"
        ids[i + 5]=$("$MUKAN_P2P" show-node-id --home "$home") || { fail "show-node-id failed"; return; }
        monikers[i + 5]="crawl-rust-$i"
        if [ "$i" = 1 ]; then
            ours_start r1 "$home" "crawl-rust-1" --p2p.persistent_peers "$seed"
            r1="${ids[6]}@127.0.0.1:$ours_p2p"
            r1_rpc=$ours_rpc
        else
            ours_start "r$i" "$home" "crawl-rust-$i" --p2p.persistent_peers "$r1"
        fi
    done
    # Everyone is connected to its hub: g1 holds g2..g5 and r1, r1 holds r2..r5.
    expect g1 60s event=addrbook size=5 || return
    for i in 2 3 4 5; do
        rpc_lists "$r1_rpc" "${ids[i + 5]}" 60s || { fail "r$i did not connect to r1"; return; }
    done
    bg_wait timeout 60 "$MUKAN_P2P" crawl --seeds "$seed" --chain-id mukan-interop --timeout 20s --json \
        >"$CASE_DIR/crawl.json" 2>"$CASE_DIR/crawl.log" || { fail "mukan-p2p crawl failed"; return; }
    # One reachable node per line: the objects hold no nested braces.
    tr -d ' \n' <"$CASE_DIR/crawl.json" | sed 's/},{/}\n{/g' >"$CASE_DIR/crawl.lines"
    local found=0
    for i in $(seq 1 10); do
        if grep "\"id\":\"${ids[i]}\"" "$CASE_DIR/crawl.lines" | grep -q "\"moniker\":\"${monikers[i]}\""; then
            found=$((found + 1))
        else
            fail "the crawl does not list ${ids[i]} with moniker ${monikers[i]}"
        fi
    done
    local reachable
    reachable=$(grep -c '"handshake_latency_ms"' "$CASE_DIR/crawl.lines")
    [ "$reachable" = 10 ] || fail "the crawl lists $reachable reachable nodes, expected 10"
    say "    crawl from g1: $found of 10 nodes (5 Go, 5 mukan-p2p) with their IDs and monikers"
}

case_node_addrbook_to_go() {
    local pts i ids=() book
    node_init gonode "$COMETBFT" || return
    local go_home=$node_home go_id=$node_id
    mapfile -t pts < <(ports 3)
    for i in 0 1 2; do
        ids[i]=$(new_key "p$i") || { fail "key generation failed"; return; }
        start_peer go "p$i" --log-level info --chain-id "$chain_id" --home "$CASE_DIR/p$i" \
            --listen "tcp://127.0.0.1:${pts[i]}" --moniker "book-p$i" --pex
    done
    ours_home ours || return
    local peers
    peers=$(for i in 0 1 2; do printf '%s@127.0.0.1:%s,' "${ids[i]}" "${pts[i]}"; done)
    ours_start ours "$ours_home" mukan-book --p2p.persistent_peers "${peers%,}"
    for i in 0 1 2; do
        expect "p$i" 60s event=peer_added "id=$ours_id" || { fail "our node did not connect to p$i"; return; }
    done
    ours_stop "$ours_pid" ours || return
    book="$ours_home/config/addrbook.json"
    book_has "$book" "${ids[@]}" || { fail "our saved book lacks the peers"; return; }
    # The fresh Go node gets our book and nothing else: no seeds, no persistent
    # peers. Its ensure-peers (at once: it has no peers) dials from the book.
    cp "$book" "$go_home/config/addrbook.json"
    node_home=$go_home
    node_start gonode
    for i in 0 1 2; do
        expect "p$i" 60s event=peer_added "id=$go_id" outbound=false ||
            fail "the Go node did not dial p$i from our address book"
    done
    grep -Eiq "panic|error loading|failed to load" "$CASE_DIR/gonode.log" && fail "the Go node complained loading the book"
    node_lists "${ids[0]}" 10s || fail "the Go node does not list p0 in /net_info"
    say "    a fresh cometbft started on our addrbook.json and dialed all 3 addresses in it"
}

run_case_parallel node-start-on-cometbft-home case_node_start rust mukan-p2p
run_case_parallel node-crawl-mixed-network case_node_crawl rust mukan-p2p
run_case_parallel node-addrbook-to-go case_node_addrbook_to_go rust mukan-p2p
