# g. PEX and seed mode (issue 9) against Go: gopeer (v0.38.25's p2p/pex) and
# real nodes. All in parallel.
#   pex-star-H-hub-L-learner     a hub H (--pex) and 4 leaves (2 Go, 2 Rust, --pex)
#                                that dial it; a learner L (--pex) dials the hub and
#                                learns all 4 leaves through PEX (its saved book)
#   pex-<v>-rust-learns-from-node  (every Go line v, lines.sh)
#                                our peer dials a real node of line v; the node
#                                answers our request with a peer that only it
#                                knows, which lands in our saved book
#   pex-<v>-node-learns-from-rust  a real node dials our peer (persistent peer)
#                                and asks it for addresses: a peer that only we
#                                know is dialed by the node (its next
#                                ensure-peers)
#   pex-rust-seed-crawls-mixed-network
#                                our seed (--seed-mode) crawls Go and Rust peers
#                                (dials them, learns their neighbours, crawls
#                                those next), then a real v0.38.25 node with
#                                ours as its only seed: our seed answers its
#                                request and disconnects it, and the node
#                                connects to the crawled peers
#   pex-rust-bootstraps-from-go-seed
#                                a real v0.38.25 node in seed mode knows two Go
#                                peers; ours, with it as its only seed, gets
#                                their addresses, is disconnected by the seed,
#                                and connects to both

PEX_LINES=("${GO_LINES[@]}")

case_pex_star() {
    local H=$1 L=$2 pts ph pl idh i ids=() impls=(go rust go rust)
    mapfile -t pts < <(ports 6)
    ph=${pts[0]}
    pl=${pts[1]}
    idh=$(new_key hub) && new_key learner >/dev/null || { fail "key generation failed"; return; }
    start_peer "$H" hub "${COMMON[@]}" --home "$CASE_DIR/hub" --listen "tcp://127.0.0.1:$ph" --moniker hub --pex
    expect hub 30s event=listening || return
    for i in 1 2 3 4; do
        local id
        id=$(new_key "leaf$i") || { fail "key generation failed"; return; }
        ids+=("$id")
        start_peer "${impls[$((i - 1))]}" "leaf$i" "${COMMON[@]}" --home "$CASE_DIR/leaf$i" \
            --listen "tcp://127.0.0.1:${pts[$((i + 1))]}" --moniker "leaf$i" --pex \
            --persistent-peers "$idh@127.0.0.1:$ph"
    done
    # The hub learns each leaf from its inbound connection (a peer is its own source).
    expect hub 30s event=addrbook size=4 || return
    start_peer "$L" learner "${COMMON[@]}" --home "$CASE_DIR/learner" --listen "tcp://127.0.0.1:$pl" \
        --moniker learner --pex --dial "$idh@127.0.0.1:$ph"
    local learner=$LAST_PID
    expect learner 30s event=peer_added "id=$idh" outbound=true || return
    # The hub + 4 leaves, from one PEX answer.
    expect learner 30s event=addrbook size=5 || return
    stop_pid "$learner"
    expect learner 10s event=addrbook_saved size=5 || return
    book_has "$CASE_DIR/learner/config/addrbook.json" "$idh" "${ids[@]}" || fail "the learner's book is incomplete"
}

# Our peer's flags against a real node: the node's chain, PEX (channel 00 in
# common with the node).
pex_peer_flags() { # NAME PORT
    PEX_FLAGS=(--log-level info --chain-id "$chain_id" --home "$CASE_DIR/$1" --listen "tcp://127.0.0.1:$2"
        --moniker "pex-$1")
}

case_pex_rust_learns() {
    local line=$1 px pr idx idr
    node_init node "$(line_bin "$line")" || return
    node_start node
    node_wait_height 1 90s >/dev/null || { fail "cometbft $line did not start"; return; }
    read -r px pr < <(ports 2 | tr '\n' ' ')
    idx=$(new_key x) && idr=$(new_key r) || { fail "key generation failed"; return; }
    # x: a Go peer that only the node knows (it dials the node; the node keeps
    # its self-reported address).
    pex_peer_flags x "$px"
    start_peer go x "${PEX_FLAGS[@]}" --pex --persistent-peers "$node_id@127.0.0.1:$node_p2p"
    expect x 30s event=peer_added "id=$node_id" outbound=true || return
    # r: ours dials the node, asks it for addresses (its book needs more).
    pex_peer_flags r "$pr"
    start_peer rust r "${PEX_FLAGS[@]}" --pex --persistent-peers "$node_id@127.0.0.1:$node_p2p"
    local r=$LAST_PID
    expect r 30s event=peer_added "id=$node_id" outbound=true || return
    expect r 30s event=addrbook size=2 || return
    expect_none r 1s event=peer_removed "id=$node_id"
    grep -Eq "Stopping peer for error.*$idr" "$CASE_DIR/node.log" && fail "the node stopped our peer for an error"
    stop_pid "$r"
    expect r 10s event=addrbook_saved || return
    book_has "$CASE_DIR/r/config/addrbook.json" "$node_id" "$idx" || fail "our book lacks what the node sent"
    say "    cometbft $line told us about $idx"
}

case_pex_node_learns() {
    local line=$1 py pr idy idr
    node_init node "$(line_bin "$line")" || return
    read -r py pr < <(ports 2 | tr '\n' ' ')
    idy=$(new_key y) && idr=$(new_key r) || { fail "key generation failed"; return; }
    pex_peer_flags r "$pr"
    start_peer rust r "${PEX_FLAGS[@]}" --pex
    expect r 30s event=listening || return
    # y: a Go peer that only we know (it dials us; we keep its self-reported
    # address). It has the node's channels, so the node can connect to it.
    pex_peer_flags y "$py"
    start_peer go y "${PEX_FLAGS[@]}" --channels 20,21,22,23,30,38,40,60,61 --dial "$idr@127.0.0.1:$pr"
    expect r 30s event=addrbook size=1 || return
    # The node dials ours (persistent peer) and, its book needing more, asks us.
    node_start node --p2p.persistent_peers "$idr@127.0.0.1:$pr"
    expect r 60s event=peer_added "id=$node_id" outbound=false || return
    # The node's next ensure-peers (at most 30 s on) dials what it learned: y,
    # which only we could have told it about. (The wait is that period: 30 s.)
    expect y 180s event=peer_added "id=$node_id" outbound=false || fail "the node never dialed y"
    node_lists "$idr" 10s || fail "the node does not list $idr in /net_info"
    grep -Eq "Stopping peer for error.*$idr" "$CASE_DIR/node.log" && fail "the node stopped our peer for an error"
    # (Its addrbook.json is not checked: a node writes it on stop from a goroutine
    # that the process does not wait for, so the file may still be the one of
    # its start.)
    say "    we told cometbft $line about $idy, and it dialed it"
}

case_pex_seed_crawls() {
    local pts ids=() names=(g1 g3 r1 r3) i ps
    node_init node "$COMETBFT" || return
    mapfile -t pts < <(ports 5)
    ps=${pts[4]}
    for i in 0 1 2 3; do
        ids[i]=$(new_key "${names[i]}") || { fail "key generation failed"; return; }
    done
    local ids_seed
    ids_seed=$(new_key s) || { fail "key generation failed"; return; }
    # g1 knows g3 and r1 knows r3 (persistent peers, in their books); the seed's
    # book starts with g1 and r1 only.
    pex_peer_flags g3 "${pts[1]}"
    start_peer go g3 "${PEX_FLAGS[@]}" --pex
    pex_peer_flags r3 "${pts[3]}"
    start_peer rust r3 "${PEX_FLAGS[@]}" --pex
    expect g3 30s event=listening && expect r3 30s event=listening || return
    pex_peer_flags g1 "${pts[0]}"
    start_peer go g1 "${PEX_FLAGS[@]}" --pex --persistent-peers "${ids[1]}@127.0.0.1:${pts[1]}"
    pex_peer_flags r1 "${pts[2]}"
    start_peer rust r1 "${PEX_FLAGS[@]}" --pex --persistent-peers "${ids[3]}@127.0.0.1:${pts[3]}"
    expect g1 30s event=peer_added "id=${ids[1]}" && expect r1 30s event=peer_added "id=${ids[3]}" || return
    mkdir -p "$CASE_DIR/s/config"
    "$RUST_PEER" addrbook-write --file "$CASE_DIR/s/config/addrbook.json" --src "${ids[0]}@127.0.0.1:${pts[0]}" \
        --addrs "${ids[0]}@127.0.0.1:${pts[0]},${ids[2]}@127.0.0.1:${pts[2]}" >/dev/null ||
        { fail "could not write the seed's book"; return; }
    pex_peer_flags s "$ps"
    start_peer rust s "${PEX_FLAGS[@]}" --pex --seed-mode
    # First crawl (at start): g1 and r1; their answers bring g3 and r3.
    expect s 30s event=peer_added "id=${ids[0]}" outbound=true || return
    expect s 30s event=peer_added "id=${ids[2]}" outbound=true || return
    expect s 30s event=addrbook size=4 || return
    say "    seed crawled g1 (Go) and r1 (Rust), learned g3 and r3"
    # The Go node, with our seed as its only seed: its book is empty, so it dials
    # the seed and asks; the seed answers and hangs up, as a Go seed does.
    node_start node --p2p.seeds "$ids_seed@127.0.0.1:$ps"
    expect s 60s event=peer_added "id=$node_id" outbound=false || return
    expect s 30s event=peer_removed "id=$node_id" "reason~stopped gracefully" || return
    for i in 0 1 2 3; do
        node_lists "${ids[i]}" 60s || fail "the node did not connect to ${names[i]} (${ids[i]}), which our seed knew"
    done
    WAIT_KIND=none node_lists "$ids_seed" 1s && fail "the node still lists our seed"
    # Second crawl (30 s after the first): the learned g3 and r3. (The wait is
    # the rest of that period, ≈ 27 s.)
    expect s 180s event=peer_added "id=${ids[1]}" outbound=true
    expect s 30s event=peer_added "id=${ids[3]}" outbound=true
    say "    node connected to all four crawled peers; seed crawled g3 and r3 next"
}

case_pex_go_seed() {
    local pts i ids=() names=(g1 g2)
    node_init seed "$COMETBFT" || return
    node_start seed --p2p.seed_mode=true
    node_wait_height 1 90s >/dev/null || { fail "the Go seed did not start"; return; }
    local seed="$node_id@127.0.0.1:$node_p2p"
    mapfile -t pts < <(ports 4)
    for i in 0 1; do
        ids[i]=$(new_key "${names[i]}") || { fail "key generation failed"; return; }
        pex_peer_flags "${names[i]}" "${pts[i]}"
        start_peer go "${names[i]}" "${PEX_FLAGS[@]}" --pex --seeds "$seed"
    done
    # Each Go peer bootstraps from the seed: the seed keeps its address and hangs up.
    for i in 0 1; do
        expect "${names[i]}" 60s event=peer_removed "id=$node_id" || { fail "the seed did not serve ${names[i]}"; return; }
    done
    new_key r >/dev/null || { fail "key generation failed"; return; }
    pex_peer_flags r "${pts[2]}"
    # We advertise a port where nothing listens (pts[3]). Go peers come back to the
    # seed and learn our address from it; had it been real, one of them could dial us
    # in the instant we dial it, and only one of the two connections stays (seen under
    # load, with ours the one closed). Now every connection to g1 and g2 is ours, made
    # from what the seed told us.
    start_peer rust r "${PEX_FLAGS[@]}" --external-address "tcp://127.0.0.1:${pts[3]}" \
        --pex --seeds "$seed"
    expect r 60s event=peer_added "id=$node_id" outbound=true || return
    expect r 30s event=peer_removed "id=$node_id" || return
    for i in 0 1; do
        expect r 30s event=peer_added "id=${ids[i]}" outbound=true || fail "we did not connect to ${names[i]}"
    done
    say "    bootstrapped from the Go seed, connected to g1 and g2"
}

for h in "${IMPLS[@]}"; do
    for l in "${IMPLS[@]}"; do
        run_case_parallel "pex-star-$h-hub-$l-learner" case_pex_star "$h" "$l" rust
    done
done
for line in "${PEX_LINES[@]}"; do
    wanted=0
    for name in "pex-$line-rust-learns-from-node" "pex-$line-node-learns-from-rust"; do
        case_selected "$name" && wanted=1
    done
    [ "$wanted" = 1 ] || continue
    ensure_line "$line"
    run_case_parallel "pex-$line-rust-learns-from-node" case_pex_rust_learns "$line" rust
    run_case_parallel "pex-$line-node-learns-from-rust" case_pex_node_learns "$line" rust
done
run_case_parallel pex-rust-seed-crawls-mixed-network case_pex_seed_crawls rust
run_case_parallel pex-rust-bootstraps-from-go-seed case_pex_go_seed rust
