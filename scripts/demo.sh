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

post() { # PATH BODY, without a token: the /api/auth routes
  curl -sS -X POST "$GW$1" -H 'Content-Type: application/json' --data-binary "$2"
}

show "Register an account (a new email each run)"
EMAIL="demo-$(date +%s)-$$@example.com"
PASSWORD="correct horse battery staple"
post /api/auth/register "{\"email\":\"$EMAIL\",\"name\":\"Demo User\",\"password\":\"$PASSWORD\"}" | pretty

show "Log in: a 15-minute access token and a refresh token; the rest of the demo uses them"
login=$(post /api/auth/login "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
echo "$login" | pretty
TOKEN=$(echo "$login" | field '["accessToken"]')
REFRESH=$(echo "$login" | field '["refreshToken"]')

show "Refresh: a new pair; the old refresh token is spent"
refreshed=$(post /api/auth/refresh "{\"refreshToken\":\"$REFRESH\"}")
echo "$refreshed" | pretty
TOKEN=$(echo "$refreshed" | field '["accessToken"]')
show "The spent refresh token again (401, and its whole family is revoked)"
post /api/auth/refresh "{\"refreshToken\":\"$REFRESH\"}" | pretty
show "So log in once more"
TOKEN=$(post /api/auth/login "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | field '["accessToken"]')

show "Profile (never the password hash), then a partial update"
call GET /api/me | pretty
call PUT /api/me '{"bio":"Trying Universal Chat","preferences":{"theme":"dark"}}' | pretty

show "Chat settings: the defaults, then a partial update that merges"
call GET /api/chat/settings | pretty
call PUT /api/chat/settings '{"theme":"dark","temperature":0.4,"maxTokens":1500,
  "notifications":{"systemUpdates":true},"quickActions":{"favorites":["explain","code"]}}' | pretty

show "Quick actions: the seeded defaults, a new one of our own, one use"
call GET "/api/chat/quick-actions?limit=3" | pretty
action=$(call POST /api/chat/quick-actions '{"label":"Haiku","prompt":"Write a haiku about: ",
  "category":"Creative","icon":"SparklesIcon"}')
echo "$action" | pretty
A=$(echo "$action" | field '["actionId"]')
call POST "/api/chat/quick-actions/$A/use" | pretty

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
