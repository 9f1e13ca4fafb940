#!/usr/bin/env bash
# make test (after swift test): Schemathesis against the live system, checked by openapi.json.
# Starts redis-server, the MongoDB stand-in, every service and the gateway on free loopback
# ports, seeds one user's resources so that id routes reach real data, then runs a bounded,
# reproducible Schemathesis run (fixed seed, fixed examples per operation). Reports:
#   .build/schemathesis-report.txt   the console output
#   .build/schemathesis-junit.xml    JUnit XML, one test case per operation
# Exits non-zero on any 5xx, or any status, media type, header or body the document does not
# describe for the operation.
# SCHEMATHESIS_EXAMPLES (default 12) and SCHEMATHESIS_SEED (default 20261203) tune the run;
# SCHEMATHESIS_EXTRA adds options (e.g. `--include-path-regex /api/chat/canvas`);
# CONTRACT_HOLD=FILE writes the address, tokens and ids to FILE and keeps the system up.
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-12}
SEED=${SCHEMATHESIS_SEED:-20261203}
BIN=${UC_BIN_DIR:-.build/debug}
REPORT=.build/schemathesis-report.txt
JUNIT=.build/schemathesis-junit.xml
[ -x .venv/bin/schemathesis ] || scripts/install-deps.sh
EXTRA=(${SCHEMATHESIS_EXTRA:-})
CHECKS=not_a_server_error,response_schema_conformance,status_code_conformance
CHECKS+=,content_type_conformance,response_headers_conformance,negative_data_rejection
for exe in gateway sessions settings feedback canvas uc-admin; do
  [ -x "$BIN/$exe" ] || swift build
done

WORK=$(mktemp -d /tmp/uc-contract.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(free_port); MP=$(free_port); GP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" &
pids+=($!)
mkdir -p "$WORK/mongo"
.venv/bin/python scripts/standin.py --host 127.0.0.1 -p "$MP" --data-dir "$WORK/mongo" \
  --log-file "$WORK/mongo/nx.log" --pid-file "$WORK/mongo/nx.pid" >/dev/null 2>&1 &
pids+=($!)
until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.1; done
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$MP") 2>/dev/null && break; sleep 0.1; done

export REDIS_URL="redis://127.0.0.1:$RP" MONGODB_URI="mongodb://127.0.0.1:$MP/contract"
export JWT_SECRET=contract-test-secret PORT=$GP HOST=127.0.0.1 LOG_LEVEL=warning
export REQUEST_TIMEOUT_MS=10000 BCRYPT_COST=4 RATE_LIMIT_WRITES=0 RATE_LIMIT_ACCOUNTS=0
for service in sessions settings feedback canvas; do
  CONSUMER_NAME="$service-contract" "$BIN/$service" 2>"$WORK/$service.log" &
  pids+=($!)
done
"$BIN/gateway" 2>"$WORK/gateway.log" &
pids+=($!)
GW="http://127.0.0.1:$GP"
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$GW/readyz")" = 200 ] && break
  sleep 0.1
done

# One registered user (so /api/me has an account) whose token uc-admin mints, and an admin
# token for the agent catalog's writes.
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
USER_ID=$(curl -sf -X POST "$GW/api/auth/register" -H 'Content-Type: application/json' \
  -d '{"email":"contract@example.com","name":"Contract Test","password":"contract password"}' \
  | field '["user"]["userId"]')
TOKEN=$("$BIN/uc-admin" token --sub "$USER_ID" --ttl 3600)
ADMIN=$("$BIN/uc-admin" token --sub "$USER_ID" --role admin --ttl 3600)
call() { # TOKEN METHOD PATH [BODY] -> the JSON answer
  curl -sf -X "$2" "$GW$3" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    ${4:+--data-binary "$4"}
}
S=$(call "$TOKEN" POST /api/chat/sessions '{"name":"contract"}' | field '["sessionId"]')
S_DEL=$(call "$TOKEN" POST /api/chat/sessions '{"name":"to delete"}' | field '["sessionId"]')
M=$(call "$TOKEN" POST "/api/chat/sessions/$S/messages" '{"role":"user","content":"hello contract"}' \
  | field '["messageId"]')
call "$TOKEN" POST /api/chat/feedback \
  "{\"conversationId\":\"$S\",\"feedbackType\":\"message\",\"messageId\":\"$M\",\"rating\":5}" >/dev/null
P=$(call "$TOKEN" POST /api/chat/canvas/projects '{"name":"contract","template":"SaaS Landing","category":"landing"}' \
  | field '["projectId"]')
P_DEL=$(call "$TOKEN" POST /api/chat/canvas/projects '{"name":"to delete","template":"Blog","category":"blog"}' \
  | field '["projectId"]')
F=$(call "$TOKEN" POST /api/chat/canvas/files "{\"projectId\":\"$P\",\"path\":\"notes/a.md\",\"content\":\"a\"}" \
  | field '["fileId"]')
F_DEL=$(call "$TOKEN" POST /api/chat/canvas/files "{\"projectId\":\"$P\",\"path\":\"notes/b.md\",\"content\":\"b\"}" \
  | field '["fileId"]')
H=$(call "$TOKEN" POST "/api/chat/canvas/projects/$P/generate" '{"prompt":"A landing page."}' \
  | field '["historyId"]')
for _ in $(seq 100); do
  [ "$(call "$TOKEN" GET "/api/chat/canvas/history/$H" | field '["status"]')" != pending ] && break
  sleep 0.1
done
QA=$(call "$TOKEN" POST /api/chat/quick-actions '{"label":"Mine","prompt":"Do it: ","category":"General","icon":"StarIcon"}' \
  | field '["actionId"]')
QA_DEL=$(call "$TOKEN" POST /api/chat/quick-actions '{"label":"Gone","prompt":"Bye: ","category":"General","icon":"StarIcon"}' \
  | field '["actionId"]')
call "$ADMIN" POST /api/agents '{"agentId":"contract-agent","name":"Contract Agent"}' >/dev/null
call "$ADMIN" POST /api/agents '{"agentId":"contract-gone","name":"To Delete"}' >/dev/null

# Each id route gets a real id of the caller (deletes get their own); the agent catalog is
# driven with the admin token.
op() { # METHOD PATH NAME VALUE [HEADER]
  printf '\n[[operations]]\ninclude-name = "%s %s"\nparameters = { "path.%s" = "%s" }\n' \
    "$1" "$2" "$3" "$4"
  [ -z "${5:-}" ] || printf 'headers = { Authorization = "Bearer %s" }\n' "$5"
}
CONFIG="$WORK/schemathesis.toml"
{
  printf 'headers = { Authorization = "Bearer %s" }\nrequest-timeout = 15.0\n' "$TOKEN"
  printf 'generation.max-examples = %s\ncache.enabled = false\n' "$EXAMPLES"
  for method in GET PUT; do op "$method" "/api/chat/sessions/{id}" id "$S"; done
  op DELETE "/api/chat/sessions/{id}" id "$S_DEL"
  for method in GET POST; do op "$method" "/api/chat/sessions/{id}/messages" id "$S"; done
  for method in GET PUT; do op "$method" "/api/agents/{agentId}" agentId contract-agent "$ADMIN"; done
  op DELETE "/api/agents/{agentId}" agentId contract-gone "$ADMIN"
  op GET "/api/agents/{agentId}/metrics" agentId einstein
  op GET "/api/agents/{agentId}/ratings" agentId einstein
  printf '\n[[operations]]\ninclude-name = "POST /api/agents"\nheaders = { Authorization = "Bearer %s" }\n' "$ADMIN"
  for method in PUT POST; do
    suffix=$([ "$method" = POST ] && echo /use || true)
    op "$method" "/api/chat/quick-actions/{actionId}$suffix" actionId "$QA"
  done
  op DELETE "/api/chat/quick-actions/{actionId}" actionId "$QA_DEL"
  for method in GET PUT; do op "$method" "/api/chat/canvas/projects/{id}" id "$P"; done
  op DELETE "/api/chat/canvas/projects/{id}" id "$P_DEL"
  for sub in files export history; do op GET "/api/chat/canvas/projects/{id}/$sub" id "$P"; done
  for sub in generate rollback; do op POST "/api/chat/canvas/projects/{id}/$sub" id "$P"; done
  for method in GET PUT; do op "$method" "/api/chat/canvas/files/{id}" id "$F"; done
  op DELETE "/api/chat/canvas/files/{id}" id "$F_DEL"
  op GET "/api/chat/canvas/history/{id}" id "$H"
} >"$CONFIG"

if [ -n "${CONTRACT_HOLD:-}" ]; then  # debugging: keep the seeded system up, run nothing
  printf 'GW=%s\nTOKEN=%s\nADMIN=%s\nS=%s\nP=%s\nF=%s\nH=%s\nQA=%s\n' \
    "$GW" "$TOKEN" "$ADMIN" "$S" "$P" "$F" "$H" "$QA" >"$CONTRACT_HOLD"
  sleep infinity & pids+=($!); wait $! || true; exit 0
fi
echo "schemathesis: $EXAMPLES examples per operation, seed $SEED, against $GW"
status=0
# From the scratch directory, so that Hypothesis leaves nothing in the work tree.
ROOT=$PWD
(cd "$WORK" && "$ROOT/.venv/bin/schemathesis" --config-file "$CONFIG" run "$ROOT/openapi.json" --url "$GW" \
  --checks "$CHECKS" \
  --phases examples,coverage,fuzzing --seed "$SEED" --max-examples "$EXAMPLES" --workers 2 \
  --generation-database none --no-color --report junit --report-junit-path "$ROOT/$JUNIT" \
  "${EXTRA[@]}") >"$REPORT" 2>&1 || status=$?
tail -n 40 "$REPORT"
if [ "$status" -ne 0 ]; then
  echo "schemathesis found problems (exit $status): see $REPORT and $JUNIT" >&2
  for log in "$WORK"/*.log; do echo "== $log"; tail -n 5 "$log"; done >&2
fi
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "process $p died" >&2; status=1; }; done
exit "$status"
