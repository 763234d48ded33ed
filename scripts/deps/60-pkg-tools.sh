#!/usr/bin/env bash
# Tools for `make deb` and its tests: dpkg-dev (dpkg-shlibdeps), lintian,
# debootstrap (the Debian 12 root of the install test), the arm64 cross
# compiler and qemu-user-static (the arm64 plugin under emulation), systemd
# (systemd-analyze verify/security) and util-linux's unshare/nsenter/setpriv.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
apt_install dpkg-dev lintian debootstrap qemu-user-static crossbuild-essential-arm64 systemd util-linux
