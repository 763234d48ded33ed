#!/usr/bin/env bash
# Runs an arm64 Linux program here, under qemu user-mode emulation called
# explicitly (this machine has no binfmt_misc): libraries come from the arm64
# sysroot (scripts/deps/62-arm64-sysroot.sh), and an ARM /proc/cpuinfo is
# bind-mounted over the host's in a private mount namespace, because ONNX
# Runtime reads the CPU's features from it. Needs root (unshare + mount).
# Usable as `go test -exec scripts/qemu-arm64.sh`. QEMU_CPU picks the
# emulated CPU (default cortex-a76, the OrangePi5's big core).
set -euo pipefail
sr="${AZAION_ARM64_SYSROOT:-${AZAION_CACHE:-$HOME/.cache/azaion-edge}/sysroot-arm64-bookworm}"
[ -f "$sr/.azaion-sysroot" ] || { echo "qemu-arm64: no arm64 sysroot at $sr (run make deps)" >&2; exit 1; }
cpuinfo=$(mktemp /tmp/azaion-cpuinfo.XXXXXX)
# One entry per host CPU (what /sys reports), as a Cortex-A76 r4p0 (RK3588) shows them.
for ((i = 0; i < $(nproc --all); i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 0\n\n' "$i"
done >"$cpuinfo"
libs="$sr/lib/aarch64-linux-gnu:$sr/usr/lib/aarch64-linux-gnu"
export QEMU_CPU="${QEMU_CPU:-cortex-a76}"
exec unshare --mount --propagation private sh -c 'mount --bind "$0" /proc/cpuinfo && rm -f "$0" && exec "$@"' \
  "$cpuinfo" env LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" qemu-aarch64-static -L "$sr" "$@"
