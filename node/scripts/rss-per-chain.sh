#!/usr/bin/env bash
# What one more chain costs a `mukan-p2p seed` process in memory, idle: the resident
# set (VmRSS) of a seed on 1 home and of a seed on N homes (default 3), each after IDLE
# seconds (default 40: past the first PEX round at 30 s), measured SAMPLES times (default 3,
# the median kept), on loopback, with no peers. Prints both and the cost per extra chain.
#
#   node/scripts/rss-per-chain.sh [BINARY] [N] [IDLE] [SAMPLES]
#   node/scripts/rss-per-chain.sh target/release/mukan-p2p 3 40 3
set -euo pipefail
bin=${1:-target/release/mukan-p2p}
n=${2:-3}
idle=${3:-40}
samples=${4:-3}
[ -x "$bin" ] || { echo "no binary $bin (cargo build --release -p mukan-node)" >&2; exit 1; }
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT

# home NAME CHAIN: a home on loopback port 0, its RPC and metrics off but the first's.
home() {
    "$bin" init --home "$dir/$1" --chain-id "$2" --moniker "$1" >/dev/null
    sed -i -e 's|tcp://0.0.0.0:26656|tcp://127.0.0.1:0|' -e 's|tcp://127.0.0.1:26657|tcp://127.0.0.1:0|' \
        "$dir/$1/config/config.toml"
}

# rss HOMES...: median VmRSS (KiB) of a seed on HOMES after $idle s, over $samples runs.
rss() {
    local run values=() args=() h p
    for h in "$@"; do args+=(--home "$dir/$h"); done
    for run in $(seq 1 "$samples"); do
        "$bin" seed "${args[@]}" --log_level error >/dev/null 2>&1 &
        p=$!
        pids+=("$p")
        sleep "$idle"
        values+=("$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")")
        kill -TERM "$p"
        wait "$p" || true
    done
    printf '%s\n' "${values[@]}" | sort -n | sed -n "$(((samples + 1) / 2))p"
}

for i in $(seq 1 "$n"); do home "m$i" "chain-$i"; done
home single chain-1
one=$(rss single)
many=$(rss $(seq -f 'm%g' 1 "$n"))
per=$(((many - one) / (n - 1)))
echo "seed on 1 home:  VmRSS $one KiB"
echo "seed on $n homes: VmRSS $many KiB"
echo "each extra chain: $per KiB ($(awk -v k="$per" 'BEGIN { printf "%.2f", k / 1024 }') MiB), idle ${idle} s, median of $samples"
