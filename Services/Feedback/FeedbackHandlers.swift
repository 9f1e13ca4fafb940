import Bus
import Core
import FoundationEssentials
import JSONKit
import MongoKit
import ServiceKit

/// `POST /api/chat/feedback` and `GET /api/chat/feedback`.
///
/// Ownership without reading the sessions service's collections: before writing, the
/// service asks the sessions service (`feedback.check-target` on `uc:cmd:sessions`, through
/// `BusRequester`) whether the conversation is the caller's, the message is in it and the
/// agent exists; its 404 is passed on as is.
struct FeedbackHandlers: Sendable {
    let feedback: MongoCollection
    let requester: BusRequester
    let outbox: FeedbackOutbox
    /// The longest the service waits for the sessions service's answer.
    static let checkTimeoutMs: Int64 = 5000
    /// Time kept back from the request's deadline, so a silent sessions service still gets a
    /// 503 to the client rather than the gateway's 504.
    static let answerMarginMs: Int64 = 400

    static let allowed: Set<String> = [
        "conversationId", "messageId", "agentId", "feedbackType", "rating", "comment", "category",
        "tags", "metadata",
    ]

    struct Input {
        var conversation = ""
        var type = ""
        var rating: Int64 = 0
        var message: String?
        var agent: String?
        var comment: String?
        var category: String?
        var tags: [String] = []
        var metadata: Document?
    }

    static func validate(_ body: Document) throws -> Input {
        var check = Validator(body, allowed: allowed)
        var input = Input()
        input.conversation =
            check.string("conversationId", required: true, maxLength: FeedbackRules.idMax) ?? ""
        input.type = check.oneOf("feedbackType", FeedbackRules.types, required: true) ?? ""
        input.rating = check.integer("rating", min: 1, max: 5, required: true) ?? 0
        input.message = check.string("messageId", maxLength: FeedbackRules.idMax)
        input.agent = check.string("agentId", maxLength: 64)
        if let agent = input.agent, !FeedbackRules.isAgentKey(agent) {
            check.fail("agentId", "must be an agent's id (24 hexadecimal digits) or slug")
        }
        input.comment = check.string(
            "comment", maxLength: FeedbackRules.commentMax, allowEmpty: true)
        input.category = check.oneOf("category", FeedbackRules.categories)
        input.tags =
            check.stringArray(
                "tags", maxItems: FeedbackRules.tagsMax, maxLength: FeedbackRules.tagMax) ?? []
        if let metadata = check.document("metadata") {
            if metadata.count > FeedbackRules.metadataKeysMax
                || JSONWriter.bytes(.document(metadata)).count > FeedbackRules.metadataBytesMax
            {
                check.fail(
                    "metadata",
                    "must have at most \(FeedbackRules.metadataKeysMax) keys and "
                        + "\(FeedbackRules.metadataBytesMax) bytes of JSON")
            } else {
                input.metadata = metadata
            }
        }
        switch input.type {
        case "message":
            if !check.has("messageId") {
                check.fail("messageId", "is required for feedbackType message")
            }
        case "agent":
            if !check.has("agentId") { check.fail("agentId", "is required for feedbackType agent") }
        default:
            break
        }
        if input.type != "message" && check.has("messageId") && !input.type.isEmpty {
            check.fail("messageId", "is only accepted with feedbackType message")
        }
        if input.type != "agent" && check.has("agentId") && !input.type.isEmpty {
            check.fail(
                "agentId",
                "is only accepted with feedbackType agent "
                    + "(other feedback takes the session's agent)"
            )
        }
        try check.check()
        return input
    }

    /// Records a rating, or replaces the caller's earlier one on the same target: 201 with
    /// the stored feedback when new, 200 when replaced.
    func create(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let input = try FeedbackHandlers.validate(try command.jsonBody())
        let target = try checkTarget(input, command: command)
        let agent: ObjectId? =
            input.type == "agent"
            ? target["agentId"]?.objectIdValue : target["sessionAgentId"]?.objectIdValue
        if input.type == "agent" && agent == nil { throw APIError.notFound("agent") }
        let key = FeedbackRules.targetKey(
            type: input.type, conversation: input.conversation, message: input.message,
            agent: agent?.hex)
        let (stored, created) = try write(
            input, key: key, agent: agent, user: user, command: command)
        return Reply(status: created ? 201 : 200, FeedbackHandlers.render(stored))
    }

    private func checkTarget(_ input: Input, command: Command) throws -> Document {
        var params = ["conversationId": input.conversation]
        if input.type == "message", let message = input.message { params["messageId"] = message }
        if input.type == "agent", let agent = input.agent { params["agentId"] = agent }
        guard
            let reply = requester.request(
                "feedback.check-target", to: "sessions", for: command, params: params,
                timeoutMs: FeedbackHandlers.checkTimeoutMs,
                marginMs: FeedbackHandlers.answerMarginMs)
        else { throw APIError.unavailable("the sessions service is not answering; retry shortly") }
        switch reply.status {
        case 200:
            return try JSONParser.parseObject(reply.body)
        case 400..<500:
            throw FeedbackHandlers.passedOn(reply)
        default:
            throw APIError.unavailable("the sessions service could not check the conversation")
        }
    }

    /// The sessions service's error, with the same status and body.
    static func passedOn(_ reply: Reply) -> APIError {
        let error = (try? JSONParser.parseObject(reply.body))?["error"]?.documentValue
        return APIError(
            status: reply.status, code: error?["code"]?.stringValue ?? "not_found",
            message: error?["message"]?.stringValue ?? "not found")
    }

    /// One document per user and target: inserted, or replaced by a compare-and-set on its
    /// `version` (retried when another change won). The rating event rides in the same write.
    private func write(
        _ input: Input, key: String, agent: ObjectId?, user: ObjectId, command: Command
    ) throws -> (Document, Bool) {
        let eventId = "fb-\(command.id)"
        for _ in 0..<10 {
            let now = Timestamp.now()
            let existing = try feedback.findOne([
                "userId": .objectId(user), "targetKey": .string(key),
            ])
            guard let existing else {
                var doc: Document = ["_id": .objectId(ObjectId())]
                for (name, value) in FeedbackHandlers.content(input, agent: agent).pairs {
                    doc[name] = value
                }
                doc["userId"] = .objectId(user)
                doc["targetKey"] = .string(key)
                doc["version"] = .int64(1)
                doc["lastEvent"] = .document(
                    FeedbackOutbox.event(id: eventId, old: nil, new: input.rating))
                doc["eventState"] = "pending"
                doc["createdAt"] = .date(now)
                doc["updatedAt"] = .date(now)
                do {
                    try feedback.insertOne(doc)
                } catch {
                    if error.kind == .duplicateKey { continue }
                    throw error
                }
                outbox.send(doc)
                return (doc, true)
            }
            if existing.value(at: "lastEvent.id")?.stringValue == eventId {
                // This very command ran before and stopped after its write: finish it.
                outbox.send(existing)
                return (existing, existing["version"]?.intValue == 1)
            }
            // An earlier change whose event never went out goes out before it is overwritten.
            outbox.send(existing)
            let version = existing["version"]?.intValue ?? 0
            var set = FeedbackHandlers.content(input, agent: agent)
            set["version"] = .int64(version + 1)
            set["lastEvent"] = .document(
                FeedbackOutbox.event(
                    id: eventId, old: existing["rating"]?.intValue, new: input.rating))
            set["eventState"] = "pending"
            // `$currentDate`, not `$set`: the stand-in stores a `$set` date as text.
            var change: Document = ["$set": .document(set), "$currentDate": ["updatedAt": true]]
            let gone = ["messageId", "agentId", "agentRef", "comment", "category", "metadata"]
                .filter {
                    set[$0] == nil && existing[$0] != nil
                }
            if !gone.isEmpty {
                change["$unset"] = .document(Document(gone.map { ($0, Value.string("")) }))
            }
            guard
                let stored = try feedback.findOneAndUpdate(
                    ["_id": existing["_id"] ?? .null, "version": .int64(version)], change)
            else { continue }
            outbox.send(stored)
            return (stored, false)
        }
        throw APIError.unavailable("the feedback is changing too fast; try again")
    }

    /// The spec's fields from the request; a replacement stores exactly these.
    static func content(_ input: Input, agent: ObjectId?) -> Document {
        var doc: Document = ["conversationId": .string(input.conversation)]
        if let message = input.message { doc["messageId"] = .string(message) }
        if let agent {
            doc["agentId"] = .objectId(agent)
            doc["agentRef"] = .string(agent.hex)
        }
        doc["feedbackType"] = .string(input.type)
        doc["rating"] = .int64(input.rating)
        if let comment = input.comment { doc["comment"] = .string(comment) }
        if let category = input.category { doc["category"] = .string(category) }
        doc["tags"] = .array(input.tags.map { .string($0) })
        if let metadata = input.metadata { doc["metadata"] = .document(metadata) }
        return doc
    }

    static func render(_ doc: Document) -> Document {
        var out = doc.removing(FeedbackRules.internalFields)
        for key in ["createdAt", "updatedAt"] {
            if let at = out[key]?.lenientDate { out[key] = .date(at) }
        }
        return out
    }

    /// The caller's feedback, newest first; filters `conversationId` and `feedbackType`.
    func list(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let query = try QueryReader(
            command, pathParams: [], allowed: ["conversationId", "feedbackType", "limit", "cursor"])
        let limit = try query.limit()
        var filter: Document = ["userId": .objectId(user)]
        if let conversation = try query.string("conversationId", maxLength: FeedbackRules.idMax) {
            filter["conversationId"] = .string(conversation)
        }
        if let type = try query.string("feedbackType", maxLength: 20) {
            guard FeedbackRules.types.contains(type) else {
                throw APIError.invalid(
                    "feedbackType", "must be one of: \(FeedbackRules.types.joined(separator: ", "))"
                )
            }
            filter["feedbackType"] = .string(type)
        }
        if let cursor = try query.string("cursor", maxLength: 600) {
            let parts = try PageCursor.decode(cursor, parts: 2)
            guard let millis = Int64(parts[0]), let last = ObjectId(hex: parts[1]) else {
                throw APIError.invalid("cursor", "is not a cursor this API returned")
            }
            let at = Value.date(Timestamp(milliseconds: millis))
            filter["$or"] = [
                ["createdAt": ["$lt": at]],
                ["createdAt": at, "_id": ["$lt": .objectId(last)]],
            ]
        }
        var page = try feedback.find(filter, sort: ["createdAt": -1, "_id": -1], limit: limit + 1)
        var next: Value = .null
        if page.count > limit {
            page.removeLast(page.count - limit)
            if let last = page.last, let at = last["createdAt"]?.lenientDate,
                let id = last["_id"]?.objectIdValue
            {
                next = .string(PageCursor.encode([String(at.milliseconds), id.hex]))
            }
        }
        let items = page.map { Value.document(FeedbackHandlers.render($0)) }
        return Reply(status: 200, ["items": .array(items), "nextCursor": next])
    }
}
