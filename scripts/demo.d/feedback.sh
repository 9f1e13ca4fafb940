#!/usr/bin/env bash
# Agents, feedback, analytics and search through a running gateway (`make run` first).
set -euo pipefail
cd "$(dirname "$0")/../.."
GW=${GW:-http://127.0.0.1:${PORT:-8080}}
BIN=${BIN:-.build/debug}
USER_TOKEN=$("$BIN/uc-admin" token)
OTHER_TOKEN=$("$BIN/uc-admin" token)

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }
show() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
call() { # TOKEN METHOD PATH [BODY]
  curl -sS -X "$2" "$GW$3" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
       ${4:+--data-binary "$4"}
}
pretty() { python3 -m json.tool --no-ensure-ascii; }

show "The agent catalog (seeded: the spec's einstein, assistant, code-reviewer)"
call "$USER_TOKEN" GET "/api/agents?limit=5" | python3 -c 'import json,sys
for a in json.load(sys.stdin)["items"]: print(a["id"], a["agentId"], "-", a["name"], a["stats"])'
show "The spec's example agent, every field"
call "$USER_TOKEN" GET /api/agents/einstein | pretty
AGENT=$(call "$USER_TOKEN" GET /api/agents/einstein | field '["id"]')

show "A session with Einstein and two messages (6 + 150 tokens)"
S=$(call "$USER_TOKEN" POST /api/chat/sessions "{\"name\":\"Relativity\",\"agentId\":\"$AGENT\"}" \
  | field '["sessionId"]')
call "$USER_TOKEN" POST "/api/chat/sessions/$S/messages" \
  '{"role":"user","content":"Explain relativity","tokens":6}' >/dev/null
M=$(call "$USER_TOKEN" POST "/api/chat/sessions/$S/messages" \
  '{"role":"assistant","content":"Ah, relativity! Let me explain...","tokens":150}' | field '["messageId"]')

show "Rate the message (5, accuracy), the conversation (4) and the agent (5, helpfulness)"
call "$USER_TOKEN" POST /api/chat/feedback "{\"conversationId\":\"$S\",\"messageId\":\"$M\",
  \"feedbackType\":\"message\",\"rating\":5,\"comment\":\"Very helpful explanation!\",
  \"category\":\"accuracy\",\"tags\":[\"helpful\",\"clear\"]}" | pretty
call "$USER_TOKEN" POST /api/chat/feedback \
  "{\"conversationId\":\"$S\",\"feedbackType\":\"conversation\",\"rating\":4}" | pretty
call "$USER_TOKEN" POST /api/chat/feedback "{\"conversationId\":\"$S\",\"agentId\":\"einstein\",
  \"feedbackType\":\"agent\",\"rating\":5,\"category\":\"helpfulness\"}" | pretty

show "Another user rates Einstein 3 (speed), then changes it to 2"
S2=$(call "$OTHER_TOKEN" POST /api/chat/sessions "{\"name\":\"Physics\",\"agentId\":\"$AGENT\"}" \
  | field '["sessionId"]')
call "$OTHER_TOKEN" POST /api/chat/feedback "{\"conversationId\":\"$S2\",\"agentId\":\"einstein\",
  \"feedbackType\":\"agent\",\"rating\":3,\"category\":\"speed\"}" >/dev/null
call "$OTHER_TOKEN" POST /api/chat/feedback "{\"conversationId\":\"$S2\",\"agentId\":\"einstein\",
  \"feedbackType\":\"agent\",\"rating\":2,\"category\":\"speed\"}" | pretty

show "Rating the first user's message as the other user: 404"
call "$OTHER_TOKEN" POST /api/chat/feedback \
  "{\"conversationId\":\"$S\",\"messageId\":\"$M\",\"feedbackType\":\"message\",\"rating\":1}" | pretty

show "The first user's feedback on the conversation"
call "$USER_TOKEN" GET "/api/chat/feedback?conversationId=$S" | pretty

show "The first user's stats (1 conversation, 2 messages, 156 tokens)"
call "$USER_TOKEN" GET /api/chat/stats | pretty

show "Einstein's metrics"
call "$USER_TOKEN" GET /api/agents/einstein/metrics | pretty

show "Einstein's ratings (on a fresh database: 5 and 2, so 3.5 from 2 ratings)"
call "$USER_TOKEN" GET /api/agents/einstein/ratings | pretty

show "Einstein's stats, kept by the rating events"
sleep 1
call "$USER_TOKEN" GET /api/agents/einstein | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"])'

show "Active sessions with agent names"
call "$USER_TOKEN" GET "/api/chat/sessions?view=active" | pretty

show "Search the first user's messages for 'relativity'"
call "$USER_TOKEN" GET "/api/chat/search?q=relativity" | pretty
