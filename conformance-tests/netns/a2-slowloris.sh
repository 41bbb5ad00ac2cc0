#!/usr/bin/env bash
# A2: a slowloris of 200 sockets from 20 addresses, each sending the first bytes of a
# handshake and then nothing, reopened at once when the node closes it, against the real
# `mukan-p2p start`; meanwhile 100 honest dials from 20 other addresses (one every 150 ms,
# each closed after its handshake). Pass: >= 95% of the honest dials complete their
# handshake (NodeInfo exchange done) in < 1 s.
source "$(dirname "$0")/lib.sh"
scenario_init A2
[ -x "$MUKAN_P2P" ] || fail "missing binary $MUKAN_P2P (cargo build -p mukan-node)"
[ -x "$ATTACKER" ] || fail "missing binary $ATTACKER (cargo build -p mukan-conformance-tests --bins)"
attack_topology
BAD=() HON=()
for i in $(seq 1 20); do BAD+=("45.34.$i.1"); HON+=("81.$i.0.2"); done
attack_src "$NX" "${BAD[@]}"
attack_src "$NH" "${HON[@]}"
start_node PN "$WORK/node" mukan-a2
bad=$(IFS=,; echo "${BAD[*]}")
hon=$(IFS=,; echo "${HON[*]}")
ip netns exec "$NX" "$ATTACKER" idle-tcp --target "$NODE_IP:26656" --sources "$bad" --count 200 \
    --send-bytes 10 --hold-secs 30 >"$WORK/slowloris.json" &
SL=$!
_PIDS+=("$SL")
sleep 4
ip netns exec "$NH" "$ATTACKER" dial --target "$NODE_IP:26656" --sources "$hon" --count 100 \
    --chain mukan-a2 --interval-ms 150 --settle-ms 100 --timeout-ms 5000 >"$WORK/honest.json"
wait "$SL"
log "slowloris: $(cat "$WORK/slowloris.json"); honest: $(cat "$WORK/honest.json")"
FAST=$(jfield "$WORK/honest.json" handshake_under_1s)
P99=$(jfield "$WORK/honest.json" handshake_p99_ms)
OPENED=$(jfield "$WORK/slowloris.json" opened)
[ -n "$FAST" ] && [ "$FAST" -ge 95 ] || fail "only ${FAST:-0} of 100 honest handshakes in < 1 s (p99 ${P99:-?} ms; slowloris opened ${OPENED:-?} sockets): $(cat "$WORK/honest.json")"
pass "$FAST of 100 honest handshakes in < 1 s (p99 $P99 ms) while 200 half-handshake sockets from 20 IPs were held and reopened ($OPENED opened)"
