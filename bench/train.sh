#!/usr/bin/env bash
# Training benchmark (issue 13): the supervision overhead of the trainer
# plugin. In one run it trains yolo11n.yaml from scratch on the same
# synthetic dataset (N images, default 200, of 160 px; bench/train_gen.py)
# with the same settings twice: with the bare `yolo train` command of the
# worker's venv, and through the daemon (`azaion train`: plugin, Python
# worker, JSON events per batch, atomic checkpoints). It prints training
# images/s (epochs x train images / training time from results.csv, and
# end to end, process start to exit) and the overhead (target <= 5%).
# AZAION_BENCH_TRAIN_N and AZAION_BENCH_TRAIN_EPOCHS change the size.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${AZAION_BENCH_TRAIN_N:-200}
epochs=${AZAION_BENCH_TRAIN_EPOCHS:-3}
py=${AZAION_TRAINER_PYTHON:?run through make bench (it sets AZAION_TRAINER_PYTHON)}
venv=$(dirname "$py")
tmp=$(mktemp -d)
serve_pid=""
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

ntrain=$("$py" bench/train_gen.py "$tmp/data" "$n")
ds="$tmp/data/datasets/azaion-bench"
args=(imgsz=160 epochs="$epochs" batch=8 workers=0 device=cpu patience=100 seed=0 optimizer=AdamW lr0=0.01
  warmup_epochs=1 mosaic=0 amp=False plots=False)
echo "train: yolo11n.yaml from scratch, $ntrain train images at 160 px, $epochs epochs, batch 8, CPU; bare yolo vs the daemon"

now() { date +%s.%N; }
# Training seconds from results.csv: the cumulative time column of the last epoch.
train_secs() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^ *time *$/) c = i } END { print $c }' "$1"; }

# Bare Ultralytics, offline like the worker.
mkdir -p "$tmp/bare-cfg"
t0=$(now)
YOLO_OFFLINE=1 YOLO_AUTOINSTALL=0 YOLO_CONFIG_DIR="$tmp/bare-cfg" "$venv/yolo" train model=yolo11n.yaml \
  data="$ds/data.yaml" "${args[@]}" project="$tmp/bare" name=r exist_ok=True >"$tmp/bare.log" 2>&1 \
  || { tail -20 "$tmp/bare.log"; exit 1; }
t1=$(now)
bare_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
bare_train=$(train_secs "$tmp/bare/r/results.csv")

# Through the daemon.
cat >"$tmp/azaion.yaml" <<YAML
onnx: {enabled: false}
trainer:
  enabled: true
  python: $py
  train:
    model: yolo11n.yaml
    imgsz: 160
    epochs: $epochs
    batch: 8
    workers: 0
    device: cpu
    patience: 100
    seed: 0
    args: {optimizer: AdamW, lr0: 0.01, warmup_epochs: 1, mosaic: 0}
YAML
export AZAION_CONFIG="$tmp/azaion.yaml" AZAION_HTTP_ADDR= AZAION_SOCKET="$tmp/azaion.sock" AZAION_STATE_DIR="$tmp/state" \
  AZAION_MODELS_DIR="$tmp/models" AZAION_PLUGIN_DIR="$PWD/bin" AZAION_DATA_DIR="$tmp/data" AZAION_LOG_LEVEL=warn
bin/azaion serve >"$tmp/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do bin/azaion jobs >/dev/null 2>&1 && break; sleep 0.2; done
t0=$(now)
bin/azaion train --dataset azaion-bench --name r >"$tmp/daemon.log" 2>&1 || { cat "$tmp/daemon.log"; tail -20 "$tmp/serve.log"; exit 1; }
t1=$(now)
d_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
d_train=$(train_secs "$tmp/state/training/r/results.csv")

awk -v e="$epochs" -v n="$ntrain" -v bt="$bare_train" -v bw="$bare_wall" -v dt="$d_train" -v dw="$d_wall" 'BEGIN {
  printf "\n%-30s %14s %14s %12s\n", "", "train images/s", "end-to-end/s", "wall s"
  printf "%-30s %14.2f %14.2f %12.1f\n", "bare yolo train", e * n / bt, e * n / bw, bw
  printf "%-30s %14.2f %14.2f %12.1f\n", "azaion train (daemon)", e * n / dt, e * n / dw, dw
  printf "\nsupervision overhead: training loop %+.1f%%, end to end %+.1f%% (target <= 5%%)\n", 100 * (dt / bt - 1), 100 * (dw / bw - 1) }'
