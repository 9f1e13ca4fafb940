#!/usr/bin/env python3
"""A small stand-in for model providers, for the integration tests.

Speaks the OpenAI chat completions protocol (POST /v1/chat/completions, bearer key) and the
Anthropic messages API (POST /v1/messages, x-api-key + anthropic-version). What it answers is
chosen by the request's "model": the part before the first ":" names the behaviour, the whole
name is the key its requests are counted under (so each test can use its own key):

  good        a valid answer holding a site in the documented {"files": [...]} shape
  fenced      the same inside a ```json fence
  malformed   HTTP 200 whose body is not JSON (streamed: an event whose data is not JSON)
  badshape    a valid protocol answer whose text is JSON without "files"
  badpath     files with a path that escapes the project ("../../etc/passwd")
  notjson     a valid protocol answer whose text is prose
  truncated   the text cut off, finish reason "length" / stop reason "max_tokens"
  slow        sleeps SLOW_SECONDS (3, or the number after "slow-") before a good answer
  429once     429 (Retry-After: 0) the first time, then good
  429always   429 with Retry-After: 1 every time
  429long     429 with Retry-After: 120
  500once     500 the first time, then good
  500always   503 every time
  400         400 with an error message (not to be retried)

Chat replies: a model with a ":chat" part after the behaviour ("good:chat:k1",
"429once:chat:k2") answers a short text instead of a site: 'Fake <protocol> answer to "<last
user message>" ...'. Requests with "stream": true get Server-Sent Events in the protocol's
format (OpenAI chunks ending with "data: [DONE]", usage when stream_options.include_usage;
Anthropic message_start ... message_stop). Chat-only behaviours:

  nousage     no usage figures in the answer
  drip        streams word by word, DRIP_MS (150, or the number after "drip-") apart; without
              streaming, waits as long before answering
  cutoff      streams two pieces, then drops the connection (no end of stream); without
              streaming, a body shorter than its Content-Length

GET /_count?key=MODEL answers {"count": n}; GET /_requests?key=MODEL answers the bodies and
the auth headers received. Usage: fake_model_server.py --port N [--key KEY]
"""

import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
REQUESTS = {}
KEY = ""


def site_files(prompt_text):
    match = re.search(r"^Request: (.*)$", prompt_text, re.MULTILINE)
    headline = (match.group(1) if match else "Hello from the fake model").strip()
    safe = headline.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    html = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>Fake model site</title>\n<link rel=\"stylesheet\" href=\"styles.css\">\n"
        "</head>\n<body>\n<h1 id=\"headline\">" + safe + "</h1>\n"
        "<script src=\"app.js\"></script>\n</body>\n</html>\n"
    )
    return {
        "files": [
            {"path": "index.html", "type": "html", "content": html,
             "metadata": {"language": "html", "framework": "vanilla", "dependencies": []}},
            {"path": "styles.css", "type": "css", "content": "body { font-family: sans-serif; }\n"},
            {"path": "app.js", "content": "document.title = 'ready';\n"},
            {"path": "README.md", "type": "other", "content": "# Fake model site\n\n" + headline + "\n"},
        ]
    }


def answer_text(behaviour, prompt_text):
    if behaviour == "badshape":
        return json.dumps({"pages": []}), "stop"
    if behaviour == "badpath":
        return json.dumps({"files": [{"path": "../../etc/passwd", "content": "x"}]}), "stop"
    if behaviour == "notjson":
        return "Sure! Here is your site: <html><body>Hi</body></html>", "stop"
    text = json.dumps(site_files(prompt_text))
    if behaviour == "truncated":
        return text[: len(text) // 2], "length"
    if behaviour == "fenced":
        return "```json\n" + text + "\n```", "stop"
    return text, "stop"


def chat_text(protocol, request):
    last = ""
    for message in request.get("messages", []):
        if message.get("role") == "user":
            last = message.get("content", "")
    return ("Fake " + protocol + " answer to \"" + last + "\". It has several words, so that "
            "it streams in more than one piece.")


def pieces(text):
    """Word by word, each with the spaces before it; joined they give the text back."""
    return re.findall(r"\s*\S+", text) or [text]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, payload, headers=None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        key = parse_qs(url.query).get("key", [""])[0]
        with LOCK:
            seen = list(REQUESTS.get(key, []))
        if url.path == "/_count":
            return self.send_json(200, {"count": len(seen)})
        if url.path == "/_requests":
            return self.send_json(200, {"requests": seen})
        return self.send_json(404, {"error": {"message": "no such path"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = urlparse(self.path).path
        anthropic = path == "/v1/messages"
        if path not in ("/v1/chat/completions", "/v1/messages"):
            return self.send_json(404, {"error": {"message": "no such path " + path}})
        try:
            request = json.loads(raw)
        except ValueError:
            return self.send_json(400, {"error": {"message": "request body is not JSON"}})
        model = str(request.get("model", ""))
        auth = self.headers.get("x-api-key") if anthropic else self.headers.get("Authorization")
        with LOCK:
            entries = REQUESTS.setdefault(model, [])
            entries.append({"path": path, "auth": auth,
                            "version": self.headers.get("anthropic-version"), "body": request})
            count = len(entries)

        expected = KEY if anthropic else ("Bearer " + KEY if KEY else None)
        if KEY and auth != expected:
            return self.send_json(401, {"error": {"message": "invalid api key"}})
        if anthropic and not self.headers.get("anthropic-version"):
            return self.send_json(400, {"error": {"message": "anthropic-version header is required"}})

        behaviour = model.split(":")[0]
        if behaviour.startswith("slow"):
            seconds = float(behaviour[5:]) if behaviour.startswith("slow-") else 3.0
            time.sleep(seconds)
        if behaviour == "429once" and count == 1 or behaviour == "429always":
            return self.send_json(429, {"error": {"message": "slow down"}},
                                  {"Retry-After": "0" if behaviour == "429once" else "1"})
        if behaviour == "429long":
            return self.send_json(429, {"error": {"message": "come back later"}}, {"Retry-After": "120"})
        if behaviour == "500once" and count == 1:
            return self.send_json(500, {"error": {"message": "internal error"}})
        if behaviour == "500always":
            return self.send_json(503, {"error": {"message": "overloaded"}})
        if behaviour == "400":
            return self.send_json(400, {"error": {"message": "max_tokens is too large"}})
        if behaviour == "malformed":
            streamed = bool(request.get("stream"))
            body = b"data: {this is not json\n\n" if streamed else b"{this is not json"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream" if streamed else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return

        if ":chat" in model:
            return self.chat(behaviour, model, request, anthropic)

        if anthropic:
            prompt_text = "\n".join(m.get("content", "") for m in request.get("messages", []))
        else:
            prompt_text = "\n".join(m.get("content", "") for m in request.get("messages", [])
                                    if m.get("role") == "user")
        text, finish = answer_text(behaviour, prompt_text)
        if anthropic:
            return self.send_json(200, {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "max_tokens" if finish == "length" else "end_turn",
                "usage": {"input_tokens": 111, "output_tokens": 222},
            })
        return self.send_json(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33},
        })


    def chat(self, behaviour, model, request, anthropic):
        protocol = "anthropic" if anthropic else "openai"
        text = chat_text(protocol, request)
        usage = behaviour != "nousage"
        drip = 0.0
        if behaviour.startswith("drip"):
            drip = float(behaviour[5:]) / 1000 if behaviour.startswith("drip-") else 0.15
        if not request.get("stream"):
            if drip:
                time.sleep(drip * len(pieces(text)))
            if behaviour == "cutoff":
                body = json.dumps({"choices": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + 100))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True
                return
            if anthropic:
                answer = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                          "content": [{"type": "text", "text": text}], "stop_reason": "end_turn"}
                if usage:
                    answer["usage"] = {"input_tokens": 111, "output_tokens": 222}
            else:
                answer = {"id": "chatcmpl-fake", "object": "chat.completion", "model": model,
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                       "finish_reason": "stop"}]}
                if usage:
                    answer["usage"] = {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}
            return self.send_json(200, answer)

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(name, payload):
            line = ("event: " + name + "\n" if name else "") + "data: " + payload + "\n\n"
            self.wfile.write(line.encode())
            self.wfile.flush()

        parts = pieces(text)
        try:
            if anthropic:
                start_usage = {"input_tokens": 111, "output_tokens": 1} if usage else {}
                event("message_start", json.dumps({"type": "message_start", "message": {
                    "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                    "content": [], "usage": start_usage}}))
                event("content_block_start", json.dumps({"type": "content_block_start", "index": 0,
                                                         "content_block": {"type": "text", "text": ""}}))
                event("ping", json.dumps({"type": "ping"}))
            for index, part in enumerate(parts):
                if behaviour == "cutoff" and index == 2:
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                if drip:
                    time.sleep(drip)
                if anthropic:
                    event("content_block_delta", json.dumps({
                        "type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": part}}))
                else:
                    event(None, json.dumps({
                        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]}))
            if anthropic:
                event("content_block_stop", json.dumps({"type": "content_block_stop", "index": 0}))
                delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
                if usage:
                    delta["usage"] = {"output_tokens": 222}
                event("message_delta", json.dumps(delta))
                event("message_stop", json.dumps({"type": "message_stop"}))
            else:
                event(None, json.dumps({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                        "model": model, "choices": [
                                            {"index": 0, "delta": {}, "finish_reason": "stop"}]}))
                wants_usage = (request.get("stream_options") or {}).get("include_usage")
                if usage and wants_usage:
                    event(None, json.dumps({"id": "chatcmpl-fake", "model": model, "choices": [],
                                            "usage": {"prompt_tokens": 11, "completion_tokens": 22,
                                                      "total_tokens": 33}}))
                event(None, "[DONE]")
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    global KEY
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", default="")
    args = parser.parse_args()
    KEY = args.key
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("listening", args.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
