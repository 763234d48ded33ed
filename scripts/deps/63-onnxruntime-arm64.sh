#!/usr/bin/env bash
# The linux/arm64 ONNX Runtime library, for the arm64 .deb and the arm64
# plugin tests under qemu: from the same npm package as the host library
# (scripts/deps/20-onnxruntime.sh), cached beside it.
set -euo pipefail
cache="${AZAION_CACHE:-$HOME/.cache/azaion-edge}"
ver=1.30.0
dst="${AZAION_ORT_LIB_ARM64:-$cache/onnxruntime-$ver-arm64/libonnxruntime.so.1}"
[ -f "$dst" ] && exit 0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "deps: fetching onnxruntime-node@$ver (libonnxruntime for linux/arm64)"
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ver" >/dev/null && tar xzf "onnxruntime-node-$ver.tgz")
mkdir -p "$(dirname "$dst")"
install -m 0644 "$tmp/package/bin/napi-v6/linux/arm64/libonnxruntime.so.1" "$dst.tmp"
mv "$dst.tmp" "$dst"
