#!/usr/bin/env bash
# The spec's own Quint model as a conformance oracle for the reactor calls our switch makes.
#
# 1. Quint, pinned by package.json / package-lock.json in this folder (@informalsystems/quint
#    with antlr4ts overridden to 0.5.0-alpha.4, which Node.js 20 needs), installed with
#    `npm ci` from the npm registry into a cache outside the repository, keyed by the lock
#    file: ${MUKAN_QUINT_CACHE:-~/.cache/mukan-p2p/quint}/<sha256 of package-lock.json>.
# 2. The model: spec/p2p/reactor-api/reactor.qnt of the CometBFT Go module that the interop
#    suite uses (`go mod download -json github.com/cometbft/cometbft@v0.38.25`); read where
#    Go put it, never copied into this repository.
# 3. Traces: the switch's lifecycle, grammar (1,000 lifecycles and more) and slow-reactor tests
#    with MUKAN_REACTOR_TRACES set write the calls each switch made on its reactors, and the
#    testnet test (conformance-tests/tests/testnet_trace.rs) those of a loopback network.
# 4. quint-oracle turns every trace into a `run` of the model's actions in a module that
#    imports the spec's, and the negative controls into runs that must be refused, and runs
#    `quint test` once on each module (see conformance-tests/src/quint.rs).
#
# Exit 0 when every trace is accepted and every control refused. With CI=true a missing npm or
# Go is a failure; otherwise the oracle is skipped (exit 77).
# Environment: MUKAN_QUINT_CACHE, QUINT_WORK (where traces and modules go; default a
# temporary directory, removed at the end unless QUINT_KEEP=1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
COMETBFT_MODULE=github.com/cometbft/cometbft@v0.38.25

skip() {
    echo "quint oracle: $*" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
    echo "quint oracle skipped (with CI=true this fails)" >&2
    exit 77
}
command -v npm >/dev/null 2>&1 || skip "npm missing"
command -v go >/dev/null 2>&1 || skip "go missing"

t0=$SECONDS
lock_hash=$(sha256sum "$HERE/package-lock.json" | cut -c1-16)
cache="${MUKAN_QUINT_CACHE:-${HOME:-/tmp}/.cache/mukan-p2p/quint}/$lock_hash"
quint="$cache/node_modules/.bin/quint"
if ! "$quint" --version >/dev/null 2>&1; then
    echo "installing quint into $cache (npm ci)"
    mkdir -p "$(dirname "$cache")"
    tmp=$(mktemp -d "$(dirname "$cache")/.install.XXXXXX")
    cp "$HERE/package.json" "$HERE/package-lock.json" "$tmp/"
    (cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error) || { rm -rf "$tmp"; skip "npm ci failed"; }
    rm -rf "$cache"
    mv "$tmp" "$cache"
fi
echo "quint $("$quint" --version) ($quint), $((SECONDS - t0)) s"

dir=$(go mod download -json "$COMETBFT_MODULE" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
spec="$dir/spec/p2p/reactor-api/reactor.qnt"
[ -f "$spec" ] || skip "no $spec (go mod download $COMETBFT_MODULE)"
echo "model: $spec"

work=${QUINT_WORK:-$(mktemp -d)}
[ -n "${QUINT_WORK:-}" ] || [ "${QUINT_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
rm -rf "$work/traces"
mkdir -p "$work/traces"

cd "$ROOT"
t1=$SECONDS
MUKAN_REACTOR_TRACES="$work/traces" cargo test -q -p mukan-switch \
    --test lifecycle --test grammar --test slow_reactor
if [ -f conformance-tests/tests/testnet_trace.rs ]; then
    MUKAN_REACTOR_TRACES="$work/traces" cargo test -q -p mukan-conformance-tests --test testnet_trace
fi
echo "traces recorded: $(find "$work/traces" -name '*.trace' | wc -l) files, $((SECONDS - t1)) s"

cargo build -q -p mukan-conformance-tests --bin quint-oracle
t2=$SECONDS
"${CARGO_TARGET_DIR:-$ROOT/target}/debug/quint-oracle" --spec "$spec" --quint "$quint" \
    --traces "$work/traces" --work "$work/quint"
echo "quint oracle passed: quint $((SECONDS - t2)) s, whole step $((SECONDS - t0)) s"
