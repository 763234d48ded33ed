#!/usr/bin/env bash
# Training benchmark (issue 13): the supervision overhead of the trainer
# plugin. In one run it trains yolo11n.yaml from scratch on the same
# synthetic dataset (N images, default 200, of 160 px; bench/train_gen.py)
# with the same settings, alternately with the bare `yolo train` command of
# the worker's venv and through the daemon (`azaion train`: plugin, Python
# worker, JSON events per batch, atomic checkpoints), 3 times each, keeping
# each side's fastest run. It prints training images/s (epochs x train
# images / training time from results.csv, and end to end, command start to
# exit) and the overhead (target <= 5%).
# AZAION_BENCH_TRAIN_N, AZAION_BENCH_TRAIN_EPOCHS and AZAION_BENCH_TRAIN_ROUNDS
# change the size.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${AZAION_BENCH_TRAIN_N:-200}
epochs=${AZAION_BENCH_TRAIN_EPOCHS:-3}
rounds=${AZAION_BENCH_TRAIN_ROUNDS:-3}
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

# Warm the page cache (torch and its libraries are gigabytes): the first
# Python start must not be the one that is timed.
YOLO_OFFLINE=1 YOLO_CONFIG_DIR="$tmp/warm-cfg" "$py" -c 'import torch, ultralytics' >/dev/null 2>&1

# Bare Ultralytics, offline like the worker.
bare() { # $1: run name
  mkdir -p "$tmp/bare-cfg"
  local t0 t1
  t0=$(now)
  # The environment the worker gets: the daemon hands plugins only PATH,
  # HOME, TMPDIR and LANG (e.g. no OPENBLAS_CORETYPE, which slows numpy).
  /usr/bin/time -f '%U %S' -o "$tmp/bare.cpu" env -i PATH="$PATH" HOME="$HOME" LANG="${LANG:-C.UTF-8}" \
    YOLO_OFFLINE=1 YOLO_AUTOINSTALL=0 YOLO_CONFIG_DIR="$tmp/bare-cfg" "$venv/yolo" train model=yolo11n.yaml \
    data="$ds/data.yaml" "${args[@]}" project="$tmp/bare" name="$1" exist_ok=True >"$tmp/bare.log" 2>&1 \
    || { tail -20 "$tmp/bare.log"; exit 1; }
  t1=$(now)
  echo "$(train_secs "$tmp/bare/$1/results.csv") $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') $(awk '{ print $1 + $2 }' "$tmp/bare.cpu")"
}

# CPU seconds a process used, with its reaped children (utime + stime +
# cutime + cstime from /proc/PID/stat).
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13 + $14 + $15) / t }' "/proc/$1/stat"; }

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
for _ in $(seq 300); do curl -sf --unix-socket "$AZAION_SOCKET" http://azaion/readyz >/dev/null && break; sleep 0.2; done
plugin_pid=$(pgrep -P "$serve_pid" -f azaion-plugin-trainer | head -1)
daemon() { # $1: run name
  local t0 t1 c0 c1
  c0=$(awk -v a="$(cpu_of "$serve_pid")" -v b="$(cpu_of "$plugin_pid")" 'BEGIN { print a + b }')
  t0=$(now)
  /usr/bin/time -f '%U %S' -o "$tmp/cli.cpu" bin/azaion train --dataset azaion-bench --name "$1" >"$tmp/daemon.log" 2>&1 \
    || { cat "$tmp/daemon.log"; tail -20 "$tmp/serve.log"; exit 1; }
  t1=$(now)
  c1=$(awk -v a="$(cpu_of "$serve_pid")" -v b="$(cpu_of "$plugin_pid")" 'BEGIN { print a + b }')
  echo "$(train_secs "$tmp/state/training/$1/results.csv") $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$(awk -v a="$c0" -v b="$c1" -v f="$(cat "$tmp/cli.cpu")" 'BEGIN { split(f, x, " "); print b - a + x[1] + x[2] }')"
}

# Alternate the two, $rounds times each, and keep each side's fastest run:
# the machine's other load moves single runs by more than the overhead.
bts=() bws=() bcs=() dts=() dws=() dcs=()
for i in $(seq "$rounds"); do
  read -r bt bw bc <<<"$(bare "r$i")"
  read -r dt dw dc <<<"$(daemon "r$i")"
  bts+=("$bt") bws+=("$bw") bcs+=("$bc") dts+=("$dt") dws+=("$dw") dcs+=("$dc")
done
echo "runs, training s: bare ${bts[*]}; daemon ${dts[*]}"
echo "runs, wall s:     bare ${bws[*]}; daemon ${dws[*]}"
echo "runs, CPU s:      bare ${bcs[*]}; daemon ${dcs[*]} (daemon, plugin, worker and CLI)"
minof() { printf '%s\n' "$@" | sort -g | head -1; }
bare_train=$(minof "${bts[@]}") bare_wall=$(minof "${bws[@]}") d_train=$(minof "${dts[@]}") d_wall=$(minof "${dws[@]}")
bare_cpu=$(minof "${bcs[@]}") d_cpu=$(minof "${dcs[@]}")

awk -v e="$epochs" -v n="$ntrain" -v bt="$bare_train" -v bw="$bare_wall" -v bc="$bare_cpu" -v dt="$d_train" -v dw="$d_wall" -v dc="$d_cpu" 'BEGIN {
  printf "\nfastest of %d runs each   %14s %14s %16s %8s\n", '"$rounds"', "train images/s", "end-to-end/s", "images/CPU-s", "wall s"
  printf "%-25s %14.2f %14.2f %16.2f %8.1f\n", "bare yolo train", e * n / bt, e * n / bw, e * n / bc, bw
  printf "%-25s %14.2f %14.2f %16.2f %8.1f\n", "azaion train (daemon)", e * n / dt, e * n / dw, e * n / dc, dw
  printf "\nsupervision overhead: training loop %+.1f%%, end to end %+.1f%%, CPU %+.1f%% (target <= 5%%)\n",
    100 * (dt / bt - 1), 100 * (dw / bw - 1), 100 * (dc / bc - 1) }'
