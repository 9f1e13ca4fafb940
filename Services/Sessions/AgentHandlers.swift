import Bus
import Core
import FoundationEssentials
import JSONKit
import MongoKit
import ServiceKit

/// The agent catalog: everyone signed in reads the active public agents; only admins (the
/// token's role) create, change and delete. A delete is soft (`deletedAt`): sessions and
/// feedback keep pointing at the agent, the seed does not bring it back, and its slug stays
/// taken.
struct AgentHandlers: Sendable {
    let agents: MongoCollection

    static let writable: Set<String> = [
        "agentId", "name", "description", "category", "avatar", "prompt", "aiModel", "temperature",
        "maxTokens", "isActive", "isPublic", "isPremium", "pricing", "features", "tags",
        "capabilities", "limitations", "examples", "config", "providerConfig", "version",
    ]
    static let hidden: Document = ["ratingEvents": 0]

    // MARK: reads

    /// Active public agents by name, slug breaking ties; filters `category` and `tag`.
    func list(_ command: Command) throws -> Reply {
        _ = try command.requireUser()
        let query = try QueryReader(
            command, pathParams: [], allowed: ["limit", "cursor", "category", "tag"])
        let limit = try query.limit()
        var filter: Document = [
            "isActive": true, "isPublic": true, "deletedAt": ["$exists": false],
        ]
        if let category = try query.string("category", maxLength: AgentRules.categoryMax) {
            filter["category"] = .string(category)
        }
        if let tag = try query.string("tag", maxLength: AgentRules.tagMax) {
            // `$in`, not equality: on the stand-in, equality on an indexed array matches nothing.
            filter["tags"] = ["$in": [.string(tag)]]
        }
        if let cursor = try query.string("cursor", maxLength: 600) {
            let parts = try PageCursor.decode(cursor, parts: 2)
            filter["$or"] = [
                ["name": ["$gt": .string(parts[0])]],
                ["name": .string(parts[0]), "agentId": ["$gt": .string(parts[1])]],
            ]
        }
        var page = try agents.find(
            filter, sort: ["name": 1, "agentId": 1], limit: limit + 1,
            projection: AgentHandlers.hidden)
        var next: Value = .null
        if page.count > limit {
            page.removeLast(page.count - limit)
            if let last = page.last, let name = last["name"]?.stringValue,
                let slug = last["agentId"]?.stringValue
            {
                next = .string(PageCursor.encode([name, slug]))
            }
        }
        let items = page.map { Value.document(AgentHandlers.render($0)) }
        return Reply(status: 200, ["items": .array(items), "nextCursor": next])
    }

    func get(_ command: Command) throws -> Reply {
        _ = try command.requireUser()
        _ = try QueryReader(command, pathParams: ["agentId"], allowed: [])
        let agent = try visible(command)
        return Reply(status: 200, AgentHandlers.render(agent))
    }

    /// The agent the path names, if the caller may see it (admins see inactive and private
    /// ones too; nobody sees a deleted one). 404 otherwise.
    func visible(_ command: Command, param: String = "agentId") throws -> Document {
        let key = try pathId(command, param, what: "agent")
        guard let agent = try find(key, role: command.role) else {
            throw APIError.notFound("agent")
        }
        return agent
    }

    /// Looks an agent up by slug or by 24-hex id, with the visibility rules of `role`.
    func find(_ key: String, role: String) throws(MongoError) -> Document? {
        guard var filter = AgentHandlers.filter(for: key) else { return nil }
        filter["deletedAt"] = ["$exists": false]
        if role != "admin" {
            filter["isActive"] = true
            filter["isPublic"] = true
        }
        return try agents.findOne(filter, projection: AgentHandlers.hidden)
    }

    static func filter(for key: String) -> Document? {
        if let id = ObjectId(hex: key) { return ["_id": .objectId(id)] }
        guard AgentRules.isSlug(key) else { return nil }
        return ["agentId": .string(key)]
    }

    // MARK: writes (admins only)

    static func requireAdmin(_ command: Command) throws -> ObjectId {
        let user = try command.requireUser()
        guard command.role == "admin" else {
            throw APIError.forbidden("only administrators may change the agent catalog")
        }
        return user
    }

    func create(_ command: Command) throws -> Reply {
        let admin = try AgentHandlers.requireAdmin(command)
        let body = try command.jsonBody()
        var check = Validator(body, allowed: AgentHandlers.writable)
        var slug: String?
        if let value = check.string("agentId", required: true) {
            if AgentRules.isSlug(value) {
                slug = value
            } else {
                check.fail(
                    "agentId",
                    "must be 2 to 64 lowercase letters, digits or dashes, start with a letter, "
                        + "and not be 24 hexadecimal digits")
            }
        }
        let fields = AgentValidation.fields(&check, creating: true)
        try check.check()

        let now = Timestamp.now()
        var doc = AgentValidation.defaults(slug: slug ?? "", creator: admin.hex)
        for (path, value) in fields { doc.set(path: path, value) }
        doc["stats"] = .document(AgentRules.zeroStats)
        doc["ratingSum"] = .int64(0)
        doc["ratingEvents"] = []
        doc["createdByCommand"] = .string(command.id)
        doc["createdAt"] = .date(now)
        doc["updatedAt"] = .date(now)
        do {
            try agents.insertOne(doc)
        } catch {
            guard error.kind == .duplicateKey else { throw error }
            // A redelivered create answers what the first delivery stored.
            if let existing = try agents.findOne(
                ["agentId": .string(slug ?? "")], projection: AgentHandlers.hidden),
                existing["createdByCommand"]?.stringValue == command.id
            {
                return Reply(status: 201, AgentHandlers.render(existing))
            }
            throw APIError.conflict(
                "an agent with this agentId exists (deleted ones keep their slug)")
        }
        return Reply(status: 201, AgentHandlers.render(doc))
    }

    /// A partial update: nested objects merge key by key; arrays are replaced.
    func update(_ command: Command) throws -> Reply {
        _ = try AgentHandlers.requireAdmin(command)
        let key = try pathId(command, "agentId", what: "agent")
        let body = try command.jsonBody()
        var check = Validator(body, allowed: AgentHandlers.writable)
        if check.has("agentId") { check.fail("agentId", "cannot be changed") }
        let fields = AgentValidation.fields(&check, creating: false)
        try check.check()
        guard var filter = AgentHandlers.filter(for: key) else { throw APIError.notFound("agent") }
        filter["deletedAt"] = ["$exists": false]
        var change: Document = ["$currentDate": ["updatedAt": true]]
        if !fields.isEmpty { change["$set"] = .document(Document(fields)) }
        guard
            let updated = try agents.findOneAndUpdate(
                filter, change, projection: AgentHandlers.hidden)
        else { throw APIError.notFound("agent") }
        return Reply(status: 200, AgentHandlers.render(updated))
    }

    func delete(_ command: Command) throws -> Reply {
        _ = try AgentHandlers.requireAdmin(command)
        let key = try pathId(command, "agentId", what: "agent")
        guard var filter = AgentHandlers.filter(for: key) else { throw APIError.notFound("agent") }
        filter["deletedAt"] = ["$exists": false]
        guard
            let deleted = try agents.findOneAndUpdate(
                filter,
                [
                    "$set": ["isActive": false, "isPublic": false],
                    "$currentDate": ["deletedAt": true, "updatedAt": true],
                ], projection: ["agentId": 1])
        else { throw APIError.notFound("agent") }
        return Reply(status: 200, ["agentId": deleted["agentId"] ?? .null, "deleted": true])
    }

    // MARK: output

    /// The API form: `id` (the ObjectId sessions refer to) first, no internal fields, booleans
    /// as booleans, and the average rating from the exact sum and count.
    static func render(_ doc: Document) -> Document {
        var out: Document = ["id": doc["_id"]?.objectIdValue.map { .string($0.hex) } ?? .null]
        for pair in doc.pairs where !AgentRules.internalFields.contains(pair.key) {
            out.append(pair.key, pair.value)
        }
        for key in ["isActive", "isPublic", "isPremium"] {
            if let flag = out[key]?.boolValue { out[key] = .bool(flag) }
        }
        for key in ["createdAt", "updatedAt"] {
            if let at = out[key]?.lenientDate { out[key] = .date(at) }
        }
        if var stats = out["stats"]?.documentValue {
            let count = stats["totalRatings"]?.intValue ?? 0
            let sum = doc["ratingSum"]?.doubleValue ?? 0
            if count > 0 { stats["averageRating"] = .double(Ratings.round2(sum / Double(count))) }
            out["stats"] = .document(stats)
        }
        return out
    }
}

enum Ratings {
    static func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}

/// Field rules of an agent document, shared by create and update.
enum AgentValidation {
    static func defaults(slug: String, creator: String) -> Document {
        [
            "_id": .objectId(ObjectId()),
            "agentId": .string(slug), "name": "", "description": "", "category": "general",
            "isActive": true, "isPublic": true, "isPremium": false,
            "temperature": .double(0.7), "maxTokens": .int64(2000),
            "pricing": ["daily": .double(0), "weekly": .double(0), "monthly": .double(0)],
            "features": [], "tags": [], "capabilities": [], "limitations": [], "examples": [],
            "config": [:],
            "providerConfig": ["fallbackProviders": [], "personalityMatch": [:]],
            "creator": .string(creator), "version": "1.0.0",
        ]
    }

    /// Checks every writable field present and returns (dotted path, value) pairs to store.
    static func fields(_ check: inout Validator, creating: Bool) -> [(String, Value)] {
        var out: [(String, Value)] = []
        func text(_ key: String, _ max: Int, required: Bool = false, empty: Bool = false) {
            if let value = check.string(key, required: required, maxLength: max, allowEmpty: empty)
            {
                out.append((key, .string(value)))
            }
        }
        text("name", AgentRules.nameMax, required: creating)
        text("description", AgentRules.descriptionMax, empty: true)
        text("category", AgentRules.categoryMax)
        text("avatar", AgentRules.avatarMax)
        text("prompt", AgentRules.promptMax, empty: true)
        text("aiModel", AgentRules.modelMax)
        text("version", AgentRules.versionMax)
        if let value = check.number("temperature", min: 0, max: 2) {
            out.append(("temperature", .double(value)))
        }
        if let value = check.integer("maxTokens", min: 1, max: 4000) {
            out.append(("maxTokens", .int64(value)))
        }
        for key in ["isActive", "isPublic", "isPremium"] {
            if let value = check.bool(key) { out.append((key, .bool(value))) }
        }
        for key in ["features", "capabilities", "limitations"] {
            if let items = check.stringArray(
                key, maxItems: AgentRules.listItems, maxLength: AgentRules.listItemMax)
            {
                out.append((key, .array(items.map { .string($0) })))
            }
        }
        if let tags = check.stringArray(
            "tags", maxItems: AgentRules.tagsMax, maxLength: AgentRules.tagMax)
        {
            out.append(("tags", .array(tags.map { .string($0) })))
        }
        if let pricing = check.document("pricing") {
            var inner = Validator(
                pricing, allowed: ["daily", "weekly", "monthly"], prefix: "pricing")
            for key in ["daily", "weekly", "monthly"] {
                if let value = inner.number(key, min: 0, max: AgentRules.priceMax) {
                    out.append(("pricing.\(key)", .double(value)))
                }
            }
            check.merge(inner)
        }
        if let value = check.body["examples"] {
            if let examples = examples(value, &check) { out.append(("examples", .array(examples))) }
        }
        if let config = check.document("config") {
            var inner = Validator(
                config, allowed: ["systemPrompt", "personality", "tone"], prefix: "config")
            if let value = inner.string(
                "systemPrompt", maxLength: AgentRules.promptMax, allowEmpty: true)
            {
                out.append(("config.systemPrompt", .string(value)))
            }
            for key in ["personality", "tone"] {
                if let value = inner.string(key, maxLength: AgentRules.textMax, allowEmpty: true) {
                    out.append(("config.\(key)", .string(value)))
                }
            }
            check.merge(inner)
        }
        if let provider = check.document("providerConfig") {
            out += providerConfig(provider, &check)
        }
        return out
    }

    static func examples(_ value: Value, _ check: inout Validator) -> [Value]? {
        guard case .array(let items) = value, items.count <= AgentRules.examplesMax else {
            check.fail("examples", "must be an array of at most \(AgentRules.examplesMax) examples")
            return nil
        }
        var examples: [Value] = []
        for (index, item) in items.enumerated() {
            guard case .document(let doc) = item else {
                check.fail("examples[\(index)]", "must be an object with input and output")
                return nil
            }
            var inner = Validator(doc, allowed: ["input", "output"], prefix: "examples[\(index)]")
            let input = inner.string("input", required: true, maxLength: AgentRules.exampleMax)
            let output = inner.string("output", required: true, maxLength: AgentRules.exampleMax)
            check.merge(inner)
            if let input, let output {
                examples.append(["input": .string(input), "output": .string(output)])
            }
        }
        return examples.count == items.count ? examples : nil
    }

    static func providerConfig(_ body: Document, _ check: inout Validator) -> [(String, Value)] {
        let prefix = "providerConfig"
        var inner = Validator(
            body,
            allowed: [
                "primaryProvider", "primaryModel", "fallbackProviders", "personalityMatch",
                "temperature",
                "maxTokens", "systemPrompt",
            ], prefix: prefix)
        var out: [(String, Value)] = []
        if let value = inner.oneOf("primaryProvider", SessionRules.providers) {
            out.append(("\(prefix).primaryProvider", .string(value)))
        }
        if let value = inner.string("primaryModel", maxLength: AgentRules.modelMax) {
            out.append(("\(prefix).primaryModel", .string(value)))
        }
        if let value = inner.number("temperature", min: 0, max: 2) {
            out.append(("\(prefix).temperature", .double(value)))
        }
        if let value = inner.integer("maxTokens", min: 1, max: 4000) {
            out.append(("\(prefix).maxTokens", .int64(value)))
        }
        if let value = inner.string(
            "systemPrompt", maxLength: AgentRules.promptMax, allowEmpty: true)
        {
            out.append(("\(prefix).systemPrompt", .string(value)))
        }
        if let match = inner.document("personalityMatch") {
            var traits = Validator(
                match, allowed: Set(AgentRules.traits), prefix: "\(prefix).personalityMatch")
            for trait in AgentRules.traits {
                if let value = traits.integer(trait, min: 0, max: 10) {
                    out.append(("\(prefix).personalityMatch.\(trait)", .int64(value)))
                }
            }
            inner.merge(traits)
        }
        if let value = body["fallbackProviders"] {
            if let list = fallbacks(value, &inner) {
                out.append(("\(prefix).fallbackProviders", .array(list)))
            }
        }
        check.merge(inner)
        return out
    }

    static func fallbacks(_ value: Value, _ check: inout Validator) -> [Value]? {
        guard case .array(let items) = value, items.count <= AgentRules.fallbackMax else {
            check.fail(
                "fallbackProviders",
                "must be an array of at most \(AgentRules.fallbackMax) providers")
            return nil
        }
        var list: [Value] = []
        for (index, item) in items.enumerated() {
            let prefix = "providerConfig.fallbackProviders[\(index)]"
            guard case .document(let doc) = item else {
                check.fail("fallbackProviders[\(index)]", "must be an object")
                return nil
            }
            var inner = Validator(doc, allowed: ["provider", "model", "priority"], prefix: prefix)
            let provider = inner.oneOf("provider", SessionRules.providers, required: true)
            let model = inner.string("model", required: true, maxLength: AgentRules.modelMax)
            let priority = inner.integer("priority", min: 1, max: 100, required: true)
            check.merge(inner)
            if let provider, let model, let priority {
                list.append([
                    "provider": .string(provider), "model": .string(model),
                    "priority": .int64(priority),
                ])
            }
        }
        return list.count == items.count ? list : nil
    }
}

extension Document {
    /// Sets a value at a dotted path, creating the objects on the way.
    mutating func set(path: String, _ value: Value) {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            self[path] = value
            return
        }
        var inner = self[parts[0]]?.documentValue ?? Document()
        inner.set(path: parts[1], value)
        self[parts[0]] = .document(inner)
    }
}
