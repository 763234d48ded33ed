#!/usr/bin/env bash
# Inference benchmark (issue 2): in one run, with the same model, threads and
# batch as served, measures the ONNX Runtime session alone (model-only) and
# detection end to end (JPEG over loopback HTTP to JSON, through the daemon and
# the real plugin) at concurrency 1 and 4, then prints images/s, p50/p99
# latency, the per-stage split and the ratios against the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${AZAION_BENCH_N:-40}
model=${AZAION_BENCH_MODEL:-yolo11n_dequant_fp32.onnx}
export AZAION_BENCH_MODEL="$AZAION_TEST_MODELS/$model"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

echo "model-only: ONNX Runtime session alone ($model, $n runs per batch size)"
go test -run '^$' -bench 'ModelOnly' -benchtime "${n}x" ./plugins/onnx | tee "$tmp/model.txt" | grep '^Benchmark' || true
echo "end-to-end: JPEG over HTTP -> JSON through azaion serve ($n images per concurrency)"
AZAION_BENCH_MODEL="$model" go test -run '^$' -bench 'HTTPDetect' -benchtime "${n}x" ./daemon/internal/daemon | tee "$tmp/e2e.txt" | grep '^Benchmark' || true

awk '
function get(line, unit,   i, f, n) { n = split(line, f, /[ \t]+/); for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]; return "" }
/^BenchmarkModelOnly\/batch1/ { m1 = $0 }
/^BenchmarkModelOnly\/batch4/ { m4 = $0 }
/^BenchmarkHTTPDetect\/c1/    { e1 = $0 }
/^BenchmarkHTTPDetect\/c4/    { e4 = $0 }
END {
  if (m1 == "" || e1 == "" || e4 == "") { print "bench/inference.sh: missing results"; exit 1 }
  if (m4 == "") m4 = m1
  printf "\n%-28s %10s %9s %9s\n", "", "images/s", "p50 ms", "p99 ms"
  printf "%-28s %10.2f %9.1f %9.1f\n", "model-only batch 1",  get(m1,"images/s"), get(m1,"p50_ms"), get(m1,"p99_ms")
  printf "%-28s %10.2f %9.1f %9.1f\n", "model-only batch 4",  get(m4,"images/s"), get(m4,"p50_ms"), get(m4,"p99_ms")
  printf "%-28s %10.2f %9.1f %9.1f\n", "end-to-end concurrency 1", get(e1,"images/s"), get(e1,"p50_ms"), get(e1,"p99_ms")
  printf "%-28s %10.2f %9.1f %9.1f\n", "end-to-end concurrency 4", get(e4,"images/s"), get(e4,"p50_ms"), get(e4,"p99_ms")
  printf "\nper-image stage split, ms   %8s %8s %8s %8s %8s %9s %6s\n", "decode", "preproc", "queue", "infer", "post", "transport", "batch"
  split("c1 c4", names, " "); lines[1] = e1; lines[2] = e4
  for (k = 1; k <= 2; k++) { l = lines[k]
    printf "  concurrency %-14s %8.2f %8.2f %8.2f %8.2f %8.2f %9.2f %6.2f\n", substr(names[k],2), get(l,"decode_ms"), get(l,"preprocess_ms"), get(l,"queue_ms"), get(l,"infer_ms"), get(l,"post_ms"), get(l,"transport_ms"), get(l,"batch") }
  r4 = get(e4,"images/s") / get(m4,"images/s")
  r1 = get(e1,"p50_ms") / get(m1,"p50_ms")
  printf "\nthroughput e2e c4 / model-only batch 4: %.2fx (target >= 0.90x)\n", r4
  printf "p50 latency e2e c1 / model-only batch 1: %.2fx (target <= 1.10x)\n", r1
}' "$tmp/model.txt" "$tmp/e2e.txt"
