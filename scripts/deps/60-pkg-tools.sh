#!/usr/bin/env bash
# Tools for `make deb` and its tests: dpkg-dev (dpkg-shlibdeps), lintian,
# debootstrap (the Debian 12 root of the install test), the arm64 cross
# compiler and qemu-user-static (the arm64 plugin under emulation), systemd
# (systemd-analyze verify/security) and util-linux's unshare/nsenter.
set -euo pipefail
pkgs=(dpkg-dev lintian debootstrap qemu-user-static crossbuild-essential-arm64 systemd util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then echo "deps: need root to apt-get install ${missing[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 update -qq
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
