# Shared helpers of the interop suite, sourced by run-interop.sh (bash).
#
# A case is a shell function that starts processes with start_peer / node_start,
# checks their events with expect / expect_none / fail, and returns; the runner
# ends its processes. Register it with
#   run_case NAME FUNCTION ARGS...           runs now, alone
#   run_case_parallel NAME FUNCTION ARGS...  queued; run_parallel_cases runs the
#                                            queue concurrently (run-interop.sh
#                                            calls it after the last cases file)
# An argument `rust` means the case needs the Rust peer, `mukan-p2p` the node
# program; an argument naming a Go
# line (`v0.34.35`, see lines.sh) means it needs that line's cometbft binary:
# when missing, the case is skipped, or failed with CI=true / REQUIRE_RUST=1 /
# REQUIRE_LINES=1.
#
# Inside a case: $CASE_DIR is its own directory (process outputs NAME.out /
# NAME.err), CASE_OK=0 marks it failed, `ports N` prints N free loopback ports.

say() { printf '%s\n' "$*"; }

# ------------------------------------------------------- process handling
# Every process a case starts is recorded in CASE_PIDS and ended (by pid)
# when the case ends, or on exit. The list is emptied once its processes are
# reaped, so no pid is signalled after it could have been reused. A parallel
# case runs in a subshell of its own, with its own CASE_PIDS.
CASE_PIDS=()

# Upper bound of any process's life (s): a process outlives a killed suite by at
# most this (every program is started under `timeout`).
PROCESS_LIFETIME="${INTEROP_PROCESS_LIFETIME:-900}"

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

# pid_gone PID: the process has ended (and this shell has reaped it).
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

stop_case_pids() {
    local pid
    for pid in "${CASE_PIDS[@]}"; do is_child "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for pid in "${CASE_PIDS[@]}"; do stop_pid "$pid"; done
    CASE_PIDS=()
}

# bg_wait CMD ARGS...: runs CMD in the background and waits for it, so a
# signal to this shell is handled at once (a trap waits for a foreground
# command to end). Returns CMD's status. A CMD with `--timeout D` is a timed
# wait: it is logged (log_wait).
bg_wait() {
    local t0=$EPOCHREALTIME
    "$@" &
    local pid=$! rc p kept=()
    CASE_PIDS+=("$pid")
    wait "$pid"
    rc=$?
    for p in "${CASE_PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    CASE_PIDS=("${kept[@]}")
    local a prev="" timeout="" kind=${WAIT_KIND:-wait} what=""
    for a in "$@"; do
        [ "$prev" = --timeout ] && timeout=$a
        [ "$a" = --none ] && kind=none
        case $a in
        wait-event | wait-height | wait-rpc-peer | crawl) what=$a ;;
        --file) ;;
        event=* | --height) [ -n "$what" ] && what+=" ${a#--}" ;;
        esac
        [ "$prev" = --file ] && what+=" ${a##*/}"
        [ "$prev" = --height ] && what+="=$a"
        prev=$a
    done
    [ -n "$timeout" ] && log_wait "$t0" "$timeout" "$kind" "$rc" "${what:-${1##*/}}"
    return "$rc"
}

# ------------------------------------------------------------ timed waits
# Every wait with a timeout (expect, node_wait_height, node_lists, rpc_lists,
# wait_until, any bg_wait of a command with --timeout) appends one line to
# WAITS_LOG (run-interop.sh: $WORK/waits.tsv), tab-separated:
#   case  site(file:line of the case code)  timeout  elapsed_ms  kind  rc  what
# kind `wait` (ends as soon as it holds: its margin is timeout / elapsed) or
# `none` (expect_none, and a negative check run as `WAIT_KIND=none node_lists
# ...`: it lasts its whole timeout when it passes; no margin).
# waits-report.sh prints the margins; .ci/stress aggregates them over runs.
WAITS_LOG="${WAITS_LOG:-}"

# Helpers of the case files that wait for their callers: a wait inside one is
# logged at the line that called it (like the helpers of lib/).
WAIT_HELPERS=" rpc_lists ours_stop "

# wait_site: file:line of the innermost caller that is neither in lib/ nor in
# WAIT_HELPERS: the line of the case that waits.
wait_site() {
    local i
    for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
        if [[ ${BASH_SOURCE[i]} != */lib/*.sh && $WAIT_HELPERS != *" ${FUNCNAME[i]} "* ]]; then
            printf '%s:%s' "${BASH_SOURCE[i]##*/}" "${BASH_LINENO[i - 1]}"
            return
        fi
    done
    printf '?'
}

# log_wait T0 TIMEOUT KIND RC WHAT: one line in WAITS_LOG (T0: $EPOCHREALTIME
# at the start of the wait).
log_wait() {
    [ -n "$WAITS_LOG" ] || return 0
    local t1=$EPOCHREALTIME
    local us=$((${t1/./} - ${1/./}))
    printf '%s\t%s\t%s\t%d\t%s\t%s\t%s\n' "${CASE_NAME:-?}" "$(wait_site)" "$2" $((us / 1000)) "$3" "$4" "$5" \
        >>"$WAITS_LOG"
}

# wait_until TIMEOUT CMD ARGS...: runs CMD every 0.2 s until it succeeds
# (returns 0) or TIMEOUT (seconds, `15s` or `15`) has passed (returns 1).
# Measured by the clock, not by a count of sleeps; logged like every wait.
wait_until() {
    local timeout=$1 t0=$EPOCHREALTIME rc=1
    shift
    local limit_us
    limit_us=$(awk -v t="${timeout%s}" 'BEGIN { printf "%d", t * 1000000 }')
    while :; do
        if "$@"; then
            rc=0
            break
        fi
        local now=$EPOCHREALTIME
        [ $((${now/./} - ${t0/./})) -ge "$limit_us" ] && break
        sleep 0.2
    done
    local what="$*"
    what=${what//"$CASE_DIR/"/}
    log_wait "$t0" "$timeout" wait "$rc" "${what:0:80}"
    return "$rc"
}

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
# LAST_PID is its pid (the `timeout` wrapper, which passes SIGTERM on).
start_peer() {
    local impl=$1 name=$2
    shift 2
    timeout -k 5 "$PROCESS_LIFETIME" "$(peer_bin "$impl")" "$@" \
        >"$CASE_DIR/$name.out" 2>"$CASE_DIR/$name.err" &
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
    if ! bg_wait "$GOPEER" wait-event --file "$CASE_DIR/$name.out" --timeout "$timeout" "$@" >/dev/null; then
        say "    expected in $name.out within $timeout: $*"
        CASE_OK=0
        return 1
    fi
}

# expect_none NAME DURATION MATCHERS...: no matching event in NAME.out for DURATION.
expect_none() {
    local name=$1 timeout=$2 hit="$CASE_DIR/.expect_none.$$"
    shift 2
    if ! bg_wait "$GOPEER" wait-event --file "$CASE_DIR/$name.out" --timeout "$timeout" --none "$@" >"$hit"; then
        say "    unexpected in $name.out: $(cat "$hit")"
        rm -f "$hit"
        CASE_OK=0
        return 1
    fi
    rm -f "$hit"
}

fail() {
    say "    $*"
    CASE_OK=0
}

# publish_artifact DIR NAME: copies the files of DIR to $CACHE/NAME/ for
# people to look at (cases read this run's copy, never $CACHE). Each file is
# replaced by a rename, so two runs of one checkout never see a half-written
# file or fail on each other's directory.
publish_artifact() {
    local dir=$1 name=$2 f tmp
    mkdir -p "$CACHE/$name" || return 1
    for f in "$dir"/*; do
        [ -f "$f" ] || continue
        tmp=$(mktemp "$CACHE/$name/.${f##*/}.XXXXXX") || return 1
        cp "$f" "$tmp" && mv -f "$tmp" "$CACHE/$name/${f##*/}" || { rm -f "$tmp"; return 1; }
    done
}

show_logs() {
    local f
    for f in "$CASE_DIR"/*.out "$CASE_DIR"/*.err "$CASE_DIR"/*.log; do
        [ -s "$f" ] || continue
        say "    --- ${f#"$CASE_DIR"/} (last 15 lines)"
        tail -n 15 "$f" | sed 's/^/    | /'
    done
}

ports() { "$GOPEER" free-ports "$1"; }

# ------------------------------------------------------------ case runner
PASSED=0
FAILED=0
SKIPPED=0
FAILED_NAMES=()

record_pass() { PASSED=$((PASSED + 1)); }
record_fail() {
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$1")
}
record_skip() { SKIPPED=$((SKIPPED + 1)); }

case_selected() { [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]; }

# case_ready NAME ARGS...: checks what the case needs (see the top); prints the
# SKIP/FAIL line and records it when something is missing.
case_ready() {
    local name=$1 arg
    shift
    for arg in "$@"; do
        if [ "$arg" = rust ] && ! have_impl rust; then
            if [ "$REQUIRE_RUST" = 1 ]; then
                say "FAIL $name: Rust peer binary missing at $RUST_PEER (REQUIRE_RUST=1)"
                record_fail "$name"
            else
                say "SKIP $name: Rust peer binary not built yet ($RUST_PEER missing)"
                record_skip
            fi
            return 1
        fi
        if [ "$arg" = mukan-p2p ] && [ ! -x "$MUKAN_P2P" ]; then
            if [ "$REQUIRE_RUST" = 1 ]; then
                say "FAIL $name: mukan-p2p missing at $MUKAN_P2P (REQUIRE_RUST=1)"
                record_fail "$name"
            else
                say "SKIP $name: mukan-p2p not built ($MUKAN_P2P missing)"
                record_skip
            fi
            return 1
        fi
        if is_go_line "$arg" && ! line_installed "$arg"; then
            if [ "$REQUIRE_LINES" = 1 ]; then
                say "FAIL $name: cometbft $arg could not be installed (see above)"
                record_fail "$name"
            else
                say "SKIP $name: cometbft $arg could not be installed (see above)"
                record_skip
            fi
            return 1
        fi
    done
    return 0
}

# case_body NAME FUNCTION ARGS...: runs one case (a port taken in between is
# retried once), prints its verdict; returns 0 if it passed.
case_body() {
    local name=$1 fn=$2
    shift 2
    local start=$SECONDS attempt
    CASE_NAME=$name
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
        if [ "$CASE_OK" = 1 ] || ! grep -qsi 'address already in use' "$CASE_DIR"/*; then
            break
        fi
        say "    a port was taken meanwhile: retrying once"
    done
    if [ "$CASE_OK" = 1 ]; then
        say "PASS $name ($((SECONDS - start)) s)"
        return 0
    fi
    show_logs
    say "FAIL $name ($((SECONDS - start)) s)"
    return 1
}

# run_case NAME FUNCTION ARGS...: one case, now.
run_case() {
    local name=$1 fn=$2
    shift 2
    case_selected "$name" || return 0
    case_ready "$name" "$@" || return 0
    if case_body "$name" "$fn" "$@"; then record_pass; else record_fail "$name"; fi
}

# run_case_parallel NAME FUNCTION ARGS...: queues a case for run_parallel_cases.
PAR_NAMES=()
PAR_CMDS=()
run_case_parallel() {
    local name=$1
    shift
    case_selected "$name" || return 0
    case_ready "$name" "${@:2}" || return 0
    PAR_NAMES+=("$name")
    PAR_CMDS+=("$(printf '%q ' case_body "$name" "$@")")
}

# Jobs of run_parallel_cases still running: pid -> case name.
declare -A PAR_RUNNING=()

# run_parallel_cases: runs the queued cases, at most INTEROP_JOBS at once, each
# in a subshell with its output in a file; prints each case's output when it
# ends, and records its verdict.
run_parallel_cases() {
    local n=${#PAR_NAMES[@]} i pid t0=$SECONDS
    [ "$n" -gt 0 ] || return 0
    mkdir -p "$WORK/.parallel"
    say "==== $n cases in parallel (at most $INTEROP_JOBS at once): ${PAR_NAMES[*]}"
    for i in "${!PAR_NAMES[@]}"; do
        while [ "${#PAR_RUNNING[@]}" -ge "$INTEROP_JOBS" ]; do
            parallel_reap_one
        done
        (
            trap - EXIT
            trap 'stop_case_pids; exit 143' TERM INT
            CASE_PIDS=()
            eval "${PAR_CMDS[$i]}"
        ) >"$WORK/.parallel/${PAR_NAMES[$i]}.log" 2>&1 &
        PAR_RUNNING[$!]=${PAR_NAMES[$i]}
    done
    while [ "${#PAR_RUNNING[@]}" -gt 0 ]; do
        parallel_reap_one
    done
    PAR_NAMES=()
    PAR_CMDS=()
    say "==== parallel cases finished in $((SECONDS - t0)) s"
}

parallel_reap_one() {
    local pid rc name
    wait -n -p pid "${!PAR_RUNNING[@]}"
    rc=$?
    [ -n "${pid:-}" ] || return 0
    name=${PAR_RUNNING[$pid]}
    unset "PAR_RUNNING[$pid]"
    cat "$WORK/.parallel/$name.log"
    if [ "$rc" = 0 ]; then record_pass; else record_fail "$name"; fi
}

# stop_parallel_cases: on exit, ends the running parallel cases (each ends
# its own processes on SIGTERM).
stop_parallel_cases() {
    local pid i
    [ "${#PAR_RUNNING[@]}" -gt 0 ] || return 0
    for pid in "${!PAR_RUNNING[@]}"; do is_child "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for i in $(seq 1 100); do
        local left=0
        for pid in "${!PAR_RUNNING[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
        [ "$left" = 0 ] && break
        sleep 0.1
    done
    for pid in "${!PAR_RUNNING[@]}"; do is_child "$pid" && kill -KILL "$pid" 2>/dev/null; done
}
