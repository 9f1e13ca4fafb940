#!/usr/bin/env bash
# make bench: the cost of each layer against its floor, measured in one run on this machine.
# make bench-quick (QUICK=1): the same table with short runs, a debug build and small growth sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then D=${BENCH_SECONDS:-1}; CONF=${BENCH_CONFIGURATION:-debug}; SIZES="10 100"
else D=${BENCH_SECONDS:-10}; CONF=${BENCH_CONFIGURATION:-release}; SIZES="10 1000 10000"; fi

scripts/install-deps.sh >/dev/null
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
swift build -c "$CONF" >/dev/null
BIN=$(swift build -c "$CONF" --show-bin-path)
WORK=$(mktemp -d /tmp/uc-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(free_port); MP=$(free_port); GP=$(free_port); FP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" &
pids+=($!)
mkdir -p "$WORK/mongo"
.venv/bin/python scripts/standin.py --host 127.0.0.1 -p "$MP" --data-dir "$WORK/mongo" \
  --log-file "$WORK/mongo/nx.log" --pid-file "$WORK/mongo/nx.pid" >/dev/null 2>&1 &
pids+=($!)
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.1; done
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$MP") 2>/dev/null && break; sleep 0.1; done

export REDIS_URL="redis://127.0.0.1:$RP" MONGODB_URI="mongodb://127.0.0.1:$MP/bench" LOG_LEVEL=warning
export JWT_SECRET=bench-secret PORT=$GP RATE_LIMIT_WRITES=0
"$BIN/sessions" 2>"$WORK/sessions.log" & SESSIONS=$!; pids+=($SESSIONS)
"$BIN/gateway" 2>"$WORK/gateway.log" & GATEWAY=$!; pids+=($GATEWAY)
"$BIN/uc-bench" floor "$FP" & pids+=($!)
GW="http://127.0.0.1:$GP"
USER_ID=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
export TOKEN=$(JWT_SECRET=$JWT_SECRET "$BIN/uc-admin" token --sub "$USER_ID")
AUTH="Authorization: Bearer $TOKEN"
# Only the sessions service runs here, so wait for it rather than for /readyz.
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$GW/api/ping")" = 200 ]; do sleep 0.2; done

# wrk -> "rps p50_ms p99_ms"
measure() { # CONNECTIONS URL [wrk args...]
  local c=$1 url=$2; shift 2
  local threads=2; [ "$c" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$c" -d"${D}s" --latency "$@" "$url" 2>/dev/null | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    n, u = float(re.match(r"[\d.]+", v).group()), re.sub(r"[\d.]+", "", v)
    return n * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}.get(u, 1)
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1)); p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {errors.group(1) if errors else 0}")'
}
row() { printf '| %-44s | %10s | %8s | %8s | %-28s |\n' "$@"; }

echo "## Universal Chat benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $CONF build, ${D}s per run, $(nproc) cores shared by everything)"
echo
row "what" "req/s" "p50 ms" "p99 ms" "ratio / note"
row "---" "---" "---" "---" "---"
read -r FLOOR_RPS FP50 FP99 _ <<<"$(measure 64 "http://127.0.0.1:$FP/")"
row "HTTP floor: libmicrohttpd hello, 64 conns" "$FLOOR_RPS" "$FP50" "$FP99" "1.00 (floor)"
N=$([ "$QUICK" = 1 ] && echo 20000 || echo 200000)
set -f
for cmd in "XADD bench:floor MAXLEN ~ 10000 * f v" "LPUSH bench:list v"; do
  # shellcheck disable=SC2086
  RPS=$(redis-benchmark -p "$RP" -q -n "$N" -c 50 $cmd 2>/dev/null | tr '\r' '\n' \
        | grep -o '[0-9.]* requests per second' | awk '{print $1}' | tail -1 || true)
  row "Redis floor: ${cmd%% *}, 50 clients" "${RPS:-n/a}" "" "" "floor"
done
set +f
for c in 1 16 64 256; do
  read -r RPS P50 P99 ERR <<<"$(measure "$c" "$GW/api/ping" -H "$AUTH")"
  RATIO=$(python3 -c "print(f'{$RPS/$FLOOR_RPS:.2f} of HTTP floor')")
  row "bus: GET /api/ping, $c conns" "$RPS" "$P50" "$P99" "$RATIO${ERR:+, non-2xx $ERR}"
done

S=$(curl -s -X POST "$GW/api/chat/sessions" -H "$AUTH" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessionId"])')
curl -s -X POST "$GW/api/chat/sessions/$S/messages" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"role":"user","content":"hello"}' >/dev/null
echo '{"name":"bench session"}' > "$WORK/create.json"
echo '{"role":"user","content":"hello"}' > "$WORK/append.json"
db_route() { # LABEL OP URL [BODY]
  local label=$1 op=$2 url=$3 body=${4:-}
  if [ -n "$body" ]; then read -r RPS P50 P99 ERR <<<"$(BODY_FILE=$body measure 64 "$url" -s bench/post.lua)"
  else read -r RPS P50 P99 ERR <<<"$(measure 64 "$url" -H "$AUTH")"; fi
  DIRECT=$("$BIN/uc-bench" direct "$MONGODB_URI" "$op" 64 "$D" "$USER_ID" "$S")
  RATIO=$(python3 -c "print(f'{$RPS/max($DIRECT,0.1):.2f} of direct ({$DIRECT:.0f}/s)')")
  row "$label, 64 conns" "$RPS" "$P50" "$P99" "$RATIO${ERR:+, non-2xx $ERR}"
}
db_route "db: POST /api/chat/sessions" create "$GW/api/chat/sessions" "$WORK/create.json"
db_route "db: POST .../messages" append "$GW/api/chat/sessions/$S/messages" "$WORK/append.json"
db_route "db: GET /api/chat/sessions" list "$GW/api/chat/sessions"
db_route "db: GET .../messages" page "$GW/api/chat/sessions/$S/messages"
db_route "db: GET /api/chat/search?q=hello" search "$GW/api/chat/search?q=hello"

# Every size is seeded first, then measured in two rounds, smallest to largest; the lower p50 of
# the two rounds counts, so that a slower spell of the shared machine does not pass for growth.
declare -A LIST_P50 PAGE_P50 FIRST TOK
for n in $SIZES; do
  uid=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  FIRST[$n]=$("$BIN/uc-bench" seed "$MONGODB_URI" "$uid" "$n" "$n")
  TOK[$n]=$(JWT_SECRET=$JWT_SECRET "$BIN/uc-admin" token --sub "$uid")
done
lower() { python3 -c "import sys; print(min(float(v) for v in sys.argv[1:] if v))" "$@"; }
for _ in 1 2; do
  for n in $SIZES; do
    read -r _ LP50 _ _ <<<"$(measure 4 "$GW/api/chat/sessions?limit=10" \
      -H "Authorization: Bearer ${TOK[$n]}")"
    read -r _ PP50 _ _ <<<"$(measure 4 "$GW/api/chat/sessions/${FIRST[$n]}/messages?limit=10" \
      -H "Authorization: Bearer ${TOK[$n]}")"
    LIST_P50[$n]=$(lower "$LP50" "${LIST_P50[$n]:-}"); PAGE_P50[$n]=$(lower "$PP50" "${PAGE_P50[$n]:-}")
  done
done
for n in $SIZES; do
  row "growth: $n sessions / $n messages" "" "${LIST_P50[$n]} / ${PAGE_P50[$n]}" "" \
    "p50 list / first page, 10 items each, lower of 2 rounds"
done
small=${SIZES%% *}; large=${SIZES##* }
row "growth ratio largest/smallest" "" "" "" "$(python3 -c "print(f'list {${LIST_P50[$large]}/${LIST_P50[$small]}:.2f}, page {${PAGE_P50[$large]}/${PAGE_P50[$small]}:.2f}')")"

kill -STOP "$SESSIONS"
INFLIGHT=$([ "$QUICK" = 1 ] && echo 200 || echo 2000)
wrk -t2 -c"$INFLIGHT" -d"$((D + 2))s" --timeout 30s -H "$AUTH" "$GW/api/ping" >/dev/null 2>&1 &
WRK=$!
sleep $((D > 1 ? D : 2))
HELD=$(curl -s "$GW/metrics" | awk '/^uc_gateway_in_flight/ {print $2}')
THREADS=$(awk '/^Threads/ {print $2}' /proc/$GATEWAY/status)
REDIS_CONNS=$(redis-cli -p "$RP" client list | grep -c "laddr" || true)
kill -CONT "$SESSIONS"
wait $WRK 2>/dev/null || true
row "in flight held at once (service stopped)" "" "" "" "$HELD held, gateway threads $THREADS, redis clients $REDIS_CONNS"

for name in gateway sessions; do
  pid=$([ $name = gateway ] && echo $GATEWAY || echo $SESSIONS)
  row "peak RSS $name" "" "" "" "$(awk '/^VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$pid/status)"
done
