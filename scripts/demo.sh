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

# --- Canvas: the spec's "Modern SaaS Landing Page", generated, versioned and exported ---
wait_history() { # HISTORY_ID: poll until it leaves pending, then print it
  for _ in $(seq 200); do
    [ "$(call GET "/api/chat/canvas/history/$1" | field '["status"]')" != pending ] && break
    sleep 0.1
  done
  call GET "/api/chat/canvas/history/$1" | pretty
}
headline() { # PROJECT_ID: the <h1> of its index.html
  local id
  id=$(call GET "/api/chat/canvas/projects/$1/files" | python3 -c \
    'import json,sys; print([f["fileId"] for f in json.load(sys.stdin)["items"] if f["path"]=="/index.html"][0])')
  call GET "/api/chat/canvas/files/$id" | python3 -c \
    'import json,re,sys; print(re.search(r"<h1[^>]*>(.*?)</h1>", json.load(sys.stdin)["content"]).group(1))'
}

show "Canvas: create the Modern SaaS Landing Page project"
project=$(call POST /api/chat/canvas/projects '{"name":"Modern SaaS Landing Page",
  "description":"A responsive landing page for a SaaS product","template":"SaaS Landing",
  "category":"Landing","settings":{"theme":"dark","responsive":true,"animations":true}}')
echo "$project" | pretty
P=$(echo "$project" | field '["projectId"]')

show "Generate it with the default provider (offline template): 202 at once, then completed"
generation=$(call POST "/api/chat/canvas/projects/$P/generate" \
  '{"prompt":"Analytics your whole team understands. A modern SaaS landing page for Orbit."}')
echo "$generation" | pretty
H1=$(echo "$generation" | field '["historyId"]')
wait_history "$H1"

show "List the files (no content), read each one and check its size and SHA-256"
files=$(call GET "/api/chat/canvas/projects/$P/files")
echo "$files" | pretty
for id in $(echo "$files" | python3 -c \
    'import json,sys; print(" ".join(f["fileId"] for f in json.load(sys.stdin)["items"]))'); do
  call GET "/api/chat/canvas/files/$id" | python3 -c '
import hashlib, json, sys
f = json.load(sys.stdin)
data = f["content"].encode()
ok = hashlib.sha256(data).hexdigest() == f["checksum"] and len(data) == f["size"]
print("{:<12} {:>6} bytes  sha256 {}...  {}".format(
    f["path"], f["size"], f["checksum"][:16], "ok" if ok else "MISMATCH"))'
done

show "Export the project as a zip (Content-Type: application/zip)"
curl -sS -D - -o /tmp/uc-canvas-demo.zip "$GW/api/chat/canvas/projects/$P/export" \
  -H "Authorization: Bearer $TOKEN" | grep -i '^content-'
python3 -m zipfile -l /tmp/uc-canvas-demo.zip

show "Generate again with another prompt"
H2=$(call POST "/api/chat/canvas/projects/$P/generate" \
  '{"prompt":"Ship dashboards in minutes, not weeks."}' | field '["historyId"]')
wait_history "$H2"
echo "headline now: $(headline "$P")"

show "Roll back to the state after the first generation"
call POST "/api/chat/canvas/projects/$P/rollback" "{\"historyId\":\"$H1\"}" | pretty
echo "headline now: $(headline "$P")"

show "The project's generation history, newest first"
call GET "/api/chat/canvas/projects/$P/history" | pretty

if [ -x scripts/demo.d/run-all.sh ]; then scripts/demo.d/run-all.sh; fi
