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
# CPU-budget mode (what FUZZING.md's results table records):
#
#   ./fuzz-campaign.sh --cpu N [--until 'YYYY-MM-DD HH:MM'] [--parallel P] [crate[/target] ...]
#
# runs each selected target (all when none is named, in the order given) until it has
# accumulated N CPU-seconds in total, counting the rows already in FUZZING.md's results table,
# so a campaign can be spread over sessions. One libFuzzer process per target (no -fork), run
# under `nice -n 19` with -rss_limit_mb=2048 -timeout=1 (an input slower than 1 s is a failure);
# its CPU time (user + system of the process tree, polled from /proc and taken exactly from
# /usr/bin/time at the end) is what counts, so SIGSTOP/SIGCONT and other load do not inflate
# it. --until stops every fuzzer cleanly (SIGINT) at that UTC time; the partial CPU time is
# recorded. --parallel runs P targets at once (default 1). Each run appends a row (date,
# CPU-seconds, execs, corpus size, crashes, OOMs, timeouts, command) to the results table.
# libFuzzer's -timeout counts wall-clock time: a timeout input that replays alone in under
# 1 CPU-second was a starved process, not a slow input; it is kept as `starved-*`, counted
# apart, and the target resumes (see cpu_run).
#
# Needs: rustup with a nightly toolchain (for -Zinstrument-coverage style builds and
# llvm-tools), cargo-fuzz. Both are installed at the start when missing.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
CPU_MODE=0
if [ "${1:-}" = "--cpu" ]; then
    CPU_MODE=1
    SECONDS_PER_TARGET=0
    JOBS=1
else
    SECONDS_PER_TARGET=${1:-3600}
    JOBS=${2:-$(nproc)}
fi
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

# --- CPU-budget mode -------------------------------------------------------------------------------
RESULTS=$ROOT/FUZZING.md
TRIPLE_DIR=$CARGO_TARGET_DIR/$HOST/release

# CPU clock ticks (user + system) of a process and its live descendants.
tree_ticks() {
    local pid=$1 total=0 stat kids k
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    # Fields after "(comm) ": state is 1st, utime 12th, stime 13th, cutime 14th, cstime 15th.
    read -r -a f <<<"$stat"
    total=$((f[11] + f[12] + f[13] + f[14]))
    kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
    for k in $kids; do total=$((total + $(tree_ticks "$k"))); done
    echo "$total"
}

# CPU-seconds already recorded for crate/target in the results table.
recorded_cpu() {
    awk -F'|' -v t="$1" '{ gsub(/ /, "", $3) } $3 == t { s += $4 } END { printf "%d", s }' \
        "$RESULTS" 2>/dev/null || echo 0
}

# CPU-seconds (user + system) one input takes when replayed alone at normal priority.
replay_cpu() {
    local bin=$1 input=$2 t
    t=$(mktemp)
    /usr/bin/time -f '%U %S' -o "$t" timeout -s KILL 30 "$bin" -runs=1 -timeout=0 "$input" \
        >/dev/null 2>&1 || true
    awk 'NF == 2 { printf "%.2f", $1 + $2 }' "$t"
    rm -f "$t"
}

# Runs one target until it has `budget` more CPU-seconds or the deadline passes, appending a
# row per fuzzer run. libFuzzer's -timeout is wall-clock time, so a starved process (nice 19
# on a loaded machine, or SIGSTOPped) can report a "timeout" for a fast input: each timeout
# input is replayed alone, and only one that takes > 1 CPU-second counts as a slow input;
# the others are renamed `starved-*`, counted in their own column, and fuzzing resumes.
cpu_run() {
    local crate=$1 t=$2 budget=$3 deadline=$4
    local bin=$TRIPLE_DIR/$t corpus=$crate/fuzz/corpus/$t arts=$crate/fuzz/artifacts/$t
    local log=$OUT/$crate-$t.cpu.log timef=$OUT/$crate-$t.time
    mkdir -p "$corpus" "$arts"
    local seeds=()
    [ -d "$crate/fuzz/seeds/$t" ] && seeds=("$crate/fuzz/seeds/$t")
    local args=(-rss_limit_mb=2048 -timeout=1 -print_final_stats=1 "-artifact_prefix=$arts/"
        "$corpus" "${seeds[@]}")
    local tick
    tick=$(getconf CLK_TCK)
    while :; do
        local before
        before=$(find "$arts" -type f | sort)
        /usr/bin/time -f '%U %S' -o "$timef" nice -n 19 "$bin" "${args[@]}" >"$log" 2>&1 &
        local tpid=$! stopped=""
        while kill -0 "$tpid" 2>/dev/null; do
            sleep 2
            local ticks
            ticks=$(tree_ticks "$tpid")
            if [ -z "$stopped" ] && { [ $((ticks / tick)) -ge "$budget" ] || [ "$(date +%s)" -ge "$deadline" ]; }; then
                # SIGINT: libFuzzer prints its final stats and exits (also if SIGSTOPped).
                pkill -INT -P "$tpid" 2>/dev/null || true
                pkill -CONT -P "$tpid" 2>/dev/null || true
                stopped=1
            fi
        done
        wait "$tpid" 2>/dev/null || true
        local cpu execs ncorpus new crashes ooms timeouts=0 starved=0 f c
        cpu=$(awk 'NF == 2 { printf "%d", $1 + $2 + 0.5 }' "$timef" 2>/dev/null)
        cpu=${cpu:-0}
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
        [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -n1 | tr -d '#')
        ncorpus=$(find "$corpus" -type f | wc -l)
        new=$(comm -13 <(echo "$before") <(find "$arts" -type f | sort) | grep -v '^$' || true)
        crashes=$(grep -cE '/(crash|leak)-' <<<"$new" || true)
        ooms=$(grep -c '/oom-' <<<"$new" || true)
        local notes=""
        for f in $(grep -E '/(timeout|slow-unit)-' <<<"$new" || true); do
            c=$(replay_cpu "$bin" "$f")
            if awk -v c="${c:-9}" 'BEGIN { exit !(c < 1.0) }'; then
                starved=$((starved + 1))
                mv "$f" "$arts/starved-${f##*/}"
                notes="$notes starved input replays in ${c} CPU-s;"
            else
                timeouts=$((timeouts + 1))
                notes="$notes slow input ${f##*/} replays in ${c} CPU-s;"
            fi
        done
        local cmd="nice -n 19 $t ${args[*]}" stxt=""
        [ "$starved" -eq 0 ] || stxt=" (+$starved starved)"
        (
            flock 9
            printf '| %s | %s/%s | %s | %s | %s | %s | %s | %s | `%s`%s |\n' "$(date -u +%FT%H:%MZ)" \
                "$crate" "$t" "$cpu" "${execs:-?}" "$ncorpus" "$crashes" "$ooms" \
                "$timeouts$stxt" "$cmd" "${notes:+ <br>$notes}" >>"$RESULTS"
        ) 9>>"$RESULTS"
        say "$(printf '%-14s %-18s +%5ss CPU (total %5ss) execs=%-10s corpus=%-6s crash=%s oom=%s timeout=%s starved=%s' \
            "$crate" "$t" "$cpu" "$(recorded_cpu "$crate/$t")" "${execs:-?}" "$ncorpus" "$crashes" \
            "$ooms" "$timeouts" "$starved")"
        [ "$crashes$ooms$timeouts" = "000" ] || return 1
        budget=$((budget - cpu))
        [ -z "$stopped" ] || return 0
        [ "$budget" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ] || return 0
    done
}

if [ "$CPU_MODE" = 1 ]; then
    shift
    CPU_GOAL=$1
    shift
    DEADLINE=$((1 << 62))
    PARALLEL=1
    while [ $# -gt 0 ]; do
        case $1 in
        --until) DEADLINE=$(date -u -d "$2" +%s); shift 2 ;;
        --parallel) PARALLEL=$2; shift 2 ;;
        *) break ;;
        esac
    done
    [ -f "$RESULTS" ] || { echo "missing $RESULTS (its results table)" >&2; exit 1; }
    # The selection: crate/target pairs, in order.
    selection=()
    if [ $# -eq 0 ]; then
        for fuzzdir in */fuzz; do
            [ -f "$fuzzdir/Cargo.toml" ] && set -- "$@" "${fuzzdir%/fuzz}"
        done
    fi
    for sel in "$@"; do
        crate=${sel%%/*}
        [ -f "$crate/fuzz/Cargo.toml" ] || { echo "no fuzz crate: $crate" >&2; exit 1; }
        if [ "$sel" = "$crate" ]; then
            for t in $(cd "$crate" && "${FUZZ[@]}" list); do selection+=("$crate/$t"); done
        else
            selection+=("$sel")
        fi
    done
    built=" "
    for sel in "${selection[@]}"; do
        crate=${sel%%/*}
        case $built in *" $crate "*) continue ;; esac
        (cd "$crate" && nice -n 19 "${FUZZ[@]}" build -O >/dev/null)
        built="$built$crate "
    done
    say "CPU-budget campaign: ${CPU_GOAL} CPU-s per target, until $(date -u -d "@$DEADLINE" +%FT%TZ 2>/dev/null || echo never), $PARALLEL at once, $(date -u +%FT%TZ)"
    pids=()
    for sel in "${selection[@]}"; do
        crate=${sel%%/*}
        t=${sel#*/}
        left=$((CPU_GOAL - $(recorded_cpu "$sel")))
        if [ "$left" -le 0 ]; then
            say "$sel: ${CPU_GOAL} CPU-s already recorded"
            continue
        fi
        [ "$(date +%s)" -lt "$DEADLINE" ] || break
        while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n || FAILED=1; done
        cpu_run "$crate" "$t" "$left" "$DEADLINE" &
        pids+=($!)
    done
    FAILED=${FAILED:-0}
    for p in "${pids[@]}"; do wait "$p" || FAILED=1; done
    say ""
    say "CPU-seconds recorded per target (FUZZING.md):"
    for sel in "${selection[@]}"; do say "$(printf '  %-34s %6s' "$sel" "$(recorded_cpu "$sel")")"; done
    exit "$FAILED"
fi

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
    [pex]="pex/src/msg.rs pex/src/core/mod.rs pex/src/core/messages.rs pex/src/core/dialing.rs pex/src/core/feelers.rs"
    [switch]="switch/src/switch.rs switch/src/routing.rs"
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
        # `cargo fuzz coverage` replays one directory: a snapshot of the corpus plus the seeds
        # (a fuzzer still running may delete corpus files it has reduced).
        snap=$OUT/snapshot/$crate/$t
        rm -rf "$snap"
        mkdir -p "$snap"
        cp "$crate/fuzz/corpus/$t"/* "$snap"/ 2>/dev/null || true
        [ -d "$crate/fuzz/seeds/$t" ] && cp -n "$crate/fuzz/seeds/$t"/* "$snap"/ 2>/dev/null || true
        (cd "$crate" && "${FUZZ[@]}" coverage --target-dir "$COV_TARGET" "$t" "$snap" \
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
