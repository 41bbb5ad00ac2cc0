# b. Echo: server S echoes, client C sends ECHO_COUNT messages of 0 B..1 MiB
# and checks they come back byte-exact and in order.
case_echo() {
    local S=$1 C=$2 ps pc ids rc
    read -r ps pc < <(ports 2 | tr '\n' ' ')
    ids=$(new_key s) && new_key c >/dev/null || { fail "key generation failed"; return; }
    start_peer "$S" s "${COMMON[@]}" --home "$CASE_DIR/s" --listen "tcp://127.0.0.1:$ps" --moniker "echo-s-$S"
    expect s 30s event=listening || return
    # In the background + wait, so a signal to the suite is handled at once.
    local t0=$EPOCHREALTIME
    timeout 60 "$(peer_bin "$C")" "${COMMON[@]}" --home "$CASE_DIR/c" --listen "tcp://127.0.0.1:$pc" \
        --moniker "echo-c-$C" --persistent-peers "$ids@127.0.0.1:$ps" \
        --echo-client "$ECHO_COUNT" --echo-seed 7 --echo-timeout 45s \
        >"$CASE_DIR/c.out" 2>"$CASE_DIR/c.err" &
    CASE_PIDS+=("$!")
    wait "$!"
    rc=$?
    log_wait "$t0" 45s wait "$rc" "echo client ($ECHO_COUNT messages, --echo-timeout)"
    [ "$rc" = 0 ] || fail "echo client exited with $rc"
    expect c 10s event=echo_summary ok=true "sent=$ECHO_COUNT" "received=$ECHO_COUNT" mismatches=0
    expect s 10s --count "$ECHO_COUNT" event=echo
    grep -h '"echo_summary"' "$CASE_DIR/c.out" | sed 's/^/    /'
}

for s in "${IMPLS[@]}"; do
    for c in "${IMPLS[@]}"; do
        run_case "echo-$c-client-$s-server" case_echo "$s" "$c"
    done
done
