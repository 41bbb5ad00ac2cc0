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
    bg_wait "$GOPEER" wait-height --rpc "$node_rpc" --height "$1" --timeout "${2:-40s}"
}

# node_lists ID [TIMEOUT]: the node lists peer ID in RPC /net_info.
node_lists() {
    bg_wait "$GOPEER" wait-rpc-peer --rpc "$node_rpc" --id "$1" --timeout "${2:-1s}" >/dev/null 2>&1
}

# start_real_node [BIN]: node_init + node_start of a node named `node` (BIN:
# default $COMETBFT, v0.38.25) that reaches height 2. Sets node_home node_id
# node_p2p node_rpc chain_id.
start_real_node() {
    local h
    node_init node "${1:-$COMETBFT}" || return 1
    node_start node
    if ! h=$(node_wait_height 2 40s 2>&1); then
        fail "cometbft produced no blocks: $h"
        return 1
    fi
    say "    cometbft $node_id at 127.0.0.1:$node_p2p, chain $chain_id, height $h"
}
