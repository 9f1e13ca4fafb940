#!/usr/bin/env bash
# Agents answer: asks the General Assistant a question, once as JSON and once streamed as
# Server-Sent Events (curl -N). Without provider keys the offline provider answers.
set -euo pipefail
cd "$(dirname "$0")/../.."
GW=${GW:-http://127.0.0.1:${PORT:-8080}}
BIN=${BIN:-.build/debug}
TOKEN=$("$BIN/uc-admin" token)

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }
show() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
call() { # METHOD PATH [BODY]
  curl -sS -X "$1" "$GW$2" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
       ${3:+--data-binary "$3"}
}

AGENT=$(call GET /api/agents/assistant | field '["id"]')
S=$(call POST /api/chat/sessions "{\"name\":\"Ask the assistant\",\"agentId\":\"$AGENT\"}" \
  | field '["sessionId"]')

show "Ask with \"respond\": true: the message and the agent's reply, with who answered and the cost"
call POST "/api/chat/sessions/$S/messages" \
  '{"role":"user","content":"What is the speed of light?","respond":true}' | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = d["reply"]; m = r["metadata"]
print("you:      ", d["message"]["content"])
print("assistant:", r["content"])
print("answered by %s/%s, %d tokens in, %d out (%s), %d ms" % (m["provider"], m["model"],
      m["tokensIn"], m["tokensOut"], m["tokenCount"], m["durationMs"]))
for a in m["attempts"]:
    print("  chain: %-12s %-24s %s %s"
          % (a["provider"], a["model"], a["outcome"], a.get("reason", "")))'

show "The same, streamed (Accept: text/event-stream, curl -N): the raw events, shortened"
curl -sS -N -X POST "$GW/api/chat/sessions/$S/messages" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -H 'Accept: text/event-stream' \
  --data-binary '{"role":"user","content":"And how far is the moon?","respond":true}' \
  | awk 'NR <= 12 { print; fflush(); next }
         /^event: delta/ { deltas++ }
         /^event: done/ { done = 1; print "... " deltas " more delta events ..."; print; next }
         done && /^data: / { print substr($0, 1, 160) "..."; done = 0 }'

show "Streamed again, the text printed as it arrives"
curl -sS -N -X POST "$GW/api/chat/sessions/$S/messages" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -H 'Accept: text/event-stream' \
  --data-binary '{"role":"user","content":"Tell me a fact about Mars.","respond":true}' \
  | python3 -u -c '
import json, sys
event = None
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("event: "):
        event = line[7:]
    elif line.startswith("data: "):
        data = json.loads(line[6:])
        if event == "delta":
            sys.stdout.write(data["text"]); sys.stdout.flush()
        elif event == "reset":
            print("\n[%s failed; the next provider starts over]" % data["provider"])
        elif event == "done":
            print("\n[stored as %s by %s]" % (data["reply"]["messageId"],
                  data["reply"]["metadata"]["provider"]))
        elif event == "error":
            print("\n[error %s: %s]" % (data["status"], data["error"]["message"]))'

show "The conversation as stored (6 messages)"
call GET "/api/chat/sessions/$S/messages" | python3 -c '
import json, sys
for m in json.load(sys.stdin)["items"]:
    print("%-9s %s" % (m["role"], m["content"][:90] + ("…" if len(m["content"]) > 90 else "")))'
