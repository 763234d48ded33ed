#!/usr/bin/env bash
# A fresh Debian 12 (bookworm) root for the .deb install test
# (packaging/debtest): debootstrap minbase plus systemd (the unit is checked
# with systemd-analyze against it; nothing runs it), with its apt lists
# current. The test mounts it read-only under an overlay, so every run starts
# from this same fresh root. Cached; about 2 minutes cold.
set -euo pipefail
cache="${AZAION_CACHE:-$HOME/.cache/azaion-edge}"
root="${AZAION_DEBIAN_ROOT:-$cache/debian-root-bookworm-amd64}"
stamp="v1 bookworm minbase+systemd"
[ "$(cat "$root.stamp" 2>/dev/null)" = "$stamp" ] && exit 0
mkdir -p "$cache"
exec 9>"$cache/.debian-root.lock"
flock 9
[ "$(cat "$root.stamp" 2>/dev/null)" = "$stamp" ] && exit 0
echo "deps: making the Debian 12 root of the install test ($root, a few minutes)"
tmp="$root.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$cache/debootstrap-debs"
debootstrap --variant=minbase --include=systemd --cache-dir="$cache/debootstrap-debs" \
  bookworm "$tmp" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
  { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
cat >"$tmp/etc/apt/sources.list" <<SRC
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
chroot "$tmp" apt-get -qq update
chroot "$tmp" apt-get -qq clean
rm -rf "$root" "$root.stamp"
mv "$tmp" "$root"
trap - EXIT
echo "$stamp" >"$root.stamp" # beside the root: nothing of ours inside it
