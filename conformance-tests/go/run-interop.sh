#!/usr/bin/env bash
# Interop suite, Go side: gopeer (CometBFT v0.38.25's p2p package) and real
# `cometbft` nodes of every Go line in use against each other and against our
# Rust peer. Run from anywhere; .ci/run calls it. See README.md beside it.
#
# Layout: lib/common.sh (process handling, expect, the case runner, parallel
# cases), lib/lines.sh (gopeer and the cometbft lines, cached outside the
# repository), lib/node.sh (a real node in a case); every cases/*.sh is sourced
# in name order and registers its cases. A new group of cases is a new file.
#
# Environment:
#   CI=true          a missing Go toolchain, Rust peer or Go line is a failure (else a skip)
#   RUST_PEER        path of the Rust peer binary
#                    (default: ${CARGO_TARGET_DIR:-<repo>/target}/debug/rustpeer, the
#                    `rustpeer` bin of the conformance-tests crate that `cargo test
#                    --workspace` builds)
#   RUST_PEER_BUILD  1 (default when RUST_PEER is not given): if the rustpeer source exists,
#                    `cargo build -p mukan-conformance-tests --bin rustpeer` and
#                    `cargo build -p mukan-node --bin mukan-p2p` first (a build failure is
#                    a failed case); 0: use whatever binaries are there
#   MUKAN_P2P        path of the node program (default: beside the default RUST_PEER)
#   REQUIRE_RUST=1   a missing Rust peer fails the Rust cases instead of skipping them
#   REQUIRE_LINES=1  a Go line that cannot be installed fails its cases (default with CI=true)
#   INTEROP_ONLY     regex: run only the cases whose name matches
#   INTEROP_CACHE    artifact dir (default <repo>/.interop-cache)
#   MUKAN_INTEROP_BIN_CACHE
#                    where gopeer and the cometbft binaries are cached
#                    (default $HOME/.cache/mukan-p2p/interop)
#   INTEROP_JOBS     parallel cases running at once (default 24)
#   INTEROP_KEEP=1   keep the per-run work dir (logs of every process)
#   INTEROP_WAITS_OUT
#                    file to which this run's timed waits are appended (one line per
#                    wait: case, site, timeout, observed ms; waits-report.sh reads it)
#   ECHO_COUNT       messages per echo case (default 1000)
#   STAY_SECONDS_GO, STAY_SECONDS_RUST
#                    how long that peer must stay connected to the real node (defaults 3
#                    and 110: the node pings every 60 s and drops a peer whose pong is
#                    45 s late, so 110 s proves our pong handling)
#   STAY_SECONDS_LINES
#                    the same for the Go-line cases (default STAY_SECONDS_RUST)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE="${INTEROP_CACHE:-$ROOT/.interop-cache}"
COMETBFT_VERSION=v0.38.25
if [ -n "${RUST_PEER:-}" ]; then
    RUST_PEER_BUILD="${RUST_PEER_BUILD:-0}"
else
    RUST_PEER="${CARGO_TARGET_DIR:-$ROOT/target}/debug/rustpeer"
    RUST_PEER_BUILD="${RUST_PEER_BUILD:-1}"
fi
RUST_PEER_SRC="$ROOT/conformance-tests/src/bin/rustpeer/main.rs"
# The node program (`mukan-p2p`, package mukan-node), built beside rustpeer.
MUKAN_P2P="${MUKAN_P2P:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/mukan-p2p}"
# In CI the Rust side is mandatory: a missing Rust peer fails its cases.
if [ "${CI:-}" = true ]; then REQUIRE_RUST="${REQUIRE_RUST:-1}"; else REQUIRE_RUST="${REQUIRE_RUST:-0}"; fi
# In CI every Go line is mandatory: one that cannot be installed fails its cases.
if [ "${CI:-}" = true ]; then REQUIRE_LINES="${REQUIRE_LINES:-1}"; else REQUIRE_LINES="${REQUIRE_LINES:-0}"; fi
INTEROP_JOBS="${INTEROP_JOBS:-24}"
ONLY="${INTEROP_ONLY:-}"
ECHO_COUNT="${ECHO_COUNT:-1000}"
STAY_SECONDS_GO="${STAY_SECONDS_GO:-3}"
STAY_SECONDS_RUST="${STAY_SECONDS_RUST:-110}"
STAY_SECONDS_LINES="${STAY_SECONDS_LINES:-$STAY_SECONDS_RUST}"
IMPLS=(go rust)

SUITE_START=$SECONDS

. "$HERE/lib/common.sh"
. "$HERE/lib/lines.sh"
. "$HERE/lib/node.sh"

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
mkdir -p "$CACHE"

t0=$SECONDS
if ! build_gopeer; then
    say "interop: building gopeer failed"
    say "0 passed, 1 failed"
    exit 1
fi
# v0.38.25, the reference line, is needed by several groups of cases; the
# other lines are installed by the cases that use them.
if ! install_line "$COMETBFT_VERSION"; then
    say "interop: installing cometbft $COMETBFT_VERSION failed"
    say "0 passed, 1 failed"
    exit 1
fi
LINE_TRIED[$COMETBFT_VERSION]=1
COMETBFT=$(line_bin "$COMETBFT_VERSION")
say "interop: tools ready in $((SECONDS - t0)) s"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mukan-interop.XXXXXX")
# Every timed wait of a case is logged here (lib/common.sh, "timed waits").
WAITS_LOG="$WORK/waits.tsv"
: >"$WAITS_LOG"

cleanup() {
    local pid
    stop_parallel_cases
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

# Common flags of every peer in the suite.
COMMON=(--log-level info --chain-id mukan-interop)

# ------------------------------------------------------------------ suite
say "interop: work dir $WORK, artifacts in $CACHE, binaries in $BIN_CACHE"
for f in "$HERE"/cases/*.sh; do
    # shellcheck source=/dev/null
    . "$f"
done
run_parallel_cases

say ""
say "interop: finished in $((SECONDS - SUITE_START)) s"
if [ -s "$WAITS_LOG" ]; then
    say "interop: the tightest timed waits of this run (timeout / observed; see waits-report.sh):"
    "$HERE/waits-report.sh" --top 5 "$WAITS_LOG" | sed 's/^/    /'
    [ -n "${INTEROP_WAITS_OUT:-}" ] && cat "$WAITS_LOG" >>"$INTEROP_WAITS_OUT"
fi
if [ "${#FAILED_NAMES[@]}" -gt 0 ]; then
    say "interop: failed cases: ${FAILED_NAMES[*]}"
fi
say "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
