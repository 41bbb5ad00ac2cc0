#!/usr/bin/env bash
# A5: connect, close, reconnect at once from the same address, 100 times for each way the
# first connection ends (clean close after admission, a handshake cut short, a handshake
# reset with the reconnect from the same port, a NodeInfo the node refuses), against the
# real `mukan-p2p start` with allow_duplicate_ip = false (shipped).
# Pass: every reconnect completes its handshake and is admitted (0 resets).
# NETNS_A5_MODES picks modes, NETNS_A5_LOG_LEVEL sets the node's log_level (e.g. debug).
source "$(dirname "$0")/lib.sh"
scenario_init A5
[ -x "$MUKAN_P2P" ] || fail "missing binary $MUKAN_P2P (cargo build -p mukan-node)"
[ -x "$ATTACKER" ] || fail "missing binary $ATTACKER (cargo build -p mukan-conformance-tests --bins)"
N=${NETNS_A5_COUNT:-100}
attack_topology
attack_src "$NH" 81.1.0.2
start_node PN "$WORK/node" mukan-a5 \
    ${NETNS_A5_LOG_LEVEL:+-e "s|^log_level = .*|log_level = \"$NETNS_A5_LOG_LEVEL\"|"}
grep -q '^allow_duplicate_ip = false' "$WORK/node/config/config.toml" || fail "allow_duplicate_ip is not false"
figures=()
for mode in ${NETNS_A5_MODES:-clean handshake same-port nodeinfo}; do
    ip netns exec "$NH" "$ATTACKER" reconnect --target "$NODE_IP:26656" --source 81.1.0.2 \
        --count "$N" --chain mukan-a5 --mode "$mode" >"$WORK/$mode.json"
    log "$mode: $(cat "$WORK/$mode.json")"
    failed=$(jfield "$WORK/$mode.json" failed)
    [ "$failed" = 0 ] || fail "$mode: ${failed:-?} of $N reconnects not admitted: $(cat "$WORK/$mode.json")"
    figures+=("$mode 0/$N")
done
pass "reconnects refused: ${figures[*]}"
