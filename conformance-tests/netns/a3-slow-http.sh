#!/usr/bin/env bash
# A3: slow HTTP clients against the real `mukan-p2p start` (shipped configuration, the RPC and
# metrics listeners moved from 127.0.0.1 to the node's address so that other hosts reach them).
# 70 clients from 7 addresses each start a POST and send one body byte every 5 s, on the RPC
# and on the metrics port. Pass: an honest client on another address gets `/health` and
# `/metrics` with p99 <= 1 s while they drip, and every slow client is dropped within the
# 10 s body timeout (+2 s of slack for scheduling).
source "$(dirname "$0")/lib.sh"
scenario_init A3
[ -x "$MUKAN_P2P" ] || fail "missing binary $MUKAN_P2P (cargo build -p mukan-node)"
[ -x "$ATTACKER" ] || fail "missing binary $ATTACKER (cargo build -p mukan-conformance-tests --bins)"

SLOW=${NETNS_A3_CLIENTS:-70}
PROBE_S=${NETNS_A3_PROBE_SECONDS:-20}
BOUND_MS=1000
DROP_BOUND_MS=12000
attack_topology
SRC=()
for i in 1 2 3 4 5 6 7; do SRC+=("45.34.$i.2"); done
H_IP=81.1.0.2
N_IP=$NODE_IP
attack_src "$NX" "${SRC[@]}"
attack_src "$NH" "$H_IP"

HOME_N="$WORK/node"
"$MUKAN_P2P" init --home "$HOME_N" --chain-id mukan-a3 >/dev/null
sed -i -e "s|^laddr = \"tcp://127.0.0.1:26657\"|laddr = \"tcp://$N_IP:26657\"|" \
    -e "s|^prometheus = false|prometheus = true|" \
    -e "s|^prometheus_listen_addr = .*|prometheus_listen_addr = \"$N_IP:26660\"|" \
    "$HOME_N/config/config.toml"
start_proc PN "$NN" "$WORK/node.log" "$MUKAN_P2P" start --home "$HOME_N"
for _ in $(seq 100); do
    ip netns exec "$NH" "$ATTACKER" http-probe --target "$N_IP:26657" --source "$H_IP" --count 1 \
        --timeout-ms 500 2>/dev/null | grep -q '"ok":1' && break
    sleep 0.1
done

sources=$(IFS=,; echo "${SRC[*]}")
ip netns exec "$NX" "$ATTACKER" slow-http --target "$N_IP:26657" --sources "$sources" \
    --clients "$SLOW" --drip-secs 5 --duration-secs $((PROBE_S + 20)) >"$WORK/slow-rpc.json" &
S1=$!
ip netns exec "$NX" "$ATTACKER" slow-http --target "$N_IP:26660" --sources "$sources" \
    --clients "$SLOW" --drip-secs 5 --duration-secs $((PROBE_S + 20)) >"$WORK/slow-metrics.json" &
S2=$!
_PIDS+=("$S1" "$S2")
sleep 2
count=$((PROBE_S * 4))
ip netns exec "$NH" "$ATTACKER" http-probe --target "$N_IP:26657" --source "$H_IP" \
    --count "$count" --interval-ms 250 --path /health >"$WORK/probe-rpc.json" &
P1=$!
ip netns exec "$NH" "$ATTACKER" http-probe --target "$N_IP:26660" --source "$H_IP" \
    --count "$count" --interval-ms 250 --path /metrics >"$WORK/probe-metrics.json" &
P2=$!
wait "$P1" "$P2"
wait "$S1" "$S2"
log "rpc probe: $(cat "$WORK/probe-rpc.json"); metrics probe: $(cat "$WORK/probe-metrics.json")"
log "slow rpc: $(cat "$WORK/slow-rpc.json"); slow metrics: $(cat "$WORK/slow-metrics.json")"

field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1"; }
P99_RPC=$(field "$WORK/probe-rpc.json" p99_ms) P99_MET=$(field "$WORK/probe-metrics.json" p99_ms)
FAIL_RPC=$(field "$WORK/probe-rpc.json" failed) FAIL_MET=$(field "$WORK/probe-metrics.json" failed)
OPEN_RPC=$(field "$WORK/slow-rpc.json" open_at_end) OPEN_MET=$(field "$WORK/slow-metrics.json" open_at_end)
DROP_RPC=$(field "$WORK/slow-rpc.json" max_drop_ms) DROP_MET=$(field "$WORK/slow-metrics.json" max_drop_ms)
CONN_RPC=$(field "$WORK/slow-rpc.json" connected)

[ -n "$P99_RPC" ] && [ -n "$P99_MET" ] || fail "a probe printed no result"
[ "$FAIL_RPC" = 0 ] || fail "/health: $FAIL_RPC of $count probes failed or timed out (p99 ${P99_RPC} ms)"
[ "$FAIL_MET" = 0 ] || fail "/metrics: $FAIL_MET of $count probes failed or timed out (p99 ${P99_MET} ms)"
[ "$P99_RPC" -le "$BOUND_MS" ] || fail "/health p99 ${P99_RPC} ms > ${BOUND_MS} ms"
[ "$P99_MET" -le "$BOUND_MS" ] || fail "/metrics p99 ${P99_MET} ms > ${BOUND_MS} ms"
[ "$CONN_RPC" = "$SLOW" ] || fail "only $CONN_RPC of $SLOW slow clients connected"
[ "$OPEN_RPC" = 0 ] || fail "$OPEN_RPC slow RPC clients were never dropped"
[ "$OPEN_MET" = 0 ] || fail "$OPEN_MET slow metrics clients were never dropped"
[ "$DROP_RPC" -le "$DROP_BOUND_MS" ] || fail "a slow RPC client was dropped after ${DROP_RPC} ms > ${DROP_BOUND_MS} ms"
[ "$DROP_MET" -le "$DROP_BOUND_MS" ] || fail "a slow metrics client was dropped after ${DROP_MET} ms > ${DROP_BOUND_MS} ms"
pass "/health p99 ${P99_RPC} ms, /metrics p99 ${P99_MET} ms ($count probes each, 0 failed) under $SLOW slow clients per port from 7 IPs; slowest drop ${DROP_RPC} ms (rpc) / ${DROP_MET} ms (metrics), bound ${DROP_BOUND_MS} ms"
