#!/usr/bin/env bash
# Video (issue 11): FFmpeg's libraries for the plugins' container probe
# (OpenCV's VideoCapture decodes), the ffmpeg/ffprobe tools the tests and the
# benchmark make clips with, and GStreamer's RTSP server (through PyGObject,
# run with Debian's /usr/bin/python3) that the live-stream tests start.
set -euo pipefail
pkgs=(libavformat-dev libavcodec-dev libavutil-dev ffmpeg
      python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
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
