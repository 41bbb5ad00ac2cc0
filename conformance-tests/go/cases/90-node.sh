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
#   node-multichain-seed          one `mukan-p2p seed` process on three homes (three
#                                 chains); real nodes of two of them bootstrap from
#                                 it and only ever hear of their own chain

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

# http_get PORT PATH: the body of GET http://127.0.0.1:PORT/PATH (bash's
# /dev/tcp; HTTP/1.0, so the server closes when it has answered).
http_get() {
    local fd reply
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&"$fd"
    reply=$(timeout 10 cat <&"$fd")
    exec {fd}>&-
    printf '%s\n' "${reply#*$'\r\n\r\n'}"
}

# dump_ids FILE: the IDs of the addresses in the address book FILE, one a line.
dump_ids() {
    "$RUST_PEER" addrbook-dump --file "$1" | sed -n 's/.* \([0-9a-f]\{40\}\)@.*/\1/p'
}

case_node_multichain_seed() {
    local pts i home chains=() seed_ids=() seed_addrs=() p_ids=() node_ids=() node_rpcs=() node_pids=()
    # Chains a and b: the genesis of two `cometbft init` (each its own chain ID);
    # chain c: ours only.
    node_init na "$COMETBFT" || return
    local na_home=$node_home
    node_ids[0]=$node_id chains[0]=$chain_id
    node_init nb "$COMETBFT" || return
    local nb_home=$node_home
    node_ids[1]=$node_id chains[1]=$chain_id
    chains[2]="mukan-third-$RANDOM"
    [ "${chains[0]}" != "${chains[1]}" ] || { fail "both nodes got chain ${chains[0]}"; return; }
    # Ports: the seed's p2p (3), RPC and metrics; one Go peer per chain (3).
    mapfile -t pts < <(ports 8)
    local rpc_port=${pts[3]} metrics_port=${pts[4]}
    for i in 0 1 2; do
        home="$CASE_DIR/seed-$i"
        "$MUKAN_P2P" init --home "$home" --chain-id "${chains[i]}" --moniker "multiseed-$i" \
            >"$CASE_DIR/seed-$i-init.log" 2>&1 || { fail "mukan-p2p init failed"; return; }
        sed -i -e "s|tcp://0.0.0.0:26656|tcp://127.0.0.1:${pts[i]}|" \
            -e 's/^allow_duplicate_ip = .*/allow_duplicate_ip = true/' \
            -e 's/^addr_book_strict = .*/addr_book_strict = false/' "$home/config/config.toml"
        seed_ids[i]=$("$MUKAN_P2P" show-node-id --home "$home") || { fail "show-node-id failed"; return; }
        seed_addrs[i]="${seed_ids[i]}@127.0.0.1:${pts[i]}"
    done
    # The first home's [instrumentation] is the process's.
    sed -i -e 's/^prometheus = .*/prometheus = true/' \
        -e "s|^prometheus_listen_addr = .*|prometheus_listen_addr = \"127.0.0.1:$metrics_port\"|" \
        "$CASE_DIR/seed-0/config/config.toml"
    timeout -k 5 "$PROCESS_LIFETIME" "$MUKAN_P2P" seed --home "$CASE_DIR/seed-0" --home "$CASE_DIR/seed-1" \
        --home "$CASE_DIR/seed-2" --rpc.laddr "tcp://127.0.0.1:$rpc_port" >"$CASE_DIR/seed.log" 2>&1 &
    local seed_pid=$!
    CASE_PIDS+=("$seed_pid")
    wait_until 30s grep -q "serving: p2p" "$CASE_DIR/seed.log" || { fail "the seed did not start: $(tail -n 3 "$CASE_DIR/seed.log")"; return; }
    # A Go peer of each chain registers with the seed (its book keeps the peer):
    # it dials the seed once (--dial, not --seeds: it never asks the seed
    # again, so it cannot learn a node's address and dial it first).
    for i in 0 1 2; do
        p_ids[i]=$(new_key "p$i") || { fail "key generation failed"; return; }
        start_peer go "p$i" --log-level info --chain-id "${chains[i]}" --home "$CASE_DIR/p$i" \
            --listen "tcp://127.0.0.1:${pts[5 + i]}" --moniker "multi-p$i" --pex --dial "${seed_addrs[i]}"
    done
    for i in 0 1 2; do
        expect "p$i" 60s event=peer_added "id=${seed_ids[i]}" || { fail "p$i did not reach the seed of its chain"; return; }
        expect "p$i" 30s event=peer_removed "id=${seed_ids[i]}" || { fail "the seed did not serve p$i"; return; }
    done
    # Real nodes of chains a and b, with the seed's address of their chain as
    # their only seed and an empty book: all they learn, they learn from it.
    node_home=$na_home node_id=${node_ids[0]}
    node_start na --p2p.seeds "${seed_addrs[0]}"
    node_rpcs[0]=$node_rpc node_pids[0]=$node_pid
    node_home=$nb_home node_id=${node_ids[1]}
    node_start nb --p2p.seeds "${seed_addrs[1]}"
    node_rpcs[1]=$node_rpc node_pids[1]=$node_pid
    for i in 0 1; do
        rpc_lists "${node_rpcs[i]}" "${p_ids[i]}" 90s ||
            { fail "the chain-${chains[i]} node did not connect to p$i, which only our seed knew"; return; }
        expect "p$i" 30s event=peer_added "id=${node_ids[i]}" outbound=false || return
    done
    say "    real nodes of ${chains[0]} and ${chains[1]} bootstrapped from one seed process of three chains"
    # Each node only ever heard of its own chain: it lists no node of another
    # chain, it dialed none (a dial of another chain's address is refused by
    # both sides: the Go peers print no rejection, the nodes log no
    # "different network"), and the seed's per-chain views agree.
    local id j
    for i in 0 1; do
        for j in 0 1 2; do
            [ "$j" = "$i" ] && continue
            for id in "${p_ids[j]}" "${seed_ids[j]}" "${node_ids[j]:-}"; do
                [ -n "$id" ] || continue
                WAIT_KIND=none rpc_lists "${node_rpcs[i]}" "$id" 1s && fail "the ${chains[i]} node lists $id of ${chains[j]}"
            done
        done
    done
    for i in 0 1 2; do expect_none "p$i" 1s event=rejected reason=incompatible; done
    grep -l "different network" "$CASE_DIR/na.log" "$CASE_DIR/nb.log" && fail "a node dialed another chain's address"
    for i in 0 1 2; do
        http_get "$rpc_port" "/status?chain=${chains[i]}" | grep -q "\"id\":\"${seed_ids[i]}\".*\"network\":\"${chains[i]}\"" ||
            fail "/status?chain=${chains[i]} is not the seed's node of that chain"
    done
    http_get "$rpc_port" "/status?chain=unknown" | grep -q "unknown chain" || fail "/status of an unknown chain answered"
    local metrics served
    metrics=$(http_get "$metrics_port" /metrics)
    for i in 0 1 2; do
        grep -q "^cometbft_p2p_peers{chain_id=\"${chains[i]}\"}" <<<"$metrics" || fail "no metrics of ${chains[i]}"
        served=$(sed -n "s/^cometbft_p2p_seed_addrs_served_count{chain_id=\"${chains[i]}\"} //p" <<<"$metrics")
        [ "${served:-0}" -ge 1 ] || fail "the seed counts no answer on ${chains[i]}: $served"
    done
    # The seed's next crawl (30 s after its start) verifies what it learned:
    # dials of the Go peers and nodes that get through every stage.
    seed_verified() {
        http_get "$metrics_port" /metrics |
            grep -q "^cometbft_p2p_seed_verify_dials_total{chain_id=\"$1\",outcome=\"connected\",stage=\"done\"} [1-9]"
    }
    for i in 0 1 2; do
        wait_until 90s seed_verified "${chains[i]}" || fail "the seed counted no verify dial that connected on ${chains[i]}"
    done
    # SIGTERM: exit 0, each home's book saved, holding its chain's Go peer and
    # nothing of another chain.
    ours_stop "$seed_pid" seed || return
    for i in 0 1 2; do
        book_has "$CASE_DIR/seed-$i/config/addrbook.json" "${p_ids[i]}" || fail "the ${chains[i]} book lacks p$i"
        for id in $(dump_ids "$CASE_DIR/seed-$i/config/addrbook.json"); do
            for j in 0 1 2; do
                [ "$j" = "$i" ] && continue
                [[ " ${p_ids[j]} ${node_ids[j]:-} ${seed_ids[j]} " == *" $id "* ]] &&
                    fail "the ${chains[i]} book holds $id of ${chains[j]}"
            done
        done
    done
    # The nodes' own books: a node writes addrbook.json from a goroutine at stop
    # (not always before it exits: often it is the empty book of its start);
    # whatever it wrote holds its own chain only.
    local written="" homes=("$na_home" "$nb_home")
    for i in 0 1; do
        node_pid=${node_pids[i]}
        node_stop
        [ -s "${homes[i]}/config/addrbook.json" ] || continue
        local ids_in
        ids_in=$(dump_ids "${homes[i]}/config/addrbook.json")
        written+=" ${chains[i]} ($(wc -w <<<"$ids_in") addresses)"
        for id in $ids_in; do
            for j in 0 1 2; do
                [ "$j" = "$i" ] && continue
                [[ " ${p_ids[j]} ${node_ids[j]:-} ${seed_ids[j]} " == *" $id "* ]] &&
                    fail "the ${chains[i]} node's book holds $id of ${chains[j]}"
            done
        done
    done
    say "    the nodes' saved books (written by:${written:- none}) hold their own chain only"
    say "    /status?chain and the metrics tell the chains apart; SIGTERM saved three books, each of its own chain"
}

run_case_parallel node-start-on-cometbft-home case_node_start rust mukan-p2p
run_case_parallel node-crawl-mixed-network case_node_crawl rust mukan-p2p
run_case_parallel node-addrbook-to-go case_node_addrbook_to_go rust mukan-p2p
run_case_parallel node-multichain-seed case_node_multichain_seed rust mukan-p2p
