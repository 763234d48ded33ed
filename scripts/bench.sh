#!/usr/bin/env bash
# Runs every benchmark script under bench/ (bench/*.sh), each printing its figures and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench/*.sh; do
  [ -e "$b" ] || continue
  echo "=== $b"
  bash "$b"
done
