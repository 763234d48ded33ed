#!/usr/bin/env bash
# nfpm, the .deb builder of `make deb`, built once with `go install` and
# cached (newer releases do not build with this toolchain; keep v2.45.2).
set -euo pipefail
ver=v2.45.2
cache="${AZAION_CACHE:-$HOME/.cache/azaion-edge}"
dst="$cache/bin/nfpm-$ver"
[ -x "$dst" ] && exit 0
mkdir -p "$cache/bin"
echo "deps: building nfpm $ver (a minute or two)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$ver"
mv "$tmp/nfpm" "$dst"
