#!/usr/bin/env bash
# Video (issue 11): FFmpeg's libraries for the plugins' container probe
# (OpenCV's VideoCapture decodes), the ffmpeg/ffprobe tools the tests and the
# benchmark make clips with, and GStreamer's RTSP server (through PyGObject,
# run with Debian's /usr/bin/python3) that the live-stream tests start.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
apt_install libavformat-dev libavcodec-dev libavutil-dev ffmpeg \
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
