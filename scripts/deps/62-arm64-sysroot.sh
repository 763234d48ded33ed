#!/usr/bin/env bash
# Debian 12 arm64 sysroot for cross-compiling the cgo plugins (OpenCV headers
# and libraries, glibc, libstdc++) and for running them under qemu-user.
#
# No chroot and no host multiarch: a private apt root (its own sources, lists
# and empty dpkg status, arm64 only) resolves and downloads libopencv-dev,
# libturbojpeg0-dev, libjpeg62-turbo-dev and their dependencies, and each .deb is unpacked with `dpkg -x`. A dpkg database
# beside it (var/lib/dpkg: status, file lists, shlibs and symbols files, with
# the sysroot's absolute paths) lets dpkg-shlibdeps --admindir compute the
# arm64 package's Depends. Absolute symlinks are made relative so the tree
# works wherever it is looked at. Cached; rebuilt when the package list or the
# location changes. About 300 MB of downloads cold.
set -euo pipefail
cache="${AZAION_CACHE:-$HOME/.cache/azaion-edge}"
sr="${AZAION_ARM64_SYSROOT:-$cache/sysroot-arm64-bookworm}"
# The -dev packages of every `#cgo pkg-config:` in plugins/ (as 10-apt.sh and
# 40-video.sh install them for the host); libopencv-dev already pulls the
# FFmpeg ones in, they are named so the list reads as the plugins' needs.
pkgs=(libopencv-dev libturbojpeg0-dev libjpeg62-turbo-dev libavformat-dev libavcodec-dev libavutil-dev libc6-dev libstdc++-12-dev)
stamp="v3 ${pkgs[*]} $sr"
[ "$(cat "$sr/.azaion-sysroot" 2>/dev/null)" = "$stamp" ] && exit 0
mkdir -p "$cache"
exec 9>"$cache/.sysroot-arm64.lock"
flock 9
[ "$(cat "$sr/.azaion-sysroot" 2>/dev/null)" = "$stamp" ] && exit 0
echo "deps: making the arm64 sysroot $sr (downloads about 300 MB)"

apt_root="$cache/apt-arm64"
mkdir -p "$apt_root"/etc/apt/{sources.list.d,preferences.d,apt.conf.d,trusted.gpg.d} \
  "$apt_root"/var/lib/apt/lists/partial "$apt_root"/var/cache/apt/archives/partial "$apt_root"/var/lib/dpkg
: >"$apt_root/var/lib/dpkg/status"
key=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_root/etc/apt/sources.list" <<SRC
deb [arch=arm64 signed-by=$key] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=$key] http://deb.debian.org/debian bookworm-updates main
deb [arch=arm64 signed-by=$key] http://deb.debian.org/debian-security bookworm-security main
SRC
apt=(apt-get -qq -o "Dir=$apt_root" -o "Dir::State::status=$apt_root/var/lib/dpkg/status"
  -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root
  -o APT::Install-Recommends=false -o Acquire::Retries=3)
"${apt[@]}" update
"${apt[@]}" install -y --download-only "${pkgs[@]}" >/dev/null
# The exact set apt chose (the archive may hold older versions from earlier runs).
mapfile -t debs < <("${apt[@]}" -s install -y "${pkgs[@]}" | awk '/^Inst /{print $2" "$3}' | tr -d '()' |
  while read -r name ver; do
    for a in arm64 all; do
      f="$apt_root/var/cache/apt/archives/${name}_${ver//:/%3a}_$a.deb"
      if [ -f "$f" ]; then echo "$f"; fi
    done
  done)
((${#debs[@]} > 100)) || { echo "deps: arm64 sysroot: only ${#debs[@]} packages resolved" >&2; exit 1; }

tmp="$sr.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
db="$tmp/var/lib/dpkg"
mkdir -p "$db/info" "$db/updates"
printf 'amd64\narm64\n' >"$db/arch"
echo 1 >"$db/info/format" # multiarch file names (pkg:arm64.list)
ctl=$(mktemp -d); trap 'rm -rf "$tmp" "$ctl"' EXIT
for deb in "${debs[@]}"; do
  dpkg-deb -x "$deb" "$tmp"
  name=$(dpkg-deb -f "$deb" Package)
  arch=$(dpkg-deb -f "$deb" Architecture)
  ma=$(dpkg-deb -f "$deb" Multi-Arch)
  base=$name
  [ "$ma" = same ] && base="$name:$arch"
  dpkg-deb -f "$deb" | awk -v st="Status: install ok installed" '{print} /^Package:/{print st}' >>"$db/status"
  echo >>"$db/status"
  dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's#^\./#/#' -e 's#/$##' -e '/^$/d' -e '/^\.$/d' |
    sed "s#^#$sr#" >"$db/info/$base.list"
  rm -rf "$ctl"/*
  dpkg-deb -e "$deb" "$ctl"
  for f in shlibs symbols; do
    if [ -f "$ctl/$f" ]; then cp "$ctl/$f" "$db/info/$base.$f"; fi
  done
  # Maintainer scripts do not run here: do what their
  # `update-alternatives --install LINK NAME PATH PRIORITY` would
  # (libblas.so.3 and liblapack.so.3 are alternatives).
  if [ -f "$ctl/postinst" ]; then
    sed -e ':a;/\\$/{N;s/\\\n//;ba}' "$ctl/postinst" |
      awk '$1=="update-alternatives" && $2=="--install" && $3 ~ /^\// && $5 ~ /^\// {print $6, $3, $5}' >>"$ctl.alternatives"
  fi
done
if [ -f "$ctl.alternatives" ]; then
  sort -k2,2 -k1,1nr "$ctl.alternatives" | awk '!seen[$2]++ {print $2, $3}' | while read -r link target; do
    mkdir -p "$(dirname "$tmp$link")"
    ln -sfn "$(realpath -m --relative-to="$(dirname "$tmp$link")" "$tmp$target")" "$tmp$link"
  done
  rm -f "$ctl.alternatives"
fi
# Absolute symlinks point into the host; make them relative to the sysroot.
find "$tmp" -type l -lname '/*' -print0 | while IFS= read -r -d '' l; do
  target=$(readlink "$l")
  rel=$(realpath -m --relative-to="$(dirname "$l")" "$tmp$target")
  ln -sfn "$rel" "$l"
done
echo "$stamp" >"$tmp/.azaion-sysroot"
rm -rf "$sr"
mv "$tmp" "$sr"
trap - EXIT
rm -rf "$ctl"
echo "deps: arm64 sysroot ready (${#debs[@]} packages)"
