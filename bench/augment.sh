#!/usr/bin/env bash
# Augmentation benchmark (issue 5): generates N (default 200) 1280x720 JPEGs
# with labels, then in one run augments them 8x (original + 7 variants) with
# the Go trainer plugin's code (gocv) and with the Python + OpenCV reference
# (bench/augment_ref.py, Debian's python3-opencv via /usr/bin/python3) using
# the same transforms, worker count and temp+fsync+rename writes, and prints
# images/s and the ratio (target: Go >= 2x the reference on the same cores).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${AZAION_BENCH_AUGMENT_N:-200}
workers=${AZAION_BENCH_WORKERS:-$(nproc)}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

echo "augment: generating $n 1280x720 JPEGs with labels; $workers workers each side"
/usr/bin/python3 bench/augment_ref.py "$tmp/go" --gen "$n"
cp -r "$tmp/go" "$tmp/py"
go test -c -o "$tmp/trainer.test" ./plugins/trainer

go_line=$(AZAION_BENCH_DATA="$tmp/go" AZAION_BENCH_WORKERS=$workers \
  "$tmp/trainer.test" -test.run '^$' -test.bench 'AugmentDir' -test.benchtime 1x | grep '^BenchmarkAugmentDir')
py_line=$(/usr/bin/python3 bench/augment_ref.py "$tmp/py" --workers "$workers")
rm -rf "$tmp/py/data-processed"
py1_line=$(/usr/bin/python3 bench/augment_ref.py "$tmp/py" --workers 1)

go_ips=$(awk '{for (i = 2; i <= NF; i++) if ($i == "images/s") print $(i-1)}' <<<"$go_line")
py_ips=$(sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p' <<<"$py_line")
py1_ips=$(sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p' <<<"$py1_line")
go_out=$(ls "$tmp/go/data-processed/images" | wc -l)
py_out=$(ls "$tmp/py/data-processed/images" | wc -l)

printf '\n%-44s %10s %9s\n' "" "images/s" "outputs"
printf '%-44s %10.2f %9d\n' "Go (gocv), $workers workers" "$go_ips" "$go_out"
printf '%-44s %10.2f %9d\n' "Python + OpenCV reference, $workers processes" "$py_ips" "$py_out"
printf '%-44s %10.2f\n' "Python + OpenCV reference, 1 process" "$py1_ips"
awk -v g="$go_ips" -v p="$py_ips" -v p1="$py1_ips" -v w="$workers" 'BEGIN {
  printf "\nGo / Python (%d processes): %.2fx (target >= 2x)\n", w, g / p
  printf "Go / Python (1 process):   %.2fx\n", g / p1 }'
