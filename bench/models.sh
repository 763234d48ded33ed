#!/usr/bin/env bash
# Model distribution benchmark (issue 3): through versitygw on loopback, with a
# 100 MiB model (AZAION_BENCH_MODEL_MB), a plain GetObject of both parts
# against the full pull (fetch + HMAC verify + store + decrypt in memory).
# Prints MB/s of both and their ratio (target: pull >= 0.8x raw). Runs under
# `make bench` (scripts/with-services.sh starts the S3 server); run alone, it
# starts its own.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${AZAION_TEST_S3_ENDPOINT:-}" ]; then
  export AZAION_SVC_DIR
  AZAION_SVC_DIR=$(mktemp -d /tmp/azaion-bench.XXXXXX)
  SERVICES=()
  # shellcheck disable=SC1091
  source scripts/services/s3.sh
  trap 'svc_s3_stop; rm -rf "$AZAION_SVC_DIR"' EXIT
  svc_s3_start >/dev/null
fi
export AZAION_BENCH_MODEL_MB="${AZAION_BENCH_MODEL_MB:-100}"
go test -count=1 -run '^$' -bench 'BenchmarkPullVsRawGet' -benchtime 3x ./daemon/internal/distribution/ 2>&1 |
  grep -E '^(models:|BenchmarkPullVsRawGet|ok|FAIL|---)' || true
