#!/usr/bin/env bash
# Builds dist/azaion_<version>_<arch>.deb for each architecture given (amd64,
# arm64), as `make deb` calls it: the daemon (CGO_ENABLED=0) and the plugins
# (cgo, OpenCV; arm64 cross-compiled against the arm64 sysroot) with the
# package version, plugin checksums, that architecture's ONNX Runtime library,
# Depends computed by dpkg-shlibdeps, the copyright file with the bundled
# components' licences, docs, then nfpm (packaging/nfpm.yaml).
#
# Environment (mk/deb.mk sets it): DEB_VERSION, DEB_MAINTAINER, NFPM,
# AZAION_ORT_LIB (amd64), AZAION_ORT_LIB_ARM64, AZAION_ARM64_SYSROOT, ORT_VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DEB_VERSION:?}" "${DEB_MAINTAINER:?}" "${NFPM:?}" "${ORT_VERSION:?}"
[ "$(go env GOHOSTARCH)" = amd64 ] || { echo "deb: build on amd64 (arm64 is cross-compiled)" >&2; exit 1; }

plugins=(onnx trainer)
ldflags="-s -w -X github.com/azaion/edge/sdk/version.Version=$DEB_VERSION"

# cgo_env ARCH exports the environment that builds the cgo plugins for ARCH,
# hardened (fortified, PIE, full RELRO); arm64 against the arm64 sysroot.
cgo_env() {
  local hard="-O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong" sr=""
  export CGO_ENABLED=1 GOOS=linux GOARCH="$1"
  case "$1" in
  amd64) ;;
  arm64)
    sr="${AZAION_ARM64_SYSROOT:?}"
    [ -f "$sr/.azaion-sysroot" ] || { echo "deb: no arm64 sysroot at $sr (make deps)" >&2; exit 1; }
    export CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ PKG_CONFIG_SYSROOT_DIR="$sr"
    export PKG_CONFIG_LIBDIR="$sr/usr/lib/aarch64-linux-gnu/pkgconfig:$sr/usr/share/pkgconfig"
    sr="--sysroot=$sr"
    ;;
  *) echo "deb: unknown architecture $1" >&2; exit 1 ;;
  esac
  export CGO_CFLAGS="$sr $hard" CGO_CXXFLAGS="$sr $hard" CGO_LDFLAGS="$sr -Wl,-z,relro,-z,now"
}

# depends ARCH FILE... prints the Depends that dpkg-shlibdeps computes for the
# ELF files: from the host's dpkg database for amd64, from the sysroot's for arm64.
depends() {
  local arch=$1; shift
  local tmp args=()
  tmp=$(mktemp -d)
  mkdir "$tmp/debian"
  printf 'Source: azaion\n\nPackage: azaion\nArchitecture: any\n' >"$tmp/debian/control"
  if [ "$arch" = arm64 ]; then
    local sr=$AZAION_ARM64_SYSROOT
    args=(--admindir="$sr/var/lib/dpkg" -l"$sr/usr/lib/aarch64-linux-gnu" -l"$sr/lib/aarch64-linux-gnu")
  fi
  local abs=()
  for f in "$@"; do abs+=(-e"$(realpath "$f")"); done
  (cd "$tmp" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O "${args[@]}" "${abs[@]}" 2>"$tmp/err") >"$tmp/out" || {
    cat "$tmp/err" >&2; rm -rf "$tmp"; return 1; }
  grep -v -e 'binaries to analyze should already be' -e 'could avoid a useless dependency' "$tmp/err" >&2 || true
  sed -n 's/^shlibs:Depends=//p' "$tmp/out"
  rm -rf "$tmp"
}

changelog() {
  local date subject
  date=$(git log -1 --format=%cD 2>/dev/null || date -R)
  subject=$(git log -1 --format='commit %h' 2>/dev/null || echo "a local build")
  printf 'azaion (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- %s  %s\n' \
    "$DEB_VERSION" "$subject" "$DEB_MAINTAINER" "$date"
}

# manpage BINARY prints azaion(1) in roff, its command list from `azaion help`.
manpage() {
  cat <<ROFF
.TH AZAION 1 "" "azaion $DEB_VERSION" "Azaion Edge"
.SH NAME
azaion \- YOLO object detection daemon and tools of the Azaion platform
.SH SYNOPSIS
.B azaion
.I command
.RI [ flags ]
.SH DESCRIPTION
.B azaion serve
runs the daemon (as the systemd service azaion.service): it answers detection requests on the Unix
socket /run/azaion/azaion.sock (members of the group azaion) and on http://127.0.0.1:8470.
The other commands are clients and tools;
.B azaion doctor
checks an installation and
.B azaion version
prints the daemon, plugin and runtime versions.
Run
.B azaion
.I command
.B \-h
for a command's flags.
.SH COMMANDS
ROFF
  # `azaion help` lists "  NAME<padded to 24> SUMMARY".
  "$1" help | awk '/^  [a-z]/ { name = substr($0, 3, 24); sub(/ +$/, "", name); print ".TP\n.B " name "\n" substr($0, 28) }'
  cat <<'ROFF'
.SH FILES
.TP
.B /etc/azaion/azaion.yaml
configuration (every key commented with its default)
.TP
.B /etc/default/azaion
environment of the service, for secrets (mode 0600)
.TP
.B /var/lib/azaion
state: model store, local models (models\-local), data root (data)
.TP
.B /usr/lib/azaion/plugins
plugin binaries and their SHA\-256 checksums
.SH SEE ALSO
.BR journalctl (1)
(logs: journalctl \-u azaion), /usr/share/doc/azaion/README.md.gz
ROFF
}

build() {
  local arch=$1 root="dist/$arch/root" ort
  echo "deb: building azaion $DEB_VERSION for $arch"
  rm -rf "dist/$arch" dist/azaion_*_"$arch".deb
  # DEBIAN/ marks the package root for dpkg-shlibdeps (ONNX Runtime's RPATH is $ORIGIN); nfpm ignores it.
  mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/azaion/plugins" "$root/usr/share/doc/azaion"
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$root/usr/bin/azaion" ./daemon/cmd/azaion
  for p in "${plugins[@]}"; do
    local bin="$root/usr/lib/azaion/plugins/azaion-plugin-$p"
    (cgo_env "$arch" && go build -trimpath -buildmode=pie -ldflags "$ldflags" -o "$bin" "./plugins/$p/cmd/azaion-plugin-$p")
    (cd "$(dirname "$bin")" && sha256sum "$(basename "$bin")" >"$(basename "$bin").sha256")
  done
  case "$arch" in amd64) ort=${AZAION_ORT_LIB:?} ;; arm64) ort=${AZAION_ORT_LIB_ARM64:?} ;; esac
  install -m 0644 "$ort" "$root/usr/lib/azaion/libonnxruntime.so.1"

  local deps
  deps=$(depends "$arch" "$root"/usr/lib/azaion/plugins/azaion-plugin-{onnx,trainer} "$root/usr/lib/azaion/libonnxruntime.so.1" |
    sed 's/, */\n/g' | grep -v '^$' | tr '\n' ',' | sed 's/,$//; s/,/, /g')
  [ -n "$deps" ] || { echo "deb: dpkg-shlibdeps found no dependencies for $arch" >&2; exit 1; }
  echo "deb: $arch Depends: $deps"

  mkdir -p "$root/usr/share/man/man1"
  manpage "dist/amd64/root/usr/bin/azaion" | gzip -9n >"$root/usr/share/man/man1/azaion.1.gz"
  local doc="$root/usr/share/doc/azaion"
  go run ./packaging/copyright -o "$doc/copyright" -version "$DEB_VERSION" -ort-version "$ORT_VERSION" -root "$root" \
    "$root/usr/bin/azaion" "$root"/usr/lib/azaion/plugins/azaion-plugin-{onnx,trainer}
  changelog | gzip -9n >"$doc/changelog.gz"
  gzip -9n <README.md >"$doc/README.md.gz"
  for f in docs/*.md; do gzip -9n <"$f" >"$doc/$(basename "$f").gz"; done
  chmod 0644 "$doc"/*

  DEB_ARCH=$arch DEB_ROOT=$root DEB_DEPENDS=$deps "$NFPM" package --config packaging/nfpm.yaml \
    --packager deb --target "dist/azaion_${DEB_VERSION}_$arch.deb" >/dev/null
  echo "deb: dist/azaion_${DEB_VERSION}_$arch.deb"
}

mkdir -p dist
for arch in "$@"; do build "$arch"; done
# The unit's sandboxing, as systemd rates it (packaging/debtest asserts OK or better).
systemd-analyze security --offline=true packaging/azaion.service 2>/dev/null | sed -n 's/^→ /deb: systemd-analyze security: /p'

