import Bus
import Core
import MongoKit
import ServiceKit

/// Create, read, update, delete and list of `chat_sessions`, always scoped to the caller.
struct SessionHandlers: Sendable {
    let sessions: MongoCollection
    let interactions: MongoCollection
    let messages: MessageStore
    let agents: MongoCollection

    /// A session may only name an agent of the catalog that is active and public.
    func checkAgent(_ agentId: ObjectId?) throws {
        guard let agentId else { return }
        let usable: Document = [
            "_id": .objectId(agentId), "isActive": true, "isPublic": true,
            "deletedAt": ["$exists": false],
        ]
        guard try agents.exists(usable) else {
            throw APIError.invalid("agentId", "names no active public agent")
        }
    }

    /// Fields a client sends on create and update; everything else is refused.
    static let writable: Set<String> = [
        "name", "description", "agentId", "tags", "settings", "isActive", "isArchived",
    ]
    static let settingsFields: Set<String> = [
        "temperature", "maxTokens", "mode", "provider", "model",
    ]

    func create(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let body = try command.jsonBody()
        var check = Validator(body, allowed: SessionHandlers.writable)
        let name = check.string("name", required: true, maxLength: SessionRules.nameMax)
        let fields = SessionHandlers.validateOptional(&check)
        try check.check()
        try checkAgent(fields.agentId)

        let now = Timestamp.now()
        let sessionId = "session-\(command.id.prefix(24))"
        var settings = SessionRules.defaultSettings
        for pair in fields.settings.pairs { settings[pair.key] = pair.value }
        let archived = fields.isArchived ?? false
        var doc: Document = [
            "_id": .objectId(ObjectId()), "sessionId": .string(sessionId),
            "userId": .objectId(user),
        ]
        if let agentId = fields.agentId { doc["agentId"] = .objectId(agentId) }
        doc["name"] = .string(name ?? "")
        if let description = fields.description { doc["description"] = .string(description) }
        doc["isActive"] = .bool(fields.isActive ?? true)
        doc["isArchived"] = .bool(archived)
        doc["tags"] = .array((fields.tags ?? []).map { .string($0) })
        doc["settings"] = .document(settings)
        doc["stats"] = [
            "messageCount": .int64(0), "totalTokens": .int64(0), "durationMs": .int64(0),
        ]
        doc["createdAt"] = .date(now)
        doc["updatedAt"] = .date(now)
        if archived { doc["archivedAt"] = .date(now) }
        do {
            try sessions.insertOne(doc)
        } catch {
            // A redelivered create: answer with what the first delivery stored.
            guard error.kind == .duplicateKey, let existing = try find(sessionId, user: user) else {
                throw error
            }
            return Reply(status: 201, existing)
        }
        return Reply(status: 201, doc.removing(["_id"]))
    }

    struct OptionalFields {
        var description: String?
        var agentId: ObjectId?
        var tags: [String]?
        var settings = Document()
        var isActive: Bool?
        var isArchived: Bool?
    }

    static func validateOptional(_ check: inout Validator) -> OptionalFields {
        var fields = OptionalFields()
        fields.description = check.string(
            "description", maxLength: SessionRules.descriptionMax, allowEmpty: true)
        fields.agentId = check.objectId("agentId")
        fields.tags = check.stringArray(
            "tags", maxItems: SessionRules.tagsMax, maxLength: SessionRules.tagMax)
        fields.isActive = check.bool("isActive")
        fields.isArchived = check.bool("isArchived")
        if let settings = check.document("settings") {
            var inner = Validator(settings, allowed: settingsFields, prefix: "settings")
            if let t = inner.number("temperature", min: 0, max: 2) {
                fields.settings["temperature"] = .double(t)
            }
            if let m = inner.integer("maxTokens", min: 1, max: 4000) {
                fields.settings["maxTokens"] = .int64(m)
            }
            if let mode = inner.oneOf("mode", SessionRules.modes) {
                fields.settings["mode"] = .string(mode)
            }
            if let provider = inner.oneOf("provider", SessionRules.providers) {
                fields.settings["provider"] = .string(provider)
            }
            if let model = inner.string("model", maxLength: 100) {
                fields.settings["model"] = .string(model)
            }
            check.merge(inner)
        }
        return fields
    }

    func find(_ sessionId: String, user: ObjectId) throws(MongoError) -> Document? {
        try sessions.findOne(["sessionId": .string(sessionId), "userId": .objectId(user)])
            .map(SessionHandlers.view)
    }

    /// A session as the API shows it: without MongoDB's `_id` (dropped here rather than by a
    /// projection, which costs the stand-in a third of a list query), and with booleans: the
    /// stand-in hands back one written by `$set` as 0 or 1 (found by the contract test).
    static func view(_ session: Document) -> Document {
        var out = session
        out["_id"] = nil
        for key in ["isActive", "isArchived"] {
            if let flag = out[key]?.boolValue { out[key] = .bool(flag) }
        }
        return out
    }

    func get(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let sessionId = try pathId(command, what: "session")
        _ = try QueryReader(command, allowed: [])
        guard var session = try find(sessionId, user: user) else {
            throw APIError.notFound("session")
        }
        session["messages"] = .array(
            try messages.newest(sessionId: sessionId, user: user, count: 50))
        return Reply(status: 200, session)
    }

    /// A partial update: fields left out keep their values, `settings` merge key by key.
    func update(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let sessionId = try pathId(command, what: "session")
        let body = try command.jsonBody()
        var check = Validator(body, allowed: SessionHandlers.writable)
        let name = check.string("name", maxLength: SessionRules.nameMax)
        let fields = SessionHandlers.validateOptional(&check)
        try check.check()
        try checkAgent(fields.agentId)

        let now = Timestamp.now()
        var set: Document = ["updatedAt": .date(now)]
        var unset = Document()
        if let name { set["name"] = .string(name) }
        if let description = fields.description { set["description"] = .string(description) }
        if let agentId = fields.agentId { set["agentId"] = .objectId(agentId) }
        if let tags = fields.tags { set["tags"] = .array(tags.map { .string($0) }) }
        if let isActive = fields.isActive { set["isActive"] = .bool(isActive) }
        if let isArchived = fields.isArchived {
            set["isArchived"] = .bool(isArchived)
            if isArchived { set["archivedAt"] = .date(now) } else { unset["archivedAt"] = "" }
        }
        for pair in fields.settings.pairs { set["settings.\(pair.key)"] = pair.value }
        var change: Document = ["$set": .document(set)]
        if !unset.isEmpty { change["$unset"] = .document(unset) }
        guard
            let updated = try sessions.findOneAndUpdate(
                ["sessionId": .string(sessionId), "userId": .objectId(user)], change)
        else { throw APIError.notFound("session") }
        return Reply(status: 200, SessionHandlers.view(updated))
    }

    /// Removes the session, then its messages; both only for the owner.
    func delete(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let sessionId = try pathId(command, what: "session")
        let removed = try sessions.deleteOne([
            "sessionId": .string(sessionId), "userId": .objectId(user),
        ])
        try interactions.deleteMany([
            "conversationId": .string(sessionId), "userId": .objectId(user),
        ])
        guard removed > 0 else { throw APIError.notFound("session") }
        return Reply(status: 200, ["sessionId": .string(sessionId), "deleted": true])
    }

    /// Newest `updatedAt` first, `sessionId` breaking ties; the cursor is the last item returned.
    func list(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let query = try QueryReader(
            command, pathParams: [],
            allowed: ["limit", "cursor", "isActive", "isArchived", "tag", "agentId"])
        let limit = try query.limit()
        var filter: Document = ["userId": .objectId(user)]
        if let active = try query.flag("isActive") { filter["isActive"] = .bool(active) }
        if let archived = try query.flag("isArchived") { filter["isArchived"] = .bool(archived) }
        if let tag = try query.string("tag", maxLength: SessionRules.tagMax) {
            filter["tags"] = ["$in": [.string(tag)]]
        }
        if let agent = try query.objectId("agentId") { filter["agentId"] = .objectId(agent) }
        let order = NewestFirst(idField: "sessionId")
        try order.apply(cursor: try query.string("cursor", maxLength: 600), to: &filter)
        let found = try sessions.find(
            filter, sort: order.sort, limit: limit + 1)
        let (page, next) = order.page(found, limit: limit)
        let items = page.map { Value.document(SessionHandlers.view($0)) }
        return Reply(status: 200, ["items": .array(items), "nextCursor": next])
    }
}
