#!/usr/bin/env bash
# CPU per request on GET /api/ping: starts redis-server, the stand-in, sessions and the gateway
# (release build), runs wrk and prints each process's CPU time divided by the requests served.
#   CONNS="1 64 64"  connection counts, one wrk run each (default "64 64 64"); D=seconds per run
#   PERF=GATEWAY|SESSIONS  also record a perf profile of that process to /tmp/perf.data
#   CSW=1  context switches per request, by thread name
#   HOLD=2000 [HOLD_S=6]  hold that many requests with the service stopped, then let them run;
#                         prints the gateway's peak RSS
#   SMAPS=1 [SMAPS_LINES=15]  the gateway's resident memory by mapping, largest first
set -euo pipefail
cd "$(dirname "$0")/.."
CONF=${CONF:-release}
BIN=$(swift build -c "$CONF" --show-bin-path)
WORK=$(mktemp -d /tmp/uc-ping.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(free_port); MP=$(free_port); GP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" & REDIS=$!; pids+=($REDIS)
mkdir -p "$WORK/mongo"
.venv/bin/python scripts/standin.py --host 127.0.0.1 -p "$MP" --data-dir "$WORK/mongo" --log-file "$WORK/mongo/nx.log" --pid-file "$WORK/mongo/nx.pid" >/dev/null 2>&1 & pids+=($!)
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.1; done
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$MP") 2>/dev/null && break; sleep 0.1; done
export REDIS_URL="redis://127.0.0.1:$RP" MONGODB_URI="mongodb://127.0.0.1:$MP/bench" LOG_LEVEL=warning
export JWT_SECRET=bench-secret PORT=$GP RATE_LIMIT_WRITES=0
"$BIN/sessions" 2>"$WORK/sessions.log" & SESSIONS=$!; pids+=($SESSIONS)
"$BIN/gateway" 2>"$WORK/gateway.log" & GATEWAY=$!; pids+=($GATEWAY)
GW="http://127.0.0.1:$GP"
TOKEN=$(JWT_SECRET=$JWT_SECRET "$BIN/uc-admin" token --sub 0123456789abcdef01234567)
AUTH="Authorization: Bearer $TOKEN"
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$GW/api/ping")" = 200 ]; do sleep 0.2; done
wrk -t2 -c64 -d2s -H "$AUTH" "$GW/api/ping" >/dev/null
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for c in ${CONNS-64 64 64}; do
g0=$(cpu $GATEWAY); s0=$(cpu $SESSIONS); r0=$(cpu $REDIS)
out=$(wrk -t$([ $c -lt 2 ] && echo 1 || echo 2) -c$c -d${D:-5}s --latency -H "$AUTH" "$GW/api/ping")
g1=$(cpu $GATEWAY); s1=$(cpu $SESSIONS); r1=$(cpu $REDIS)
n=$(echo "$out" | grep -o '[0-9]* requests in' | awk '{print $1}')
echo "$out" | grep -E 'Requests/sec|50%|99%|Non-2xx'
python3 -c "n=$n; print(f'c=$c gateway {($g1-$g0)*1e4/n:.1f}us sessions {($s1-$s0)*1e4/n:.1f}us redis {($r1-$r0)*1e4/n:.1f}us')"
done
if [ -n "${PERF:-}" ]; then
  wrk -t2 -c64 -d8s -H "$AUTH" "$GW/api/ping" >/dev/null & W=$!
  sleep 1; perf record -F 2999 -g -p $(eval echo \$${PERF}) -o /tmp/perf.data -- sleep 5 2>/dev/null >/dev/null; wait $W
fi
if [ -n "${CSW:-}" ]; then
  csw() { for t in /proc/$1/task/*; do echo "$(cat $t/comm) $(awk '/ctxt_switches/{s+=$2} END{print s}' $t/status)"; done | sort; }
  csw $GATEWAY > /tmp/g0; csw $SESSIONS > /tmp/s0
  out=$(wrk -t2 -c64 -d3s -H "$AUTH" "$GW/api/ping"); n=$(echo "$out" | grep -o '[0-9]* requests in' | awk '{print $1}')
  csw $GATEWAY > /tmp/g1; csw $SESSIONS > /tmp/s1
  echo "requests $n"; paste /tmp/g0 /tmp/g1 | awk -v n=$n '{a[$1]+=($4-$2)/n} END{for(k in a) printf "gateway %s %.3f\n", k, a[k]}'
  paste /tmp/s0 /tmp/s1 | awk -v n=$n '{a[$1]+=($4-$2)/n} END{for(k in a) printf "sessions %s %.3f\n", k, a[k]}'
fi
if [ -n "${HOLD:-}" ]; then
  grep VmHWM /proc/$GATEWAY/status
  kill -STOP $SESSIONS
  wrk -t2 -c$HOLD -d${HOLD_S:-4}s --timeout 30s -H "$AUTH" "$GW/api/ping" >/dev/null 2>&1 & W=$!
  sleep 3; curl -s "$GW/metrics" | awk '/^uc_gateway_in_flight/ {print "held", $2}'
  grep -E "VmHWM|VmRSS" /proc/$GATEWAY/status
  kill -CONT $SESSIONS; wait $W; grep -E "VmHWM" /proc/$GATEWAY/status
fi
if [ -n "${SMAPS:-}" ]; then
  awk '/^[0-9a-f]+-/ {name=$6} /^Rss:/ {rss[name]+=$2} END {for (n in rss) print rss[n], n}' /proc/$GATEWAY/smaps | sort -rn | head -${SMAPS_LINES:-15}
fi
