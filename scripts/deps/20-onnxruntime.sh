#!/usr/bin/env bash
# ONNX Runtime shared library (CPU) from the npm package onnxruntime-node, which
# ships prebuilt libonnxruntime.so.1 for linux x64 and arm64. `npm pack` only
# downloads the tarball (no install script runs).
set -euo pipefail
: "${AZAION_ORT_LIB:?}"
[ -f "$AZAION_ORT_LIB" ] && exit 0
ver=1.30.0
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "deps: no ONNX Runtime for $(uname -m)" >&2; exit 1 ;; esac
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "deps: fetching onnxruntime-node@$ver (libonnxruntime for linux/$arch)"
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ver" >/dev/null && tar xzf "onnxruntime-node-$ver.tgz")
dir=$(dirname "$AZAION_ORT_LIB"); mkdir -p "$dir"
install -m 0644 "$tmp/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1" "$dir/.libonnxruntime.so.1.tmp"
mv "$dir/.libonnxruntime.so.1.tmp" "$AZAION_ORT_LIB"
