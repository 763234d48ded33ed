#!/usr/bin/env bash
# Inference benchmark (issues 2 and 10): in one run, with the same model,
# threads and batch as served, measures the ONNX Runtime session alone
# (model-only, batch 1 and 4), the JPEG decode per image (OpenCV, TurboJPEG at
# full size and at the scale the plugin picks), and detection end to end (JPEG
# over loopback HTTP to JSON, through the daemon and the real plugin) at
# concurrency 1 and 4 for bus.jpg and for a 3840x2160 JPEG made by upscaling
# it; then prints images/s, p50/p99 latency, the per-stage split and the
# ratios against the targets. The model-only figures are measured before and
# after the end-to-end ones and averaged, so that a shared machine's drift
# during the run does not land on one side of the ratios only.
# AZAION_BENCH_N sets the images per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${AZAION_BENCH_N:-40}
model=${AZAION_BENCH_MODEL:-yolo11n_dequant_fp32.onnx}
export AZAION_BENCH_MODEL="$AZAION_TEST_MODELS/$model"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# The 4K frame: bus.jpg stretched to 3840x2160 (INTER_CUBIC, JPEG quality 95),
# the same bytes as plugins/internal/imaging/imagingtest.Bus4K.
/usr/bin/python3 - "$AZAION_TEST_MODELS/images/bus.jpg" "$tmp/bus4k.jpg" <<'EOF'
import sys, cv2
img = cv2.imread(sys.argv[1], cv2.IMREAD_COLOR)
cv2.imwrite(sys.argv[2], cv2.resize(img, (3840, 2160), interpolation=cv2.INTER_CUBIC))
EOF

echo "model-only: ONNX Runtime session alone ($model, $n runs per batch size)"
go test -run '^$' -bench 'ModelOnly' -benchtime "${n}x" ./plugins/onnx | tee "$tmp/model.txt" | grep '^Benchmark' || true
echo "decode: one image on one thread (cpu_ms: CPU time per image)"
go test -run '^$' -bench 'Decode/.*/(opencv|full|chosen|preprocess)' -benchtime "${n}x" ./plugins/internal/imaging | tee "$tmp/decode.txt" | grep '^Benchmark' || true
for img in bus 4k; do
  f="$AZAION_TEST_MODELS/images/bus.jpg"; [ "$img" = 4k ] && f="$tmp/bus4k.jpg"
  echo "end-to-end $img: JPEG over HTTP -> JSON through azaion serve ($n images per concurrency)"
  AZAION_BENCH_MODEL="$model" AZAION_BENCH_IMAGE="$f" go test -run '^$' -bench 'HTTPDetect' -benchtime "${n}x" ./daemon/internal/daemon |
    tee "$tmp/e2e-$img.txt" | grep '^Benchmark' || true
done
echo "model-only again"
go test -run '^$' -bench 'ModelOnly' -benchtime "${n}x" ./plugins/onnx | tee "$tmp/model2.txt" | grep '^Benchmark' || true

awk '
function get(line, unit,   i, f, n) { n = split(line, f, /[ \t]+/); for (i = 2; i <= n; i++) if (f[i] == unit) return f[i-1]; return "" }
FNR == 1 { file = FILENAME; sub(/.*\//, "", file) }
/^BenchmarkModelOnly\/batch1/ { if (m1 == "") m1 = $0; else m1b = $0 }
/^BenchmarkModelOnly\/batch4/ { if (m4 == "") m4 = $0; else m4b = $0 }
/^BenchmarkDecode\//          { split($1, p, "/"); sub(/-[0-9]+$/, "", p[3]); dec[p[2] "/" p[3]] = $0 }
/^BenchmarkHTTPDetect\/c1/    { e1[file] = $0 }
/^BenchmarkHTTPDetect\/c4/    { e4[file] = $0 }
function avg(a, b, unit) { return b == "" ? get(a, unit) : (get(a, unit) + get(b, unit)) / 2 }
END {
  if (m1 == "" || e1["e2e-bus.txt"] == "" || e4["e2e-4k.txt"] == "" || dec["bus/full"] == "") { print "bench/inference.sh: missing results"; exit 1 }
  if (m4 == "") { m4 = m1; m4b = m1b }
  r1 = avg(m1, m1b, "images/s"); r4 = avg(m4, m4b, "images/s"); p1 = avg(m1, m1b, "p50_ms")
  best = r1; bestname = "batch 1"
  if (r4 > r1) { best = r4; bestname = "batch 4" }
  printf "\n%-34s %10s %9s %9s\n", "", "images/s", "p50 ms", "p99 ms"
  printf "%-34s %10.2f %9.1f %9.1f\n", "model-only batch 1 (before)",  get(m1,"images/s"), get(m1,"p50_ms"), get(m1,"p99_ms")
  printf "%-34s %10.2f %9.1f %9.1f\n", "model-only batch 4 (before)",  get(m4,"images/s"), get(m4,"p50_ms"), get(m4,"p99_ms")
  if (m1b != "") {
    printf "%-34s %10.2f %9.1f %9.1f\n", "model-only batch 1 (after)",  get(m1b,"images/s"), get(m1b,"p50_ms"), get(m1b,"p99_ms")
    printf "%-34s %10.2f %9.1f %9.1f\n", "model-only batch 4 (after)",  get(m4b,"images/s"), get(m4b,"p50_ms"), get(m4b,"p99_ms") }
  split("bus 4k", imgs, " ")
  for (k = 1; k <= 2; k++) { f = "e2e-" imgs[k] ".txt"
    printf "%-34s %10.2f %9.1f %9.1f\n", "end-to-end " imgs[k] " concurrency 1", get(e1[f],"images/s"), get(e1[f],"p50_ms"), get(e1[f],"p99_ms")
    printf "%-34s %10.2f %9.1f %9.1f\n", "end-to-end " imgs[k] " concurrency 4", get(e4[f],"images/s"), get(e4[f],"p50_ms"), get(e4[f],"p99_ms") }
  printf "\ndecode per image, CPU ms        %8s %8s %14s %12s\n", "OpenCV", "full", "chosen scale", "+letterbox"
  for (k = 1; k <= 2; k++) { i = imgs[k]
    printf "  %-30s %8.2f %8.2f %8.2f (%d/8) %12.2f\n", i, get(dec[i "/opencv"],"cpu_ms"), get(dec[i "/full"],"cpu_ms"),
      get(dec[i "/chosen"],"cpu_ms"), get(dec[i "/chosen"],"scale_8ths"), get(dec[i "/preprocess"],"cpu_ms") }
  printf "\nper-image stage split, ms   %8s %8s %8s %8s %8s %9s %6s\n", "decode", "preproc", "queue", "infer", "post", "transport", "batch"
  for (k = 1; k <= 2; k++) { f = "e2e-" imgs[k] ".txt"
    for (c = 1; c <= 4; c += 3) { l = (c == 1) ? e1[f] : e4[f]
      printf "  %-3s concurrency %-10s %8.2f %8.2f %8.2f %8.2f %8.2f %9.2f %6.2f\n", imgs[k], c, get(l,"decode_ms"), get(l,"preprocess_ms"),
        get(l,"queue_ms"), get(l,"infer_ms"), get(l,"post_ms"), get(l,"transport_ms"), get(l,"batch") } }
  printf "\nratios (model-only: mean of before and after; best batch %s, %.2f images/s; batch 1 p50 %.1f ms)\n", bestname, best, p1
  printf "  bus.jpg throughput c4 / model-only best: %.2fx (target >= 0.90x)\n", get(e4["e2e-bus.txt"],"images/s") / best
  printf "  bus.jpg p50 c1 / model-only batch 1:     %.2fx (target <= 1.20x)\n", get(e1["e2e-bus.txt"],"p50_ms") / p1
  printf "  4K throughput c4 / model-only best:      %.2fx (target >= 0.80x)\n", get(e4["e2e-4k.txt"],"images/s") / best
  printf "  4K p50 c1 / model-only batch 1:          %.2fx (target <= 1.50x)\n", get(e1["e2e-4k.txt"],"p50_ms") / p1
}' "$tmp/model.txt" "$tmp/decode.txt" "$tmp/e2e-bus.txt" "$tmp/e2e-4k.txt" "$tmp/model2.txt"
