# shellcheck shell=bash
# Shared helpers of the network-namespace fault scenarios (sourced, not run).
#
# Every scenario script sources this file, calls `scenario_init <id>`, builds its namespaces
# with `ns_add` / `link_add`, starts peers with `start_peer`, and ends with `pass` or `fail`.
# Everything it creates (namespaces, processes) is registered and removed by the EXIT trap.
# Every wait is bounded in count and time. Traffic goes only to addresses inside the
# namespaces created here.

set -euo pipefail

NETNS_DIR=${NETNS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
ROOT=${ROOT:-$(cd "$NETNS_DIR/../.." && pwd)}
BIN=${NETNS_BIN:-$ROOT/target/debug}
RUSTPEER=${RUSTPEER:-$BIN/rustpeer}
CHAOSPROXY=${CHAOSPROXY:-$BIN/chaosproxy}
# The attack scenarios (A*) run the real program and the attacker tool.
MUKAN_P2P=${MUKAN_P2P:-$BIN/mukan-p2p}
ATTACKER=${ATTACKER:-$BIN/attacker}
# Unique per run: namespace names carry it, so parallel runs never collide.
RUN_ID=${RUN_ID:-$(printf '%x%04x' "$$" "$RANDOM")}

_NAMESPACES=()
_PIDS=()
SCENARIO=
WORK=

now_us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { echo $((($(now_us) - $1) / 1000)); }

log() { printf '[%s %s] %s\n' "$SCENARIO" "$(date -u +%H:%M:%S.%3N)" "$*" >&2; }

cleanup() {
    local pid ns
    for pid in "${_PIDS[@]}"; do
        kill -CONT "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in "${_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for ns in "${_NAMESPACES[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

# scenario_init F4: names this scenario, makes its work directory, installs the trap.
scenario_init() {
    SCENARIO=$1
    WORK=${NETNS_WORK:-$(mktemp -d)}/$SCENARIO
    mkdir -p "$WORK"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    [ -x "$RUSTPEER" ] || fail "missing binary $RUSTPEER (cargo build -p mukan-conformance-tests --bins)"
}

# Result line, then exit. `pass "figure"` / `fail "why"`.
pass() {
    printf 'PASS %s %s\n' "$SCENARIO" "$*"
    exit 0
}
fail() {
    printf 'FAIL %s %s\n' "$SCENARIO" "$*"
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        local f
        for f in "$WORK"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $f (last 15 lines)" >&2
            tail -n 15 "$f" >&2
        done
    fi
    exit 1
}

# ns_add VAR suffix: creates namespace mk<run>-<scenario>-<suffix> with lo up; VAR=its name.
ns_add() {
    local var=$1 name="mk${RUN_ID}-${SCENARIO,,}-$2"
    ip netns add "$name"
    _NAMESPACES+=("$name")
    ip -n "$name" link set lo up
    printf -v "$var" '%s' "$name"
}

# link_add NS1 IF1 ADDR1/PFX NS2 IF2 ADDR2/PFX: a veth pair between two namespaces, up.
link_add() {
    local ns1=$1 if1=$2 a1=$3 ns2=$4 if2=$5 a2=$6
    ip link add "$if1" netns "$ns1" type veth peer name "$if2" netns "$ns2"
    ip -n "$ns1" addr add "$a1" dev "$if1"
    ip -n "$ns2" addr add "$a2" dev "$if2"
    ip -n "$ns1" link set "$if1" up
    ip -n "$ns2" link set "$if2" up
}

# Prefixes every line of stdin with the wall-clock time in microseconds.
stamp() {
    local line
    while IFS= read -r line; do
        printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"
    done
}

# start_peer VAR NS LOG rustpeer-args...: starts rustpeer in NS (its events stamped into LOG,
# appended); VAR=its pid. The peer is bounded by --exit-after, given by the caller.
start_peer() {
    local var=$1 ns=$2 logf=$3
    shift 3
    ip netns exec "$ns" "$RUSTPEER" "$@" > >(stamp >>"$logf") 2>>"$logf.err" &
    local pid=$!
    _PIDS+=("$pid")
    printf -v "$var" '%s' "$pid"
}

# start_proc VAR NS LOG program args...: as start_peer for any program.
start_proc() {
    local var=$1 ns=$2 logf=$3
    shift 3
    ip netns exec "$ns" "$@" > >(stamp >>"$logf") 2>>"$logf.err" &
    local pid=$!
    _PIDS+=("$pid")
    printf -v "$var" '%s' "$pid"
}

# peer_id HOME: the node ID of the key in HOME (made if missing).
peer_id() {
    "$RUSTPEER" show-id --home "$1"
}

# The implementation of peer B in the scenarios that support both (F6, F7): rust (rustpeer,
# default) or go (gopeer, CometBFT v0.38.25's p2p package; NETNS_B_IMPL=go, GOPEER=<binary>).
# gopeer has no ping/pong flags: it runs Go's timers (60 s / 45 s), so only A's (our)
# detection is timed; B's part is to die, stop, restart and accept A's redials.
B_IMPL=${NETNS_B_IMPL:-rust}

# b_id HOME: B's node ID (its key made by B's own implementation).
b_id() {
    if [ "$B_IMPL" = go ]; then
        "$GOPEER" show-id --home "$1"
    else
        "$RUSTPEER" show-id --home "$1"
    fi
}

# start_b VAR NS LOG HOME LISTEN EXIT_AFTER [rust-only flags...]: starts B.
start_b() {
    local var=$1 ns=$2 logf=$3 home=$4 listen=$5 exit_after=$6
    shift 6
    local base=(--home "$home" --listen "$listen" --chain-id mukan-netns --quiet-echo
        --allow-duplicate-ip --exit-after "$exit_after")
    if [ "$B_IMPL" = go ]; then
        [ -x "${GOPEER:-}" ] || fail "NETNS_B_IMPL=go needs GOPEER=<gopeer binary>"
        start_proc "$var" "$ns" "$logf" "$GOPEER" "${base[@]}" --log-level none
    else
        start_proc "$var" "$ns" "$logf" "$RUSTPEER" "${base[@]}" "$@"
    fi
}

# b_comm: the command name of B's program (checked before signalling it).
b_comm() {
    if [ "$B_IMPL" = go ]; then echo gopeer; else echo rustpeer; fi
}

# The time (µs) of a log line: its event's own "unix_us" (rustpeer takes it when it makes the
# event), else the stamp in front of it. The stamp is taken when `stamp` reads the line and
# can lag the event by milliseconds (CI, stop 28: A's echo_summary was stamped after B had
# already logged the disconnect that A's exit after that summary caused), so events of
# different processes are ordered by "unix_us" wherever the program gives it.
EVENT_US_AWK='function event_us(   m) { if (match($0, /"unix_us":[0-9]+/)) return substr($0, RSTART + 10, RLENGTH - 10); return $1 }'

# first_event LOG PATTERN AFTER_US: the time (µs, see EVENT_US_AWK) of the first line of LOG
# at or after AFTER_US whose text contains PATTERN (fixed string); empty if none.
first_event() {
    local logf=$1 pat=$2 after=$3
    [ -f "$logf" ] || return 0
    { grep -F -- "$pat" "$logf" || true; } |
        awk -v a="$after" "$EVENT_US_AWK"' { t = event_us() } t + 0 >= a + 0 { print t; exit }'
}

# count_events LOG PATTERN AFTER_US [BEFORE_US]: how many lines match, timed (see
# EVENT_US_AWK) in the window.
count_events() {
    local logf=$1 pat=$2 after=$3 before=${4:-99999999999999999}
    [ -f "$logf" ] || { echo 0; return 0; }
    { grep -F -- "$pat" "$logf" || true; } |
        awk -v a="$after" -v b="$before" "$EVENT_US_AWK"' { t = event_us() + 0 } t >= a + 0 && t < b + 0 { n++ } END { print n + 0 }'
}

# wait_event LOG PATTERN AFTER_US TIMEOUT_S: waits (polling every 20 ms, bounded) for
# first_event; prints its stamp, or returns 1 after TIMEOUT_S.
wait_event() {
    local logf=$1 pat=$2 after=$3 timeout_s=$4 t i
    local n=$((timeout_s * 50))
    for ((i = 0; i < n; i++)); do
        t=$(first_event "$logf" "$pat" "$after")
        if [ -n "$t" ]; then
            echo "$t"
            return 0
        fi
        sleep 0.02
    done
    return 1
}

# The state counts of TCP sockets in NS to or from PORT: prints lines "STATE count".
tcp_states() {
    local ns=$1 port=$2
    ip netns exec "$ns" ss -Htan 2>/dev/null |
        awk -v p=":$port" '$1 != "LISTEN" && (substr($4, length($4) - length(p) + 1) == p || substr($5, length($5) - length(p) + 1) == p) { n[$1]++ } END { for (s in n) print s, n[s] }' |
        sort
}

# established NS PORT: the number of established TCP connections to or from PORT in NS.
established() {
    tcp_states "$1" "$2" | awk '$1 == "ESTAB" { print $2; f = 1 } END { if (!f) print 0 }'
}

# half_open NS PORT: sockets to or from PORT in NS that are neither established nor in
# TIME-WAIT (the normal end of an orderly close): CLOSE-WAIT, FIN-WAIT, LAST-ACK, SYN-*...
half_open() {
    tcp_states "$1" "$2" | awk '$1 != "ESTAB" && $1 != "TIME-WAIT" { n += $2 } END { print n + 0 }'
}

# fd_count PID: open file descriptors of PID.
fd_count() {
    local n
    n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
    echo "$n"
}

# rss_kib PID: resident memory of PID in KiB (reported, not asserted).
rss_kib() {
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# peers_now LOG: peers added minus peers removed so far (the peer set size per the events).
peers_now() {
    local added removed
    added=$(count_events "$1" '"event":"peer_added"' 0)
    removed=$(count_events "$1" '"event":"peer_removed"' 0)
    echo $((added - removed))
}

# nft_in NS SCRIPT: runs an nft script inside NS.
nft_in() {
    local ns=$1
    shift
    ip netns exec "$ns" nft -f - <<<"$*"
}

# Common rustpeer flags: the chain, quiet echo, several peers per IP allowed.
# shellcheck disable=SC2034 # used by the scenario scripts
PEER_FLAGS=(--chain-id mukan-netns --quiet-echo --allow-duplicate-ip)

# ---- attack scenarios (A*) ------------------------------------------------------------
# attack_topology: three namespaces, NN (the node, 45.33.10.1 and 2a01:4f8:1:1::1), NX (the
# attacker) and NH (honest hosts), each of NX and NH linked to NN by a veth pair (link nets
# 172.31.1.0/30 and 172.31.2.0/30, fd00:31:1::/64 and fd00:31:2::/64). Source addresses are
# added to the loopback interface of NX or NH with `attack_src NS ADDR...` (this kernel has no
# dummy interfaces; the effect is the same: addresses that exist only in that namespace); NN
# routes 45.34.0.0/16, 2a01:4f8:10::/48 to NX and 81.0.0.0/8, 2a01:4f8:20::/48 to NH.
NODE_IP=45.33.10.1
NODE_IP6=2a01:4f8:1:1::1
attack_topology() {
    ns_add NN node
    ns_add NX attacker
    ns_add NH honest
    link_add "$NN" ex 172.31.1.1/30 "$NX" eth0 172.31.1.2/30
    link_add "$NN" eh 172.31.2.1/30 "$NH" eth0 172.31.2.2/30
    ip -n "$NN" addr add "$NODE_IP/32" dev lo
    ip -n "$NN" -6 addr add "$NODE_IP6/128" dev lo nodad
    ip -n "$NN" -6 addr add fd00:31:1::1/64 dev ex nodad
    ip -n "$NN" -6 addr add fd00:31:2::1/64 dev eh nodad
    ip -n "$NX" -6 addr add fd00:31:1::2/64 dev eth0 nodad
    ip -n "$NH" -6 addr add fd00:31:2::2/64 dev eth0 nodad
    ip -n "$NN" route add 45.34.0.0/16 via 172.31.1.2
    ip -n "$NN" route add 81.0.0.0/8 via 172.31.2.2
    ip -n "$NN" -6 route add 2a01:4f8:10::/48 via fd00:31:1::2
    ip -n "$NN" -6 route add 2a01:4f8:20::/48 via fd00:31:2::2
    ip -n "$NX" route add default via 172.31.1.1
    ip -n "$NH" route add default via 172.31.2.1
    ip -n "$NX" -6 route add default via fd00:31:1::1
    ip -n "$NH" -6 route add default via fd00:31:2::1
}

# attack_src NS ADDR...: adds source addresses to NS's loopback interface.
attack_src() {
    local ns=$1 a
    shift
    for a in "$@"; do
        case $a in
            *:*) ip -n "$ns" -6 addr add "$a/128" dev lo nodad ;;
            *) ip -n "$ns" addr add "$a/32" dev lo ;;
        esac
    done
}

# start_node VAR HOME CHAIN [sed expressions...]: `mukan-p2p init` + `start` in NN, the p2p
# listener on [::]:26656 (both families), the RPC on 127.0.0.1:26657 inside NN (the shipped
# default); waits until /health answers. Extra sed expressions edit config.toml.
start_node() {
    local var=$1 home=$2 chain=$3 i
    shift 3
    "$MUKAN_P2P" init --home "$home" --chain-id "$chain" >/dev/null
    sed -i -e 's|^laddr = "tcp://0.0.0.0:26656"|laddr = "tcp://[::]:26656"|' "$@" \
        "$home/config/config.toml"
    start_proc "$var" "$NN" "$WORK/node.log" "$MUKAN_P2P" start --home "$home"
    for ((i = 0; i < 100; i++)); do
        ip netns exec "$NN" "$ATTACKER" http-probe --target 127.0.0.1:26657 --source 127.0.0.1 \
            --count 1 --timeout-ms 500 2>/dev/null | grep -q '"ok":1' && return 0
        sleep 0.1
    done
    fail "the node did not start"
}

# node_json PATH: GET PATH of the node's RPC from inside NN.
node_json() {
    ip netns exec "$NN" "$ATTACKER" http-get --target 127.0.0.1:26657 --path "$1"
}

# METRICS_ON: start_node's extra sed arguments that turn the node's Prometheus server on
# (127.0.0.1:26660 inside NN, as `init` writes it).
METRICS_ON=(-e 's|^prometheus = false|prometheus = true|')

# node_metric SERIES: the value of the node's metric series SERIES, written as the scrape
# shows it (name and labels, e.g. 'cometbft_p2p_inbound_refused_total{chain_id="c",reason="limit"}'),
# or nothing if it is not served. Needs start_node ... "${METRICS_ON[@]}".
node_metric() {
    ip netns exec "$NN" "$ATTACKER" http-get --target 127.0.0.1:26660 --path /metrics |
        awk -v s="$1" '$1 == s && !seen { print $2; seen = 1 }'
}

# node_metrics PATTERN: the node's metric lines matching PATTERN (grep -E), on one line.
node_metrics() {
    ip netns exec "$NN" "$ATTACKER" http-get --target 127.0.0.1:26660 --path /metrics |
        grep -E "$1" | tr '\n' ' '
}

# jfield FILE KEY: the first integer value of "KEY": in FILE.
jfield() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1" | head -n 1; }
