#!/usr/bin/env bash
# Margins of the interop suite's timed waits: reads the waits logs that
# run-interop.sh writes (INTEROP_WAITS_OUT, or $WORK/waits.tsv; one line per
# wait, see lib/common.sh "timed waits") and prints, per wait site (file:line
# and timeout), how many times it ran, its longest observed duration and its
# margin = timeout / longest, tightest first. Waits that last their whole
# timeout by design (expect_none, negative checks) have no margin and are left
# out; waits that timed out are listed apart.
#
#   conformance-tests/go/waits-report.sh [--top N] [--min M] FILE...
#
# --top N: print the N tightest sites (default all); --min M: exit 1 if a
# site's margin is below M (e.g. 3), or a wait timed out.
set -euo pipefail
top=0
min=0
while [ $# -gt 0 ]; do
    case $1 in
    --top) top=$2; shift 2 ;;
    --min) min=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "usage: $0 [--top N] [--min M] FILE..." >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--top N] [--min M] FILE..." >&2; exit 2; }

awk -F'\t' -v top="$top" -v min="$min" '
# Go-style duration (15s, 0.5s, 100ms, 1m30s) or plain seconds -> ms.
function ms(d,    t, n, u, tok) {
    t = 0
    if (d ~ /^[0-9.]+$/) return d * 1000
    while (match(d, /^[0-9.]+(ms|s|m|h)/)) {
        tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
        n = tok + 0; u = tok; sub(/^[0-9.]+/, "", u)
        t += n * (u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : 3600000)
    }
    return d == "" ? t : -1
}
NF >= 7 {
    if ($5 != "wait") { nnone++; next }
    to = ms($3)
    if ($6 != 0) { failed[++nf] = $1 " " $2 " (" $7 ") timed out after " $4 " ms of " $3; next }
    key = $2 "\t" $3
    if (!(key in n)) nsites++
    n[key]++
    if (!(key in max) || $4 + 0 > max[key]) { max[key] = $4 + 0; worst[key] = $1; what[key] = $7 }
    tms[key] = to
    total++
}
END {
    printf "timed waits: %d passed at %d sites, %d fixed-length left out, %d timed out\n", total, nsites, nnone, nf
    m = 0
    for (k in n) {
        mg = (max[k] > 0) ? tms[k] / max[k] : 1e9
        line[++m] = sprintf("%9.1f\t%s", mg, k)
        marg[m] = mg; keyof[m] = k
    }
    # insertion sort by margin, ascending
    for (i = 2; i <= m; i++) {
        v = marg[i]; kk = keyof[i]; j = i - 1
        while (j >= 1 && marg[j] > v) { marg[j + 1] = marg[j]; keyof[j + 1] = keyof[j]; j-- }
        marg[j + 1] = v; keyof[j + 1] = kk
    }
    printf "%8s  %8s  %10s  %5s  %-28s  %s\n", "margin", "timeout", "longest_ms", "waits", "site", "what (case of the longest)"
    bad = 0
    for (i = 1; i <= m && (top == 0 || i <= top); i++) {
        k = keyof[i]; split(k, f, "\t")
        flag = (min > 0 && marg[i] < min) ? "  << below " min "x" : ""
        if (marg[i] >= 1e9) mg = "inf"; else mg = sprintf("%.1fx", marg[i])
        printf "%8s  %8s  %10d  %5d  %-28s  %s (%s)%s\n", mg, f[2], max[k], n[k], f[1], what[k], worst[k], flag
    }
    for (i = 1; i <= m; i++) if (min > 0 && marg[i] < min) bad = 1
    for (i = 1; i <= nf; i++) { print "TIMED OUT: " failed[i]; bad = 1 }
    exit (min > 0 && bad) ? 1 : 0
}' "$@"
