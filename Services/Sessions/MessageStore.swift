import Bus
import Core
import MongoKit
import ServiceKit

/// Messages live in `chatinteractions` in numbered buckets per conversation, each closed at a
/// bounded size, so no conversation approaches MongoDB's document limit. Every append is an
/// atomic conditional `$push`; no document is read, changed and written back. Each bucket also
/// lists its message ids in `messageIds`, so a redelivered append is refused by the same
/// condition (`$nin` on a plain string array, which the stand-in evaluates right).
struct MessageStore: Sendable {
    let sessions: MongoCollection
    let interactions: MongoCollection

    /// `respond: true` asks for the assistant's answer too (`Responder`).
    static let allowed: Set<String> = ["role", "content", "attachments", "tokens", "respond"]

    func append(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let sessionId = try pathId(command, what: "session")
        let body = try command.jsonBody()
        var check = Validator(body, allowed: MessageStore.allowed)
        let role = check.oneOf("role", SessionRules.roles, required: true)
        let content = check.string("content", required: true)
        let tokens = check.integer("tokens", min: 0, max: SessionRules.tokensMax) ?? 0
        _ = check.bool("respond")
        var attachments: [Value] = []
        if let value = body["attachments"] {
            if case .array(let items) = value, items.count <= SessionRules.attachmentsMax {
                attachments = items
            } else {
                check.fail(
                    "attachments",
                    "must be an array of at most \(SessionRules.attachmentsMax) items")
            }
        }
        try check.check()

        guard
            let session = try sessions.findOne(
                ["sessionId": .string(sessionId), "userId": .objectId(user)],
                projection: ["agentId": 1, "sessionId": 1, "stats.messageCount": 1])
        else { throw APIError.notFound("session") }

        let messageId = "msg-\(command.id.prefix(24))"
        let now = Timestamp.now()
        var message: Document = [
            "messageId": .string(messageId), "role": .string(role ?? "user"),
            "content": .string(content ?? ""), "attachments": .array(attachments),
        ]
        if tokens > 0 { message["tokens"] = .int64(tokens) }
        message["createdAt"] = .date(now)
        let count = session.value(at: "stats.messageCount")?.intValue ?? 0
        let target = Target(
            sessionId: sessionId, user: user, agent: session["agentId"],
            guess: count > 0 ? (count - 1) / Int64(SessionRules.bucketMessages) : nil)
        let size = (content ?? "").utf8.count + 256
        if let existing = try push(message, size: size, tokens: tokens, into: target, now: now) {
            // A redelivered append: the first delivery stored it and counted it.
            return Reply(status: 201, existing)
        }

        try sessions.updateOne(
            ["sessionId": .string(sessionId), "userId": .objectId(user)],
            [
                "$inc": ["stats.messageCount": 1, "stats.totalTokens": .int64(tokens)],
                "$set": ["stats.lastMessageAt": .date(now), "updatedAt": .date(now)],
            ])
        var reply = message
        reply["sessionId"] = .string(sessionId)
        return Reply(status: 201, reply)
    }

    /// Where a message goes: the conversation and a guess of its newest bucket.
    struct Target {
        let sessionId: String
        let user: ObjectId
        let agent: Value?
        let guess: Int64?
    }

    /// Pushes into the newest open bucket (first trying the one the session's count points
    /// at), or opens the next one; retried when racing. Returns the stored message instead when
    /// this message id is already there.
    func push(
        _ message: Document, size: Int, tokens: Int64, durationMs: Int64 = 0, into target: Target,
        now: Timestamp
    ) throws -> Document? {
        let messageId = message["messageId"] ?? .null
        var candidate = target.guess
        for _ in 0..<20 {
            if let bucket = candidate {
                let result = try interactions.updateOne(
                    [
                        "conversationId": .string(target.sessionId), "bucket": .int64(bucket),
                        "metrics.turnCount": ["$lt": .int64(Int64(SessionRules.bucketMessages))],
                        "metrics.contentBytes": [
                            "$lte": .int64(Int64(SessionRules.bucketBytes - size))
                        ],
                        "messageIds": ["$nin": [messageId]],
                    ],
                    [
                        "$push": ["messages": .document(message), "messageIds": messageId],
                        "$inc": [
                            "metrics.turnCount": 1, "metrics.totalTokens": .int64(tokens),
                            "metrics.contentBytes": .int64(Int64(size)),
                            "metrics.durationMs": .int64(durationMs),
                        ],
                        "$set": ["updatedAt": .date(now)],
                    ])
                if result.matched > 0 { return nil }
                if let existing = try find(
                    messageId.stringValue ?? "", sessionId: target.sessionId, user: target.user)
                {
                    return existing
                }
            }
            let newest = try interactions.findOne(
                ["conversationId": .string(target.sessionId)], sort: ["bucket": -1],
                projection: ["bucket": 1])
            let newestNumber = newest?["bucket"]?.intValue
            if let newestNumber, newestNumber != candidate {
                candidate = newestNumber
                continue
            }
            let next = (newestNumber ?? -1) + 1
            do {
                try interactions.insertOne(
                    bucketDocument(
                        next, message, size: size, tokens: tokens, durationMs: durationMs, target,
                        now))
                return nil
            } catch {
                if error.kind != .duplicateKey { throw error }
                candidate = next
            }
        }
        throw APIError.unavailable("the conversation is too busy; try again")
    }

    private func bucketDocument(
        _ number: Int64, _ message: Document, size: Int, tokens: Int64, durationMs: Int64,
        _ target: Target, _ now: Timestamp
    ) -> Document {
        var doc: Document = [
            "_id": .objectId(ObjectId()), "conversationId": .string(target.sessionId),
            "bucket": .int64(number), "userId": .objectId(target.user),
        ]
        if let agent = target.agent, !agent.isNull { doc["agentId"] = agent }
        doc["channel"] = "web"
        doc["language"] = "en"
        doc["messages"] = [.document(message)]
        doc["messageIds"] = [message["messageId"] ?? .null]
        doc["summary"] = ["keywords": [], "actionItems": []]
        doc["metrics"] = [
            "totalTokens": .int64(tokens), "durationMs": .int64(durationMs), "turnCount": 1,
            "contentBytes": .int64(Int64(size)),
        ]
        doc["status"] = "active"
        doc["metadata"] = ["tags": [], "priority": "medium"]
        doc["startedAt"] = .date(now)
        doc["createdAt"] = .date(now)
        doc["updatedAt"] = .date(now)
        return doc
    }

    func find(_ messageId: String, sessionId: String, user: ObjectId) throws -> Document? {
        guard
            let bucket = try interactions.findOne([
                "conversationId": .string(sessionId), "userId": .objectId(user),
                "messageIds": .string(messageId),
            ])
        else { return nil }
        let found = bucket["messages"]?.arrayValue?.first {
            $0.documentValue?["messageId"]?.stringValue == messageId
        }
        guard var message = found?.documentValue else { return nil }
        message["sessionId"] = .string(sessionId)
        return message
    }

    /// The newest `count` messages, oldest first.
    func newest(sessionId: String, user: ObjectId, count: Int) throws -> [Value] {
        let buckets = try interactions.find(
            ["conversationId": .string(sessionId), "userId": .objectId(user)], sort: ["bucket": -1],
            limit: 2,
            projection: ["messages": 1, "bucket": 1])
        var all: [Value] = []
        for bucket in buckets.reversed() {
            all += (bucket["messages"]?.arrayValue ?? []).map { MessageStore.tagged($0, sessionId) }
        }
        return Array(all.suffix(count))
    }

    private static func tagged(_ value: Value, _ sessionId: String) -> Value {
        guard var doc = value.documentValue else { return value }
        doc["sessionId"] = .string(sessionId)
        return .document(doc)
    }

    /// Oldest first; the cursor names the bucket and position after the last message returned.
    func list(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let sessionId = try pathId(command, what: "session")
        let query = try QueryReader(command, allowed: ["limit", "cursor"])
        let limit = try query.limit(fallback: 50)
        var bucket: Int64 = 0
        var offset = 0
        if let cursor = try query.string("cursor", maxLength: 600) {
            let parts = try PageCursor.decode(cursor, parts: 2)
            guard let b = Int64(parts[0]), let o = Int(parts[1]), b >= 0, o >= 0 else {
                throw APIError.invalid("cursor", "is not a cursor this API returned")
            }
            bucket = b
            offset = o
        }
        var items: [Value] = []
        var next: Value = .null
        var scanFrom = bucket
        outer: while true {
            let buckets = try interactions.find(
                [
                    "conversationId": .string(sessionId), "userId": .objectId(user),
                    "bucket": ["$gte": .int64(scanFrom)],
                ], sort: ["bucket": 1], limit: 1, projection: ["messages": 1, "bucket": 1])
            // One bucket at a time: a page of up to 100 reads one or two, not three full ones.
            guard let doc = buckets.first else { break }
            let number = doc["bucket"]?.intValue ?? 0
            let messages = doc["messages"]?.arrayValue ?? []
            let start = number == bucket ? offset : 0
            scanFrom = number + 1
            guard start < messages.count else { continue }
            for index in start..<messages.count {
                if items.count == limit {
                    next = .string(PageCursor.encode([String(number), String(index)]))
                    break outer
                }
                items.append(MessageStore.tagged(messages[index], sessionId))
            }
        }
        if items.count == limit, next.isNull {
            // Exactly full: look once more so the last page says so with a null cursor.
            let more = try interactions.exists([
                "conversationId": .string(sessionId), "bucket": ["$gte": .int64(scanFrom)],
            ])
            if more { next = .string(PageCursor.encode([String(scanFrom), "0"])) }
        }
        // Buckets carry the owner, so only an empty page needs the session to tell 404 apart.
        if items.isEmpty,
            !(try sessions.exists(["sessionId": .string(sessionId), "userId": .objectId(user)]))
        {
            throw APIError.notFound("session")
        }
        return Reply(status: 200, ["items": .array(items), "nextCursor": next])
    }
}
