#!/usr/bin/env bash
# Side-by-side figures: our Rust stack (rustpeer, release build) against the Go reference
# (gopeer on github.com/cometbft/cometbft v0.38.25 p2p), same workload, same machine, same run.
#
# Workloads (each run RUNS times, the best run reported):
#   echo-mixed   1,000 echo round trips, sizes 0 B .. 1 MiB (the interop echo workload),
#                MConnection rate limits off (send/recv rate 0 in Go terms)
#   echo-small   10,000 echo round trips of 0 .. 1 KiB, rate limits off
#   echo-default 300 mixed echo round trips with the default [p2p] settings (5,120,000 B/s,
#                100 ms flush throttle): what an operator gets out of the box
# Each figure is from the client process: wall time of the exchange (the client's
# echo_summary), payload MB/s counted both ways, and the client's CPU time and max RSS.
#
# Usage: conformance-tests/go/bench-compare.sh   (RUNS=3 by default)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-3}
GOPEER="$HERE/bin/gopeer"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RUSTPEER="$CARGO_TARGET_DIR/release/rustpeer"

(cd "$HERE" && GOFLAGS=-buildvcs=false go build -o "$GOPEER" ./cmd/gopeer) || exit 1
(cd "$ROOT" && cargo build -q --release -p mukan-conformance-tests --bin rustpeer) || exit 1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mukan-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

bin() { [ "$1" = go ] && echo "$GOPEER" || echo "$RUSTPEER"; }

# one IMPL NAME COUNT MAXSIZE RATE THROTTLE: prints "wall_ms mb_s cpu_s rss_kb" or fails.
one() {
    local impl=$1 name=$2 count=$3 max=$4 rate=$5 throttle=$6 p1 p2 ids idc out
    read -r p1 p2 < <("$GOPEER" free-ports 2 | tr '\n' ' ')
    ids=$("$GOPEER" show-id --home "$WORK/$name-s")
    idc=$("$GOPEER" show-id --home "$WORK/$name-c")
    "$(bin "$impl")" --home "$WORK/$name-s" --listen "tcp://127.0.0.1:$p1" --quiet-echo \
        --log-level error --send-rate "$rate" --recv-rate "$rate" --flush-throttle "$throttle" \
        --exit-after 300s >"$WORK/$name-s.out" 2>"$WORK/$name-s.err" &
    PIDS+=("$!")
    local server=$!
    "$GOPEER" wait-event --file "$WORK/$name-s.out" --timeout 10s event=listening >/dev/null || return 1
    /usr/bin/time -f "%U %S %M" -o "$WORK/$name.time" "$(bin "$impl")" --home "$WORK/$name-c" \
        --listen "tcp://127.0.0.1:$p2" --dial "$ids@127.0.0.1:$p1" --echo-client "$count" \
        --echo-max-size "$max" --echo-timeout 240s --log-level error --send-rate "$rate" \
        --recv-rate "$rate" --flush-throttle "$throttle" >"$WORK/$name-c.out" 2>"$WORK/$name-c.err"
    local rc=$?
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
    out=$(grep '"echo_summary"' "$WORK/$name-c.out")
    [ "$rc" = 0 ] && [[ $out == *'"ok":true'* ]] || { echo "FAILED $impl $name: $out" >&2; return 1; }
    local bytes ms u s rss
    bytes=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' <<<"$out")
    ms=$(sed -n 's/.*"elapsed_ms":\([0-9]*\).*/\1/p' <<<"$out")
    read -r u s rss <"$WORK/$name.time"
    awk -v b="$bytes" -v ms="$ms" -v u="$u" -v s="$s" -v rss="$rss" \
        'BEGIN { if (ms < 1) ms = 1; printf "%d %.1f %.2f %d\n", ms, 2 * b / ms / 1000, u + s, rss }'
}

# best IMPL WORKLOAD COUNT MAXSIZE RATE THROTTLE: the fastest of RUNS runs.
best() {
    local i line bestline=""
    for i in $(seq 1 "$RUNS"); do
        line=$(one "$1" "$2-$i" "$3" "$4" "$5" "$6") || return 1
        if [ -z "$bestline" ] || [ "${line%% *}" -lt "${bestline%% *}" ]; then bestline=$line; fi
    done
    echo "$bestline"
}

printf '%-13s %-5s %10s %10s %10s %10s\n' workload impl wall_ms MB/s cpu_s rss_MiB
status=0
for w in "echo-mixed 1000 1048576 0 10ms" "echo-small 10000 1024 0 10ms" "echo-default 300 1048576 5120000 100ms"; do
    set -- $w
    for impl in go rust; do
        if r=$(best "$impl" "$1-$impl" "$2" "$3" "$4" "$5"); then
            read -r ms mbs cpu rss <<<"$r"
            printf '%-13s %-5s %10s %10s %10s %10.1f\n' "$1" "$impl" "$ms" "$mbs" "$cpu" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
        else
            printf '%-13s %-5s %10s\n' "$1" "$impl" FAILED
            status=1
        fi
    done
done
exit $status
