#!/usr/bin/env bash
# Replays the spec's example conversation through a running gateway (`make run` first).
set -euo pipefail
cd "$(dirname "$0")/.."
GW=${GW:-http://127.0.0.1:${PORT:-8080}}
BIN=${BIN:-.build/debug}
TOKEN=${TOKEN:-$("$BIN/uc-admin" token)}

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }
show() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
call() { # METHOD PATH [BODY]
  curl -sS -X "$1" "$GW$2" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
       ${3:+--data-binary "$3"}
}
pretty() { python3 -m json.tool --no-ensure-ascii; }

show "Create the Welcome Conversation"
created=$(call POST /api/chat/sessions '{"name":"Welcome Conversation",
  "description":"Initial conversation with AI assistant","tags":["welcome","general"],
  "settings":{"temperature":0.7,"maxTokens":2000,"mode":"balanced","provider":"mistral"}}')
echo "$created" | pretty
S=$(echo "$created" | field '["sessionId"]')

show "Append the two example messages"
call POST "/api/chat/sessions/$S/messages" \
  '{"role":"user","content":"Hello, can you help me?","tokens":6}' | pretty
call POST "/api/chat/sessions/$S/messages" \
  '{"role":"assistant","content":"Of course! I'"'"'d be happy to help. What do you need assistance with?","tokens":150}' | pretty

show "List sessions (stats: 2 messages, 156 tokens)"
call GET /api/chat/sessions | pretty

show "Rename"
call PUT "/api/chat/sessions/$S" '{"name":"Welcome, renamed","settings":{"temperature":0.4}}' | pretty

show "Page messages, one at a time"
page=$(call GET "/api/chat/sessions/$S/messages?limit=1")
echo "$page" | pretty
cursor=$(echo "$page" | field '["nextCursor"]')
call GET "/api/chat/sessions/$S/messages?limit=1&cursor=$cursor" | pretty

show "Delete"
call DELETE "/api/chat/sessions/$S" | pretty
show "Gone (404)"
call GET "/api/chat/sessions/$S" | pretty

if [ -x scripts/demo.d/run-all.sh ]; then scripts/demo.d/run-all.sh; fi
