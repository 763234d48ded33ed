#!/usr/bin/env bash
# Debian packages: OpenCV for the plugins (gocv), libjpeg-turbo's TurboJPEG API
# for the plugins' reduced-scale JPEG decoding, RabbitMQ with its stream plugin
# for the ingest tests, pci.ids for the hardware fingerprint, Python OpenCV for
# the augmentation benchmark's reference script.
set -euo pipefail
pkgs=(build-essential pkg-config libopencv-dev libturbojpeg0-dev rabbitmq-server pci.ids python3-opencv python3-numpy python3-onnx ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "deps: need root to apt-get install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm fetches the ONNX Runtime library; the machine's Node.js may already bring it.
if ! command -v npm >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends npm >/dev/null
fi
