#!/usr/bin/env bash
# The benchmark suite: our Rust stack beside Go CometBFT v0.38.25 and v0.40.0, every row
# measured for all three in the same run on the same machine, written to BENCHMARKS.md.
#
#   bench-suite/run.sh              full suite, best of 3 runs, writes ./BENCHMARKS.md
#   bench-suite/run.sh --runs 5     best of 5
#   bench-suite/run.sh --quick      tiny sizes, one run, debug build, report to a temp
#                                   file (CI: checks that every program still builds, runs
#                                   and prints every figure; asserts no timing)
#   bench-suite/run.sh --out FILE   write the report elsewhere
#
# Needs cargo and go (the Go modules come from the Go module proxy on first build).
# Every process is bounded by `timeout`; all traffic is on 127.0.0.1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}
QUICK=0
OUT=""
ORIG_ARGS="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --runs) RUNS=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mukan-bench-suite.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [ "$QUICK" = 1 ]; then
    RUNS=1
    OUT=${OUT:-$WORK/BENCHMARKS.md}
    PROFILE=dev
    RUN_ARGS=(--quick)
    GO_ARGS=(-quick)
    LIMIT=120
else
    OUT=${OUT:-$ROOT/BENCHMARKS.md}
    PROFILE=release
    RUN_ARGS=()
    GO_ARGS=()
    LIMIT=300
fi

# 1,000 idle peers need 2,000+ descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== build ($PROFILE)" >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build -q --profile "$PROFILE" -p mukan-bench-suite --bin mukan-bench)
if [ "$PROFILE" = dev ]; then RUST="$CARGO_TARGET_DIR/debug/mukan-bench"; else RUST="$CARGO_TARGET_DIR/release/mukan-bench"; fi
mkdir -p "$HERE/go/bin"
for v in v0.38 v0.40; do
    (cd "$HERE/go/$v" && GOFLAGS=-buildvcs=false go build -o "$HERE/go/bin/gobench-$v" .)
done
if [ "$QUICK" = 1 ]; then
    # The Go side of the shared-workload check (the Rust side runs in `cargo test`).
    for v in v0.38 v0.40; do (cd "$HERE/go/$v" && go test -count=1 .); done
fi

ROWS_RUST="seal_mib_s bulk_1k_mib_s bulk_64k_mib_s bulk_1k_cpu_us_mib bulk_64k_cpu_us_mib hs_1_per_s hs_16_per_s lat_p50_us lat_p99_us mconn_1k_mib_s mconn_64k_mib_s mconn_mixed_mib_s mconn_1k_cpu_us_mib mconn_64k_cpu_us_mib mconn_mixed_cpu_us_mib mem_per_peer_kib ab_add_per_s ab_size ab_pick_per_s ab_select_per_s"
ROWS_RUST="$ROWS_RUST bc_cpu_us bc_p50_ms bc_max_ms"
ROWS_GO="$ROWS_RUST"
# The Rust broadcast row's peers: the Go v0.40.0 sink (wire-compatible), so both columns
# face the same receivers.
export MUKAN_BENCH_SINK="$HERE/go/bin/gobench-v0.40"
status=0
check() { # FILE KEYS: every figure present
    local k
    for k in $2; do
        grep -q "^$k	" "$1" || { echo "missing figure $k in $(basename "$1")" >&2; status=1; }
    done
}

# Interleaved row by row (Rust, Go v0.38, Go v0.40 for one row, then the next row), so
# that load from other work on a shared machine falls on all three alike.
ROW_NAMES="seal bulk handshake latency mconn memory addrbook broadcast"
for i in $(seq 1 "$RUNS"); do
    echo "== run $i of $RUNS" >&2
    for row in $ROW_NAMES; do
        timeout "$LIMIT" "$RUST" run "${RUN_ARGS[@]}" --rows "$row" >>"$WORK/rust-$i.tsv" || { echo "rust $row run $i failed" >&2; status=1; }
        timeout "$LIMIT" "$HERE/go/bin/gobench-v0.38" run "${GO_ARGS[@]}" -rows "$row" >>"$WORK/go38-$i.tsv" || { echo "go v0.38 $row run $i failed" >&2; status=1; }
        timeout "$LIMIT" "$HERE/go/bin/gobench-v0.40" run "${GO_ARGS[@]}" -rows "$row" >>"$WORK/go40-$i.tsv" || { echo "go v0.40 $row run $i failed" >&2; status=1; }
    done
    check "$WORK/rust-$i.tsv" "$ROWS_RUST"
    check "$WORK/go38-$i.tsv" "$ROWS_GO"
    check "$WORK/go40-$i.tsv" "$ROWS_GO"
done

# Keep the raw figures next to the build (to re-run the report alone:
# target/release/mukan-bench report --runs target/bench-suite-runs --out BENCHMARKS.md ...).
if [ "$QUICK" = 0 ]; then
    rm -rf "$CARGO_TARGET_DIR/bench-suite-runs" && cp -r "$WORK" "$CARGO_TARGET_DIR/bench-suite-runs"
fi
CMD="bench-suite/run.sh${ORIG_ARGS:+ $ORIG_ARGS}"
TOOLS="Toolchains: $(rustc --version | cut -d' ' -f1-2), $(go version | cut -d' ' -f3)."
"$RUST" report --out "$OUT" --runs "$WORK" --command "$CMD" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --toolchains "$TOOLS" --notes "$HERE/analysis.md"
if [ "$QUICK" = 1 ]; then
    cat "$OUT"
    [ "$status" = 0 ] && echo "bench-suite quick run: every program built and printed every figure"
else
    echo "wrote $OUT" >&2
fi
exit $status
