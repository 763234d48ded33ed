#!/usr/bin/env bash
# versitygw, the S3-compatible server the model distribution tests and
# benchmarks run against (scripts/services/s3.sh). Built from source with
# `go install` (about 4-5 minutes cold), or copied from ~/go/bin when present.
set -euo pipefail
ver=v1.8.0
cache="${AZAION_CACHE:-$HOME/.cache/azaion-edge}"
dst="$cache/bin/versitygw"
[ -x "$dst" ] && exit 0
mkdir -p "$cache/bin"
if [ -x "$HOME/go/bin/versitygw" ]; then
  install -m 0755 "$HOME/go/bin/versitygw" "$dst.tmp" && mv "$dst.tmp" "$dst"
  exit 0
fi
echo "deps: building versitygw $ver (a few minutes)"
GOBIN="$cache/bin" go install "github.com/versity/versitygw/cmd/versitygw@$ver"
