# RabbitMQ with the stream plugin, for the annotation ingest tests (issue 4).
# Sourced by scripts/with-services.sh. It runs a private broker under
# $AZAION_SVC_DIR/rabbitmq on free, non-default ports with a unique node name, so a
# system rabbitmq-server (apt starts one on 5672/4369) never clashes with it.
#
# Exports for the tests:
#   AZAION_TEST_STREAM_URI     rabbitmq-stream://guest:guest@localhost:PORT/%2f
#   AZAION_TEST_RABBITMQ_CTL   a script: `$AZAION_TEST_RABBITMQ_CTL kill9|start|stop|pid`
#                              (tests kill the broker with SIGKILL and restart it)
#   AZAION_TEST_RABBITMQ_LOCK  a file to flock: tests using the broker hold a shared lock,
#                              a test that kills it holds an exclusive one (go test runs
#                              packages in parallel)
SERVICES+=(rabbitmq)

_rabbitmq_free_port() { # first TCP port at or above $1 that nothing listens on
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

svc_rabbitmq_start() {
  local dir="$AZAION_SVC_DIR/rabbitmq" base=$((40000 + RANDOM % 20000))
  local stream amqp dist epmd
  mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
  stream=$(_rabbitmq_free_port "$base")
  amqp=$(_rabbitmq_free_port $((stream + 1)))
  dist=$(_rabbitmq_free_port $((amqp + 1)))
  epmd=$(_rabbitmq_free_port $((dist + 1)))
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:$amqp
stream.listeners.tcp.1 = 127.0.0.1:$stream
stream.advertised_host = localhost
stream.advertised_port = $stream
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
EOF
  echo '[rabbitmq_stream].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  cat >"$dir/ctl.sh" <<EOF
#!/usr/bin/env bash
# Controls the test broker: start (waits for the stream port), kill9, stop, pid.
set -euo pipefail
export HOME="$dir/home" ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$epmd
export RABBITMQ_NODENAME="azaion-test-$$-$stream@localhost" RABBITMQ_DIST_PORT=$dist
export RABBITMQ_CTL_DIST_PORT_MIN=$((dist + 100)) RABBITMQ_CTL_DIST_PORT_MAX=$((dist + 110))
export RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log"
export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
export RABBITMQ_PID_FILE="$dir/rabbit.pid" RABBITMQ_PLUGINS_EXPAND_DIR="$dir/plugins-expand"
port_up() { (exec 3<>/dev/tcp/127.0.0.1/$stream) 2>/dev/null; }
beam_pid() { # the Erlang VM itself (rabbitmq-server is a shell wrapper around it)
  if [ -s "$dir/rabbit.pid" ]; then cat "$dir/rabbit.pid"; return; fi
  ss -Htlnp "sport = :$stream" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true
}
case "\${1:-}" in
start)
  if port_up; then echo "rabbitmq: already running" >&2; exit 0; fi
  rm -f "$dir/rabbit.pid"
  setsid /usr/lib/rabbitmq/bin/rabbitmq-server >>"$dir/log/stdout.log" 2>&1 </dev/null 3>&- 4>&- 5>&- &
  wrapper=\$!
  for _ in \$(seq 1 600); do
    if port_up; then beam_pid >"$dir/pid"; exit 0; fi
    kill -0 "\$wrapper" 2>/dev/null || { echo "rabbitmq: broker exited; see $dir/log" >&2; tail -20 "$dir/log/stdout.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "rabbitmq: stream port $stream did not open in 60 s; see $dir/log" >&2; exit 1 ;;
kill9)
  pid=\$(cat "$dir/pid"); kill -9 "\$pid" 2>/dev/null || true
  for _ in \$(seq 1 200); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.05; done
  for _ in \$(seq 1 200); do port_up || break; sleep 0.05; done ;;
stop)
  if [ -s "$dir/pid" ]; then
    pid=\$(cat "$dir/pid"); kill -TERM "\$pid" 2>/dev/null || true
    for _ in \$(seq 1 300); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "\$pid" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
  epid=\$(ss -Htlnp "sport = :$epmd" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  if [ -n "\$epid" ]; then kill -TERM "\$epid" 2>/dev/null || true
  else epmd -kill >/dev/null 2>&1 || true; fi ;;
pid) cat "$dir/pid" ;;
*) echo "usage: \$0 start|kill9|stop|pid" >&2; exit 2 ;;
esac
EOF
  chmod +x "$dir/ctl.sh"
  "$dir/ctl.sh" start
  export AZAION_TEST_STREAM_URI="rabbitmq-stream://guest:guest@localhost:$stream/%2f"
  export AZAION_TEST_RABBITMQ_CTL="$dir/ctl.sh"
  : >"$dir/lock"
  export AZAION_TEST_RABBITMQ_LOCK="$dir/lock"
  echo "services: rabbitmq stream on 127.0.0.1:$stream"
}

svc_rabbitmq_stop() {
  [ -x "$AZAION_SVC_DIR/rabbitmq/ctl.sh" ] && "$AZAION_SVC_DIR/rabbitmq/ctl.sh" stop
}
