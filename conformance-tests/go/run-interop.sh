#!/usr/bin/env bash
# Interop suite of issue 4, Go side: gopeer (CometBFT v0.38.25's p2p package)
# and a real `cometbft` node against each other and, once it exists, against
# our Rust peer. Run from anywhere; .ci/run calls it. See README.md beside it.
#
# Environment:
#   CI=true          a missing Go toolchain is a failure (else a skip)
#   RUST_PEER        path of the Rust peer binary
#                    (default: ${CARGO_TARGET_DIR:-<repo>/target}/debug/rustpeer, the
#                    `rustpeer` bin of the conformance-tests crate that `cargo test
#                    --workspace` builds)
#   RUST_PEER_BUILD  1 (default when RUST_PEER is not given): if the rustpeer source exists,
#                    `cargo build -p mukan-conformance-tests --bin rustpeer` first (a
#                    build failure is a failed case); 0: use whatever binary is there
#   REQUIRE_RUST=1   a missing Rust peer fails the Rust cases instead of skipping them
#   INTEROP_ONLY     regex: run only the cases whose name matches
#   INTEROP_CACHE    artifact dir (default <repo>/.interop-cache)
#   INTEROP_KEEP=1   keep the per-run work dir (logs of every process)
#   ECHO_COUNT       messages per echo case (default 1000)
#   STAY_SECONDS_GO, STAY_SECONDS_RUST
#                    how long that peer must stay connected to the real node (defaults 3
#                    and 110: the node pings every 60 s and drops a peer whose pong is
#                    45 s late, so 110 s proves our pong handling)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN="$HERE/bin"
CACHE="${INTEROP_CACHE:-$ROOT/.interop-cache}"
COMETBFT_VERSION=v0.38.25
if [ -n "${RUST_PEER:-}" ]; then
    RUST_PEER_BUILD="${RUST_PEER_BUILD:-0}"
else
    RUST_PEER="${CARGO_TARGET_DIR:-$ROOT/target}/debug/rustpeer"
    RUST_PEER_BUILD="${RUST_PEER_BUILD:-1}"
fi
RUST_PEER_SRC="$ROOT/conformance-tests/src/bin/rustpeer.rs"
# In CI the Rust side is mandatory: a missing Rust peer fails its cases.
if [ "${CI:-}" = true ]; then REQUIRE_RUST="${REQUIRE_RUST:-1}"; else REQUIRE_RUST="${REQUIRE_RUST:-0}"; fi
ONLY="${INTEROP_ONLY:-}"
ECHO_COUNT="${ECHO_COUNT:-1000}"
STAY_SECONDS_GO="${STAY_SECONDS_GO:-3}"
STAY_SECONDS_RUST="${STAY_SECONDS_RUST:-110}"
IMPLS=(go rust)

PASSED=0
FAILED=0
SKIPPED=0
FAILED_NAMES=()
SUITE_START=$SECONDS

say() { printf '%s\n' "$*"; }

# ---------------------------------------------------------------- toolchain
if ! command -v go >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ]; then
        say "interop: the Go toolchain is missing (CI=true: this is a failure)"
        say "0 passed, 1 failed"
        exit 1
    fi
    say "interop: the Go toolchain is missing: the Go interop suite is skipped"
    say "0 passed, 0 failed, 1 skipped"
    exit 0
fi
mkdir -p "$BIN" "$CACHE"

build_gopeer() {
    local hash
    hash=$(
        cd "$HERE" &&
            { go version; find go.mod go.sum cmd internal -type f -print0 | sort -z | xargs -0 sha256sum; } |
            sha256sum | cut -d' ' -f1
    )
    if [ -x "$BIN/gopeer" ] && [ "$(cat "$BIN/gopeer.hash" 2>/dev/null)" = "$hash" ]; then
        say "gopeer: up to date ($BIN/gopeer)"
        return 0
    fi
    say "gopeer: building"
    (cd "$HERE" && GOFLAGS="-mod=mod -buildvcs=false" go build -o "$BIN/gopeer" ./cmd/gopeer) || return 1
    printf '%s\n' "$hash" >"$BIN/gopeer.hash"
}

install_cometbft() {
    if [ -x "$BIN/cometbft" ] && [ "$("$BIN/cometbft" version 2>/dev/null)" = "${COMETBFT_VERSION#v}" ]; then
        say "cometbft: $COMETBFT_VERSION cached ($BIN/cometbft)"
        return 0
    fi
    say "cometbft: go install github.com/cometbft/cometbft/cmd/cometbft@$COMETBFT_VERSION"
    GOBIN="$BIN" GOFLAGS="-buildvcs=false" go install "github.com/cometbft/cometbft/cmd/cometbft@$COMETBFT_VERSION"
}

t0=$SECONDS
if ! build_gopeer; then
    say "interop: building gopeer failed"
    say "0 passed, 1 failed"
    exit 1
fi
if ! install_cometbft; then
    say "interop: installing cometbft $COMETBFT_VERSION failed"
    say "0 passed, 1 failed"
    exit 1
fi
say "interop: tools ready in $((SECONDS - t0)) s"
GOPEER="$BIN/gopeer"
COMETBFT="$BIN/cometbft"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mukan-interop.XXXXXX")

# ------------------------------------------------------- process handling
# Every process a case starts is recorded in CASE_PIDS and ended (by pid)
# when the case ends, or on exit. Cases run one after the other, and the list
# is emptied once its processes are reaped, so no pid is signalled after it
# could have been reused.
CASE_PIDS=()

# is_child PID: PID is one of this shell's background jobs not yet reaped, so
# it cannot have been reused by another program.
is_child() {
    local j
    for j in $(jobs -p); do
        [ "$j" = "$1" ] && return 0
    done
    return 1
}

stop_pid() {
    local pid=$1 i
    is_child "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    is_child "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

stop_case_pids() {
    local pid
    for pid in "${CASE_PIDS[@]}"; do is_child "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for pid in "${CASE_PIDS[@]}"; do stop_pid "$pid"; done
    CASE_PIDS=()
}

cleanup() {
    local pid
    for pid in "${CASE_PIDS[@]}"; do is_child "$pid" && kill -TERM "$pid" 2>/dev/null; done
    sleep 0.5
    for pid in "${CASE_PIDS[@]}"; do is_child "$pid" && kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
    if [ "${INTEROP_KEEP:-0}" = 1 ]; then
        say "interop: work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# peer_bin IMPL: the program of one implementation.
peer_bin() {
    case $1 in
    go) printf '%s\n' "$GOPEER" ;;
    rust) printf '%s\n' "$RUST_PEER" ;;
    *) return 1 ;;
    esac
}

have_impl() {
    case $1 in
    go) [ -x "$GOPEER" ] ;;
    rust) [ -x "$RUST_PEER" ] ;;
    *) return 1 ;;
    esac
}

# start_peer IMPL NAME ARGS...: runs a peer in the background with
# stdout (events) in $CASE_DIR/NAME.out and stderr in $CASE_DIR/NAME.err.
start_peer() {
    local impl=$1 name=$2
    shift 2
    "$(peer_bin "$impl")" "$@" >"$CASE_DIR/$name.out" 2>"$CASE_DIR/$name.err" &
    LAST_PID=$!
    CASE_PIDS+=("$LAST_PID")
}

# new_key NAME: creates $CASE_DIR/NAME/config/node_key.json, prints its ID.
# Keys are always made by gopeer (cometbft's node_key.json format); the Rust
# peer loads the same file with --home.
new_key() {
    "$GOPEER" show-id --home "$CASE_DIR/$1"
}

# expect NAME TIMEOUT MATCHERS...: wait until NAME.out has a matching event.
expect() {
    local name=$1 timeout=$2
    shift 2
    if ! "$GOPEER" wait-event --file "$CASE_DIR/$name.out" --timeout "$timeout" "$@" >/dev/null; then
        say "    expected in $name.out within $timeout: $*"
        CASE_OK=0
        return 1
    fi
}

# expect_none NAME DURATION MATCHERS...: no matching event in NAME.out for DURATION.
expect_none() {
    local name=$1 timeout=$2 line
    shift 2
    if ! line=$("$GOPEER" wait-event --file "$CASE_DIR/$name.out" --timeout "$timeout" --none "$@"); then
        say "    unexpected in $name.out: $line"
        CASE_OK=0
        return 1
    fi
}

fail() {
    say "    $*"
    CASE_OK=0
}

show_logs() {
    local f
    for f in "$CASE_DIR"/*.out "$CASE_DIR"/*.err "$CASE_DIR"/*.log; do
        [ -s "$f" ] || continue
        say "    --- ${f#"$CASE_DIR"/} (last 15 lines)"
        tail -n 15 "$f" | sed 's/^/    | /'
    done
}

# run_case NAME FUNCTION ARGS...: one test case. A case that needs the Rust
# peer is skipped, loudly, when that binary does not exist yet (a failure
# with REQUIRE_RUST=1).
run_case() {
    local name=$1 fn=$2 impl
    shift 2
    if [ -n "$ONLY" ] && ! [[ $name =~ $ONLY ]]; then
        return 0
    fi
    for impl in "$@"; do
        if [ "$impl" = rust ] && ! have_impl rust; then
            if [ "$REQUIRE_RUST" = 1 ]; then
                say "FAIL $name: Rust peer binary missing at $RUST_PEER (REQUIRE_RUST=1)"
                FAILED=$((FAILED + 1))
                FAILED_NAMES+=("$name")
            else
                say "SKIP $name: Rust peer binary not built yet ($RUST_PEER missing)"
                SKIPPED=$((SKIPPED + 1))
            fi
            return 0
        fi
    done
    local start=$SECONDS attempt
    for attempt in 1 2; do
        CASE_DIR="$WORK/$name"
        [ "$attempt" = 1 ] || CASE_DIR="$WORK/$name.retry"
        mkdir -p "$CASE_DIR"
        CASE_OK=1
        say "---- $name"
        "$fn" "$@"
        stop_case_pids
        # A free port picked by free-ports can be taken by another program
        # before our peer binds it: only that is retried, once.
        if [ "$CASE_OK" = 1 ] || ! grep -qs 'address already in use' "$CASE_DIR"/*; then
            break
        fi
        say "    a port was taken meanwhile: retrying once"
    done
    if [ "$CASE_OK" = 1 ]; then
        say "PASS $name ($((SECONDS - start)) s)"
        PASSED=$((PASSED + 1))
    else
        show_logs
        say "FAIL $name ($((SECONDS - start)) s)"
        FAILED=$((FAILED + 1))
        FAILED_NAMES+=("$name")
    fi
}

ports() { "$GOPEER" free-ports "$1"; }

# Common flags of every peer in the suite.
COMMON=(--log-level info --chain-id mukan-interop)

# ------------------------------------------------------------------ cases

case_go_unit() {
    (cd "$HERE" && GOFLAGS="-mod=mod -buildvcs=false" go test ./... >"$CASE_DIR/go-test.log" 2>&1) ||
        fail "go test ./... failed"
}

# a. Handshake: A listens, B dials A; each reports the other's true ID,
# moniker, channels, network and listen address.
case_handshake() {
    local A=$1 B=$2 pa pb ida idb
    read -r pa pb < <(ports 2 | tr '\n' ' ')
    ida=$(new_key a) && idb=$(new_key b) || { fail "key generation failed"; return; }
    start_peer "$A" a "${COMMON[@]}" --home "$CASE_DIR/a" --listen "tcp://127.0.0.1:$pa" \
        --moniker "hs-a-$A" --channels 20,21
    expect a 10s event=listening "id=$ida" || return
    start_peer "$B" b "${COMMON[@]}" --home "$CASE_DIR/b" --listen "tcp://127.0.0.1:$pb" \
        --moniker "hs-b-$B" --channels 22 --persistent-peers "$ida@127.0.0.1:$pa"
    expect b 10s event=peer_added "id=$ida" "moniker=hs-a-$A" channels=7e2021 network=mukan-interop \
        "listen_addr=tcp://127.0.0.1:$pa" outbound=true block_version=11 p2p_version=8
    expect a 10s event=peer_added "id=$idb" "moniker=hs-b-$B" channels=7e22 network=mukan-interop \
        "listen_addr=tcp://127.0.0.1:$pb" outbound=false block_version=11 p2p_version=8
    expect_none a 1s event=peer_removed
    expect_none b 0.1s event=peer_removed
}

# b. Echo: server S echoes, client C sends ECHO_COUNT messages of 0 B..1 MiB
# and checks they come back byte-exact and in order.
case_echo() {
    local S=$1 C=$2 ps pc ids rc
    read -r ps pc < <(ports 2 | tr '\n' ' ')
    ids=$(new_key s) && new_key c >/dev/null || { fail "key generation failed"; return; }
    start_peer "$S" s "${COMMON[@]}" --home "$CASE_DIR/s" --listen "tcp://127.0.0.1:$ps" --moniker "echo-s-$S"
    expect s 10s event=listening || return
    # In the background + wait, so a signal to the suite is handled at once.
    timeout 60 "$(peer_bin "$C")" "${COMMON[@]}" --home "$CASE_DIR/c" --listen "tcp://127.0.0.1:$pc" \
        --moniker "echo-c-$C" --persistent-peers "$ids@127.0.0.1:$ps" \
        --echo-client "$ECHO_COUNT" --echo-seed 7 --echo-timeout 45s \
        >"$CASE_DIR/c.out" 2>"$CASE_DIR/c.err" &
    CASE_PIDS+=("$!")
    wait "$!"
    rc=$?
    [ "$rc" = 0 ] || fail "echo client exited with $rc"
    expect c 1s event=echo_summary ok=true "sent=$ECHO_COUNT" "received=$ECHO_COUNT" mismatches=0
    expect s 5s --count "$ECHO_COUNT" event=echo
    grep -h '"echo_summary"' "$CASE_DIR/c.out" | sed 's/^/    /'
}

# c. Rejections. L listens, D dials; both must report a refused peer, and
# neither may add the other.
start_pair_for_rejection() { # L D L-flags... -- D-flags...
    local L=$1 D=$2 pl pd idl lflags=() dflags=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do lflags+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    dflags=("$@")
    read -r pl pd < <(ports 2 | tr '\n' ' ')
    idl=$(new_key l) && new_key d >/dev/null || { fail "key generation failed"; return 1; }
    start_peer "$L" l "${COMMON[@]}" --home "$CASE_DIR/l" --listen "tcp://127.0.0.1:$pl" --moniker "rej-l-$L" "${lflags[@]}"
    expect l 10s event=listening || return 1
    DIAL_TARGET="$idl@127.0.0.1:$pl"
    [ -n "${DIAL_ID:-}" ] && DIAL_TARGET="$DIAL_ID@127.0.0.1:$pl"
    start_peer "$D" d "${COMMON[@]}" --home "$CASE_DIR/d" --listen "tcp://127.0.0.1:$pd" --moniker "rej-d-$D" \
        "${dflags[@]}" --dial "$DIAL_TARGET"
}

expect_no_peers() {
    expect_none l 0.5s event=peer_added
    expect_none d 0.1s event=peer_added
}

case_reject_network() {
    DIAL_ID="" start_pair_for_rejection "$1" "$2" --chain-id net-one -- --chain-id net-two || return
    expect d 10s event=rejected direction=outbound reason=incompatible detail=network
    expect l 10s event=rejected direction=inbound reason=incompatible detail=network
    expect_no_peers
}

case_reject_channels() {
    DIAL_ID="" start_pair_for_rejection "$1" "$2" --echo-channel 7e -- --echo-channel 7d || return
    expect d 10s event=rejected direction=outbound reason=incompatible detail=channels
    expect l 10s event=rejected direction=inbound reason=incompatible detail=channels
    expect_no_peers
}

case_reject_block_version() {
    DIAL_ID="" start_pair_for_rejection "$1" "$2" -- --block-version 10 || return
    expect d 10s event=rejected direction=outbound reason=incompatible detail=block_version
    expect l 10s event=rejected direction=inbound reason=incompatible detail=block_version
    expect_no_peers
}

case_reject_wrong_id() {
    local other
    other=$(new_key other) || { fail "key generation failed"; return; }
    DIAL_ID="$other" start_pair_for_rejection "$1" "$2" || return
    expect d 10s event=rejected direction=outbound reason=auth_failure detail=id_mismatch
    # The listener sees the dialer hang up during the NodeInfo exchange.
    expect l 10s event=rejected direction=inbound reason=auth_failure
    expect_no_peers
}

case_reject_self() {
    local A=$1 p id
    p=$(ports 1)
    id=$(new_key a) || { fail "key generation failed"; return; }
    start_peer "$A" a "${COMMON[@]}" --home "$CASE_DIR/a" --listen "tcp://127.0.0.1:$p" --moniker "self-$A" \
        --dial "$id@127.0.0.1:$p"
    expect a 10s event=rejected direction=outbound reason=self
    expect a 10s event=rejected direction=inbound reason=self
    expect_none a 0.5s event=peer_added
}

# d. The real node: cometbft init + start (kvstore) on loopback; it must
# produce blocks; then peer A connects to it as a persistent peer, both sides
# list each other, consensus traffic arrives and the link stays up.
node_home=""
node_rpc=""
start_real_node() { # sets node_home node_id node_p2p node_rpc chain_id
    local pp pr
    read -r pp pr < <(ports 2 | tr '\n' ' ')
    node_home="$CASE_DIR/node"
    "$COMETBFT" init --home "$node_home" >"$CASE_DIR/init.log" 2>&1 || { fail "cometbft init failed"; return 1; }
    # Loopback only, no seeds, PEX on, duplicate IPs allowed, non-strict book.
    sed -i \
        -e 's/^moniker = .*/moniker = "cometbft-real"/' \
        -e 's/^allow_duplicate_ip = .*/allow_duplicate_ip = true/' \
        -e 's/^addr_book_strict = .*/addr_book_strict = false/' \
        -e 's/^seeds = .*/seeds = ""/' \
        -e 's/^prometheus = .*/prometheus = false/' \
        -e 's/^pprof_laddr = .*/pprof_laddr = ""/' \
        -e 's/^grpc_laddr = .*/grpc_laddr = ""/' \
        "$node_home/config/config.toml"
    node_id=$("$COMETBFT" show-node-id --home "$node_home") || { fail "show-node-id failed"; return 1; }
    chain_id=$(sed -n 's/^ *"chain_id": *"\([^"]*\)".*/\1/p' "$node_home/config/genesis.json" | head -n 1)
    node_p2p=$pp
    node_rpc="http://127.0.0.1:$pr"
    "$COMETBFT" start --home "$node_home" --proxy_app=kvstore \
        --p2p.laddr "tcp://127.0.0.1:$pp" --rpc.laddr "tcp://127.0.0.1:$pr" \
        --p2p.pex=true --p2p.seeds "" >"$CASE_DIR/node.log" 2>&1 &
    CASE_PIDS+=("$!")
    local h
    if ! h=$("$GOPEER" wait-height --rpc "$node_rpc" --height 2 --timeout 40s 2>&1); then
        fail "cometbft produced no blocks: $h"
        return 1
    fi
    say "    cometbft $node_id at 127.0.0.1:$pp, chain $chain_id, height $h"
}

case_real_node() {
    local A=$1 pa ida h1 h2 stay=$STAY_SECONDS_GO
    [ "$A" = rust ] && stay=$STAY_SECONDS_RUST
    start_real_node || return
    # Artifact for the Rust node-key test: node_key.json + what show-node-id prints.
    mkdir -p "$CACHE/cometbft-node-key"
    cp "$node_home/config/node_key.json" "$CACHE/cometbft-node-key/node_key.json"
    printf '%s\n' "$node_id" >"$CACHE/cometbft-node-key/node_id.txt"

    pa=$(ports 1)
    ida=$(new_key a) || { fail "key generation failed"; return; }
    # Advertise the node's channels (not PEX: the Rust peer has none yet) so
    # consensus traffic flows to us (the extra channels are counted, not
    # answered).
    start_peer "$A" a --log-level info --chain-id "$chain_id" --home "$CASE_DIR/a" \
        --listen "tcp://127.0.0.1:$pa" --moniker "real-$A" \
        --channels 20,21,22,23,30,38,40,60,61 --persistent-peers "$node_id@127.0.0.1:$node_p2p"
    expect a 15s event=peer_added "id=$node_id" moniker=cometbft-real "network=$chain_id" version=0.38.25 \
        outbound=true block_version=11 p2p_version=8 channels=40202122233038606100 || return
    expect a 10s event=recv "id=$node_id" ch=20
    if [ "$A" = rust ]; then
        # Our side decodes the consensus traffic: NewRoundStep messages with heights.
        expect a 10s event=consensus "id=$node_id" type=new_round_step
        # node_key.json written by `cometbft init` loads in node-key with the same ID.
        local rust_id
        rust_id=$("$RUST_PEER" show-id --key "$node_home/config/node_key.json" 2>&1)
        [ "$rust_id" = "$node_id" ] || fail "node-key loads cometbft's node_key.json as $rust_id, cometbft says $node_id"
    fi
    if ! "$GOPEER" wait-rpc-peer --rpc "$node_rpc" --id "$ida" --timeout 10s >"$CASE_DIR/net_info_peer.json" 2>&1; then
        fail "the node does not list $ida in /net_info"
    fi
    h1=$("$GOPEER" wait-height --rpc "$node_rpc" --height 0 --timeout 5s)
    expect_none a "${stay}s" event=peer_removed
    h2=$("$GOPEER" wait-height --rpc "$node_rpc" --height $((h1 + 1)) --timeout 10s) ||
        fail "the node stopped producing blocks while we were connected"
    "$GOPEER" wait-rpc-peer --rpc "$node_rpc" --id "$ida" --timeout 1s >/dev/null 2>&1 ||
        fail "after ${stay} s the node no longer lists $ida in /net_info"
    say "    connected for ${stay} s, node went from height $h1 to ${h2:-?}"
}

# Artifact: an addrbook.json written by a Go node (pex reactor + address book)
# after learning addresses: a hub and 4 leaves form a star; a learner dials
# the hub and learns the leaves through PEX, marks the hub good (old bucket),
# and saves its book on shutdown.
case_addrbook_artifact() {
    local n=4 i pts idh idl ph pl expected=()
    mapfile -t pts < <(ports $((n + 2)))
    ph=${pts[0]}
    pl=${pts[1]}
    idh=$(new_key hub) && idl=$(new_key learner) || { fail "key generation failed"; return; }
    start_peer go hub "${COMMON[@]}" --home "$CASE_DIR/hub" --listen "tcp://127.0.0.1:$ph" --moniker hub --pex
    expect hub 10s event=listening || return
    expected+=("$idh@127.0.0.1:$ph")
    for i in $(seq 1 $n); do
        local id p=${pts[$((i + 1))]}
        id=$(new_key "leaf$i") || { fail "key generation failed"; return; }
        start_peer go "leaf$i" "${COMMON[@]}" --home "$CASE_DIR/leaf$i" --listen "tcp://127.0.0.1:$p" \
            --moniker "leaf$i" --pex --persistent-peers "$idh@127.0.0.1:$ph"
        expected+=("$id@127.0.0.1:$p")
    done
    expect hub 15s event=addrbook "size=$n" || return
    start_peer go learner "${COMMON[@]}" --home "$CASE_DIR/learner" --listen "tcp://127.0.0.1:$pl" \
        --moniker learner --pex --mark-good --dial "$idh@127.0.0.1:$ph"
    expect learner 15s event=addrbook "size=$((n + 1))" || return
    stop_pid "$LAST_PID"
    expect learner 1s event=addrbook_saved "size=$((n + 1))" || return
    local book="$CASE_DIR/learner/config/addrbook.json" a
    for a in "${expected[@]}"; do
        grep -q "\"${a%@*}\"" "$book" || fail "address $a missing from the saved book"
    done
    grep -q '"bucket_type": 2' "$book" || fail "no old-bucket entry (the hub, marked good) in the book"
    grep -q '"bucket_type": 1' "$book" || fail "no new-bucket entry in the book"
    [ "$CASE_OK" = 1 ] || return
    mkdir -p "$CACHE/addrbook"
    cp "$book" "$CACHE/addrbook/addrbook.json"
    printf '%s\n' "${expected[@]}" >"$CACHE/addrbook/expected_addrs.txt"
    printf '%s\n' "learner $idl@127.0.0.1:$pl" "hub $idh@127.0.0.1:$ph" >"$CACHE/addrbook/nodes.txt"
}

# ------------------------------------------------------------------ suite
say "interop: work dir $WORK, artifacts in $CACHE"

# The Go node's addrbook.json (artifact of addrbook-artifact) loads in our address book with
# the same addresses and bucket types.
case_addrbook_go_to_rust() {
    local book="$CACHE/addrbook/addrbook.json" got want
    [ -f "$book" ] || { fail "no Go-written addrbook.json (addrbook-artifact failed?)"; return; }
    got=$("$RUST_PEER" addrbook-dump --file "$book" 2>"$CASE_DIR/dump.err") ||
        { fail "our loader refused the Go book: $(cat "$CASE_DIR/dump.err")"; return; }
    want=$(sort "$CACHE/addrbook/expected_addrs.txt")
    [ "$(printf '%s\n' "$got" | cut -d' ' -f2 | sort)" = "$want" ] ||
        fail "addresses differ: got [$got], want [$want]"
    [ "$(printf '%s\n' "$got" | grep -c '^old ')" = 1 ] || fail "expected one old entry (the hub): [$got]"
    say "    loaded $(printf '%s\n' "$got" | wc -l) entries"
}

# A book we write loads in a Go node (PEX + address book), which saves it back on stop; the
# saved file loads in ours with the same addresses.
case_addrbook_rust_to_go() {
    local i id ids=() addrs=() p book="$CASE_DIR/g/config/addrbook.json" got want
    for i in 1 2 3 4 5; do
        id=$(new_key "x$i") || { fail "key generation failed"; return; }
        ids+=("$id")
        addrs+=("$id@127.0.0.$((i + 1)):$((40000 + i))")
    done
    mkdir -p "$CASE_DIR/g/config"
    "$RUST_PEER" addrbook-write --file "$book" --src "${ids[0]}@127.0.0.2:40001" \
        --addrs "$(IFS=,; echo "${addrs[*]}")" --good "${ids[1]}" >"$CASE_DIR/write.out" 2>&1 ||
        { fail "addrbook-write failed: $(cat "$CASE_DIR/write.out")"; return; }
    p=$(ports 1)
    start_peer go g "${COMMON[@]}" --home "$CASE_DIR/g" --listen "tcp://127.0.0.1:$p" --moniker g --pex
    expect g 10s event=addrbook size=5 || return
    stop_pid "$LAST_PID"
    expect g 2s event=addrbook_saved size=5 || return
    got=$("$RUST_PEER" addrbook-dump --file "$book" 2>"$CASE_DIR/dump.err") ||
        { fail "our loader refused the book Go saved: $(cat "$CASE_DIR/dump.err")"; return; }
    want=$(printf '%s\n' "${addrs[@]}" | sort)
    [ "$(printf '%s\n' "$got" | cut -d' ' -f2 | sort)" = "$want" ] ||
        fail "addresses differ after the Go round trip: got [$got], want [$want]"
    printf '%s\n' "$got" | grep -q "^old ${ids[1]}@" || fail "the good address is no longer old: [$got]"
}

case_rust_build() {
    (cd "$ROOT" && cargo build -p mukan-conformance-tests --bin rustpeer >"$CASE_DIR/cargo-build.log" 2>&1) ||
        fail "cargo build of rustpeer failed (see cargo-build.log)"
    [ -x "$RUST_PEER" ] || fail "cargo built, but $RUST_PEER is not there"
}

run_case go-unit-tests case_go_unit
if [ "$RUST_PEER_BUILD" = 1 ] && [ -f "$RUST_PEER_SRC" ]; then
    if command -v cargo >/dev/null 2>&1; then
        run_case rust-peer-build case_rust_build
    elif [ "${CI:-}" = "true" ]; then
        say "FAIL rust-peer-build: cargo is missing (CI=true)"
        FAILED=$((FAILED + 1))
        FAILED_NAMES+=(rust-peer-build)
    fi
fi
if have_impl rust; then
    say "interop: Rust peer: $RUST_PEER"
else
    say "interop: Rust peer NOT built yet ($RUST_PEER missing): every case with a Rust side is SKIPPED"
fi
for a in "${IMPLS[@]}"; do
    for b in "${IMPLS[@]}"; do
        run_case "handshake-$b-dials-$a" case_handshake "$a" "$b"
    done
done
for s in "${IMPLS[@]}"; do
    for c in "${IMPLS[@]}"; do
        run_case "echo-$c-client-$s-server" case_echo "$s" "$c"
    done
done
for a in "${IMPLS[@]}"; do
    for b in "${IMPLS[@]}"; do
        run_case "reject-network-$b-dials-$a" case_reject_network "$a" "$b"
        run_case "reject-channels-$b-dials-$a" case_reject_channels "$a" "$b"
        run_case "reject-block-version-$b-dials-$a" case_reject_block_version "$a" "$b"
        run_case "reject-wrong-id-$b-dials-$a" case_reject_wrong_id "$a" "$b"
    done
done
for a in "${IMPLS[@]}"; do
    run_case "reject-self-$a" case_reject_self "$a"
done
for a in "${IMPLS[@]}"; do
    run_case "real-node-$a" case_real_node "$a"
done
run_case addrbook-artifact case_addrbook_artifact go
run_case addrbook-go-to-rust case_addrbook_go_to_rust rust
run_case addrbook-rust-to-go case_addrbook_rust_to_go rust go

say ""
say "interop: finished in $((SECONDS - SUITE_START)) s"
if [ "${#FAILED_NAMES[@]}" -gt 0 ]; then
    say "interop: failed cases: ${FAILED_NAMES[*]}"
fi
say "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
