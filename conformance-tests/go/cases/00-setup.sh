# Setup cases: the Go module's unit tests, and the builds of the Rust peer and
# of the node program mukan-p2p (before any case that needs them).

case_go_unit() {
    (cd "$HERE" && GOFLAGS="-mod=mod -buildvcs=false" go test ./... >"$CASE_DIR/go-test.log" 2>&1) ||
        fail "go test ./... failed"
}

case_rust_build() {
    (cd "$ROOT" && cargo build -p mukan-conformance-tests --bin rustpeer >"$CASE_DIR/cargo-build.log" 2>&1) ||
        fail "cargo build of rustpeer failed (see cargo-build.log)"
    [ -x "$RUST_PEER" ] || fail "cargo built, but $RUST_PEER is not there"
    if [ -f "$ROOT/node/Cargo.toml" ]; then
        (cd "$ROOT" && cargo build -p mukan-node --bin mukan-p2p >>"$CASE_DIR/cargo-build.log" 2>&1) ||
            fail "cargo build of mukan-p2p failed (see cargo-build.log)"
    fi
    if [ -f "$ROOT/example-reactors/Cargo.toml" ]; then
        (cd "$ROOT" && cargo build -p mukan-example-reactors --bins >>"$CASE_DIR/cargo-build.log" 2>&1) ||
            fail "cargo build of tx-relay and consensus-watch failed (see cargo-build.log)"
    fi
}

run_case go-unit-tests case_go_unit
if [ "$RUST_PEER_BUILD" = 1 ] && [ -f "$RUST_PEER_SRC" ]; then
    if command -v cargo >/dev/null 2>&1; then
        run_case rust-peer-build case_rust_build
    elif [ "${CI:-}" = "true" ]; then
        say "FAIL rust-peer-build: cargo is missing (CI=true)"
        record_fail rust-peer-build
    fi
fi
if have_impl rust; then
    say "interop: Rust peer: $RUST_PEER"
else
    say "interop: Rust peer NOT built yet ($RUST_PEER missing): every case with a Rust side is SKIPPED"
fi
