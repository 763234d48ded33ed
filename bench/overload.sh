#!/usr/bin/env bash
# Overload benchmark (issue 9): the daemon with the real ONNX plugin is offered
# four times the rate it serves (measured closed loop first), open loop, for
# AZAION_BENCH_SECONDS (default 20). Admission by expected wait should answer
# the excess with 429 at once and keep the answered requests' p99 within
# limits.max_queue_wait plus two service times.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'Overload' -benchtime 1x -timeout 10m ./daemon/internal/daemon | grep '^BenchmarkOverload' || true)
[ -n "$out" ] || { echo "bench/overload.sh: no result"; exit 1; }
echo "$out" | awk '
function get(unit,   i) { for (i = 2; i <= NF; i++) if ($i == unit) return $(i-1); return "" }
{ p50 = get("p50_ms"); p99 = get("p99_ms"); s = get("service_ms"); w = get("max_queue_wait_ms")
  printf "overload 4x, open loop: served %s/s, refused %.0f%% (429), other errors %s\n", get("served/s"), 100*get("refused_share"), get("other_errors")
  printf "answered: p50 %.0f ms, p99 %.0f ms; service %.0f ms, max_queue_wait %.0f ms\n", p50, p99, s, w
  printf "p99 / (max_queue_wait + 2 x service): %.2fx (target <= 1.00x)\n", p99 / (w + 2*s)
  printf "plugin peak RSS: %.0f MiB\n", get("plugin_peak_rss_MiB") }'
