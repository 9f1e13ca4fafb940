#!/usr/bin/env bash
# Starts the whole system on this machine: redis-server, the MongoDB stand-in (unless
# MONGODB_URI is set), every service (replicas from SESSIONS_REPLICAS etc.) and the gateway
# on http://127.0.0.1:${PORT:-8080}. Logs go to the terminal; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
CONFIGURATION=${CONFIGURATION:-debug}
swift build -c "$CONFIGURATION"
BIN=$(swift build -c "$CONFIGURATION" --show-bin-path)

RUN_DIR=${RUN_DIR:-$PWD/.run}
mkdir -p "$RUN_DIR/redis" "$RUN_DIR/mongo"
REDIS_PORT=${REDIS_PORT:-6379}
MONGO_PORT=${MONGO_PORT:-27017}
export PORT=${PORT:-8080}
pids=()     # redis-server and the stand-in, stopped last
apps=()     # the services, stopped after the gateway
gateway=""  # the gateway, stopped first so that it drains while the services still answer

port_in_use() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
require_free_port() { # PORT WHAT
  if port_in_use "$1"; then
    echo "port $1 ($2) is already in use: stop what listens there or choose another" \
      "(see README)" >&2
    exit 1
  fi
}
require_free_port "$PORT" "PORT, the gateway"
[ -z "${REDIS_URL:-}" ] && require_free_port "$REDIS_PORT" "REDIS_PORT"
[ -z "${MONGODB_URI:-}" ] && require_free_port "$MONGO_PORT" "MONGO_PORT"

# Waits up to 20 s for each PID to exit, then kills what is left.
wait_for() {
  local deadline=$((SECONDS + 20))
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  done
}

stop_all() {
  # A second Ctrl-C, SIGTERM or SIGHUP must not cut this short and leave Redis or the stand-in
  # running; nor may a closed terminal, which makes the echo fail.
  trap '' INT TERM HUP
  trap - EXIT
  echo "stopping..." || true
  # The gateway first, so the requests it drains still get answers; then the services, which
  # can still acknowledge and answer what they hold; Redis and the stand-in once they exited.
  if [ -n "$gateway" ]; then
    kill -TERM "$gateway" 2>/dev/null || true
    wait_for "$gateway"
  fi
  for pid in "${apps[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait_for "${apps[@]}"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait_for "${pids[@]}"
  wait 2>/dev/null || true
  exit 0
}
trap stop_all INT TERM HUP EXIT

# Redis and the stand-in run in their own sessions, so that a Ctrl-C, which the terminal sends
# to every process of this one, stops them only after the services (stop_all).
if [ -z "${REDIS_URL:-}" ]; then
  setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR/redis" \
    --appendonly yes --appendfsync everysec --save "" --daemonize no \
    --logfile "$RUN_DIR/redis/redis.log" &
  pids+=($!)
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
fi

if [ -z "${MONGODB_URI:-}" ]; then
  setsid .venv/bin/python scripts/standin.py --host 127.0.0.1 -p "$MONGO_PORT" \
    --data-dir "$RUN_DIR/mongo" --log-file "$RUN_DIR/mongo/nx.log" \
    --pid-file "$RUN_DIR/mongo/nx.pid" >/dev/null 2>&1 &
  STANDIN=$!
  pids+=($STANDIN)
  export MONGODB_URI="mongodb://127.0.0.1:$MONGO_PORT/universal_chat"
  for _ in $(seq 50); do port_in_use "$MONGO_PORT" && break; sleep 0.1; done
  kill -0 "$STANDIN" 2>/dev/null || { echo "the MongoDB stand-in did not start" >&2; exit 1; }
fi

for service in sessions settings feedback canvas; do
  upper=$(echo "$service" | tr a-z A-Z)
  count_var="${upper}_REPLICAS"
  count=${!count_var:-1}
  [ -x "$BIN/$service" ] || continue
  grep -q "\"$service\"" Shared/Bus/Routes*.swift || continue
  for i in $(seq "$count"); do
    CONSUMER_NAME="$service-$(hostname)-$i" "$BIN/$service" &
    apps+=($!)
  done
done

"$BIN/gateway" &
gateway=$!

cat <<MSG

Universal Chat is starting on http://127.0.0.1:$PORT
  Get a token:  TOKEN=\$($BIN/uc-admin token)
  Try it:       curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$PORT/api/chat/sessions
  Demo:         scripts/demo.sh
Press Ctrl-C to stop.

MSG
wait
