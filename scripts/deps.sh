#!/usr/bin/env bash
# Installs what the build and the tests need, skipping what is already there.
# Each scripts/deps/NN-*.sh is one idempotent step.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/deps/*.sh; do
  bash "$step"
done
