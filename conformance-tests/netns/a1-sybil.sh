#!/usr/bin/env bash
# A1: 100 sybils against the real `mukan-p2p start` (40 inbound slots): 60 from one IPv6 /64
# and 40 from one IPv4 /16, each redialing at once whenever it is refused or dropped, while
# 15 honest peers from 15 other /16s dial in, and the node keeps a persistent (outbound) peer.
# Pass: >= 10 honest peers admitted and still connected at the end; the persistent peer never
# lost; the node's scrape counts the sybils' connections it refused because their netgroup's
# share of the pending pool was full (cometbft_p2p_inbound_refused_total, reason
# pending_netgroup_full: what holds them off in practice, ~9,000 in a run, with ~90 idle ones
# closed to make room and no refusal by the switch's netgroup cap).
source "$(dirname "$0")/lib.sh"
scenario_init A1
[ -x "$MUKAN_P2P" ] || fail "missing binary $MUKAN_P2P (cargo build -p mukan-node)"
[ -x "$ATTACKER" ] || fail "missing binary $ATTACKER (cargo build -p mukan-conformance-tests --bins)"
SECS=${NETNS_A1_SECONDS:-40}
attack_topology
ns_add NP persistent
link_add "$NN" ep 172.31.3.1/30 "$NP" eth0 172.31.3.2/30

SYB=()
for i in $(seq 1 60); do SYB+=("2a01:4f8:10:20::$(printf '%x' "$i")"); done
for i in $(seq 1 40); do SYB+=("45.34.$((i / 250)).$((i % 250 + 1))"); done
HON=()
for i in $(seq 1 15); do HON+=("81.$i.0.2"); done
attack_src "$NX" "${SYB[@]}"
attack_src "$NH" "${HON[@]}"

P_ID=$(peer_id "$WORK/p")
start_peer PP "$NP" "$WORK/p.log" --home "$WORK/p" --listen "tcp://172.31.3.2:26656" \
    --chain-id mukan-a1 --quiet-echo --pex --exit-after "$((SECS + 60))s"
wait_event "$WORK/p.log" '"event":"listening"' 0 10 >/dev/null || fail "the persistent peer did not start"
start_node PN "$WORK/node" mukan-a1 "${METRICS_ON[@]}" \
    -e "s|^persistent_peers = \"\"|persistent_peers = \"$P_ID@172.31.3.2:26656\"|"
wait_event "$WORK/p.log" '"event":"peer_added"' 0 15 >/dev/null || fail "the node never dialed its persistent peer"

syb=$(IFS=,; echo "${SYB[*]}")
hon=$(IFS=,; echo "${HON[*]}")
ip netns exec "$NX" "$ATTACKER" sybil --target "[$NODE_IP6]:26656" --sources "$syb" \
    --chain mukan-a1 --duration-secs "$SECS" >"$WORK/sybil.json" &
SP=$!
_PIDS+=("$SP")
sleep 8
ip netns exec "$NH" "$ATTACKER" dial --target "$NODE_IP:26656" --sources "$hon" --count 15 \
    --chain mukan-a1 --interval-ms 200 --timeout-ms 10000 --hold-secs "$((SECS - 20))" \
    >"$WORK/honest.json"
wait "$SP"
log "sybils: $(cat "$WORK/sybil.json"); honest: $(cat "$WORK/honest.json")"
node_json /net_info >"$WORK/net_info.json"
LOST=$(count_events "$WORK/p.log" '"event":"peer_removed"' 0)
KEPT=$(jfield "$WORK/honest.json" kept_after_hold)
SYB_IN=$(jfield "$WORK/sybil.json" connected_at_end)
grep -q "\"id\":\"$P_ID\"" "$WORK/net_info.json" || fail "the persistent peer is not in /net_info"
[ "$LOST" = 0 ] || fail "the persistent peer lost its connection $LOST time(s)"
NETGROUP=$(node_metric 'cometbft_p2p_inbound_refused_total{chain_id="mukan-a1",reason="pending_netgroup_full"}')
[ -n "$NETGROUP" ] && [ "$NETGROUP" -gt 0 ] ||
    fail "the scrape counts no pending_netgroup_full refusal: $(node_metrics '^cometbft_p2p_inbound_refused_total')"
[ -n "$KEPT" ] && [ "$KEPT" -ge 10 ] || fail "only ${KEPT:-0} of 15 honest peers admitted and kept (sybils connected: ${SYB_IN:-?}): $(cat "$WORK/honest.json")"
pass "$KEPT of 15 honest peers admitted and kept while 100 sybils kept dialing ($SYB_IN sybils connected at the end); persistent peer never lost; $NETGROUP refused for their netgroup's share of the pending pool (scrape)"
