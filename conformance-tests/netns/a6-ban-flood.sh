#!/usr/bin/env bash
# A6: a ban flood against the real `mukan-p2p start` (shipped configuration): N peers
# (NETNS_A6_COUNT, default 15,000: past the book's 10,000-ban cap), each with a fresh key, from
# 64 addresses in 64 /16s, each handshake, send one unsolicited PexAddrs (an offence the node
# stops and bans for) and wait for the node to close. Then a clean stop (SIGTERM), and a start
# on the same home, which must load the saved book, and a second clean stop.
# Pass: the node stopped >= 90% of the peers; the saved addrbook.json is at most 5 MiB (the
# bound the addrbook crate states for a book of bans: 10,000 bans at <= 470 B) and holds at
# most 10,000 bans; the next start loads it whole (its load report: found, the same number of
# bans, nothing skipped, no "starting with an empty book" warning).
source "$(dirname "$0")/lib.sh"
scenario_init A6
[ -x "$MUKAN_P2P" ] || fail "missing binary $MUKAN_P2P (cargo build -p mukan-node)"
[ -x "$ATTACKER" ] || fail "missing binary $ATTACKER (cargo build -p mukan-conformance-tests --bins)"
N=${NETNS_A6_COUNT:-15000}
BOUND=$((5 << 20))
MAX_BANS=10000
attack_topology
# 64 attacker addresses, one in each of 46.1.0.0/16 ... 46.64.0.0/16 (routed to NX).
ip -n "$NN" route add 46.0.0.0/8 via 172.31.1.2
SRC=()
for i in $(seq 1 64); do SRC+=("46.$i.0.1"); done
attack_src "$NX" "${SRC[@]}"

HOME_DIR="$WORK/node"
BOOK="$HOME_DIR/config/addrbook.json"
start_node PN "$HOME_DIR" mukan-a6
grep -q '^max_num_inbound_peers = 40' "$HOME_DIR/config/config.toml" || fail "max_num_inbound_peers is not the shipped 40"

# stop_node PID: SIGTERM, then wait (bounded) for the process to end.
stop_node() {
    local pid=$1 i
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mukan-p2p ] || fail "pid $pid is not mukan-p2p"
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    fail "the node did not stop within 30 s of SIGTERM"
}

t0=$(now_us)
src=$(IFS=,; echo "${SRC[*]}")
ip netns exec "$NX" "$ATTACKER" ban-flood --target "$NODE_IP:26656" --sources "$src" \
    --count "$N" --chain mukan-a6 --concurrency 16 >"$WORK/flood.json"
FLOOD_MS=$(ms_since "$t0")
log "flood: $(cat "$WORK/flood.json") in $FLOOD_MS ms; node RSS $(rss_kib "$PN") KiB"
CLOSED=$(sed -n 's/.*"Closed":\([0-9]*\).*/\1/p' "$WORK/flood.json")
RSS=$(rss_kib "$PN")
stop_node "$PN"
[ -f "$BOOK" ] || fail "no $BOOK after a clean stop"
SIZE=$(stat -c %s "$BOOK")
log "addrbook.json after the clean stop: $SIZE bytes"

# The next start on the same home: its load report says what it restored.
start_proc PN2 "$NN" "$WORK/node2.log" "$MUKAN_P2P" start --home "$HOME_DIR"
REPORT=
for ((i = 0; i < 150; i++)); do
    REPORT=$(grep -h -o 'LoadReport {[^}]*}' "$WORK/node2.log" "$WORK/node2.log.err" 2>/dev/null | head -n 1 || true)
    [ -n "$REPORT" ] && break
    grep -q 'starting with an empty book' "$WORK/node2.log" "$WORK/node2.log.err" 2>/dev/null && break
    sleep 0.1
done
log "next start: ${REPORT:-no load report}"
EMPTY=$(cat "$WORK/node2.log" "$WORK/node2.log.err" 2>/dev/null | grep -c 'starting with an empty book' || true)
stop_node "$PN2"
FOUND=$(sed -n 's/.*found: \([a-z]*\).*/\1/p' <<<"$REPORT")
BANS=$(sed -n 's/.*banned: \([0-9]*\).*/\1/p' <<<"$REPORT")
LOADED=$(sed -n 's/.*loaded: \([0-9]*\).*/\1/p' <<<"$REPORT")
SKIPPED=$(sed -n 's/.*skipped: \([0-9]*\).*/\1/p' <<<"$REPORT")
FIG="$N fresh-key peers in $((FLOOD_MS / 1000)) s, ${CLOSED:-0} stopped by the node (node RSS $RSS KiB); addrbook.json $SIZE bytes (bound $BOUND); next start: loaded ${LOADED:-?} addresses and ${BANS:-?} bans"

[ -n "$CLOSED" ] && [ $((CLOSED * 10)) -ge $((N * 9)) ] || fail "the node stopped only ${CLOSED:-0} of $N peers: $(cat "$WORK/flood.json")"
[ "$EMPTY" = 0 ] || fail "the next start did not load the book (\"starting with an empty book\"): $FIG"
[ "$FOUND" = true ] && [ "$SKIPPED" = 0 ] || fail "the next start did not load the book whole (${REPORT:-no load report}): $FIG"
[ "$SIZE" -le "$BOUND" ] || fail "addrbook.json is over its bound: $FIG"
[ -n "$BANS" ] && [ "$BANS" -gt 0 ] && [ "$BANS" -le "$MAX_BANS" ] || fail "bans held: ${BANS:-?} (want 1..$MAX_BANS): $FIG"
pass "$FIG"
