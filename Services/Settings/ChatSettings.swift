import Bus
import Core
import MongoKit
import ServiceKit

/// The rules of `chat_settings` (spec section 3): one document per user.
///
/// Extension to the spec: the model defaults a client keeps with its settings live at the
/// top level of the same document, with the rules of a session's `settings`:
/// `temperature` (a number from 0 to 2, default 0.7), `maxTokens` (an integer from 1 to 4000,
/// default 2000), `mode` (professional, balanced, creative, fast or coding; default balanced),
/// `provider` (openai, anthropic, gemini, cohere, mistral, xai, huggingface or groq; default
/// mistral) and `model` (a name of at most 100 characters; no default).
///
/// `GET` answers the stored values over the defaults, so a user who never saved gets exactly
/// the defaults (with `createdAt` and `updatedAt` null) and nothing is stored until a `PUT`.
/// `PUT` is a partial update: fields left out keep their values, the nested objects
/// (`notifications`, `quickActions`, `privacy`, `accessibility`) merge key by key, unknown
/// fields and wrong types are 400s naming the field, and `null` clears only `defaultAgent`
/// and `model`.
enum ChatSettingsRules {
    static let themes = ["light", "dark", "auto", "neural"]
    static let fontSizes = ["small", "medium", "large"]
    static let modes = ["professional", "balanced", "creative", "fast", "coding"]
    static let providers = [
        "openai", "anthropic", "gemini", "cohere", "mistral", "xai", "huggingface", "groq",
    ]
    static let favoritesMax = 50
    static let actionIdMax = 100
    static let modelMax = 100

    /// The boolean keys of each nested object that holds only booleans.
    static let flagGroups: [(String, [String])] = [
        ("notifications", ["messageReceived", "agentResponses", "systemUpdates"]),
        ("privacy", ["saveHistory", "allowAnalytics", "shareConversations"]),
        ("accessibility", ["highContrast", "reducedMotion", "screenReader"]),
    ]

    static let writable: Set<String> = [
        "theme", "fontSize", "notifications", "autoSave", "defaultAgent", "quickActions",
        "privacy", "accessibility", "temperature", "maxTokens", "mode", "provider", "model",
    ]

    /// The defaults, in the order every answer lists the fields.
    static let defaults: Document = [
        "theme": "auto",
        "fontSize": "medium",
        "notifications": ["messageReceived": true, "agentResponses": true, "systemUpdates": false],
        "autoSave": true,
        "defaultAgent": .null,
        "quickActions": ["enabled": true, "favorites": .array([])],
        "privacy": ["saveHistory": true, "allowAnalytics": true, "shareConversations": false],
        "accessibility": ["highContrast": false, "reducedMotion": false, "screenReader": false],
        "temperature": .double(0.7),
        "maxTokens": .int64(2000),
        "mode": "balanced",
        "provider": "mistral",
        "model": .null,
    ]

    /// What a valid `PUT` body changes: dotted `$set` paths, paths to `$unset`, and the
    /// favorites, which the caller must still check against the quick actions.
    struct Change: Equatable {
        var set = Document()
        var unset: [String] = []
        var favorites: [String]?

        var isEmpty: Bool { self.set.isEmpty && unset.isEmpty }
    }

    /// Checks a `PUT` body and turns it into a change; 400 naming every bad field.
    static func change(from body: Document) throws -> Change {
        var check = Validator(body, allowed: writable)
        var change = Change()
        if let theme = check.oneOf("theme", themes) { change.set["theme"] = .string(theme) }
        if let size = check.oneOf("fontSize", fontSizes) { change.set["fontSize"] = .string(size) }
        if let autoSave = check.bool("autoSave") { change.set["autoSave"] = .bool(autoSave) }
        if body["defaultAgent"] == Value.null {
            change.unset.append("defaultAgent")
        } else if let agent = check.objectId("defaultAgent") {
            change.set["defaultAgent"] = .objectId(agent)
        }
        for (group, keys) in flagGroups {
            guard let inner = check.document(group) else { continue }
            var nested = Validator(inner, allowed: Set(keys), prefix: group)
            for key in keys {
                if let flag = nested.bool(key) { change.set["\(group).\(key)"] = .bool(flag) }
            }
            check.merge(nested)
        }
        if let inner = check.document("quickActions") {
            var nested = Validator(
                inner, allowed: ["enabled", "favorites"], prefix: "quickActions")
            if let enabled = nested.bool("enabled") {
                change.set["quickActions.enabled"] = .bool(enabled)
            }
            if let favorites = nested.stringArray(
                "favorites", maxItems: favoritesMax, maxLength: actionIdMax)
            {
                var unique: [String] = []
                for id in favorites where !unique.contains(id) { unique.append(id) }
                change.favorites = unique
                change.set["quickActions.favorites"] = .array(unique.map { .string($0) })
            }
            check.merge(nested)
        }
        if let t = check.number("temperature", min: 0, max: 2) {
            change.set["temperature"] = .double(t)
        }
        if let m = check.integer("maxTokens", min: 1, max: 4000) {
            change.set["maxTokens"] = .int64(m)
        }
        if let mode = check.oneOf("mode", modes) { change.set["mode"] = .string(mode) }
        if let provider = check.oneOf("provider", providers) {
            change.set["provider"] = .string(provider)
        }
        if body["model"] == Value.null {
            change.unset.append("model")
        } else if let model = check.string("model", maxLength: modelMax) {
            change.set["model"] = .string(model)
        }
        try check.check()
        return change
    }

    /// The answer for a user: stored values over the defaults, each in its default's type
    /// (the stand-in may hand booleans back as integers), never `_id`.
    static func render(_ stored: Document?, user: ObjectId) -> Document {
        var out: Document = ["userId": .objectId(user)]
        for pair in defaults.pairs {
            out[pair.key] = coerce(stored?[pair.key], like: pair.value)
        }
        out["createdAt"] = Stored.date(stored?["createdAt"])
        out["updatedAt"] = Stored.date(stored?["updatedAt"])
        return out
    }

    /// A stored value in the type of its template; the template when it is absent or odd.
    static func coerce(_ value: Value?, like template: Value) -> Value {
        guard let value else { return template }
        switch template {
        case .bool:
            return value.boolValue.map { .bool($0) } ?? template
        case .double:
            return value.strictNumber.map { .double($0) } ?? template
        case .int32, .int64:
            return value.intValue.map { .int64($0) } ?? template
        case .string:
            return value.stringValue.map { .string($0) } ?? template
        case .array:
            return .array((value.arrayValue ?? []).filter { $0.stringValue != nil })
        case .document(let fields):
            var out = Document()
            for pair in fields.pairs {
                out[pair.key] = coerce(value.documentValue?[pair.key], like: pair.value)
            }
            return .document(out)
        case .null:
            switch value {
            case .objectId, .string: return value
            default: return .null
            }
        default:
            return template
        }
    }
}

/// `GET` and `PUT /api/chat/settings`, always for the caller's own document.
struct ChatSettingsHandlers: Sendable {
    let settings: MongoCollection
    let quickActions: QuickActionHandlers
    let agents: AgentCheck

    func get(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        _ = try QueryReader(command, pathParams: [], allowed: [])
        let stored = try settings.findOne(["userId": .objectId(user)])
        return Reply(status: 200, try render(stored, for: command, checked: nil))
    }

    /// The answer for a stored document. Favorites list only actions still usable: one
    /// deleted or deactivated since it was chosen is left out (the stored list keeps it until
    /// the next save of the favorites). The default agent is `null` once the agent is deleted
    /// or hidden from the caller; when the catalog does not answer at once, the stored one is
    /// shown.
    /// `checked`: favorites and default agent this request has just found usable, so they need
    /// no second lookup.
    private func render(
        _ stored: Document?, for command: Command, checked: ChatSettingsRules.Change?
    ) throws -> Document {
        let user = try command.requireUser()
        var out = ChatSettingsRules.render(stored, user: user)
        if let agent = out["defaultAgent"]?.objectIdValue,
            checked?.set["defaultAgent"]?.objectIdValue != agent,
            agents.usabilityForRead(of: agent, by: command) == .gone
        {
            out["defaultAgent"] = .null
        }
        guard var quick = out["quickActions"]?.documentValue,
            let favorites = quick["favorites"]?.arrayValue, !favorites.isEmpty
        else { return out }
        let ids = favorites.compactMap(\.stringValue)
        if let checked = checked?.favorites, checked == ids { return out }
        quick["favorites"] = .array(try quickActions.usable(ids, by: user).map { .string($0) })
        out["quickActions"] = .document(quick)
        return out
    }

    /// One atomic update of the caller's document; on a first save, an insert of the whole
    /// document. Two first saves racing: the unique `userId` index refuses the second
    /// insert, which then applies its update to the document the first one made. (No upsert:
    /// the stand-in ignores `$setOnInsert` in an upserting findAndModify.)
    func update(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        _ = try QueryReader(command, pathParams: [], allowed: [])
        let change = try ChatSettingsRules.change(from: try command.jsonBody())
        if let favorites = change.favorites {
            try quickActions.requireUsable(favorites, by: user, field: "quickActions.favorites")
        }
        if let agent = change.set["defaultAgent"]?.objectIdValue {
            try agents.requireUsable(agent, by: command, field: "defaultAgent")
        }
        guard !change.isEmpty else { return try get(command) }
        let stored = try save(change, user: user, now: Timestamp.now())
        return Reply(status: 200, try render(stored, for: command, checked: change))
    }

    private func save(
        _ change: ChatSettingsRules.Change, user: ObjectId, now: Timestamp
    ) throws(MongoError) -> Document? {
        let filter: Document = ["userId": .objectId(user)]
        var set = change.set
        set["updatedAt"] = .date(now)
        var update: Document = ["$set": .document(set)]
        if !change.unset.isEmpty {
            update["$unset"] = .document(Document(change.unset.map { ($0, Value.string("")) }))
        }
        if let updated = try settings.findOneAndUpdate(filter, update) { return updated }
        var doc: Document = ["_id": .objectId(ObjectId()), "userId": .objectId(user)]
        for pair in Stored.expand(change.set).pairs { doc[pair.key] = pair.value }
        doc["createdAt"] = .date(now)
        doc["updatedAt"] = .date(now)
        do {
            try settings.insertOne(doc)
            return doc
        } catch {
            guard error.kind == .duplicateKey else { throw error }
            return try settings.findOneAndUpdate(filter, update)
        }
    }
}
