#!/usr/bin/env bash
# Runs a command with the test servers up: each scripts/services/*.sh appends its
# name to SERVICES and defines svc_<name>_start (which exports the variables the
# tests read) and svc_<name>_stop. All started servers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export AZAION_SVC_DIR
AZAION_SVC_DIR=$(mktemp -d /tmp/azaion-svc.XXXXXX)
SERVICES=()
started=()
cleanup() {
  local rc=$?
  for ((i=${#started[@]}-1; i>=0; i--)); do "svc_${started[i]}_stop" || true; done
  rm -rf "$AZAION_SVC_DIR"
  exit $rc
}
trap cleanup EXIT INT TERM
for f in scripts/services/*.sh; do
  [ -e "$f" ] || continue
  # shellcheck disable=SC1090
  source "$f"
done
for s in "${SERVICES[@]}"; do
  echo "services: starting $s"
  "svc_${s}_start"
  started+=("$s")
done
"$@"
