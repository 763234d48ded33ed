#!/usr/bin/env bash
# The training worker's Python virtual environment (Ultralytics, PyTorch,
# ONNX, onnxslim, ONNX Runtime, rknn-toolkit2 on x86_64) from PyPI, pinned in
# plugins/trainer/worker/requirements.txt, under the cache. Built with
# Debian's python3 (python3-venv); rebuilt when the requirements change.
# Ultralytics is AGPL-3.0: it is installed here, never vendored.
# Cold: about 3 GB of wheels (PyPI's PyTorch wheel brings its CUDA
# libraries; PyTorch's CPU-only wheels are not on PyPI), 6 GB installed,
# 1m40s on an idle 2-core machine here, 4 minutes under load. The wheels are
# not kept (--no-cache-dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache="${AZAION_CACHE:-$HOME/.cache/azaion-edge}"
venv="$cache/trainer-venv"
req=plugins/trainer/worker/requirements.txt
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
py=/usr/bin/python3
if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "deps: installing python3-venv"
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends python3-venv >/dev/null
fi
echo "deps: building the training worker's venv in $venv (about 3 GB from PyPI, a few minutes)"
# A venv's scripts name their interpreter by path, so it is built in place;
# the stamp written last marks it complete (an interrupted build is redone).
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --no-input --no-cache-dir -r "$req"
echo "$want" > "$venv/.requirements.sha256"
