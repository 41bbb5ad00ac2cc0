#!/usr/bin/env bash
# Long fuzz campaign over every target of every */fuzz directory, then line coverage of the
# decode and handshake modules from the resulting corpora.
#
#   ./fuzz-campaign.sh [SECONDS_PER_TARGET] [JOBS]
#
# SECONDS_PER_TARGET defaults to 3600 (the release campaign: >= 1 CPU-hour per target); 0 skips
# the fuzzing and only reports coverage of the corpora already there;
# JOBS defaults to the number of cores (libFuzzer -fork=JOBS). Corpora grow in
# <crate>/fuzz/corpus/<target> (git-ignored); the committed seeds in <crate>/fuzz/seeds/<target>
# are read, never written. Crashes stop the campaign with the reproducer in
# <crate>/fuzz/artifacts/<target>/: commit it under fuzz/seeds/<target>/ as a regression input.
# A summary (per target: seconds, corpus size, crashes) and the coverage table end the output;
# the same text lands in target/fuzz-campaign/report.txt.
#
# Needs: rustup with a nightly toolchain (for -Zinstrument-coverage style builds and
# llvm-tools), cargo-fuzz. Both are installed at the start when missing.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
SECONDS_PER_TARGET=${1:-3600}
JOBS=${2:-$(nproc)}
OUT=$ROOT/target/fuzz-campaign
mkdir -p "$OUT"
REPORT=$OUT/report.txt
: >"$REPORT"
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }

# --- tools -------------------------------------------------------------------------------------
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
rustup component add llvm-tools-preview --toolchain nightly >/dev/null 2>&1 || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
SYSROOT=$(rustup run nightly rustc --print sysroot)
HOST=$(rustup run nightly rustc -vV | sed -n 's/^host: //p')
LLVM_BIN=$SYSROOT/lib/rustlib/$HOST/bin
for tool in llvm-profdata llvm-cov; do
    [ -x "$LLVM_BIN/$tool" ] || { echo "missing $LLVM_BIN/$tool (llvm-tools-preview)" >&2; exit 1; }
done
FUZZ=(rustup run nightly cargo fuzz)
export CARGO_TARGET_DIR=$ROOT/target/fuzz

# --- campaign ------------------------------------------------------------------------------------
say "fuzz campaign: ${SECONDS_PER_TARGET}s per target, ${JOBS} jobs, $(date -u +%FT%TZ)"
FAILED=0
[ "$SECONDS_PER_TARGET" -gt 0 ] && for fuzzdir in */fuzz; do
    [ -f "$fuzzdir/Cargo.toml" ] || continue
    crate=${fuzzdir%/fuzz}
    (cd "$crate" && "${FUZZ[@]}" build -O >/dev/null)
    for t in $(cd "$crate" && "${FUZZ[@]}" list); do
        corpus=$crate/fuzz/corpus/$t
        mkdir -p "$corpus" "$crate/fuzz/artifacts/$t"
        seeds=()
        [ -d "$crate/fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
        log=$OUT/$crate-$t.log
        status=ok
        # -fork=N runs N worker processes and survives their crashes long enough to report them.
        if ! (cd "$crate" && "${FUZZ[@]}" run -O "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
            -fork="$JOBS" -ignore_crashes=0 -max_total_time="$SECONDS_PER_TARGET" \
            -rss_limit_mb=2048 -timeout=1 -print_final_stats=1) >"$log" 2>&1; then
            status=FAILED
            FAILED=1
        fi
        crashes=$(find "$crate/fuzz/artifacts/$t" -type f | wc -l)
        say "$(printf '%-14s %-20s %6ss corpus=%-6s artifacts=%-3s %s' "$crate" "$t" \
            "$SECONDS_PER_TARGET" "$(find "$corpus" -type f | wc -l)" "$crashes" "$status")"
    done
done

# --- coverage ------------------------------------------------------------------------------------
# Per crate: build the targets with coverage instrumentation, replay the corpus and the seeds,
# merge the profiles, and report the decode and handshake modules.
declare -A MODULES=(
    [secret-conn]="secret-conn/src/handshake.rs secret-conn/src/proto.rs secret-conn/src/frame.rs secret-conn/src/tokio.rs"
    [mconn]="mconn/src/packet.rs mconn/src/channel.rs mconn/src/state.rs"
    [reactor-api]="reactor-api/src/node_info.rs reactor-api/src/net_address.rs"
    [addrbook]="addrbook/src/file.rs addrbook/src/book.rs"
)
COV_TARGET=$ROOT/target/fuzz-coverage
say ""
say "line coverage of the decode and handshake modules from the corpora:"
for fuzzdir in */fuzz; do
    [ -f "$fuzzdir/Cargo.toml" ] || continue
    crate=${fuzzdir%/fuzz}
    [ -n "${MODULES[$crate]:-}" ] || continue
    objects=()
    for t in $(cd "$crate" && "${FUZZ[@]}" list); do
        mkdir -p "$crate/fuzz/corpus/$t"
        # `cargo fuzz coverage` replays the corpus dir; put the seeds in it first (copies).
        [ -d "$crate/fuzz/seeds/$t" ] && cp -n "$crate/fuzz/seeds/$t"/* "$crate/fuzz/corpus/$t"/ 2>/dev/null || true
        (cd "$crate" && "${FUZZ[@]}" coverage --target-dir "$COV_TARGET" "$t" "fuzz/corpus/$t" \
            >"$OUT/$crate-$t.cov.log" 2>&1) || {
            say "coverage run failed for $crate/$t (see $OUT/$crate-$t.cov.log)"
            continue
        }
        bin=$(find "$COV_TARGET" -path "*/release/$t" -type f -perm -u+x | head -n1)
        [ -n "$bin" ] && objects+=("$bin")
    done
    profiles=$(find "$crate/fuzz/coverage" -name coverage.profdata 2>/dev/null)
    if [ -z "$profiles" ] || [ "${#objects[@]}" -eq 0 ]; then
        say "-- $crate: no coverage data"
        continue
    fi
    # shellcheck disable=SC2086
    "$LLVM_BIN/llvm-profdata" merge -sparse $profiles -o "$OUT/$crate.profdata"
    args=()
    for o in "${objects[@]:1}"; do args+=(-object "$o"); done
    sources=()
    for m in ${MODULES[$crate]}; do sources+=("$ROOT/$m"); done
    say "-- $crate"
    "$LLVM_BIN/llvm-cov" report "${objects[0]}" "${args[@]}" \
        -instr-profile="$OUT/$crate.profdata" "${sources[@]}" | tee -a "$REPORT"
done
say ""
say "report: $REPORT"
exit "$FAILED"
