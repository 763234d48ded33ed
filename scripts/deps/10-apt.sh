#!/usr/bin/env bash
# Debian packages: OpenCV for the plugins (gocv), libjpeg-turbo's TurboJPEG API
# for the plugins' reduced-scale JPEG decoding and its libjpeg API (with the
# internal header jpegint.h) for their two-thread JPEG decoding, RabbitMQ with its stream plugin
# for the ingest tests, pci.ids for the hardware fingerprint, Python OpenCV for
# the augmentation benchmark's reference script, Python ONNX for the plugin's
# float16 test model.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
apt_install build-essential pkg-config libopencv-dev libturbojpeg0-dev libjpeg62-turbo-dev rabbitmq-server pci.ids \
  python3-opencv python3-numpy python3-onnx ca-certificates
# npm fetches the ONNX Runtime library; the machine's Node.js may already bring it.
command -v npm >/dev/null || apt_install npm
