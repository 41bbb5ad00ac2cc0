# The Go programs of the suite, sourced by run-interop.sh (bash): gopeer, and
# the real `cometbft` node of each Go line in use. Both are cached outside the
# repository (CI runs on a fresh clone), in BIN_CACHE:
#   $BIN_CACHE/gopeer-<hash of go version + this module's sources>/gopeer
#   $BIN_CACHE/cometbft-<version>/cometbft
# A cached binary is reused while `go version -m` says it was built from that
# cometbft version and `cometbft version` prints what the line reports.
#
# Several runs share BIN_CACHE (two checkouts, .ci/run beside a stress run):
# each entry is checked and built under a lock of its own (flock on
# $BIN_CACHE/.lock-<entry>), so one run builds while the others wait and then
# find it; a new build is renamed into place (a good entry is never removed
# while another run may be using it; a broken one is moved aside first).

BIN_CACHE="${MUKAN_INTEROP_BIN_CACHE:-${HOME:-/tmp}/.cache/mukan-p2p/interop}"

# The Go lines proven against our peer (README "Go lines proven"): the exact
# module version of each.
GO_LINES=(v0.34.35 v0.37.18 v0.38.25 v0.40.0 v1.0.1)

is_go_line() {
    local v
    for v in "${GO_LINES[@]}"; do [ "$v" = "$1" ] && return 0; done
    return 1
}

# line_reported_version LINE: what the node puts in NodeInfo `version` (and
# `cometbft version` prints). Two releases carry an older constant: v0.37.18
# says 0.37.16, v0.40.0 says 0.39.0.
line_reported_version() {
    case $1 in
    v0.37.18) echo 0.37.16 ;;
    v0.40.0) echo 0.39.0 ;;
    *) echo "${1#v}" ;;
    esac
}

# line_p2p_version LINE: NodeInfo protocol_version.p2p (v1.0 sends 9; the
# compatibility check ignores it). The block protocol is 11 on every line.
line_p2p_version() {
    case $1 in
    v1.*) echo 9 ;;
    *) echo 8 ;;
    esac
}

# line_module_dir LINE: the module of ours that builds the line when `go
# install` cannot (v0.34: its go.mod declares github.com/tendermint/tendermint
# and has replace directives); empty when `go install` works.
line_module_dir() {
    case $1 in
    v0.34.*) echo "$HERE/lines/v0.34" ;;
    *) echo "" ;;
    esac
}

line_bin() { printf '%s\n' "$BIN_CACHE/cometbft-$1/cometbft"; }

# cache_lock ENTRY: takes the lock of a cache entry (waits up to 1 h for
# another run's build); sets CACHE_LOCK_FD. cache_unlock releases it.
cache_lock() {
    mkdir -p "$BIN_CACHE" || return 1
    exec {CACHE_LOCK_FD}>"$BIN_CACHE/.lock-$1" || return 1
    if ! flock -w 3600 "$CACHE_LOCK_FD"; then
        say "interop: $BIN_CACHE/.lock-$1 held for an hour by another run"
        cache_unlock
        return 1
    fi
}
cache_unlock() {
    [ -n "${CACHE_LOCK_FD:-}" ] && exec {CACHE_LOCK_FD}>&-
    CACHE_LOCK_FD=
}

# cache_put TMP DIR CHECK...: moves the fresh build TMP to DIR (under the
# entry's lock). If DIR is there and `CHECK... DIR` passes (a run without the
# lock, e.g. an older checkout, installed it meanwhile), DIR stays and TMP goes;
# otherwise what was at DIR (broken or stale) is moved aside, then removed.
cache_put() {
    local tmp=$1 dir=$2 old
    shift 2
    if [ -e "$dir" ] && "$@" "$dir"; then
        rm -rf "$tmp"
        return 0
    fi
    if [ -e "$dir" ]; then
        old=$(mktemp -u "$BIN_CACHE/.old.XXXXXX")
        mv -T "$dir" "$old" || return 1
        rm -rf "$old"
    fi
    mv -T "$tmp" "$dir"
}

# line_binary_ok LINE BIN: BIN is a cometbft of exactly LINE.
line_binary_ok() {
    local line=$1 bin=$2
    [ -x "$bin" ] || return 1
    go version -m "$bin" 2>/dev/null |
        grep -Eq "[[:space:]]github\.com/cometbft/cometbft[[:space:]]+$(printf '%s' "$line" | sed 's/\./\\./g')([[:space:]]|$)" ||
        return 1
    [ "$("$bin" version 2>/dev/null)" = "$(line_reported_version "$line")" ]
}

# line_dir_ok LINE DIR: DIR holds a cometbft of exactly LINE.
line_dir_ok() { line_binary_ok "$1" "$2/cometbft"; }

# Lines that install_line could not install.
declare -A LINE_BROKEN=()

line_installed() { [ -z "${LINE_BROKEN[$1]:-}" ] && line_binary_ok "$1" "$(line_bin "$1")"; }

# install_line LINE: installs the line's cometbft into the cache unless there.
install_line() {
    local line=$1 bin dir t0=$SECONDS
    bin=$(line_bin "$line")
    dir=$(dirname "$bin")
    if line_binary_ok "$line" "$bin"; then
        say "cometbft $line: cached ($bin)"
        return 0
    fi
    cache_lock "cometbft-$line" || return 1
    # Another run may have installed it while we waited for the lock.
    if line_binary_ok "$line" "$bin"; then
        cache_unlock
        say "cometbft $line: installed by another run meanwhile ($bin)"
        return 0
    fi
    local rc=0
    install_line_locked "$line" "$bin" "$dir" || rc=1
    cache_unlock
    [ "$rc" = 0 ] || return 1
    say "cometbft $line: installed in $((SECONDS - t0)) s ($bin)"
}

install_line_locked() {
    local line=$1 bin=$2 dir=$3 mod tmp log
    tmp=$(mktemp -d "$BIN_CACHE/.cometbft-$line.XXXXXX") || return 1
    log="$tmp/build.log"
    mod=$(line_module_dir "$line")
    if [ -n "$mod" ]; then
        say "cometbft $line: go build in ${mod#"$ROOT"/} (github.com/tendermint/tendermint => github.com/cometbft/cometbft $line)"
        grep -q "github.com/cometbft/cometbft $line\$" "$mod/go.mod" ||
            { say "cometbft $line: ${mod#"$ROOT"/}/go.mod does not replace with $line"; rm -rf "$tmp"; return 1; }
        (cd "$mod" && GOFLAGS="-mod=readonly -buildvcs=false" \
            go build -o "$tmp/cometbft" github.com/tendermint/tendermint/cmd/cometbft) >"$log" 2>&1
    else
        say "cometbft $line: go install github.com/cometbft/cometbft/cmd/cometbft@$line"
        GOBIN="$tmp" GOFLAGS="-buildvcs=false" \
            go install "github.com/cometbft/cometbft/cmd/cometbft@$line" >"$log" 2>&1
    fi
    local rc=$?
    if [ "$rc" != 0 ] || ! line_binary_ok "$line" "$tmp/cometbft"; then
        say "cometbft $line: build failed (exit $rc); last lines:"
        tail -n 15 "$log" | sed 's/^/    | /'
        [ -x "$tmp/cometbft" ] && say "    built, but it says version $("$tmp/cometbft" version 2>&1 | head -n 1)"
        rm -rf "$tmp"
        return 1
    fi
    rm -f "$log"
    cache_put "$tmp" "$dir" line_dir_ok "$line" || { rm -rf "$tmp"; return 1; }
    line_binary_ok "$line" "$bin"
}

# ensure_line LINE: install_line once per run; a failure marks the line broken
# (its cases then fail with REQUIRE_LINES=1, else skip).
declare -A LINE_TRIED=()
ensure_line() {
    local line=$1
    [ -n "${LINE_TRIED[$line]:-}" ] && return 0
    LINE_TRIED[$line]=1
    install_line "$line" || LINE_BROKEN[$line]=1
}

# gopeer_dir_ok HASH DIR: DIR holds a gopeer built from the sources of HASH.
gopeer_dir_ok() { [ -x "$2/gopeer" ] && [ "$(cat "$2/hash" 2>/dev/null)" = "$1" ]; }

# build_gopeer: builds gopeer into the cache unless a build of the same
# sources (and Go version) is there; sets GOPEER.
build_gopeer() {
    local hash dir tmp
    hash=$(
        cd "$HERE" &&
            { go version; find go.mod go.sum cmd internal -type f -print0 | sort -z | xargs -0 sha256sum; } |
            sha256sum | cut -d' ' -f1
    )
    dir="$BIN_CACHE/gopeer-${hash:0:16}"
    GOPEER="$dir/gopeer"
    if [ -x "$GOPEER" ] && [ "$(cat "$dir/hash" 2>/dev/null)" = "$hash" ]; then
        say "gopeer: up to date ($GOPEER)"
        touch "$dir"
        return 0
    fi
    cache_lock "gopeer-${hash:0:16}" || return 1
    if [ -x "$GOPEER" ] && [ "$(cat "$dir/hash" 2>/dev/null)" = "$hash" ]; then
        cache_unlock
        say "gopeer: built by another run meanwhile ($GOPEER)"
        return 0
    fi
    say "gopeer: building"
    tmp=$(mktemp -d "$BIN_CACHE/.gopeer.XXXXXX") || { cache_unlock; return 1; }
    if ! (cd "$HERE" && GOFLAGS="-mod=mod -buildvcs=false" go build -o "$tmp/gopeer" ./cmd/gopeer); then
        rm -rf "$tmp"
        cache_unlock
        return 1
    fi
    printf '%s\n' "$hash" >"$tmp/hash"
    cache_put "$tmp" "$dir" gopeer_dir_ok "$hash" || rm -rf "$tmp"
    cache_unlock
    [ -x "$GOPEER" ] || return 1
    # Builds of other sources not used for 14 days go, and so do the temporary
    # directories of builds killed more than a day ago.
    find "$BIN_CACHE" -maxdepth 1 -name 'gopeer-*' -mtime +14 -exec rm -rf {} + 2>/dev/null
    find "$BIN_CACHE" -maxdepth 1 \( -name '.gopeer.*' -o -name '.cometbft-*' -o -name '.old.*' \) \
        -mmin +1440 -exec rm -rf {} + 2>/dev/null
    return 0
}
