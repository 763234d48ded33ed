#!/usr/bin/env bash
# Annotation ingest benchmark (issue 4). Run by `make bench` under
# scripts/with-services.sh (it needs AZAION_TEST_STREAM_URI). Publishes one
# stream of 20,000 messages with ~50 KB JPEGs (AZAION_BENCH_INGEST_MESSAGES
# overrides the count), then in one run measures on that same stream:
#   raw     the plain client consume rate, decoding every message (nothing written)
#   ingest  azaion's ingest: files written, made durable, offsets stored
# and prints messages/s and the ratio (target: ingest >= 0.5x raw). It also
# prints how many files/s the data root's file system creates, in folders
# spread over it as the ingest's worker folders are (the ingest creates two
# files per message, image + labels, which bounds it on slow file systems
# whatever the fsync strategy) and in folders next to the data root (on ext4
# without a journal, slow for minutes after mass deletions there, e.g. the
# previous run's cleanup). Figures only; nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AZAION_TEST_STREAM_URI:?run under scripts/with-services.sh (make bench)}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/ingest.test" ./daemon/internal/ingest
n=${AZAION_BENCH_INGEST_MESSAGES:-20000}
dir=${AZAION_BENCH_INGEST_DIR:-$tmp}
echo "ingest: $n messages with ~50 KB JPEGs; data root under $dir; sync ${AZAION_BENCH_INGEST_SYNC:-syncfs}"
line=$(AZAION_BENCH_INGEST_MESSAGES=$n AZAION_BENCH_INGEST_DIR=$dir "$tmp/ingest.test" \
  -test.run '^$' -test.bench 'IngestVsRaw' -test.benchtime 1x | grep '^BenchmarkIngestVsRaw')
metric() { awk -v u="$1" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}' <<<"$line"; }
raw=$(metric raw_msgs/s); ing=$(metric ingest_msgs/s); creates=$(metric fs_spread_creates/s); near=$(metric fs_creates/s)
printf 'ingest: raw consume (decode only)      %8.0f msgs/s\n' "$raw"
printf 'ingest: ingest (durable files+offsets) %8.0f msgs/s\n' "$ing"
printf 'ingest: ratio ingest/raw               %8.2f (target >= 0.5)\n' "$(awk -v a="$ing" -v b="$raw" 'BEGIN{print a/b}')"
printf 'ingest: file creation, spread folders   %8.0f files/s (ingest bound: %.0f msgs/s)\n' "$creates" "$(awk -v c="$creates" 'BEGIN{print c/2}')"
printf 'ingest: file creation, next to the root %8.0f files/s\n' "$near"
