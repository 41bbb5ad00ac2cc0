#!/usr/bin/env bash
# A4: 200 idle TCP connections from one address (never a byte), then an honest peer from the
# same address and one from another, against the real `mukan-p2p start`.
# Pass: each honest peer completes its handshake and is admitted within 1 s; the node's
# scrape counts the idle sockets it closed to make room (cometbft_p2p_inbound_refused_total, reason
# idle_displaced).
source "$(dirname "$0")/lib.sh"
scenario_init A4
[ -x "$MUKAN_P2P" ] || fail "missing binary $MUKAN_P2P (cargo build -p mukan-node)"
[ -x "$ATTACKER" ] || fail "missing binary $ATTACKER (cargo build -p mukan-conformance-tests --bins)"
attack_topology
attack_src "$NX" 45.34.1.1
attack_src "$NH" 81.1.0.2
start_node PN "$WORK/node" mukan-a4 "${METRICS_ON[@]}"
ip netns exec "$NX" "$ATTACKER" idle-tcp --target "$NODE_IP:26656" --sources 45.34.1.1 \
    --count 200 --hold-secs 20 >"$WORK/idle.json" &
IP_=$!
_PIDS+=("$IP_")
sleep 3
ip netns exec "$NX" "$ATTACKER" dial --target "$NODE_IP:26656" --sources 45.34.1.1 --count 1 \
    --chain mukan-a4 --settle-ms 500 --timeout-ms 10000 --hold-secs 1 >"$WORK/same.json"
ip netns exec "$NH" "$ATTACKER" dial --target "$NODE_IP:26656" --sources 81.1.0.2 --count 1 \
    --chain mukan-a4 --settle-ms 500 --timeout-ms 10000 --hold-secs 1 >"$WORK/other.json"
wait "$IP_"
log "idle: $(cat "$WORK/idle.json"); same IP: $(cat "$WORK/same.json"); other IP: $(cat "$WORK/other.json")"
S_MS=$(jfield "$WORK/same.json" handshake_p99_ms) O_MS=$(jfield "$WORK/other.json" handshake_p99_ms)
S_OK=$(jfield "$WORK/same.json" kept_after_hold) O_OK=$(jfield "$WORK/other.json" kept_after_hold)
DISPLACED=$(node_metric 'cometbft_p2p_inbound_refused_total{chain_id="mukan-a4",reason="idle_displaced"}')
[ -n "$DISPLACED" ] && [ "$DISPLACED" -gt 0 ] ||
    fail "the scrape counts no idle_displaced closing: $(node_metrics '^cometbft_p2p_inbound_refused_total')"
[ "$S_OK" = 1 ] && [ -n "$S_MS" ] && [ "$S_MS" -lt 1000 ] || fail "the honest peer from the idle sockets' IP: $(cat "$WORK/same.json")"
[ "$O_OK" = 1 ] && [ -n "$O_MS" ] && [ "$O_MS" -lt 1000 ] || fail "the honest peer from another IP: $(cat "$WORK/other.json")"
pass "honest peers admitted under 200 idle sockets: same IP handshake ${S_MS} ms, other IP ${O_MS} ms; $DISPLACED idle sockets closed to make room (scrape)"
