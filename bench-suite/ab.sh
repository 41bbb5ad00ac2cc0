#!/usr/bin/env bash
# Before/after comparison in one sitting, for a change that must not make the Rust stack
# slower: run.sh's loop, with two Rust builds of `mukan-bench` run back to back for every
# row of every run (alternating which goes first), then Go v0.38.25 and v0.40.0, so that
# load from other work falls on both builds alike.
#
#   BASE_BIN=/path/to/old/mukan-bench AFTER_BIN=target/release/mukan-bench \
#       bench-suite/ab.sh [RUNS] [OUTDIR]
#
# Writes OUTDIR/{base,after}/{rust,go38,go40}-N.tsv (the raw figures `mukan-bench report
# --runs OUTDIR/base` reads) and OUTDIR/load.txt (the load average at each run's start).
# Build the Go programs first (run.sh does, into bench-suite/go/bin/).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUNS=${1:-3}
W=${2:-${TMPDIR:-/tmp}/mukan-bench-ab}
: "${BASE_BIN:?set BASE_BIN}" "${AFTER_BIN:?set AFTER_BIN}"
GO38=$HERE/go/bin/gobench-v0.38
GO40=$HERE/go/bin/gobench-v0.40
export MUKAN_BENCH_SINK=$GO40
rm -rf "$W"; mkdir -p "$W/base" "$W/after"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for i in $(seq 1 "$RUNS"); do
    echo "== run $i of $RUNS $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$W/load.txt" >&2
    for row in seal bulk handshake latency mconn memory addrbook broadcast; do
        if [ $((i % 2)) = 1 ]; then order="base after"; else order="after base"; fi
        for who in $order; do
            bin=$BASE_BIN; [ "$who" = after ] && bin=$AFTER_BIN
            timeout 300 "$bin" run --rows "$row" >>"$W/$who/rust-$i.tsv" || echo "$who $row run $i failed" >&2
        done
        timeout 300 "$GO38" run -rows "$row" >>"$W/base/go38-$i.tsv" || echo "go v0.38 $row run $i failed" >&2
        timeout 300 "$GO40" run -rows "$row" >>"$W/base/go40-$i.tsv" || echo "go v0.40 $row run $i failed" >&2
        cp "$W/base/go38-$i.tsv" "$W/base/go40-$i.tsv" "$W/after/"
    done
done
echo "== end $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$W/load.txt" >&2
