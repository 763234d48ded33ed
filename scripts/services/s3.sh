# S3-compatible server (versitygw, posix backend) for the model distribution
# tests (issue 3). Sourced by scripts/with-services.sh. It runs a private
# gateway under $AZAION_SVC_DIR/s3 on a free loopback port with random root
# credentials.
#
# Exports for the tests:
#   AZAION_TEST_S3_ENDPOINT    http://127.0.0.1:PORT
#   AZAION_TEST_S3_ACCESS_KEY  root access key id
#   AZAION_TEST_S3_SECRET_KEY  root secret key
#   AZAION_TEST_S3_REGION      us-east-1
#   AZAION_TEST_S3_CTL         a script: `$AZAION_TEST_S3_CTL start|stop|kill9|pid`
#   AZAION_TEST_VERSITYGW      the versitygw binary (tests that cut connections run
#                              their own instance with it)
SERVICES+=(s3)

_s3_free_port() { # first free TCP port at or above $1
  local p=$1
  while ss -Htln "sport = :$p" 2>/dev/null | grep -q .; do p=$((p + 1)); done
  echo "$p"
}

_s3_binary() {
  local c
  for c in "${AZAION_CACHE:-$HOME/.cache/azaion-edge}/bin/versitygw" "$HOME/go/bin/versitygw" "$(command -v versitygw || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  echo "s3: versitygw not found; run \`make deps\`" >&2
  return 1
}

svc_s3_start() {
  local dir="$AZAION_SVC_DIR/s3" bin port access secret
  bin=$(_s3_binary)
  port=$(_s3_free_port $((30000 + RANDOM % 10000)))
  access="azaion$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  secret="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$dir/data"
  chmod 700 "$dir"
  cat >"$dir/ctl.sh" <<EOF
#!/usr/bin/env bash
# Controls the test S3 gateway: start (waits for the port), stop, kill9, pid.
set -euo pipefail
port_up() { (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; }
case "\${1:-}" in
start)
  if [ -s "$dir/pid" ] && kill -0 "\$(cat "$dir/pid")" 2>/dev/null; then exit 0; fi
  ROOT_ACCESS_KEY_ID='$access' ROOT_SECRET_ACCESS_KEY='$secret' setsid "$bin" --port 127.0.0.1:$port --keep-alive -q \\
    posix "$dir/data" >>"$dir/log" 2>&1 </dev/null &
  echo \$! >"$dir/pid"
  for _ in \$(seq 1 200); do
    port_up && exit 0
    kill -0 "\$(cat "$dir/pid")" 2>/dev/null || { echo "s3: versitygw exited; see $dir/log" >&2; tail -20 "$dir/log" >&2; exit 1; }
    sleep 0.05
  done
  echo "s3: port $port did not open in 10 s" >&2; exit 1 ;;
kill9|stop)
  [ -s "$dir/pid" ] || exit 0
  pid=\$(cat "$dir/pid")
  if [ "\$1" = kill9 ]; then kill -9 "\$pid" 2>/dev/null || true; else kill -TERM "\$pid" 2>/dev/null || true; fi
  for _ in \$(seq 1 100); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "\$pid" 2>/dev/null || true
  rm -f "$dir/pid" ;;
pid) cat "$dir/pid" ;;
*) echo "usage: \$0 start|stop|kill9|pid" >&2; exit 2 ;;
esac
EOF
  chmod 700 "$dir/ctl.sh"
  "$dir/ctl.sh" start
  export AZAION_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  export AZAION_TEST_S3_ACCESS_KEY="$access" AZAION_TEST_S3_SECRET_KEY="$secret" AZAION_TEST_S3_REGION=us-east-1
  export AZAION_TEST_S3_CTL="$dir/ctl.sh" AZAION_TEST_VERSITYGW="$bin"
  echo "services: s3 (versitygw) on 127.0.0.1:$port"
}

svc_s3_stop() {
  [ -x "$AZAION_SVC_DIR/s3/ctl.sh" ] && "$AZAION_SVC_DIR/s3/ctl.sh" stop
}
