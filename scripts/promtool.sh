#!/usr/bin/env bash
# Run promtool, installing it first if needed, without assuming more than CI has.
#
# Order: $PROMTOOL if set; `promtool` on PATH; a copy cached under .cache/promtool/ (extracted
# from Debian's `prometheus` package with `apt-get download` + `dpkg -x`: no root needed for the
# download, and nothing is installed system-wide). Exits non-zero with a message when promtool
# cannot be had: the tests that need it must fail, not skip.
#
#   scripts/promtool.sh --path          print the promtool path (installing it if needed)
#   scripts/promtool.sh check rules x   any promtool command line
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${OMNISTREAM_PROMTOOL_CACHE:-$root/.cache/promtool}"
cached="$cache/usr/bin/promtool"

find_promtool() {
    if [[ -n "${PROMTOOL:-}" && -x "${PROMTOOL}" ]]; then echo "$PROMTOOL"; return 0; fi
    if command -v promtool >/dev/null 2>&1; then command -v promtool; return 0; fi
    if [[ -x "$cached" ]]; then echo "$cached"; return 0; fi
    return 1
}

install_promtool() {
    command -v apt-get >/dev/null && command -v dpkg >/dev/null || {
        echo "promtool.sh: promtool not found and no apt-get/dpkg to fetch Debian's prometheus" >&2
        return 1
    }
    local work
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' RETURN
    # apt-get download writes into the current directory; only the .deb of `prometheus` itself.
    if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
        echo "promtool.sh: refreshing the package lists (apt-get update)" >&2
        apt-get update -qq >&2 || true
        (cd "$work" && apt-get download prometheus >&2) || {
            echo "promtool.sh: could not download Debian's prometheus package" >&2
            return 1
        }
    fi
    mkdir -p "$cache"
    dpkg -x "$work"/prometheus_*.deb "$work/x"
    [[ -x "$work/x/usr/bin/promtool" ]] || {
        echo "promtool.sh: the prometheus package has no usr/bin/promtool" >&2
        return 1
    }
    mkdir -p "$cache/usr/bin"
    cp "$work/x/usr/bin/promtool" "$cached.tmp" && mv "$cached.tmp" "$cached"
}

# Serialise concurrent first runs (pytest-xdist, two shells) on one lock.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 2>/dev/null || true
tool="$(find_promtool)" || { install_promtool && tool="$(find_promtool)"; } || exit 1
flock -u 9 2>/dev/null || true

if [[ "${1:-}" == "--path" ]]; then
    echo "$tool"
    exit 0
fi
exec "$tool" "$@"
