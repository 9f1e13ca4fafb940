import Bus
import Core
import Dispatch
import FoundationEssentials
import Glibc
import MongoKit
import Providers
import ServiceKit

/// `POST /api/chat/sessions/:id/messages` with `"respond": true`: stores the user's message,
/// asks the session's provider chain for the agent's answer, stores that too and answers
/// `{"message": <user message>, "reply": <assistant message>}`.
///
/// Runs on the `sessions-respond` stream with workers of its own (`RESPOND_WORKERS`), so slow
/// providers never hold up the other commands. Ids derive from the command id: a redelivered
/// command finds both messages stored and answers them again without asking anyone. When the
/// command names a chunk key the reply is published piece by piece while it is generated.
struct Responder: Sendable {
    let sessions: MongoCollection
    let interactions: MongoCollection
    let agents: MongoCollection
    let messages: MessageStore
    let config: ReplyConfig
    let chain: ProviderChain
    let logger: Logger

    static let respondFlag = Route.LongRunning(
        flag: "respond", service: "sessions-respond", type: "messages.respond")

    /// `messages.append`: a body asking for a reply that reached the plain stream (the gateway
    /// sends those to the respond stream) is answered here all the same.
    func appendOrRespond(_ command: Command) throws -> Reply {
        guard Responder.respondFlag.isAsked(by: command.body) else {
            return try messages.append(command)
        }
        return try respond(command)
    }

    func respond(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let sessionId = try pathId(command, what: "session")
        let body = try command.jsonBody()
        var check = Validator(body, allowed: MessageStore.allowed)
        let role = check.oneOf("role", SessionRules.roles, required: true)
        let content = check.string("content", required: true)
        let tokens = check.integer("tokens", min: 0, max: SessionRules.tokensMax) ?? 0
        let respond = check.bool("respond")
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
        if respond == true, let role, role != "user" {
            check.fail("role", "must be user when respond is true")
        }
        try check.check()
        guard respond == true else { return try messages.append(command) }

        let owner: Document = ["sessionId": .string(sessionId), "userId": .objectId(user)]
        guard
            let session = try sessions.findOne(
                owner, projection: ["agentId": 1, "settings": 1, "stats.messageCount": 1])
        else { throw APIError.notFound("session") }
        var agent: Document?
        if let agentId = session["agentId"]?.objectIdValue {
            agent = try agents.findOne(
                ["_id": .objectId(agentId)],
                projection: [
                    "config": 1, "providerConfig": 1, "prompt": 1, "temperature": 1, "maxTokens": 1,
                ])
        }
        let plan = try ReplyPlan.make(session: session, agent: agent, config: config)

        let publisher = ReplyChunkPublisher(
            key: command.chunkKey, address: config.redis, ttlMs: config.chunkTTLms, logger: logger)
        let messageId = "msg-\(command.id.prefix(24))"
        var message: Document = [
            "messageId": .string(messageId), "role": "user", "content": .string(content ?? ""),
            "attachments": .array(attachments),
        ]
        if tokens > 0 { message["tokens"] = .int64(tokens) }
        message["createdAt"] = .date(Timestamp.now())
        let stored = try messages.store(
            message, size: (content ?? "").utf8.count + 256, tokens: tokens, durationMs: 0,
            sessionId: sessionId, user: user, session: session)
        // TODO: a re-run of the command (redelivery, MongoDB retry) publishes its events again.
        publisher?.publish("message", stored)

        let replyId = "\(messageId)-reply"
        if let existing = try messages.find(replyId, sessionId: sessionId, user: user) {
            let result: Document = ["message": .document(stored), "reply": .document(existing)]
            publisher?.publish("done", result)
            return Reply(status: 201, result)
        }
        let window = plan.steps.map {
            config.contextTokens(provider: $0.provider, model: $0.model ?? "")
        }
        let history = try self.history(
            sessionId: sessionId, user: user, tokens: window.max() ?? config.contextTokens)
        let sink = publisher.map { PublishingSink($0) }

        switch chain.run(plan, history: history, deadline: command.deadline, sink: sink) {
        case .success(let answer):
            let reply = replyDocument(answer, id: replyId, inReplyTo: messageId)
            let storedReply = try storeReply(
                reply, answer: answer, sessionId: sessionId, user: user, session: session)
            let result: Document = ["message": .document(stored), "reply": .document(storedReply)]
            sink?.settle()
            publisher?.publish("done", result)
            return Reply(status: 201, result)
        case .failure(let failure):
            let error = failure.error
            var result = error.document
            result["message"] = .document(stored)
            var event = result
            event["status"] = .int64(Int64(error.status))
            publisher?.publish("error", event)
            return Reply(status: error.status, result)
        }
    }

    /// The assistant's message as stored: who answered, the tokens, the time and the chain.
    private func replyDocument(_ answer: ChainAnswer, id: String, inReplyTo: String) -> Document {
        let metadata: Document = [
            "provider": .string(answer.provider), "protocol": .string(answer.wire),
            "model": .string(answer.model),
            "tokensIn": .int64(Int64(answer.usage.input)),
            "tokensOut": .int64(Int64(answer.usage.output)),
            "tokenCount": .string(answer.usage.estimated ? "estimated" : "reported"),
            "durationMs": .int64(Int64(answer.durationMs)),
            "finishReason": .string(answer.finishReason),
            "inReplyTo": .string(inReplyTo),
            "context": [
                "messages": .int64(Int64(answer.window.messages.count)),
                "omitted": .int64(Int64(answer.window.omitted)),
                "tokens": .int64(Int64(answer.window.tokens)),
                "budget": .int64(Int64(answer.window.budget)),
            ],
            "attempts": .array(answer.attempts.map { .document($0.document) }),
        ]
        return [
            "messageId": .string(id), "role": "assistant", "content": .string(answer.text),
            "attachments": [], "tokens": .int64(Int64(answer.usage.total)),
            "metadata": .document(metadata), "createdAt": .date(Timestamp.now()),
        ]
    }

    /// Stores the reply, waiting out a short MongoDB outage: the answer was paid for, and a
    /// handler re-run would ask the providers again.
    private func storeReply(
        _ reply: Document, answer: ChainAnswer, sessionId: String, user: ObjectId,
        session: Document
    ) throws -> Document {
        let giveUp = Timestamp.now().milliseconds + 15_000
        var backoffMs = 200
        while true {
            do {
                return try messages.store(
                    reply, size: answer.text.utf8.count + 2048,
                    tokens: Int64(answer.usage.total), durationMs: Int64(answer.durationMs),
                    sessionId: sessionId, user: user, session: session)
            } catch let error as MongoError where error.kind == .unavailable {
                guard Timestamp.now().milliseconds + Int64(backoffMs) < giveUp else { throw error }
                logger.warning("cannot store a reply yet; retrying", [.error: error.description])
                usleep(UInt32(backoffMs * 1000))
                backoffMs = min(backoffMs * 2, 2000)
            }
        }
    }

    /// The conversation's newest messages, oldest first: whole buckets from the newest back
    /// until they hold about `tokens` (or five buckets).
    func history(sessionId: String, user: ObjectId, tokens: Int) throws -> [ChatMessage] {
        var found: [ChatMessage] = []
        var total = 0
        var before: Int64?
        for _ in 0..<5 {
            var filter: Document = [
                "conversationId": .string(sessionId), "userId": .objectId(user),
            ]
            if let before { filter["bucket"] = ["$lt": .int64(before)] }
            guard
                let bucket = try interactions.findOne(
                    filter, sort: ["bucket": -1], projection: ["messages": 1, "bucket": 1])
            else { break }
            let items = (bucket["messages"]?.arrayValue ?? []).compactMap { value -> ChatMessage? in
                guard let doc = value.documentValue, let role = doc["role"]?.stringValue,
                    SessionRules.roles.contains(role), let content = doc["content"]?.stringValue
                else { return nil }
                return ChatMessage(role: role, content: content)
            }
            found = items + found
            total += items.reduce(0) { $0 + TokenEstimate.of($1.content) }
            guard total < tokens, let number = bucket["bucket"]?.intValue else { break }
            before = number
        }
        return found
    }
}

extension MessageStore {
    /// Stores one message as `append` does and adds it to the session's `stats`; returns the
    /// stored message, or the one stored before under the same `messageId`.
    func store(
        _ message: Document, size: Int, tokens: Int64, durationMs: Int64, sessionId: String,
        user: ObjectId, session: Document
    ) throws -> Document {
        let count = session.value(at: "stats.messageCount")?.intValue ?? 0
        let target = Target(
            sessionId: sessionId, user: user, agent: session["agentId"],
            guess: count > 0 ? (count - 1) / Int64(SessionRules.bucketMessages) : nil)
        let now = message["createdAt"]?.dateValue ?? Timestamp.now()
        if let existing = try push(
            message, size: size, tokens: tokens, durationMs: durationMs, into: target, now: now)
        {
            return existing
        }
        try sessions.updateOne(
            ["sessionId": .string(sessionId), "userId": .objectId(user)],
            [
                "$inc": [
                    "stats.messageCount": 1, "stats.totalTokens": .int64(tokens),
                    "stats.durationMs": .int64(durationMs),
                ],
                "$set": ["stats.lastMessageAt": .date(now), "updatedAt": .date(now)],
            ])
        var stored = message
        stored["sessionId"] = .string(sessionId)
        return stored
    }
}

/// Publishes a reply's pieces to its chunk stream (one per command, on its worker thread).
///
/// The deltas since the last `reset` must join to the stored content: after a piece (or a
/// reset) could not be published, the next piece goes out as a `reset` and one delta with all
/// the text since the provider began, and so does the text before `done` (`settle`).
final class PublishingSink: ReplySink, @unchecked Sendable {
    private let publisher: ReplyChunkPublisher
    /// The current provider's text so far.
    private var text = ""
    /// A piece or a reset was lost: the client's text no longer matches `text`.
    private var behind = false

    init(_ publisher: ReplyChunkPublisher) { self.publisher = publisher }

    func text(_ piece: String) {
        text += piece
        if behind {
            catchUp()
        } else {
            behind = !publisher.publish("delta", ["text": .string(piece)])
        }
    }

    func reset(_ failed: ChainAttempt) {
        text = ""
        behind = !publisher.publish(
            "reset",
            [
                "provider": .string(failed.provider), "model": .string(failed.model),
                "reason": .string(failed.reason ?? "failed"),
            ])
    }

    /// Before `done`: a client that missed a piece gets the whole text once more.
    func settle() {
        if behind { catchUp() }
    }

    private func catchUp() {
        let restarted = publisher.publish(
            "reset",
            [
                "provider": "", "model": "",
                "reason": "a piece of the stream was lost; the text so far follows",
            ])
        behind = !(restarted && publisher.publish("delta", ["text": .string(text)]))
    }
}
