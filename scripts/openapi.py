#!/usr/bin/env python3
"""Writes the API contract: openapi.json (OpenAPI 3.1) and the same bytes embedded in the gateway
(Services/Gateway/OpenAPIDocument.swift), which serves them at GET /openapi.json.

Run `make openapi` (or this script) after changing a route, a field rule or a response; the
tests fail while openapi.json and Routes.all disagree, and while the embedded copy differs
from openapi.json. Limits and enums are the services' own (see the Swift rules named beside
each schema); lengths count Unicode code points, as JSON Schema's maxLength does.
Standard library only.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------- small schema helpers


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def string(max_len=None, min_len=None, enum=None, pattern=None, fmt=None, desc=None):
    s = {"type": "string"}
    if enum is not None:
        s["enum"] = list(enum)
    if min_len is not None:
        s["minLength"] = min_len
    if max_len is not None:
        s["maxLength"] = max_len
    if pattern is not None:
        s["pattern"] = pattern
    if fmt is not None:
        s["format"] = fmt
    if desc:
        s["description"] = desc
    return s


def text(max_len, desc=None):
    """A required-looking string: 1..max code points, not only white space."""
    return string(max_len=max_len, min_len=1, pattern=r"\S", desc=desc)


def free_text(max_len, desc=None):
    """A string that may be empty."""
    return string(max_len=max_len, desc=desc)


def integer(minimum=None, maximum=None, desc=None):
    s = {"type": "integer"}
    if minimum is not None:
        s["minimum"] = minimum
    if maximum is not None:
        s["maximum"] = maximum
    if desc:
        s["description"] = desc
    return s


def number(minimum=None, maximum=None, desc=None):
    s = {"type": "number"}
    if minimum is not None:
        s["minimum"] = minimum
    if maximum is not None:
        s["maximum"] = maximum
    if desc:
        s["description"] = desc
    return s


BOOL = {"type": "boolean"}
DATE = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC with milliseconds"}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date-time"}
OBJECT_ID = {"type": "string", "pattern": "^[0-9a-f]{24}$", "description": "an ObjectId, 24 hex digits"}


def nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


def array(items, max_items=None):
    s = {"type": "array", "items": items}
    if max_items is not None:
        s["maxItems"] = max_items
    return s


def obj(props, required=(), closed=True, desc=None, **extra):
    s = {"type": "object", "properties": props}
    if required:
        s["required"] = list(required)
    if closed:
        s["additionalProperties"] = False
    if desc:
        s["description"] = desc
    s.update(extra)
    return s


def out(props, required=(), desc=None):
    """A response object: documented fields, more may be added later."""
    return obj(props, required=required, closed=False, desc=desc)


# ---------------------------------------------------------------- the services' rules

PROVIDERS = ["openai", "anthropic", "gemini", "cohere", "mistral", "xai", "huggingface", "groq"]
MODES = ["professional", "balanced", "creative", "fast", "coding"]
ROLES = ["user", "assistant", "system"]
FEEDBACK_TYPES = ["message", "conversation", "agent"]
FEEDBACK_CATEGORIES = ["accuracy", "helpfulness", "speed", "tone", "creativity", "technical"]
QUICK_CATEGORIES = ["Learning", "Creative", "Technical", "Utility", "General"]
THEMES = ["light", "dark", "auto", "neural"]
CANVAS_THEMES = ["light", "dark", "auto"]
CANVAS_STATUSES = ["active", "archived", "deleted"]
CANVAS_PROVIDERS = ["template", "openai-compatible", "anthropic"]
FILE_TYPES = ["html", "css", "js", "tsx", "json", "image", "other"]
HISTORY_STATUSES = ["pending", "completed", "failed"]
TRAITS = ["creativity", "empathy", "technical", "humor", "formality"]
SLUG = r"^[a-z][a-z0-9-]{1,63}$"
CURSOR_PATTERN = "^[A-Za-z0-9_-]+$"
AGENT_KEY = {
    "type": "string",
    "anyOf": [{"pattern": "^[0-9a-f]{24}$"}, {"pattern": SLUG}],
    "description": "an agent's id (24 hex digits) or its slug",
}

# ---------------------------------------------------------------- components

schemas = {}

# Free-form JSON a client may store (message attachments, feedback metadata): any value, but no
# key may be empty, start with `$` or contain `.` or NUL, at any depth (MongoDB cannot store it).
SAFE_KEY = {"type": "string", "pattern": "^[^$.\u0000][^.\u0000]*$"}
schemas["FreeJSON"] = {
    "description": "any JSON value whose object keys are not empty, do not start with `$` and "
                   "contain no `.` or NUL, at any depth",
    "anyOf": [
        {"type": ["null", "boolean", "number", "string"]},
        {"type": "array", "items": ref("FreeJSON")},
        {"type": "object", "propertyNames": SAFE_KEY, "additionalProperties": ref("FreeJSON")},
    ],
}

schemas["Error"] = obj(
    {
        "error": obj(
            {
                "code": string(desc="stable, machine-readable: validation_failed, malformed_request, "
                               "unauthorized, forbidden, not_found, conflict, payload_too_large, ..."),
                "message": {"type": "string"},
                "details": array(obj({"field": {"type": "string"}, "message": {"type": "string"}},
                                     required=["field", "message"], closed=False)),
            },
            required=["code", "message", "details"], closed=False,
        )
    },
    required=["error"], closed=False,
    desc="Every error. `details` names each field that failed validation (400).",
)


def page_of(item):
    return out({"items": array(item), "nextCursor": {"type": ["string", "null"],
                "description": "pass as `cursor` for the next page; null on the last"}},
               required=["items", "nextCursor"])


# sessions (Services/Sessions/Schema.swift SessionRules)
session_settings_in = obj({
    "temperature": number(0, 2),
    "maxTokens": integer(1, 4000),
    "mode": string(enum=MODES),
    "provider": string(enum=PROVIDERS),
    "model": text(100),
}, desc="merged key by key over the defaults (0.7, 2000, balanced, mistral)")
session_fields = {
    "name": text(100),
    "description": free_text(500),
    "agentId": dict(OBJECT_ID, description="the `id` of an active agent of the catalog"),
    "tags": array(string(min_len=1, max_len=50), 20),
    "settings": session_settings_in,
    "isActive": BOOL,
    "isArchived": BOOL,
}
schemas["SessionCreate"] = obj(session_fields, required=["name"])
schemas["SessionUpdate"] = obj(session_fields, desc="partial: fields left out keep their values")
schemas["Session"] = out({
    "sessionId": {"type": "string"},
    "userId": OBJECT_ID,
    "agentId": OBJECT_ID,
    "name": {"type": "string"},
    "description": {"type": "string"},
    "isActive": BOOL,
    "isArchived": BOOL,
    "tags": array({"type": "string"}),
    "settings": out({"temperature": number(), "maxTokens": {"type": "integer"},
                     "mode": string(enum=MODES), "provider": string(enum=PROVIDERS),
                     "model": {"type": "string"}}),
    "stats": out({"messageCount": {"type": "integer"}, "totalTokens": {"type": "integer"},
                  "durationMs": {"type": "integer"}, "lastMessageAt": DATE}),
    "createdAt": DATE,
    "updatedAt": DATE,
    "archivedAt": DATE,
}, required=["sessionId", "userId", "name", "isActive", "isArchived", "tags", "settings", "stats",
             "createdAt", "updatedAt"])
schemas["ActiveSession"] = out({
    "sessionId": {"type": "string"},
    "name": {"type": "string"},
    "agentName": {"type": ["string", "null"]},
    "stats": {"type": ["object", "null"]},
    "updatedAt": NULLABLE_DATE,
}, required=["sessionId", "name", "agentName", "stats", "updatedAt"],
    desc="the spec's \"Get User's Active Sessions\" projection (`view=active`)")
schemas["Message"] = out({
    "messageId": {"type": "string"},
    "role": string(enum=ROLES),
    "content": {"type": "string"},
    "attachments": {"type": "array"},
    "tokens": {"type": "integer"},
    "metadata": {"type": "object", "description": "on assistant replies: provider, model, "
                 "tokensIn, tokensOut, tokenCount, durationMs, finishReason, inReplyTo, context, "
                 "attempts"},
    "createdAt": DATE,
    "sessionId": {"type": "string"},
}, required=["messageId", "role", "content", "attachments", "createdAt", "sessionId"])
schemas["SessionDetail"] = {"allOf": [ref("Session"), out(
    {"messages": array(ref("Message"), 50)}, required=["messages"])],
    "description": "the session with its newest 50 messages, oldest first"}
schemas["MessageCreate"] = obj({
    "role": string(enum=ROLES),
    "content": string(min_len=1, pattern=r"\S", desc="any text; stored and returned byte for byte"),
    "attachments": array(ref("FreeJSON"), 20),
    "tokens": integer(0, 10_000_000),
    "respond": dict(BOOL, description="true: also ask the session's agent for its answer and "
                    "store it (`role` must be `user`); the answer is `{message, reply}`, or "
                    "Server-Sent Events with `Accept: text/event-stream`"),
}, required=["role", "content"])
schemas["MessageWithReply"] = out({"message": ref("Message"), "reply": ref("Message")},
                                  required=["message", "reply"],
                                  desc="`respond: true`: the stored user message and the "
                                  "stored assistant reply (its `metadata` names the provider, "
                                  "model, token counts and attempts)")
schemas["SessionDeleted"] = out({"sessionId": {"type": "string"}, "deleted": {"const": True}},
                                required=["sessionId", "deleted"])

# agents (Services/Sessions/AgentSchema.swift AgentRules)
agent_fields = {
    "name": text(100),
    "description": free_text(500),
    "category": text(50),
    "avatar": text(200),
    "prompt": free_text(20_000),
    "aiModel": text(100),
    "version": text(20),
    "temperature": number(0, 2),
    "maxTokens": integer(1, 4000),
    "isActive": BOOL,
    "isPublic": BOOL,
    "isPremium": BOOL,
    "features": array(string(min_len=1, max_len=200), 50),
    "capabilities": array(string(min_len=1, max_len=200), 50),
    "limitations": array(string(min_len=1, max_len=200), 50),
    "tags": array(string(min_len=1, max_len=50), 20),
    "pricing": obj({k: number(0, 1_000_000) for k in ["daily", "weekly", "monthly"]}),
    "examples": array(obj({"input": text(4000), "output": text(4000)},
                          required=["input", "output"]), 20),
    "config": obj({"systemPrompt": free_text(20_000), "personality": free_text(200),
                   "tone": free_text(200)}),
    "providerConfig": obj({
        "primaryProvider": string(enum=PROVIDERS),
        "primaryModel": text(100),
        "fallbackProviders": array(obj({
            "provider": string(enum=PROVIDERS), "model": text(100), "priority": integer(1, 100),
        }, required=["provider", "model", "priority"]), 10),
        "personalityMatch": obj({t: integer(0, 10) for t in TRAITS}),
        "temperature": number(0, 2),
        "maxTokens": integer(1, 4000),
        "systemPrompt": free_text(20_000),
    }),
}
schemas["AgentCreate"] = obj(
    dict({"agentId": string(pattern=SLUG, desc="the slug: 2..64 lowercase letters, digits and "
                            "dashes, starting with a letter, never 24 hex digits")}, **agent_fields),
    required=["agentId", "name"])
schemas["AgentUpdate"] = obj(agent_fields, desc="partial; nested objects merge key by key, "
                             "arrays are replaced; `agentId` cannot change")
schemas["Agent"] = out({
    "id": OBJECT_ID,
    "agentId": {"type": "string"},
    "name": {"type": "string"},
    "description": {"type": "string"},
    "category": {"type": "string"},
    "temperature": number(),
    "maxTokens": {"type": "integer"},
    "isActive": BOOL,
    "isPublic": BOOL,
    "isPremium": BOOL,
    "pricing": {"type": "object"},
    "features": array({"type": "string"}),
    "tags": array({"type": "string"}),
    "capabilities": array({"type": "string"}),
    "limitations": array({"type": "string"}),
    "examples": {"type": "array"},
    "config": {"type": "object"},
    "providerConfig": {"type": "object"},
    "creator": {"type": "string"},
    "version": {"type": "string"},
    "stats": out({"totalInteractions": {"type": "integer"}, "totalUsers": {"type": "integer"},
                  "averageRating": number(0, 5), "totalRatings": {"type": "integer"}}),
    "createdAt": DATE,
    "updatedAt": DATE,
}, required=["id", "agentId", "name", "isActive", "isPublic", "stats"])
schemas["AgentDeleted"] = out({"agentId": {"type": "string"}, "deleted": {"const": True}},
                              required=["agentId", "deleted"])
schemas["AgentMetrics"] = out({
    "agentId": {"type": "string"}, "id": OBJECT_ID,
    "totalInteractions": {"type": "integer"}, "totalUsers": {"type": "integer"},
    "avgTokensPerInteraction": number(), "avgDuration": number(),
}, required=["agentId", "id", "totalInteractions", "totalUsers", "avgTokensPerInteraction",
             "avgDuration"])
distribution = out({str(s): {"type": "integer"} for s in range(1, 6)},
                   required=[str(s) for s in range(1, 6)])
tally = out({"averageRating": number(0, 5), "totalRatings": {"type": "integer"},
             "distribution": distribution}, required=["averageRating", "totalRatings",
                                                      "distribution"])
schemas["AgentRatings"] = out({
    "agentId": {"type": ["string", "null"]}, "id": OBJECT_ID,
    "averageRating": number(0, 5), "totalRatings": {"type": "integer"},
    "distribution": distribution,
    "byCategory": out({c: tally for c in FEEDBACK_CATEGORIES + ["uncategorized"]},
                      required=FEEDBACK_CATEGORIES + ["uncategorized"]),
}, required=["id", "averageRating", "totalRatings", "distribution", "byCategory"])
schemas["ChatStats"] = out({
    "totalConversations": {"type": "integer"}, "totalMessages": {"type": "integer"},
    "totalTokens": {"type": "integer"}, "avgResponseTime": number(),
    "lastActivity": NULLABLE_DATE,
}, required=["totalConversations", "totalMessages", "totalTokens", "avgResponseTime",
             "lastActivity"])
schemas["SearchHit"] = out({
    "sessionId": {"type": "string"}, "messageId": {"type": "string"},
    "role": string(enum=ROLES), "snippet": {"type": "string"}, "score": {"type": "integer"},
    "createdAt": NULLABLE_DATE,
}, required=["sessionId", "messageId", "role", "snippet", "score", "createdAt"])

# feedback (Services/Feedback/FeedbackSchema.swift FeedbackRules)
feedback_common = {
    "conversationId": text(128, "the caller's session (`sessionId`)"),
    "rating": integer(1, 5),
    "comment": free_text(1000),
    "category": string(enum=FEEDBACK_CATEGORIES),
    "tags": array(string(min_len=1, max_len=50), 20),
    "metadata": {"type": "object", "maxProperties": 20, "propertyNames": SAFE_KEY,
                 "additionalProperties": ref("FreeJSON"),
                 "description": "at most 20 keys and 4096 bytes of JSON"},
}
schemas["FeedbackCreate"] = {
    "oneOf": [
        obj(dict(feedback_common, feedbackType={"const": "message"},
                 messageId=text(128, "a message of the conversation")),
            required=["conversationId", "feedbackType", "rating", "messageId"]),
        obj(dict(feedback_common, feedbackType={"const": "conversation"}),
            required=["conversationId", "feedbackType", "rating"]),
        obj(dict(feedback_common, feedbackType={"const": "agent"}, agentId=AGENT_KEY),
            required=["conversationId", "feedbackType", "rating", "agentId"]),
    ],
    "description": "`messageId` only with (and required for) `message`, `agentId` only with "
                   "(and required for) `agent`; rating the same target again replaces the earlier "
                   "feedback (200)",
}
schemas["Feedback"] = out({
    "conversationId": {"type": "string"}, "messageId": {"type": "string"}, "agentId": OBJECT_ID,
    "feedbackType": string(enum=FEEDBACK_TYPES), "rating": integer(1, 5),
    "comment": {"type": "string"}, "category": string(enum=FEEDBACK_CATEGORIES),
    "tags": array({"type": "string"}), "metadata": {"type": "object"}, "userId": OBJECT_ID,
    "createdAt": DATE, "updatedAt": DATE,
}, required=["conversationId", "feedbackType", "rating", "tags", "userId", "createdAt",
             "updatedAt"])

# accounts (Services/Settings/AccountRules.swift)
schemas["Register"] = obj({
    "email": string(min_len=3, max_len=254, fmt="email",
                    desc="unique in any letter case; one `@`, a dotted domain, no white space"),
    "name": text(100),
    "password": string(min_len=8, max_len=72, desc="8 characters to 72 UTF-8 bytes, no NUL"),
}, required=["email", "name", "password"])
schemas["Login"] = obj({"email": text(254), "password": free_text(1024)},
                       required=["email", "password"])
schemas["RefreshToken"] = obj({"refreshToken": text(200)}, required=["refreshToken"])
schemas["User"] = out({
    "userId": OBJECT_ID, "email": {"type": "string"}, "name": {"type": "string"},
    "authMethod": {"type": "string"}, "emailVerified": NULLABLE_DATE,
    "image": {"type": "string"}, "avatar": {"type": "string"}, "bio": {"type": "string"},
    "phoneNumber": {"type": "string"}, "location": {"type": "string"},
    "timezone": {"type": "string"}, "profession": {"type": "string"},
    "company": {"type": "string"}, "socialLinks": {"type": "object"},
    "preferences": out({
        "language": {"type": "string"}, "theme": string(enum=THEMES),
        "notifications": out({k: BOOL for k in ["email", "push", "sms"]}),
        "privacy": out({"profileVisibility": string(enum=["public", "private"]),
                        "showEmail": BOOL, "showPhone": BOOL}),
    }),
    "role": string(enum=["user", "admin"]), "isActive": BOOL,
    "createdAt": NULLABLE_DATE, "updatedAt": NULLABLE_DATE, "lastLoginAt": NULLABLE_DATE,
}, required=["userId", "email", "name", "role", "isActive"])
schemas["Tokens"] = out({
    "accessToken": string(desc="HS256 JWT for `Authorization: Bearer`"),
    "tokenType": {"const": "Bearer"}, "expiresIn": {"type": "integer"},
    "refreshToken": {"type": "string"}, "refreshExpiresIn": {"type": "integer"},
}, required=["accessToken", "tokenType", "expiresIn", "refreshToken", "refreshExpiresIn"])
schemas["Session+User"] = {"allOf": [ref("Tokens"), out({"user": ref("User")},
                                                          required=["user"])]}
schemas["ProfileUpdate"] = obj({
    "name": text(100), "image": free_text(2048), "avatar": free_text(200), "bio": free_text(500),
    "phoneNumber": free_text(30), "location": free_text(100), "timezone": free_text(64),
    "profession": free_text(100), "company": free_text(100),
    "socialLinks": obj({k: free_text(200) for k in ["twitter", "linkedin", "github", "website"]}),
    "preferences": obj({
        "language": text(35), "theme": string(enum=THEMES),
        "notifications": obj({k: BOOL for k in ["email", "push", "sms"]}),
        "privacy": obj({"profileVisibility": string(enum=["public", "private"]),
                        "showEmail": BOOL, "showPhone": BOOL}),
    }),
}, desc="partial; `socialLinks` and `preferences` merge key by key; `\"\"` clears a text")

# chat settings (Services/Settings/ChatSettings.swift)
flag_groups = {
    "notifications": ["messageReceived", "agentResponses", "systemUpdates"],
    "privacy": ["saveHistory", "allowAnalytics", "shareConversations"],
    "accessibility": ["highContrast", "reducedMotion", "screenReader"],
}
settings_in = {
    "theme": string(enum=THEMES), "fontSize": string(enum=["small", "medium", "large"]),
    "autoSave": BOOL,
    "defaultAgent": {"type": ["string", "null"], "pattern": "^[0-9a-f]{24}$",
                     "description": "an agent's id; null clears it"},
    "quickActions": obj({"enabled": BOOL, "favorites": array(
        string(min_len=1, max_len=100, desc="an active quick action the caller can use"), 50)}),
    "temperature": number(0, 2), "maxTokens": integer(1, 4000),
    "mode": string(enum=MODES), "provider": string(enum=PROVIDERS),
    "model": {"type": ["string", "null"], "minLength": 1, "maxLength": 100, "pattern": r"\S",
              "description": "null clears it"},
}
for group, keys in flag_groups.items():
    settings_in[group] = obj({k: BOOL for k in keys})
schemas["ChatSettingsUpdate"] = obj(settings_in, desc="partial; nested objects merge key by key")
settings_out = {
    "userId": OBJECT_ID, "theme": string(enum=THEMES),
    "fontSize": string(enum=["small", "medium", "large"]), "autoSave": BOOL,
    "defaultAgent": {"type": ["string", "null"]},
    "quickActions": out({"enabled": BOOL, "favorites": array({"type": "string"})},
                        required=["enabled", "favorites"]),
    "temperature": number(0, 2), "maxTokens": integer(1, 4000),
    "mode": string(enum=MODES), "provider": string(enum=PROVIDERS),
    "model": {"type": ["string", "null"]},
    "createdAt": NULLABLE_DATE, "updatedAt": NULLABLE_DATE,
}
for group, keys in flag_groups.items():
    settings_out[group] = out({k: BOOL for k in keys}, required=keys)
schemas["ChatSettings"] = out(settings_out, required=list(settings_out.keys()),
                              desc="stored values over the defaults; a user who never saved "
                              "gets the defaults with null dates")

# quick actions (Services/Settings/QuickActions.swift QuickActionRules)
schemas["QuickActionCreate"] = obj({
    "label": text(50), "prompt": text(500), "category": string(enum=QUICK_CATEGORIES),
    "icon": text(100),
}, required=["label", "prompt", "category", "icon"])
schemas["QuickActionUpdate"] = obj({
    "label": text(50), "prompt": text(500), "category": string(enum=QUICK_CATEGORIES),
    "icon": text(100), "isActive": BOOL,
}, desc="partial; the creator or an admin; a default is 403 for anyone else")
schemas["QuickAction"] = out({
    "actionId": {"type": "string"}, "label": {"type": "string"}, "prompt": {"type": "string"},
    "category": {"type": "string"}, "icon": {"type": "string"}, "isDefault": BOOL,
    "isActive": BOOL, "usageCount": integer(0), "createdBy": {"type": ["string", "null"]},
    "createdAt": NULLABLE_DATE, "updatedAt": NULLABLE_DATE,
}, required=["actionId", "label", "prompt", "category", "icon", "isDefault", "isActive",
             "usageCount", "createdBy", "createdAt", "updatedAt"])
schemas["QuickActionDeleted"] = out({"actionId": {"type": "string"}, "deleted": {"const": True}},
                                    required=["actionId", "deleted"])

# canvas (Services/Canvas/Schema.swift CanvasRules, Shared/Providers/CanvasFiles.swift)
canvas_settings_in = obj({
    "theme": string(enum=CANVAS_THEMES), "responsive": BOOL, "animations": BOOL,
    "provider": string(enum=CANVAS_PROVIDERS), "model": text(100),
}, desc="merged key by key over the defaults (light, true, true)")
schemas["ProjectCreate"] = obj({
    "name": text(100), "description": free_text(500), "template": text(100),
    "category": text(100),
    "conversationId": text(128, desc="a session (sessionId) of the caller's; 400 otherwise"),
    "status": string(enum=CANVAS_STATUSES), "settings": canvas_settings_in,
}, required=["name", "template", "category"])
schemas["ProjectUpdate"] = obj({
    "name": text(100), "description": free_text(500), "status": string(enum=CANVAS_STATUSES),
    "settings": canvas_settings_in,
}, desc="partial; `settings` merge key by key")
project_stats = out({"filesGenerated": {"type": "integer"}, "totalSize": {"type": "integer"},
                     "lastModified": DATE}, required=["filesGenerated", "totalSize"])
schemas["Project"] = out({
    "projectId": {"type": "string"}, "userId": OBJECT_ID, "conversationId": {"type": "string"},
    "name": {"type": "string"}, "description": {"type": "string"},
    "template": {"type": "string"}, "category": {"type": "string"},
    "status": string(enum=CANVAS_STATUSES),
    "settings": out({"theme": string(enum=CANVAS_THEMES), "responsive": BOOL,
                     "animations": BOOL, "provider": string(enum=CANVAS_PROVIDERS),
                     "model": {"type": "string"}}, required=["theme", "responsive",
                                                            "animations"]),
    "stats": project_stats, "createdAt": DATE, "updatedAt": DATE,
}, required=["projectId", "userId", "name", "template", "category", "status", "settings",
             "stats", "createdAt", "updatedAt"])
schemas["ProjectDeleted"] = out({
    "projectId": {"type": "string"}, "deleted": {"const": True},
    "filesDeleted": {"type": "integer"}, "historyDeleted": {"type": "integer"},
}, required=["projectId", "deleted", "filesDeleted", "historyDeleted"])
path_rule = ("a relative path: `/` separated segments; a leading `/` or `./` and `.` segments are "
             "dropped; `..`, empty segments, `\\`, `:`, a leading `~`, control characters, "
             "segments over 255 bytes and more than 32 segments are refused")
file_metadata_in = obj({
    "language": text(50), "framework": text(50),
    "dependencies": array(string(min_len=1, max_len=100), 50),
})
file_fields = {
    "path": string(min_len=1, max_len=1024, desc=path_rule),
    "name": text(255, "if sent, the last segment of `path`"),
    "type": string(enum=FILE_TYPES, desc="inferred from the extension when left out"),
    "content": string(desc="UTF-8 text of at most MAX_FILE_BYTES bytes (413 beyond)"),
    "metadata": file_metadata_in,
    "size": integer(0, desc="if sent, the content's UTF-8 byte count"),
    "checksum": string(pattern="^[0-9a-fA-F]{64}$", desc="if sent, the content's SHA-256 in hex"),
}
schemas["FileCreate"] = obj(dict({"projectId": text(128)}, **file_fields),
                            required=["projectId", "path"])
schemas["FileUpdate"] = obj(file_fields, desc="new content, type, metadata (merged) or path")
file_out = {
    "fileId": {"type": "string"}, "projectId": {"type": "string"}, "userId": OBJECT_ID,
    "name": {"type": "string"}, "path": {"type": "string"}, "type": string(enum=FILE_TYPES),
    "content": {"type": "string"}, "size": integer(0), "checksum": {"type": "string"},
    "metadata": out({"language": {"type": "string"}, "framework": {"type": "string"},
                     "dependencies": array({"type": "string"})}),
    "createdAt": DATE, "updatedAt": DATE,
}
file_required = ["fileId", "projectId", "userId", "name", "path", "type", "size", "checksum",
                 "createdAt", "updatedAt"]
schemas["File"] = out(file_out, required=file_required + ["content"])
schemas["FileSummary"] = out({k: v for k, v in file_out.items() if k != "content"},
                             required=file_required,
                             desc="a file in a listing: everything but `content`")
schemas["FileDeleted"] = out({"fileId": {"type": "string"}, "projectId": {"type": "string"},
                              "deleted": {"const": True}}, required=["fileId", "deleted"])
schemas["GenerateRequest"] = obj({
    "prompt": text(10_000), "provider": string(enum=CANVAS_PROVIDERS), "model": text(100),
}, required=["prompt"])
schemas["HistoryEntry"] = out({
    "historyId": {"type": "string"}, "projectId": {"type": "string"}, "userId": OBJECT_ID,
    "prompt": {"type": "string"}, "status": string(enum=HISTORY_STATUSES),
    "result": {"anyOf": [{"type": "null"}, out({
        "filesGenerated": {"type": "integer"}, "totalSize": {"type": "integer"},
        "duration": {"type": "integer"}})]},
    "error": {"type": ["string", "null"]},
    "metadata": out({"provider": {"type": "string"}, "model": {"type": "string"},
                     "tokens": {"type": "integer"}, "inputTokens": {"type": "integer"},
                     "outputTokens": {"type": "integer"}, "tokensEstimated": BOOL,
                     "attempts": {"type": "integer"}}),
    "createdAt": DATE, "updatedAt": DATE,
}, required=["historyId", "projectId", "userId", "prompt", "status", "createdAt"])
schemas["RollbackRequest"] = obj({
    "historyId": text(128, "a completed generation of this project"),
    "state": string(enum=["after", "before"], desc="after (default) or just before it"),
}, required=["historyId"])
schemas["RollbackResult"] = out({
    "projectId": {"type": "string"}, "historyId": {"type": "string"},
    "state": string(enum=["after", "before"]), "filesWritten": {"type": "integer"},
    "filesRemoved": {"type": "integer"}, "filesUnchanged": {"type": "integer"},
    "stats": project_stats,
}, required=["projectId", "historyId", "state", "filesWritten", "filesRemoved",
             "filesUnchanged", "stats"])

# ---------------------------------------------------------------- responses and parameters

ERROR_TEXT = {
    400: "malformed JSON, a wrong type, a value out of range, an unknown field or query "
         "parameter (the field is named in `details`)",
    401: "no bearer token, or one that is invalid or expired",
    403: "not allowed for this role",
    404: "no such resource for this caller (another user's is 404 too)",
    409: "conflicts with the resource's state",
    413: "the body is larger than the limit (answered before the body is read)",
    414: "the request path is longer than 2048 bytes",
    415: "a body that is not `Content-Type: application/json`",
    422: "the same `Idempotency-Key` with another body; or (`respond: true`) a provider refused "
         "the request (`provider_refused`, each attempt in `details`, the stored user message as "
         "`message`)",
    502: "`respond: true`: every provider of the agent's chain failed (`provider_failed`, each "
         "attempt in `details`, the stored user message as `message`)",
    429: "too many writes, registrations or logins from one address, or failed logins; "
         "see `Retry-After`",
    503: "Redis or MongoDB unreachable, or the command stream is overloaded",
    504: "no answer before the request deadline",
}
responses = {}
for code, desc in ERROR_TEXT.items():
    r = {"description": desc, "content": {"application/json": {"schema": ref("Error")}}}
    if code == 429:
        r["headers"] = {"Retry-After": {"description": "seconds until a retry may succeed",
                                        "schema": {"type": "integer", "minimum": 1}}}
    responses[str(code)] = r

parameters = {
    "limit": {"name": "limit", "in": "query", "required": False,
              "description": "page size, 1..100 (default 20); anything else is 400",
              "schema": integer(1, 100)},
    "cursor": {"name": "cursor", "in": "query", "required": False,
               "description": "the `nextCursor` of the previous page",
               "schema": string(min_len=1, max_len=600, pattern=CURSOR_PATTERN)},
    "Idempotency-Key": {"name": "Idempotency-Key", "in": "header", "required": False,
                        "description": "a retry with the same key and body gets the first "
                        "answer with no second effect; the same key with another body is 422",
                        "schema": string(min_len=1, max_len=200, pattern="^[!-~]+$")},
}


def q(name, schema, desc=None, required=False):
    p = {"name": name, "in": "query", "required": required, "schema": schema}
    if desc:
        p["description"] = desc
    return p


def path_param(name, desc):
    return {"name": name, "in": "path", "required": True, "description": desc,
            "schema": string(min_len=1, max_len=128)}


PREF = "#/components/parameters/"

# ---------------------------------------------------------------- operations

paths = {}


def json_content(schema):
    return {"application/json": {"schema": schema}}


def operation(method, path, tag, summary, ok, *, op_id, desc=None, params=(), body=None,
              errors=(), auth=True, idempotency=False, extra=None):
    """`ok`: {status: (description, schema or None, media type)}."""
    op = {"operationId": op_id, "tags": [tag], "summary": summary}
    if desc:
        op["description"] = desc
    # `Idempotency-Key` is described once (components.parameters and the introduction), not
    # per operation: a fuzzer would send one key with many bodies and test only the 422.
    plist = list(params)
    if plist:
        op["parameters"] = plist
    if body is not None:
        op["requestBody"] = {"required": True, "content": json_content(body)}
    resp = {}
    for status, (text_, schema, media) in ok.items():
        r = {"description": text_}
        if schema is not None:
            r["content"] = {media: {"schema": schema}}
        resp[str(status)] = r
    codes = set(errors)
    if path.startswith("/api"):
        codes.add(400)
    if auth:
        codes.add(401)
    if method != "get":
        codes |= {429} if auth else set()
    if body is not None:
        codes |= {400, 413, 415}
    if idempotency:
        codes.add(422)
    if "{" in path:
        codes |= {404, 414}
    codes |= {503, 504}
    for code in sorted(codes):
        resp[str(code)] = {"$ref": f"#/components/responses/{code}"}
    op["responses"] = resp
    if not auth:
        op["security"] = []
    if extra:
        op.update(extra)
    paths.setdefault(path, {})[method] = op


J = "application/json"


def ok(status, desc, schema, media=J):
    return {status: (desc, schema, media)}


SID = path_param("id", "a session's `sessionId`")
PID = path_param("id", "a canvas project's `projectId`")
FID = path_param("id", "a canvas file's `fileId`")
HID = path_param("id", "a generation's `historyId`")
AID = {"name": "agentId", "in": "path", "required": True,
       "description": "an agent's slug or its `id` (24 hex digits)",
       "schema": string(min_len=1, max_len=128)}
QID = path_param("actionId", "a quick action's `actionId`")
LIMIT = {"$ref": PREF + "limit"}
CURSOR = {"$ref": PREF + "cursor"}

# health and documents (the gateway answers these itself, without a token)
operation("get", "/healthz", "operations", "The gateway process is up",
          ok(200, "up", out({"status": {"const": "ok"}}, required=["status"])),
          op_id="healthz", auth=False)
operation("get", "/readyz", "operations",
          "Redis answers and every routed service has a live consumer",
          {200: ("ready", out({"status": {"const": "ready"}, "problems": array({"type": "string"})},
                              required=["status", "problems"]), J),
           503: ("not ready, with the problems", out({"status": {"const": "not ready"},
                                                      "problems": array({"type": "string"})},
                                                     required=["status", "problems"]), J)},
          op_id="readyz", auth=False)
operation("get", "/metrics", "operations", "Prometheus metrics of the gateway",
          ok(200, "text exposition format 0.0.4", {"type": "string"}, "text/plain"),
          op_id="metrics", auth=False)
operation("get", "/openapi.json", "operations", "This document",
          ok(200, "the OpenAPI 3.1 document", {"type": "object"}),
          op_id="openapi", auth=False)
operation("get", "/api/ping", "operations", "A round trip through the bus to the sessions service",
          ok(200, "pong", out({"pong": {"const": True}}, required=["pong"])), op_id="ping")

# sessions
operation("get", "/api/chat/sessions", "sessions", "The caller's sessions",
          ok(200, "newest `updatedAt` first, `sessionId` breaking ties; `view=active` gives the "
             "ActiveSession projection", page_of({"anyOf": [ref("Session"), ref("ActiveSession")]})),
          op_id="listSessions", errors=[400],
          desc="With `view=active` only `limit` and `cursor` may be combined with it.",
          params=[LIMIT, CURSOR, q("isActive", BOOL), q("isArchived", BOOL),
                  q("tag", string(min_len=1, max_len=50)), q("agentId", OBJECT_ID),
                  q("view", string(enum=["active"]), "the spec's active-sessions projection")])
operation("post", "/api/chat/sessions", "sessions", "Create a session",
          ok(201, "the stored session", ref("Session")), op_id="createSession",
          body=ref("SessionCreate"), idempotency=True)
operation("get", "/api/chat/sessions/{id}", "sessions", "One session and its newest 50 messages",
          ok(200, "the session", ref("SessionDetail")), op_id="getSession", params=[SID],
          errors=[400])
operation("put", "/api/chat/sessions/{id}", "sessions", "Change a session (partial)",
          ok(200, "the updated session", ref("Session")), op_id="updateSession", params=[SID],
          body=ref("SessionUpdate"), idempotency=True)
operation("delete", "/api/chat/sessions/{id}", "sessions", "Delete a session and its messages",
          ok(200, "deleted", ref("SessionDeleted")), op_id="deleteSession", params=[SID],
          idempotency=True)
operation("get", "/api/chat/sessions/{id}/messages", "sessions", "A session's messages",
          ok(200, "oldest first (default limit 50)", page_of(ref("Message"))),
          op_id="listMessages", params=[SID, LIMIT, CURSOR], errors=[400])
SSE_TEXT = ("`respond: true` with `Accept: text/event-stream`: events `message` (the stored user "
            "message), `delta` ({text}), `reset` (a provider failed mid-answer: drop the text so "
            "far), then `done` ({message, reply}) or `error` ({status, error, message})")
operation("post", "/api/chat/sessions/{id}/messages", "sessions", "Add a message to a session",
          {201: ("the stored message; with `respond: true`, the message and the agent's reply",
                 {"anyOf": [ref("Message"), ref("MessageWithReply")]}, J),
           200: (SSE_TEXT, {"type": "string"}, "text/event-stream")},
          op_id="appendMessage", params=[SID], body=ref("MessageCreate"), idempotency=True,
          errors=[502],
          desc="With `respond: true` the request has the gateway's long deadline "
               "(`RESPOND_TIMEOUT_MS`); a provider answering after a 504 still has its reply "
               "stored.")

# agents, analytics, search
operation("get", "/api/agents", "agents", "Active public agents",
          ok(200, "by `name`, slug breaking ties", page_of(ref("Agent"))), op_id="listAgents",
          params=[LIMIT, CURSOR, q("category", string(min_len=1, max_len=50)),
                  q("tag", string(min_len=1, max_len=50))], errors=[400])
operation("post", "/api/agents", "agents", "Add an agent (admins)",
          ok(201, "the stored agent", ref("Agent")), op_id="createAgent",
          body=ref("AgentCreate"), idempotency=True, errors=[403, 409])
operation("get", "/api/agents/{agentId}", "agents", "One agent",
          ok(200, "admins also see inactive and private agents", ref("Agent")),
          op_id="getAgent", params=[AID], errors=[400])
operation("put", "/api/agents/{agentId}", "agents", "Change an agent (admins; partial)",
          ok(200, "the updated agent", ref("Agent")), op_id="updateAgent", params=[AID],
          body=ref("AgentUpdate"), idempotency=True, errors=[403])
operation("delete", "/api/agents/{agentId}", "agents",
          "Delete an agent (admins; soft: the slug stays taken)",
          ok(200, "deleted", ref("AgentDeleted")), op_id="deleteAgent", params=[AID],
          idempotency=True, errors=[403])
operation("get", "/api/agents/{agentId}/metrics", "analytics", "An agent's interaction metrics",
          ok(200, "totals over `chatinteractions`", ref("AgentMetrics")), op_id="agentMetrics",
          params=[AID], errors=[400])
operation("get", "/api/agents/{agentId}/ratings", "analytics", "An agent's ratings",
          ok(200, "agent-type feedback: average, count, distribution, per category",
             ref("AgentRatings")), op_id="agentRatings", params=[AID], errors=[400])
operation("get", "/api/chat/stats", "analytics", "The caller's totals",
          ok(200, "totals over the caller's conversations", ref("ChatStats")), op_id="chatStats",
          errors=[400])
operation("get", "/api/chat/search", "search", "Search the caller's messages",
          ok(200, "best match first", page_of(ref("SearchHit"))), op_id="searchMessages",
          params=[q("q", string(min_len=1, max_len=200),
                    "the words to find; must contain a letter or a digit (400 otherwise)",
                    required=True),
                  LIMIT, CURSOR, q("status", string(enum=["active", "closed", "archived"])),
                  q("tag", string(min_len=1, max_len=50)),
                  q("agentId", dict(AGENT_KEY, maxLength=64))], errors=[400])

# feedback
operation("post", "/api/chat/feedback", "feedback", "Rate a message, a conversation or an agent",
          {201: ("the first rating of this target", ref("Feedback"), J),
           200: ("replaced the caller's earlier rating of this target", ref("Feedback"), J)},
          op_id="createFeedback", body=ref("FeedbackCreate"), idempotency=True, errors=[404])
operation("get", "/api/chat/feedback", "feedback", "The caller's feedback",
          ok(200, "newest first", page_of(ref("Feedback"))), op_id="listFeedback",
          params=[q("conversationId", string(min_len=1, max_len=128)),
                  q("feedbackType", string(enum=FEEDBACK_TYPES)), LIMIT, CURSOR], errors=[400])

# accounts
operation("post", "/api/auth/register", "auth", "Create an account",
          ok(201, "tokens and the new user", ref("Session+User")), op_id="register",
          body=ref("Register"), auth=False, idempotency=True, errors=[409, 429])
operation("post", "/api/auth/login", "auth", "Log in",
          ok(200, "tokens and the user", ref("Session+User")), op_id="login", body=ref("Login"),
          auth=False, idempotency=True, errors=[401, 403, 429],
          desc="A wrong password and an unknown email get the same 401; failed logins are "
               "counted per email and per client address (429 with `Retry-After` at the limit).")
operation("post", "/api/auth/refresh", "auth", "Rotate a refresh token",
          ok(200, "a new pair of the same family", ref("Tokens")), op_id="refresh",
          body=ref("RefreshToken"), auth=False, idempotency=True, errors=[401],
          desc="A spent or revoked refresh token is 401 and revokes its whole family.")
operation("post", "/api/auth/logout", "auth", "Revoke a refresh token's family",
          ok(200, "the same answer for any token", out({"loggedOut": {"const": True}},
                                                        required=["loggedOut"])),
          op_id="logout", body=ref("RefreshToken"), auth=False, idempotency=True)
operation("get", "/api/me", "auth", "The caller's profile",
          ok(200, "the user, never the password hash", ref("User")), op_id="getMe",
          errors=[400, 404])
operation("put", "/api/me", "auth", "Change the caller's profile (partial)",
          ok(200, "the updated user", ref("User")), op_id="updateMe",
          body=ref("ProfileUpdate"), idempotency=True, errors=[404])

# chat settings and quick actions
operation("get", "/api/chat/settings", "settings", "The caller's chat settings",
          ok(200, "stored values over the defaults", ref("ChatSettings")), op_id="getSettings",
          errors=[400])
operation("put", "/api/chat/settings", "settings", "Change the caller's chat settings (partial)",
          ok(200, "the settings after the change", ref("ChatSettings")), op_id="updateSettings",
          body=ref("ChatSettingsUpdate"), idempotency=True)
operation("get", "/api/chat/quick-actions", "quick actions",
          "Active default quick actions and the caller's own",
          ok(200, "most used first (or by label), `actionId` breaking ties",
             page_of(ref("QuickAction"))), op_id="listQuickActions",
          params=[q("category", string(enum=QUICK_CATEGORIES)),
                  q("sort", string(enum=["usage", "label"])), LIMIT, CURSOR], errors=[400])
operation("post", "/api/chat/quick-actions", "quick actions", "Add a quick action of one's own",
          ok(201, "the stored action", ref("QuickAction")), op_id="createQuickAction",
          body=ref("QuickActionCreate"), idempotency=True)
operation("put", "/api/chat/quick-actions/{actionId}", "quick actions",
          "Change a quick action (partial)", ok(200, "the updated action", ref("QuickAction")),
          op_id="updateQuickAction", params=[QID], body=ref("QuickActionUpdate"),
          idempotency=True, errors=[403])
operation("delete", "/api/chat/quick-actions/{actionId}", "quick actions",
          "Delete one's own quick action (an admin's delete of a default deactivates it)",
          ok(200, "deleted", ref("QuickActionDeleted")), op_id="deleteQuickAction", params=[QID],
          idempotency=True, errors=[403])
operation("post", "/api/chat/quick-actions/{actionId}/use", "quick actions",
          "Count one use of a quick action", ok(200, "the action, counted", ref("QuickAction")),
          op_id="useQuickAction", params=[QID], idempotency=True)

# canvas
operation("get", "/api/chat/canvas/projects", "canvas", "The caller's canvas projects",
          ok(200, "newest `updatedAt` first; `deleted` ones only with `status=deleted`",
             page_of(ref("Project"))), op_id="listProjects",
          params=[LIMIT, CURSOR, q("status", string(enum=CANVAS_STATUSES)),
                  q("template", string(min_len=1, max_len=100)),
                  q("conversationId", string(min_len=1, max_len=128))], errors=[400])
operation("post", "/api/chat/canvas/projects", "canvas", "Create a canvas project",
          ok(201, "the stored project", ref("Project")), op_id="createProject",
          body=ref("ProjectCreate"), idempotency=True)
operation("get", "/api/chat/canvas/projects/{id}", "canvas", "One project",
          ok(200, "the project", ref("Project")), op_id="getProject", params=[PID], errors=[400])
operation("put", "/api/chat/canvas/projects/{id}", "canvas", "Change a project (partial)",
          ok(200, "the updated project", ref("Project")), op_id="updateProject", params=[PID],
          body=ref("ProjectUpdate"), idempotency=True)
operation("delete", "/api/chat/canvas/projects/{id}", "canvas",
          "Delete a project with its files, history and versions",
          ok(200, "deleted", ref("ProjectDeleted")), op_id="deleteProject", params=[PID],
          idempotency=True)
operation("get", "/api/chat/canvas/projects/{id}/files", "canvas", "A project's files",
          ok(200, "by path, without `content`", page_of(ref("FileSummary"))),
          op_id="listFiles",
          params=[PID, LIMIT, {"name": "cursor", "in": "query", "required": False,
                               "schema": string(min_len=1, max_len=6000,
                                                pattern=CURSOR_PATTERN)},
                  q("type", string(enum=FILE_TYPES))], errors=[400])
operation("get", "/api/chat/canvas/projects/{id}/export", "canvas", "A zip of the project's files",
          ok(200, "`Content-Disposition: attachment`", {"type": "string",
                                                         "contentMediaType": "application/zip"},
             "application/zip"), op_id="exportProject", params=[PID], errors=[400, 422])
operation("post", "/api/chat/canvas/projects/{id}/generate", "canvas",
          "Generate files from a prompt (asynchronous)",
          ok(202, "the pending history entry; a job completes or fails it",
             ref("HistoryEntry")), op_id="generate", params=[PID],
          body=ref("GenerateRequest"), idempotency=True, errors=[409],
          desc="One generation or rollback runs per project at a time (409); an archived or "
               "deleted project is read-only (409); a provider that is not configured is 400.")
operation("get", "/api/chat/canvas/projects/{id}/history", "canvas", "A project's generations",
          ok(200, "newest first", page_of(ref("HistoryEntry"))), op_id="listHistory",
          params=[PID, LIMIT, CURSOR, q("status", string(enum=HISTORY_STATUSES))], errors=[400])
operation("post", "/api/chat/canvas/projects/{id}/rollback", "canvas",
          "Restore the files of a completed generation",
          ok(200, "what changed", ref("RollbackResult")), op_id="rollback", params=[PID],
          body=ref("RollbackRequest"), idempotency=True, errors=[409])
operation("post", "/api/chat/canvas/files", "canvas", "Add a file to a project",
          ok(201, "the stored file", ref("File")), op_id="createFile", body=ref("FileCreate"),
          idempotency=True, errors=[404, 409],
          desc="Bodies up to MAX_UPLOAD_BYTES; content over MAX_FILE_BYTES is 413; a path taken "
               "in the project or a read-only project is 409.")
operation("get", "/api/chat/canvas/files/{id}", "canvas", "One file with its content",
          ok(200, "the file", ref("File")), op_id="getFile", params=[FID], errors=[400])
operation("put", "/api/chat/canvas/files/{id}", "canvas", "Change a file (partial)",
          ok(200, "the updated file", ref("File")), op_id="updateFile", params=[FID],
          body=ref("FileUpdate"), idempotency=True, errors=[409])
operation("delete", "/api/chat/canvas/files/{id}", "canvas", "Delete a file",
          ok(200, "deleted", ref("FileDeleted")), op_id="deleteFile", params=[FID],
          idempotency=True, errors=[409])
operation("get", "/api/chat/canvas/history/{id}", "canvas", "One generation",
          ok(200, "the history entry", ref("HistoryEntry")), op_id="getHistory", params=[HID],
          errors=[400])

# TODO: no OpenAPI links yet, so Schemathesis' stateful phase (create, then use the id) is off;
# scripts/contract-test.sh seeds the ids instead.

# ---------------------------------------------------------------- the document

DESCRIPTION = """\
The Universal Chat API. Every `/api` route except `/api/auth/*` needs
`Authorization: Bearer <JWT>` (HS256, `sub` = the user's ObjectId, `role` = user|admin, `exp`).

Conventions: bodies are JSON objects sent as `Content-Type: application/json` (415 otherwise);
unknown fields, keys starting with `$` or containing `.` or NUL, wrong types (`"5"` is not a
number; `4000.0` is an integer) and malformed JSON (also NaN, 1e400, duplicate keys, a BOM) are
400 with the fields named. Lengths count Unicode code points. `PUT` is a partial update
everywhere. Ids in paths are the resources' string ids; anyone else's resource is 404, as is a
malformed id. Lists answer `{items, nextCursor}`; `limit` is 1..100. A query parameter given
twice is 400. A method the path does not have is 405 with `Allow`. Every response carries
`Cache-Control: no-store` and `X-Content-Type-Options: nosniff`. Errors are
`{"error": {"code", "message", "details": [{"field", "message"}]}}`.

`Idempotency-Key` (1..200 visible ASCII characters) may accompany any POST, PUT or DELETE: a
retry with the same key and body gets the first answer with no second effect, the same key with
another body is 422.
"""

document = {
    "openapi": "3.1.0",
    "info": {"title": "Universal Chat API", "version": "1.0.0", "description": DESCRIPTION},
    "servers": [{"url": "http://127.0.0.1:8080", "description": "`make run`"}],
    "security": [{"bearerAuth": []}],
    "tags": [{"name": n} for n in ["sessions", "agents", "analytics", "search", "feedback",
                                    "auth", "settings", "quick actions", "canvas",
                                    "operations"]],
    "paths": paths,
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
        "schemas": schemas,
        "responses": responses,
        "parameters": parameters,
    },
}

SWIFT = '''\
// Generated by scripts/openapi.py from the same data as openapi.json: do not edit.
// `make openapi` rewrites both; a test checks that the gateway serves openapi.json's bytes.

/// The OpenAPI 3.1 document of the whole API, served at `GET /openapi.json` without a token.
enum OpenAPIDocument {
    static let bytes: [UInt8] = Array(text.utf8)

    static let text = ##"""
{json}
"""## + "\\n"
}
'''


def main():
    text_ = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if '"""##' in text_:
        sys.exit("the document contains the Swift raw string delimiter")
    check = "--check" in sys.argv
    targets = {
        os.path.join(ROOT, "openapi.json"): text_,
        os.path.join(ROOT, "Services/Gateway/OpenAPIDocument.swift"):
            SWIFT.replace("{json}", text_[:-1]),
    }
    stale = []
    for path, content in targets.items():
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current != content:
            stale.append(os.path.relpath(path, ROOT))
            if not check:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(content)
    if check and stale:
        sys.exit("out of date (run `make openapi`): " + ", ".join(stale))
    count = sum(len(methods) for methods in paths.values())
    print(f"{len(paths)} paths, {count} operations" + (" (up to date)" if not stale else ""))


if __name__ == "__main__":
    main()
