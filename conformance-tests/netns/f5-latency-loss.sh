#!/usr/bin/env bash
# F5: latency 200 ms +/- 50 ms each way (chaosproxy in a middle namespace: this kernel has no
# netem) and 2% random packet drop (nftables numgen, on every segment through the middle
# namespace, both legs, both directions) for NETNS_F5_SECONDS (CI: 60 s; campaign: 600 s).
# A dials B through the proxy (persistent peer) and runs the echo client: one message every
# 100 ms, sizes 0 B..256 KiB, each checked byte-exact and in order when it comes back. At the
# same time A streams sequenced messages (16 B..4 KiB) on three more channels (0x20-0x22),
# one per channel every 100 ms, which B checks per channel (rustpeer --stream-check).
# Pass: zero disconnects on either side (one proxied connection for the whole run); the echo
# channel's delivery complete and in order both ways (echo_summary ok, sent == received);
# on each stream channel every message arrived, in order (stream_done, 0 out of order).
source "$(dirname "$0")/lib.sh"
scenario_init F5

SECS=${NETNS_F5_SECONDS:-60}
INTERVAL_MS=100
MSGS=$((SECS * 1000 / INTERVAL_MS))
# RTT through the proxy is 300..500 ms plus retransmissions on lossy legs: the pong timeout
# is scaled down from 45 s, but kept above a few RTTs (a real node has 45 s). The handshake
# (3 round trips, a lost SYN costs 1 s) gets 10 s, so the one connection the run counts is
# not lost to a 3 s handshake bound.
PING_MS=${NETNS_F5_PING_MS:-2000}
PONG_MS=${NETNS_F5_PONG_MS:-1500}
DELAY_MS=200 JITTER_MS=50 DROP_PCT=2
PORT=26656 PROXY_PORT=7000
A_IP=10.231.5.1 MA_IP=10.231.5.2 MB_IP=10.231.15.1 B_IP=10.231.15.2
[ -x "$CHAOSPROXY" ] || fail "missing binary $CHAOSPROXY"

ns_add NA a
ns_add NM m
ns_add NB b
link_add "$NA" eth0 "$A_IP/24" "$NM" eth0 "$MA_IP/24"
link_add "$NM" eth1 "$MB_IP/24" "$NB" eth0 "$B_IP/24"

nft_in "$NM" "table inet mkf5 {
  chain in { type filter hook input priority 0; policy accept; numgen random mod 100 < $DROP_PCT counter drop; }
  chain out { type filter hook output priority 0; policy accept; numgen random mod 100 < $DROP_PCT counter drop; }
}"

B_ID=$(peer_id "$WORK/b")
STREAM_CHANNELS=(20 21 22)
COMMON=("${PEER_FLAGS[@]}" --ping-interval "${PING_MS}ms" --pong-timeout "${PONG_MS}ms"
    --persistent-peers-max-dial-period 1s --exit-after $((SECS + 90))s
    --dial-timeout 10s --handshake-timeout 10s
    --channels "$(IFS=,; echo "${STREAM_CHANNELS[*]}")")
start_proc PM "$NM" "$WORK/proxy.log" "$CHAOSPROXY" --listen "$MA_IP:$PROXY_PORT" \
    --upstream "$B_IP:$PORT" --delay-ms "$DELAY_MS" --jitter-ms "$JITTER_MS" \
    --seed "${NETNS_SEED:-$RANDOM}" --exit-after "$((SECS + 90))"
start_peer PB "$NB" "$WORK/b.log" --home "$WORK/b" --listen "tcp://$B_IP:$PORT" "${COMMON[@]}" \
    --stream-check
wait_event "$WORK/proxy.log" '"event":"listening"' 0 10 >/dev/null || fail "the proxy did not start"
wait_event "$WORK/b.log" '"event":"listening"' 0 10 >/dev/null || fail "B did not start"

T0=$(now_us)
start_peer PA "$NA" "$WORK/a.log" --home "$WORK/a" --listen "tcp://$A_IP:$PORT" "${COMMON[@]}" \
    --persistent-peers "$B_ID@$MA_IP:$PROXY_PORT" --echo-client "$MSGS" \
    --echo-interval "${INTERVAL_MS}ms" --echo-max-size 262144 --echo-timeout "$((SECS + 60))s" \
    --echo-connect-timeout 20s --stream-count "$MSGS" --stream-interval "${INTERVAL_MS}ms"
TS=$(wait_event "$WORK/a.log" '"event":"echo_summary"' "$T0" $((SECS + 85))) || fail "no echo summary within $((SECS + 85)) s"
wait "$PA" 2>/dev/null || true
DUR=$(((TS - T0) / 1000000))
SUMMARY=$(grep -F '"event":"echo_summary"' "$WORK/a.log" | tail -n 1)
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$SUMMARY"; }
OK=$(field ok) SENT=$(field sent) RECV=$(field received) MISM=$(field mismatches) BYTES=$(field bytes)
REM_A=$(count_events "$WORK/a.log" '"event":"peer_removed"' "$T0" "$TS")
REM_B=$(count_events "$WORK/b.log" '"event":"peer_removed"' "$T0" "$TS")
CONNS=$(count_events "$WORK/proxy.log" '"event":"conn_open"' 0)
DROPPED=$(ip netns exec "$NM" nft list table inet mkf5 | awk '{ for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }')
ELAPSED=$(field elapsed_ms)
# The latency was there: the last message left at >= (MSGS-1) x interval and came back
# through the proxy twice (two one-way delays of >= DELAY-JITTER each).
MIN_MS=$(((MSGS - 1) * INTERVAL_MS + 2 * (DELAY_MS - JITTER_MS)))
log "summary: $SUMMARY"
# The streams: A's stream_sent, then B's stream_done per channel (bounded wait).
wait_event "$WORK/a.log" '"event":"stream_sent"' "$T0" 20 >/dev/null || fail "A did not finish its streams"
SENT_LINE=$(grep -F '"event":"stream_sent"' "$WORK/a.log" | tail -n 1)
case $SENT_LINE in *'"ok":true'*) ;; *) fail "stream sending failed: $SENT_LINE";; esac
STREAM_OK=0
for ch in "${STREAM_CHANNELS[@]}"; do
    wait_event "$WORK/b.log" "\"event\":\"stream_done\",\"id\"" "$T0" 20 >/dev/null || true
    for _ in $(seq 100); do
        grep -qF "\"ch\":\"$ch\",\"total\"" "$WORK/b.log" && break
        sleep 0.1
    done
    DONE=$(grep -F '"event":"stream_done"' "$WORK/b.log" | grep -F "\"ch\":\"$ch\"" | tail -n 1)
    [ -n "$DONE" ] || fail "B did not receive the last message of channel 0x$ch"
    case $DONE in *"\"total\":$MSGS,\"next\":$MSGS,\"out_of_order\":0,"*) STREAM_OK=$((STREAM_OK + 1)) ;;
        *) fail "channel 0x$ch: $DONE";; esac
done
GAPS=$(count_events "$WORK/b.log" '"event":"stream_gap"' 0)
[ "$GAPS" = 0 ] || fail "B saw $GAPS stream gaps: $(grep -F stream_gap "$WORK/b.log" | head -n 3)"
log "disconnects A=$REM_A B=$REM_B; proxied connections $CONNS; packets dropped $DROPPED"

[ "$OK" = true ] || fail "echo failed: $SUMMARY"
[ "$SENT" = "$MSGS" ] && [ "$RECV" = "$MSGS" ] && [ "$MISM" = 0 ] || fail "echo sent=$SENT received=$RECV mismatches=$MISM of $MSGS"
[ "$REM_A" = 0 ] && [ "$REM_B" = 0 ] || fail "spurious disconnects A=$REM_A B=$REM_B"
[ "$CONNS" = 1 ] || fail "$CONNS proxied connections, want 1"
[ "$ELAPSED" -ge "$MIN_MS" ] || fail "echo took ${ELAPSED}ms < ${MIN_MS}ms: the proxy added no latency"
[ "$DROPPED" -gt 0 ] || fail "nftables dropped no packet"
pass "${DUR}s at ${DELAY_MS}+/-${JITTER_MS}ms each way + ${DROP_PCT}% drop (${DROPPED} packets dropped): 0 disconnects, ${RECV}/${MSGS} messages (${BYTES} B) echoed complete and in order in ${ELAPSED}ms (>= ${MIN_MS}ms); ${STREAM_OK} stream channels x ${MSGS} messages complete and in order; ping ${PING_MS}ms pong ${PONG_MS}ms"
