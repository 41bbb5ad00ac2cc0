#!/usr/bin/env bash
# F9: link flaps (down 1 s / up 1 s) for NETNS_F9_SECONDS (CI: 60 s; campaign: 300 s).
# Three peers: A keeps B and C as persistent peers, over two links (A-B flaps, A-C is the
# control and must never drop). Pass: within 10 s of the last "up" the connection count
# converges (A has 2 peers, B and C 1 each, one established TCP connection per pair, none
# half-open), and the open-fd counts of the three processes are back to their baseline.
source "$(dirname "$0")/lib.sh"
scenario_init F9

PING_MS=${NETNS_PING_MS:-1000}
PONG_MS=${NETNS_PONG_MS:-500}
SECONDS_FLAP=${NETNS_F9_SECONDS:-60}
FLAPS=$((SECONDS_FLAP / 2))
PORT=26656
A_IP=10.231.9.1 B_IP=10.231.9.2
A2_IP=10.231.19.1 C_IP=10.231.19.2

ns_add NA a
ns_add NB b
ns_add NC c
link_add "$NA" eth0 "$A_IP/24" "$NB" eth0 "$B_IP/24"
link_add "$NA" eth1 "$A2_IP/24" "$NC" eth0 "$C_IP/24"

B_ID=$(peer_id "$WORK/b") C_ID=$(peer_id "$WORK/c")
COMMON=("${PEER_FLAGS[@]}" --ping-interval "${PING_MS}ms" --pong-timeout "${PONG_MS}ms"
    --dial-timeout 1s --handshake-timeout 2s --exit-after $((SECONDS_FLAP + 60))s)
start_peer PB "$NB" "$WORK/b.log" --home "$WORK/b" --listen "tcp://$B_IP:$PORT" "${COMMON[@]}"
start_peer PC "$NC" "$WORK/c.log" --home "$WORK/c" --listen "tcp://$C_IP:$PORT" "${COMMON[@]}"
wait_event "$WORK/b.log" '"event":"listening"' 0 10 >/dev/null || fail "B did not start"
wait_event "$WORK/c.log" '"event":"listening"' 0 10 >/dev/null || fail "C did not start"
start_peer PA "$NA" "$WORK/a.log" --home "$WORK/a" --listen "tcp://$A_IP:$PORT" "${COMMON[@]}" \
    --persistent-peers "$B_ID@$B_IP:$PORT,$C_ID@$C_IP:$PORT" \
    --persistent-peers-max-dial-period 1s --redial-forever
for i in $(seq 100); do
    [ "$(peers_now "$WORK/a.log")" = 2 ] && break
    sleep 0.1
done
[ "$(peers_now "$WORK/a.log")" = 2 ] || fail "A did not connect to B and C"
sleep 1
FD_A=$(fd_count "$PA") FD_B=$(fd_count "$PB") FD_C=$(fd_count "$PC")
RSS_A0=$(rss_kib "$PA") RSS_B0=$(rss_kib "$PB")
log "baseline fds A=$FD_A B=$FD_B C=$FD_C; $FLAPS flaps"

T0=$(now_us)
for ((i = 0; i < FLAPS; i++)); do
    ip -n "$NA" link set eth0 down
    sleep 1
    ip -n "$NA" link set eth0 up
    sleep 1
done
T1=$(now_us)
DROPS=$(count_events "$WORK/a.log" '"event":"peer_removed"' "$T0")
C_DROPS=$(count_events "$WORK/c.log" '"event":"peer_removed"' "$T0")
log "flaps done: A removed peers $DROPS times (C side: $C_DROPS)"

# Convergence: poll every 100 ms for at most 10 s after the last "up" (then keep polling
# 5 s more to report how late it converged, if it did).
CONV=
for ((i = 0; i < 150; i++)); do
    if [ "$(peers_now "$WORK/a.log")" = 2 ] && [ "$(peers_now "$WORK/b.log")" = 1 ] &&
        [ "$(peers_now "$WORK/c.log")" = 1 ] &&
        [ "$(established "$NA" "$PORT")" = 2 ] && [ "$(established "$NB" "$PORT")" = 1 ] &&
        [ "$(half_open "$NA" "$PORT")" = 0 ] && [ "$(half_open "$NB" "$PORT")" = 0 ] &&
        [ "$(fd_count "$PA")" = "$FD_A" ] && [ "$(fd_count "$PB")" = "$FD_B" ] &&
        [ "$(fd_count "$PC")" = "$FD_C" ]; then
        CONV=$(ms_since "$T1")
        break
    fi
    sleep 0.1
done
NOW_A=$(fd_count "$PA") NOW_B=$(fd_count "$PB") NOW_C=$(fd_count "$PC")
RSS_A1=$(rss_kib "$PA") RSS_B1=$(rss_kib "$PB")
log "after: peers A=$(peers_now "$WORK/a.log") B=$(peers_now "$WORK/b.log") C=$(peers_now "$WORK/c.log"); fds A=$NOW_A B=$NOW_B C=$NOW_C; A: $(tcp_states "$NA" "$PORT" | tr '\n' ' ')| B: $(tcp_states "$NB" "$PORT" | tr '\n' ' ')"
[ -n "$CONV" ] || fail "no convergence within 15 s of the last flap (fds A=$NOW_A/$FD_A B=$NOW_B/$FD_B C=$NOW_C/$FD_C)"
[ "$CONV" -le 10000 ] || fail "converged ${CONV}ms after the flaps (> 10000 ms)"
[ "$C_DROPS" = 0 ] || fail "the control link A-C dropped $C_DROPS times"
# The flaps must have broken connections (else convergence was not exercised): a ping
# falls in most 1 s outages (ping 1 s, pong 0.5 s), so 10 flaps without one is a broken test.
[ "$FLAPS" -lt 10 ] || [ "$DROPS" -gt 0 ] || fail "$FLAPS flaps broke no connection"
[ "$(count_events "$WORK/a.log" '"event":"error"' 0)" = 0 ] || fail "A printed an error event"
pass "${FLAPS} flaps over ${SECONDS_FLAP}s, ${DROPS} disconnects; converged ${CONV}ms after the last up (bound 10000ms); fds back to A=$FD_A B=$FD_B C=$FD_C; control link 0 drops; RSS A ${RSS_A0}->${RSS_A1} KiB, B ${RSS_B0}->${RSS_B1} KiB (not asserted)"
