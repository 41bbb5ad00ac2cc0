# The real `cometbft` node in a case, sourced by run-interop.sh (bash). Works
# for every Go line (lines.sh): the keys edited below exist with these names
# in the config.toml that `cometbft init` writes on v0.34 to v1.0; the ports,
# seeds, PEX and persistent peers are given as `cometbft start` flags, which
# all lines take.

# NodeInfo channels of a node of any line, PEX on: blocksync 40, consensus
# 20-23, mempool 30, evidence 38, statesync 60 61, PEX 00.
NODE_CHANNELS=40202122233038606100

# node_init NAME BIN: `BIN init` in $CASE_DIR/NAME, configured for loopback
# (moniker cometbft-real, duplicate IPs allowed, non-strict address book, no
# seeds, no Prometheus / pprof / gRPC listener). Sets node_home, node_id,
# chain_id, node_bin.
node_init() {
    local name=$1 bin=$2
    node_bin=$bin
    node_home="$CASE_DIR/$name"
    "$bin" init --home "$node_home" >"$CASE_DIR/$name-init.log" 2>&1 || { fail "cometbft init failed"; return 1; }
    [ -f "$node_home/config/config.toml" ] || { fail "cometbft init wrote no config/config.toml"; return 1; }
    sed -i \
        -e 's/^moniker = .*/moniker = "cometbft-real"/' \
        -e 's/^allow_duplicate_ip = .*/allow_duplicate_ip = true/' \
        -e 's/^addr_book_strict = .*/addr_book_strict = false/' \
        -e 's/^seeds = .*/seeds = ""/' \
        -e 's/^prometheus = .*/prometheus = false/' \
        -e 's/^pprof_laddr = .*/pprof_laddr = ""/' \
        -e 's/^grpc_laddr = .*/grpc_laddr = ""/' \
        "$node_home/config/config.toml"
    node_id=$("$bin" show-node-id --home "$node_home") || { fail "show-node-id failed"; return 1; }
    chain_id=$(sed -n 's/^ *"chain_id": *"\([^"]*\)".*/\1/p' "$node_home/config/genesis.json" | head -n 1)
    [ -n "$chain_id" ] || { fail "no chain_id in genesis.json"; return 1; }
}

# node_start NAME [START-FLAGS...]: starts the node initialised by node_init
# (kvstore app, PEX on) on free loopback ports, its log in
# $CASE_DIR/NAME.log. Sets node_p2p (port), node_rpc (URL), node_pid.
node_start() {
    local name=$1 pp pr
    shift
    read -r pp pr < <(ports 2 | tr '\n' ' ')
    node_p2p=$pp
    node_rpc="http://127.0.0.1:$pr"
    timeout -k 5 "$PROCESS_LIFETIME" "$node_bin" start --home "$node_home" --proxy_app=kvstore \
        --p2p.laddr "tcp://127.0.0.1:$pp" --rpc.laddr "tcp://127.0.0.1:$pr" \
        --p2p.pex=true --p2p.seeds "" "$@" >"$CASE_DIR/$name.log" 2>&1 &
    node_pid=$!
    CASE_PIDS+=("$node_pid")
}

# node_wait_height H [TIMEOUT]: waits until the node has height H; prints it.
node_wait_height() {
    bg_wait "$GOPEER" wait-height --rpc "$node_rpc" --height "$1" --timeout "${2:-90s}"
}

# node_lists ID [TIMEOUT]: the node lists peer ID in RPC /net_info (within
# TIMEOUT, default 15 s). A check that it does not is `WAIT_KIND=none
# node_lists ID 5s` (it lasts the whole TIMEOUT when it passes).
node_lists() {
    bg_wait "$GOPEER" wait-rpc-peer --rpc "$node_rpc" --id "$1" --timeout "${2:-15s}" >/dev/null 2>&1
}

# start_real_node [BIN]: node_init + node_start of a node named `node` (BIN:
# default $COMETBFT, v0.38.25) that reaches height 2. Sets node_home node_id
# node_p2p node_rpc chain_id.
start_real_node() {
    local h
    node_init node "${1:-$COMETBFT}" || return 1
    node_start node
    if ! h=$(node_wait_height 2 90s 2>&1); then
        fail "cometbft produced no blocks: $h"
        return 1
    fi
    say "    cometbft $node_id at 127.0.0.1:$node_p2p, chain $chain_id, height $h"
}

# node_stop [SIGNAL]: stops the node started by node_start (default SIGTERM:
# a graceful stop; KILL for a crash) and waits until it is gone.
node_stop() {
    local sig=${1:-TERM} i
    is_child "$node_pid" || return 0
    kill "-$sig" "$node_pid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$node_pid" 2>/dev/null || break
        sleep 0.1
    done
    stop_pid "$node_pid"
}

# node_restart NAME [START-FLAGS...]: starts the node of node_init again on the
# same P2P and RPC ports as the last node_start (its log in $CASE_DIR/NAME.log).
node_restart() {
    local name=$1
    shift
    timeout -k 5 "$PROCESS_LIFETIME" "$node_bin" start --home "$node_home" --proxy_app=kvstore \
        --p2p.laddr "tcp://127.0.0.1:$node_p2p" --rpc.laddr "${node_rpc/http:/tcp:}" \
        --p2p.pex=true --p2p.seeds "" "$@" >"$CASE_DIR/$name.log" 2>&1 &
    node_pid=$!
    CASE_PIDS+=("$node_pid")
}

# book_has FILE ID...: every ID is in the address book FILE (any format our
# loader reads: Go's or ours); prints what is missing.
book_has() {
    local file=$1 dump id missing=()
    shift
    dump=$("$RUST_PEER" addrbook-dump --file "$file" 2>&1) || { say "    cannot load $file: $dump"; return 1; }
    for id in "$@"; do
        grep -q " $id@" <<<"$dump" || missing+=("$id")
    done
    [ "${#missing[@]}" = 0 ] && return 0
    say "    $file lacks ${missing[*]}; it holds:"
    sed 's/^/      /' <<<"$dump"
    return 1
}
