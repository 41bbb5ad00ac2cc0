# Artifact: an addrbook.json written by a Go node (pex reactor + address book)
# after learning addresses: a hub and 4 leaves form a star; a learner dials
# the hub and learns the leaves through PEX, marks the hub good (old bucket),
# and saves its book on shutdown.
case_addrbook_artifact() {
    local n=4 i pts idh idl ph pl expected=()
    mapfile -t pts < <(ports $((n + 2)))
    ph=${pts[0]}
    pl=${pts[1]}
    idh=$(new_key hub) && idl=$(new_key learner) || { fail "key generation failed"; return; }
    start_peer go hub "${COMMON[@]}" --home "$CASE_DIR/hub" --listen "tcp://127.0.0.1:$ph" --moniker hub --pex
    expect hub 30s event=listening || return
    expected+=("$idh@127.0.0.1:$ph")
    for i in $(seq 1 $n); do
        local id p=${pts[$((i + 1))]}
        id=$(new_key "leaf$i") || { fail "key generation failed"; return; }
        start_peer go "leaf$i" "${COMMON[@]}" --home "$CASE_DIR/leaf$i" --listen "tcp://127.0.0.1:$p" \
            --moniker "leaf$i" --pex --persistent-peers "$idh@127.0.0.1:$ph"
        expected+=("$id@127.0.0.1:$p")
    done
    expect hub 30s event=addrbook "size=$n" || return
    start_peer go learner "${COMMON[@]}" --home "$CASE_DIR/learner" --listen "tcp://127.0.0.1:$pl" \
        --moniker learner --pex --mark-good --dial "$idh@127.0.0.1:$ph"
    expect learner 30s event=addrbook "size=$((n + 1))" || return
    stop_pid "$LAST_PID"
    expect learner 5s event=addrbook_saved "size=$((n + 1))" || return
    local book="$CASE_DIR/learner/config/addrbook.json" a
    for a in "${expected[@]}"; do
        grep -q "\"${a%@*}\"" "$book" || fail "address $a missing from the saved book"
    done
    grep -q '"bucket_type": 2' "$book" || fail "no old-bucket entry (the hub, marked good) in the book"
    grep -q '"bucket_type": 1' "$book" || fail "no new-bucket entry in the book"
    [ "$CASE_OK" = 1 ] || return
    # For addrbook-go-to-rust (after this case, sequential): in this run's work
    # dir, so it never reads another run's book or a stale one.
    local art="$WORK/artifacts/addrbook"
    mkdir -p "$art"
    cp "$book" "$art/addrbook.json"
    printf '%s\n' "${expected[@]}" >"$art/expected_addrs.txt"
    printf '%s\n' "learner $idl@127.0.0.1:$pl" "hub $idh@127.0.0.1:$ph" >"$art/nodes.txt"
    publish_artifact "$art" addrbook || fail "could not publish the addrbook artifact to $CACHE"
}

# The Go node's addrbook.json (artifact of addrbook-artifact) loads in our address book with
# the same addresses and bucket types.
case_addrbook_go_to_rust() {
    local book="$WORK/artifacts/addrbook/addrbook.json" got want
    [ -f "$book" ] || { fail "no Go-written addrbook.json (addrbook-artifact failed?)"; return; }
    got=$("$RUST_PEER" addrbook-dump --file "$book" 2>"$CASE_DIR/dump.err") ||
        { fail "our loader refused the Go book: $(cat "$CASE_DIR/dump.err")"; return; }
    want=$(sort "$WORK/artifacts/addrbook/expected_addrs.txt")
    [ "$(printf '%s\n' "$got" | cut -d' ' -f2 | sort)" = "$want" ] ||
        fail "addresses differ: got [$got], want [$want]"
    [ "$(printf '%s\n' "$got" | grep -c '^old ')" = 1 ] || fail "expected one old entry (the hub): [$got]"
    say "    loaded $(printf '%s\n' "$got" | wc -l) entries"
}

# A book we write loads in a Go node (PEX + address book), which saves it back on stop; the
# saved file loads in ours with the same addresses. The book carries what our format adds:
# an unverified self-advert ("mukan_unverified") and bans kept apart from the table
# ("mukan_banned", one of them "mukan_ban_only"); Go ignores those fields, so it loads the
# six addresses, and the bans (which Go does not keep) are gone from what it saves.
case_addrbook_rust_to_go() {
    local i id ids=() addrs=() p book="$CASE_DIR/g/config/addrbook.json" got want unverified banned
    for i in 1 2 3 4 5 6 7; do
        id=$(new_key "x$i") || { fail "key generation failed"; return; }
        ids+=("$id")
        [ "$i" -le 5 ] && addrs+=("$id@127.0.0.$((i + 1)):$((40000 + i))")
    done
    unverified="${ids[5]}@127.0.0.7:40006"
    banned="${ids[6]}@127.0.0.8:40007"
    mkdir -p "$CASE_DIR/g/config"
    "$RUST_PEER" addrbook-write --file "$book" --src "${ids[0]}@127.0.0.2:40001" \
        --addrs "$(IFS=,; echo "${addrs[*]}")" --good "${ids[1]}" \
        --unverified "$unverified" --ban "$banned" >"$CASE_DIR/write.out" 2>&1 ||
        { fail "addrbook-write failed: $(cat "$CASE_DIR/write.out")"; return; }
    for f in mukan_unverified mukan_banned mukan_ban_only; do
        grep -q "\"$f\"" "$book" || { fail "the book we wrote has no $f field"; return; }
    done
    addrs+=("$unverified")
    p=$(ports 1)
    start_peer go g "${COMMON[@]}" --home "$CASE_DIR/g" --listen "tcp://127.0.0.1:$p" --moniker g --pex
    expect g 30s event=addrbook size=6 || return
    stop_pid "$LAST_PID"
    expect g 5s event=addrbook_saved size=6 || return
    ! grep -q "${ids[6]}" "$book" || fail "Go kept the banned ID in its table"
    got=$("$RUST_PEER" addrbook-dump --file "$book" 2>"$CASE_DIR/dump.err") ||
        { fail "our loader refused the book Go saved: $(cat "$CASE_DIR/dump.err")"; return; }
    want=$(printf '%s\n' "${addrs[@]}" | sort)
    [ "$(printf '%s\n' "$got" | cut -d' ' -f2 | sort)" = "$want" ] ||
        fail "addresses differ after the Go round trip: got [$got], want [$want]"
    printf '%s\n' "$got" | grep -q "^old ${ids[1]}@" || fail "the good address is no longer old: [$got]"
}

run_case addrbook-artifact case_addrbook_artifact go
run_case addrbook-go-to-rust case_addrbook_go_to_rust rust
run_case addrbook-rust-to-go case_addrbook_rust_to_go rust go
