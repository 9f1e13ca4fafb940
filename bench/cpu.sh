#!/usr/bin/env bash
# CPU per request on GET /api/ping: starts redis-server, the stand-in, sessions and the gateway
# (release build), runs wrk and prints each process's CPU time divided by the requests served.
#   CONNS="1 64 64"  connection counts, one wrk run each (default "64 64 64"); D=seconds per run
#   PERF=GATEWAY|SESSIONS  also record a perf profile of that process to /tmp/perf.data
#   ROUTE=create  load POST /api/chat/sessions instead (and print the stand-in's CPU too)
#   IDLE_CPU=1  first the CPU each process uses per second with no load
#   IDLE=N  hold N idle connections open to the gateway during the runs (HTTP_CONNECTION_TIMEOUT_S
#           is raised so that they stay)
#   CSW=1  context switches per request, by thread name
#   SYSCALLS=1  system calls per request of the gateway, the service and Redis (perf stat)
#   HOLD=2000 [HOLD_S=6]  hold that many requests with the service stopped, then let them run;
#                         prints the gateway's peak RSS
#   SMAPS=1 [SMAPS_LINES=15]  the gateway's resident memory by mapping, largest first
#   REDIS_STATS=1  Redis's calls per request and microseconds per call, by command, for the runs
#   CALLGRIND=GATEWAY|SESSIONS  run that process under valgrind's callgrind (use CONNS=8 D=10):
#                               prints its instructions per request and the costliest functions;
#                               the profile stays in /tmp/callgrind.out for callgrind_annotate
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && command -v wrk >/dev/null || scripts/install-deps.sh >/dev/null
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
.venv/bin/python scripts/standin.py --host 127.0.0.1 -p "$MP" --data-dir "$WORK/mongo" --log-file "$WORK/mongo/nx.log" --pid-file "$WORK/mongo/nx.pid" >/dev/null 2>&1 & MONGO=$!; pids+=($MONGO)
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.1; done
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$MP") 2>/dev/null && break; sleep 0.1; done
export REDIS_URL="redis://127.0.0.1:$RP" MONGODB_URI="mongodb://127.0.0.1:$MP/bench" LOG_LEVEL=warning
export JWT_SECRET=bench-secret PORT=$GP RATE_LIMIT_WRITES=0 HTTP_CONNECTION_TIMEOUT_S=600
callgrind=(valgrind --tool=callgrind --callgrind-out-file=/tmp/callgrind.out)
wrap_sessions=(); wrap_gateway=()
[ "${CALLGRIND:-}" = SESSIONS ] && wrap_sessions=("${callgrind[@]}")
[ "${CALLGRIND:-}" = GATEWAY ] && wrap_gateway=("${callgrind[@]}")
"${wrap_sessions[@]}" "$BIN/sessions" 2>"$WORK/sessions.log" & SESSIONS=$!; pids+=($SESSIONS)
"${wrap_gateway[@]}" "$BIN/gateway" 2>"$WORK/gateway.log" & GATEWAY=$!; pids+=($GATEWAY)
GW="http://127.0.0.1:$GP"
TOKEN=$(JWT_SECRET=$JWT_SECRET "$BIN/uc-admin" token --sub 0123456789abcdef01234567)
AUTH="Authorization: Bearer $TOKEN"
for try in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$GW/api/ping")" = 200 ] && break
  [ "$try" = 300 ] && { echo "no answer from the gateway in 60 s" >&2; tail "$WORK"/*.log >&2; exit 1; }
  sleep 0.2
done
wrk -t2 -c64 -d2s -H "$AUTH" "$GW/api/ping" >/dev/null
if [ -n "${IDLE:-}" ]; then
  python3 -c "
import socket, time
held = [socket.create_connection(('127.0.0.1', $GP)) for _ in range($IDLE)]
time.sleep(600)" & pids+=($!)
  sleep 2
fi
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
if [ -n "${IDLE_CPU:-}" ]; then
  g0=$(cpu $GATEWAY); s0=$(cpu $SESSIONS); r0=$(cpu $REDIS); m0=$(cpu $MONGO); sleep 5
  g1=$(cpu $GATEWAY); s1=$(cpu $SESSIONS); r1=$(cpu $REDIS); m1=$(cpu $MONGO)
  echo "idle CPU per second: gateway $(((g1-g0)*2))ms sessions $(((s1-s0)*2))ms redis $(((r1-r0)*2))ms stand-in $(((m1-m0)*2))ms"
fi
LOAD=(-H "$AUTH" "$GW/api/ping")
if [ "${ROUTE:-}" = create ]; then
  echo '{"name":"bench session"}' > "$WORK/create.json"
  export TOKEN BODY_FILE="$WORK/create.json"
  LOAD=(-s bench/post.lua "$GW/api/chat/sessions")
fi
[ -n "${REDIS_STATS:-}" ] && redis-cli -p "$RP" config resetstat >/dev/null
served=0
for c in ${CONNS-64 64 64}; do
g0=$(cpu $GATEWAY); s0=$(cpu $SESSIONS); r0=$(cpu $REDIS); m0=$(cpu $MONGO)
out=$(wrk -t$([ $c -lt 2 ] && echo 1 || echo 2) -c$c -d${D:-5}s --latency "${LOAD[@]}")
g1=$(cpu $GATEWAY); s1=$(cpu $SESSIONS); r1=$(cpu $REDIS); m1=$(cpu $MONGO)
n=$(echo "$out" | grep -o '[0-9]* requests in' | awk '{print $1}')
echo "$out" | grep -E 'Requests/sec|50%|99%|Non-2xx'
served=$((served + n))
python3 -c "n=$n; print(f'c=$c gateway {($g1-$g0)*1e4/n:.1f}us sessions {($s1-$s0)*1e4/n:.1f}us redis {($r1-$r0)*1e4/n:.1f}us stand-in {($m1-$m0)*1e4/n:.1f}us')"
done
if [ -n "${REDIS_STATS:-}" ]; then
  redis-cli -p "$RP" info commandstats | tr -d '\r' | awk -F'[:,=]' -v n="$served" \
    '/^cmdstat_/ {sub(/cmdstat_/, "", $1); printf "redis %-12s %.3f calls per request, %.2f us per call\n", $1, $3 / n, $7}'
fi
if [ -n "${PERF:-}" ]; then
  wrk -t2 -c64 -d8s "${LOAD[@]}" >/dev/null & W=$!
  sleep 1; perf record -F 2999 -g -p $(eval echo \$${PERF}) -o /tmp/perf.data -- sleep 5 2>/dev/null >/dev/null; wait $W
fi
if [ -n "${SYSCALLS:-}" ]; then
  events=raw_syscalls:sys_enter
  for call in read write recvfrom sendto sendmsg epoll_wait epoll_ctl futex madvise munmap mmap mprotect brk accept4 close; do
    events="$events,syscalls:sys_enter_$call"
  done
  for name in GATEWAY SESSIONS REDIS; do
    perf stat -e "$events" -x, -o "$WORK/$name.sys" -p $(eval echo \$${name}) -- sleep 3 &
  done
  out=$(wrk -t2 -c64 -d4s "${LOAD[@]}"); sleep 0.5
  n=$(echo "$out" | grep -o '[0-9]* requests in' | awk '{print $1}')
  for name in GATEWAY SESSIONS REDIS; do
    awk -F, -v n="$n" -v who="$name" '$1 > 0 && /sys_enter/ {sub(/.*sys_enter_?/, "", $3); line = line sprintf(" %s %.2f", ($3 == "" ? "all" : $3), $1 / (n * 3 / 4))} END {print who " syscalls per request:" line}' "$WORK/$name.sys"
  done
fi
if [ -n "${CSW:-}" ]; then
  csw() { for t in /proc/$1/task/*; do echo "$(cat $t/comm) $(awk '/ctxt_switches/{s+=$2} END{print s}' $t/status)"; done | sort; }
  csw $GATEWAY > /tmp/g0; csw $SESSIONS > /tmp/s0
  out=$(wrk -t2 -c64 -d3s "${LOAD[@]}"); n=$(echo "$out" | grep -o '[0-9]* requests in' | awk '{print $1}')
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
echo "peak RSS: gateway $(awk '/VmHWM/ {print $2}' /proc/$GATEWAY/status) kB," \
  "sessions $(awk '/VmHWM/ {print $2}' /proc/$SESSIONS/status) kB"
if [ -n "${SMAPS:-}" ]; then
  awk '/^[0-9a-f]+-/ {name=$6} /^Rss:/ {rss[name]+=$2} END {for (n in rss) print rss[n], n}' /proc/$GATEWAY/smaps | sort -rn | head -${SMAPS_LINES:-15}
fi
if [ -n "${CALLGRIND:-}" ]; then
  # callgrind writes its profile when the process ends: stop it with SIGTERM, not the kill -9
  # of the clean-up.
  kill -TERM $(eval echo \$${CALLGRIND}); wait $(eval echo \$${CALLGRIND}) 2>/dev/null || true
  total=$(callgrind_annotate /tmp/callgrind.out 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$CALLGRIND: $((total / served)) instructions per request ($served requests, start-up included)"
  callgrind_annotate /tmp/callgrind.out 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -${CALLGRIND_LINES:-25}
fi
