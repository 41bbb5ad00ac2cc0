#!/usr/bin/env bash
# Network-namespace fault tests F4, F5, F6, F7, F9 (see README.md, "Network-namespace faults")
# and attack tests A1-A5 (A6 by name; see README.md, "Attack tests").
#
# Runs as root. Each scenario builds its own namespaces (unique names per run), veth links,
# nftables rules and processes, and removes them on exit. Scenarios run in parallel.
# Prints one PASS/FAIL line per scenario with its measured figure; exits nonzero if any
# failed. With CI=true a missing tool or privilege is a failure; otherwise the run is
# skipped (exit 77).
#
#   conformance-tests/netns/run.sh              # all, CI length (F5 and F9: 60 s each)
#   conformance-tests/netns/run.sh F4 F7 F7-go  # some
#
# F6-go and F7-go are F6 and F7 with a Go peer (gopeer, CometBFT v0.38.25's p2p package) as
# the peer killed or stopped: GOPEER=<binary>, else built (and cached) with the interop
# suite's build_gopeer when `go` is present; NETNS_GO=0 leaves them out.
#   NETNS_FULL=1 conformance-tests/netns/run.sh # campaign: F5 10 min, F9 5 min
#
# Binaries: target/debug/{rustpeer,chaosproxy,attacker} (cargo build -p mukan-conformance-tests
# --bins) and target/debug/mukan-p2p (cargo build -p mukan-node), or NETNS_BIN=<dir>. Logs: kept in NETNS_WORK (a temporary directory) on failure
# or with NETNS_KEEP=1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export ROOT=${ROOT:-$(cd "$HERE/../.." && pwd)}

if [ "${NETNS_FULL:-0}" = 1 ]; then
    export NETNS_F5_SECONDS=${NETNS_F5_SECONDS:-600}
    export NETNS_F9_SECONDS=${NETNS_F9_SECONDS:-300}
fi

unavailable() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL netns: $*" >&2
        exit 1
    fi
    echo "SKIP netns: $*" >&2
    exit 77
}
[ "$(id -u)" = 0 ] || unavailable "needs root (network namespaces, nftables)"
for tool in ip nft ss awk; do
    command -v "$tool" >/dev/null 2>&1 || unavailable "missing tool: $tool"
done
probe="mkprobe$$"
ip netns add "$probe" 2>/dev/null || unavailable "cannot create a network namespace"
nft_ok=0
ip netns exec "$probe" nft add table inet probe 2>/dev/null && nft_ok=1
ip netns del "$probe"
[ "$nft_ok" = 1 ] || unavailable "nftables does not work in a namespace"

declare -A SCRIPTS=(
    [F4]=f4-blackhole.sh
    [F5]=f5-latency-loss.sh
    [F6]=f6-kill-restart.sh
    [F7]=f7-stop-cont.sh
    [F9]=f9-flaps.sh
    [F6-go]=f6-kill-restart.sh
    [F7-go]=f7-stop-cont.sh
    [A1]=a1-sybil.sh
    [A2]=a2-slowloris.sh
    [A3]=a3-slow-http.sh
    [A4]=a4-idle.sh
    [A5]=a5-reconnect.sh
    [A6]=a6-ban-flood.sh
)
if [ $# -gt 0 ]; then
    WANT=("$@")
else
    WANT=(F4 F5 F6 F7 F9 A1 A2 A3 A4 A5)
    [ "${NETNS_GO:-1}" != 0 ] && WANT+=(F6-go F7-go)
fi
# The Go peer, when a Go scenario is wanted.
if [[ " ${WANT[*]} " == *-go* ]] && [ -z "${GOPEER:-}" ]; then
    if command -v go >/dev/null 2>&1; then
        (
            HERE="$ROOT/conformance-tests/go"
            say() { printf '%s\n' "$*" >&2; }
            # shellcheck source=../go/lib/lines.sh
            source "$HERE/lib/lines.sh"
            build_gopeer >&2 && echo "$GOPEER" >"${TMPDIR:-/tmp}/mukan-netns-gopeer.$$"
        )
        GOPEER=$(cat "${TMPDIR:-/tmp}/mukan-netns-gopeer.$$" 2>/dev/null || true)
        rm -f "${TMPDIR:-/tmp}/mukan-netns-gopeer.$$"
    fi
    GOPEER=${GOPEER:-}
    if [ -z "$GOPEER" ] || [ ! -x "$GOPEER" ]; then
        [ "${CI:-}" = true ] && { echo "FAIL netns: no gopeer (go missing or its build failed)" >&2; exit 1; }
        echo "SKIP F6-go F7-go: no gopeer (no go toolchain or the build failed)" >&2
        WANT=("${WANT[@]/*-go/}")
        read -ra WANT <<<"${WANT[*]}"
    fi
    export GOPEER
fi
for s in "${WANT[@]}"; do
    [ -n "${SCRIPTS[$s]:-}" ] || { echo "unknown scenario $s (have ${!SCRIPTS[*]})" >&2; exit 2; }
done

export NETNS_WORK=${NETNS_WORK:-$(mktemp -d /tmp/mukan-netns.XXXXXX)}
mkdir -p "$NETNS_WORK"
export RUN_ID=${RUN_ID:-$(printf '%x%04x' "$$" "$RANDOM")}
# Every scenario ends by itself; this is the outer bound (campaign lengths included).
LIMIT=$((${NETNS_F5_SECONDS:-60} + ${NETNS_F9_SECONDS:-60} + 240))
START=$(date +%s)
declare -A PIDS
for s in "${WANT[@]}"; do
    impl=rust
    [[ $s == *-go ]] && impl=go
    NETNS_B_IMPL=$impl timeout -k 10 "$LIMIT" "$HERE/${SCRIPTS[$s]}" \
        >"$NETNS_WORK/$s.out" 2>"$NETNS_WORK/$s.err" &
    PIDS[$s]=$!
done
FAILED=0
for s in "${WANT[@]}"; do
    wait "${PIDS[$s]}"
    rc=$?
    line=$(grep -E "^(PASS|FAIL) $s " "$NETNS_WORK/$s.out" | tail -n 1)
    if [ -z "$line" ]; then
        line="FAIL $s exited with status $rc and no result line"
    elif [ "$rc" != 0 ] && [ "${line%% *}" = PASS ]; then
        line="FAIL $s exited with status $rc after: $line"
    fi
    echo "$line"
    if [ "${line%% *}" != PASS ]; then
        FAILED=1
        sed 's/^/    /' "$NETNS_WORK/$s.err" >&2
    fi
done
echo "netns faults: ${#WANT[@]} scenario(s) in $(($(date +%s) - START)) s; logs in $NETNS_WORK"
if [ "$FAILED" = 0 ] && [ "${NETNS_KEEP:-0}" != 1 ]; then
    rm -rf "$NETNS_WORK"
fi
exit "$FAILED"
