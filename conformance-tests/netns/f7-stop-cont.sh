#!/usr/bin/env bash
# F7: SIGSTOP a peer, then SIGCONT.
# The stop lasts ping_interval + 4 x pong_timeout: a ping falls due at most ping_interval
# after the stop, and the stop then lasts 4 x pong_timeout past it (a stop of only
# 2 x pong_timeout does not always contain a whole ping + pong timeout, since
# pong_timeout < ping_interval; 4 x leaves 1.5 s for a loaded machine's scheduling delays).
# Pass: the running peer removes the stopped one with a pong timeout while it is stopped;
# both are connected again (persistent peer) within 10 s of SIGCONT; exactly one established
# connection on each side and no half-open sockets (ss in both namespaces).
source "$(dirname "$0")/lib.sh"
scenario_init "F7$([ "${NETNS_B_IMPL:-rust}" = go ] && echo -go)"

PING_MS=${NETNS_PING_MS:-1000}
PONG_MS=${NETNS_PONG_MS:-500}
STOP_MS=$((PING_MS + 4 * PONG_MS))
PORT=26656
A_IP=10.231.7.1 B_IP=10.231.7.2

ns_add NA a
ns_add NB b
link_add "$NA" eth0 "$A_IP/24" "$NB" eth0 "$B_IP/24"

B_ID=$(b_id "$WORK/b")
COMMON=("${PEER_FLAGS[@]}" --ping-interval "${PING_MS}ms" --pong-timeout "${PONG_MS}ms" --exit-after 60s)
start_b PB "$NB" "$WORK/b.log" "$WORK/b" "tcp://$B_IP:$PORT" 60s \
    --ping-interval "${PING_MS}ms" --pong-timeout "${PONG_MS}ms"
wait_event "$WORK/b.log" '"event":"listening"' 0 10 >/dev/null || fail "B did not start"
start_peer PA "$NA" "$WORK/a.log" --home "$WORK/a" --listen "tcp://$A_IP:$PORT" "${COMMON[@]}" \
    --persistent-peers "$B_ID@$B_IP:$PORT" --persistent-peers-max-dial-period 1s
wait_event "$WORK/a.log" '"event":"peer_added"' 0 15 >/dev/null || fail "A never connected to B"
wait_event "$WORK/b.log" '"event":"peer_added"' 0 5 >/dev/null || fail "B never added A"
sleep "$(printf '1.%03d' $((RANDOM % 1000)))"

[ "$(tr -d '\0' </proc/"$PB"/comm)" = "$(b_comm)" ] || fail "pid $PB is not $(b_comm)"
T0=$(now_us)
kill -STOP "$PB"
sleep "$(printf '%d.%03d' $((STOP_MS / 1000)) $((STOP_MS % 1000)))"
T1=$(now_us)
kill -CONT "$PB"
log "B stopped for $(((T1 - T0) / 1000)) ms"

TA=$(first_event "$WORK/a.log" '"event":"peer_removed"' "$T0")
[ -n "$TA" ] || fail "A did not remove B while B was stopped ($(((T1 - T0) / 1000)) ms)"
[ "$TA" -lt "$T1" ] || fail "A removed B only after SIGCONT"
DA=$(((TA - T0) / 1000))
REASON=$(grep -F '"event":"peer_removed"' "$WORK/a.log" | tail -n 1 | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p')
case $REASON in *pong*) ;; *) fail "A removed B for '$REASON', not a pong timeout";; esac

TRA=$(wait_event "$WORK/a.log" '"event":"peer_added"' "$T1" 10) || fail "A did not reconnect within 10 s of SIGCONT"
TRB=$(wait_event "$WORK/b.log" '"event":"peer_added"' "$T1" 10) || fail "B did not re-add A within 10 s of SIGCONT"
DR=$(((TRA > TRB ? TRA : TRB) - T1))
DR=$((DR / 1000))
# Half-open leftovers: give the old connection's close 2 s to finish, then look (bounded).
for _ in $(seq 20); do
    EA=$(established "$NA" "$PORT") EB=$(established "$NB" "$PORT")
    HA=$(half_open "$NA" "$PORT") HB=$(half_open "$NB" "$PORT")
    [ "$EA$EB$HA$HB" = 1100 ] && break
    sleep 0.1
done
log "A: $(tcp_states "$NA" "$PORT" | tr '\n' ' ')| B: $(tcp_states "$NB" "$PORT" | tr '\n' ' ')"
PA_NOW=$(peers_now "$WORK/a.log") PB_NOW=$(peers_now "$WORK/b.log")
[ "$EA" = 1 ] && [ "$EB" = 1 ] || fail "established connections A=$EA B=$EB, want 1 each"
[ "$HA" = 0 ] && [ "$HB" = 0 ] || fail "half-open sockets A=$HA B=$HB"
[ "$PA_NOW" = 1 ] && [ "$PB_NOW" = 1 ] || fail "peer sets A=$PA_NOW B=$PB_NOW, want 1 each"
pass "removed ${DA}ms into a ${STOP_MS}ms stop ('$REASON', pong timeout ${PONG_MS}ms, ping ${PING_MS}ms); reconnected ${DR}ms after CONT; 1 connection each side, 0 half-open"
