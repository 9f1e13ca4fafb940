import Bus
import Core
import Crypt
import MongoKit
import ServiceKit

/// The rules of `chat_quick_actions` (spec section 4) and the default set the service seeds.
///
/// Who sees and changes what: every user sees the active defaults and their own actions.
/// A user changes or deletes only their own actions; an admin changes or deletes any.
/// A default changed or deleted by a non-admin is 403 (defaults are visible to everyone,
/// so that reveals nothing); another user's action is 404, exactly as if it did not exist.
enum QuickActionRules {
    static let categories = ["Learning", "Creative", "Technical", "Utility", "General"]
    static let labelMax = 50
    static let promptMax = 500
    static let iconMax = 100
    static let sorts = ["usage", "label"]

    struct Seed {
        let actionId: String
        let label: String
        let prompt: String
        let category: String
        let icon: String
    }

    static let defaults: [Seed] = [
        Seed(
            actionId: "explain", label: "Explain this",
            prompt: "Please explain this in simple terms: ", category: "Learning",
            icon: "AcademicCapIcon"),
        Seed(
            actionId: "summarize", label: "Summarize",
            prompt: "Please summarize the key points of this: ", category: "Utility",
            icon: "DocumentTextIcon"),
        Seed(
            actionId: "code", label: "Write code",
            prompt: "Please write clean, commented code for this: ", category: "Technical",
            icon: "CodeBracketIcon"),
        Seed(
            actionId: "translate", label: "Translate",
            prompt: "Please translate this into English: ", category: "Utility",
            icon: "LanguageIcon"),
        Seed(
            actionId: "brainstorm", label: "Brainstorm ideas",
            prompt: "Please brainstorm creative ideas about this: ", category: "Creative",
            icon: "LightBulbIcon"),
        Seed(
            actionId: "proofread", label: "Proofread",
            prompt: "Please proofread this and fix grammar and spelling: ", category: "General",
            icon: "PencilSquareIcon"),
    ]

    /// The actions a user may see: the defaults and their own.
    static func visible(to user: ObjectId) -> Value {
        [["isDefault": .storedTrue], ["createdBy": .objectId(user)]]
    }

    /// The fields of a create (all required) or an update (all optional, plus `isActive`).
    static func fields(_ body: Document, creating: Bool) throws -> Document {
        var allowed: Set<String> = ["label", "prompt", "category", "icon"]
        if !creating { allowed.insert("isActive") }
        var check = Validator(body, allowed: allowed)
        var fields = Document()
        if let label = check.string("label", required: creating, maxLength: labelMax) {
            fields["label"] = .string(label)
        }
        if let prompt = check.string("prompt", required: creating, maxLength: promptMax) {
            fields["prompt"] = .string(prompt)
        }
        if let category = check.oneOf("category", categories, required: creating) {
            fields["category"] = .string(category)
        }
        if let icon = check.string("icon", required: creating, maxLength: iconMax) {
            fields["icon"] = .string(icon)
        }
        if !creating, let active = check.bool("isActive") { fields["isActive"] = .bool(active) }
        try check.check()
        return fields
    }

    /// The public form: fixed field order, booleans and counts in their types, no `_id`.
    static func render(_ doc: Document) -> Document {
        var out: Document = ["actionId": doc["actionId"] ?? .null]
        for key in ["label", "prompt", "category", "icon"] {
            out[key] = .string(doc[key]?.stringValue ?? "")
        }
        out["isDefault"] = .bool(doc["isDefault"]?.boolValue ?? false)
        out["isActive"] = .bool(doc["isActive"]?.boolValue ?? true)
        out["usageCount"] = .int64(doc["usageCount"]?.intValue ?? 0)
        out["createdBy"] = doc["createdBy"]?.objectIdValue.map { .objectId($0) } ?? .null
        out["createdAt"] = Stored.date(doc["createdAt"])
        out["updatedAt"] = Stored.date(doc["updatedAt"])
        return out
    }
}

/// List, create, update, delete and use of quick actions.
struct QuickActionHandlers: Sendable {
    let actions: MongoCollection

    /// Inserts each default that is missing; never overwrites one (an admin's edits, usage
    /// counts and deactivations survive restarts). Safe when replicas start together: the
    /// unique `actionId` skips what another replica inserted first.
    @discardableResult
    func seedDefaults() throws(MongoError) -> Int {
        let now = Value.date(Timestamp.now())
        let documents: [Document] = QuickActionRules.defaults.map { seed in
            [
                "_id": .objectId(ObjectId()), "actionId": .string(seed.actionId),
                "label": .string(seed.label), "prompt": .string(seed.prompt),
                "category": .string(seed.category), "icon": .string(seed.icon),
                "isDefault": true, "isActive": true, "usageCount": .int64(0),
                "createdAt": now, "updatedAt": now,
            ]
        }
        return try actions.insertMany(documents, ordered: false)
    }

    /// The ids, in their order, that name an active action the user can see.
    func usable(_ ids: [String], by user: ObjectId) throws(MongoError) -> [String] {
        guard !ids.isEmpty else { return [] }
        let found = try actions.find(
            [
                "actionId": ["$in": .array(ids.map { .string($0) })],
                "isActive": .storedTrue, "$or": QuickActionRules.visible(to: user),
            ],
            projection: ["actionId": 1, "_id": 0])
        let known = Set(found.compactMap { $0["actionId"]?.stringValue })
        return ids.filter { known.contains($0) }
    }

    /// 400 naming `field` unless every id names an active action the user can see.
    func requireUsable(_ ids: [String], by user: ObjectId, field: String) throws {
        let known = Set(try usable(ids, by: user))
        let missing = ids.filter { !known.contains($0) }
        if !missing.isEmpty {
            throw APIError.invalid(
                field, "names no quick action you can use: \(missing.joined(separator: ", "))")
        }
    }

    /// Active actions the caller can see, by `usageCount` (most used first, the default) or
    /// by `label` (in code point order), `actionId` breaking ties; `category` filters.
    /// Counts change while someone pages by usage, so such a page may skip or repeat one.
    func list(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let query = try QueryReader(
            command, pathParams: [], allowed: ["category", "sort", "limit", "cursor"])
        let limit = try query.limit()
        let sort = try query.string("sort", maxLength: 10) ?? "usage"
        guard QuickActionRules.sorts.contains(sort) else {
            throw APIError.invalid("sort", "must be one of: usage, label")
        }
        var filter: Document = ["isActive": .storedTrue]
        if let category = try query.string("category", maxLength: 20) {
            guard QuickActionRules.categories.contains(category) else {
                throw APIError.invalid(
                    "category",
                    "must be one of: \(QuickActionRules.categories.joined(separator: ", "))")
            }
            filter["category"] = .string(category)
        }
        var conditions: [Value] = [["$or": QuickActionRules.visible(to: user)]]
        if let cursor = try query.string("cursor", maxLength: 600) {
            conditions.append(try after(cursor, sort: sort))
        }
        filter["$and"] = .array(conditions)
        let order: Document =
            sort == "usage" ? ["usageCount": -1, "actionId": 1] : ["label": 1, "actionId": 1]
        var page = try actions.find(filter, sort: order, limit: limit + 1)
        var next: Value = .null
        if page.count > limit {
            page.removeLast(page.count - limit)
            if let last = page.last.map(QuickActionRules.render) {
                next = .string(cursor(after: last, sort: sort))
            }
        }
        let items: [Value] = page.map { .document(QuickActionRules.render($0)) }
        return Reply(status: 200, ["items": .array(items), "nextCursor": next])
    }

    private func cursor(after item: Document, sort: String) -> String {
        let id = item["actionId"]?.stringValue ?? ""
        if sort == "usage" {
            return PageCursor.encode([sort, String(item["usageCount"]?.intValue ?? 0), id])
        }
        let label = Base64URL.encode(Array((item["label"]?.stringValue ?? "").utf8))
        return PageCursor.encode([sort, label, id])
    }

    /// The condition for the items after a cursor; it must come from the same sort.
    private func after(_ cursor: String, sort: String) throws(APIError) -> Value {
        let parts = try PageCursor.decode(cursor, parts: 3)
        let id = Value.string(parts[2])
        guard parts[0] == sort else {
            throw APIError.invalid("cursor", "was made for another sort order")
        }
        if sort == "usage" {
            guard let count = Int64(parts[1]) else {
                throw APIError.invalid("cursor", "is not a cursor this API returned")
            }
            return [
                "$or": [
                    ["usageCount": ["$lt": .int64(count)]],
                    ["usageCount": .int64(count), "actionId": ["$gt": id]],
                ]
            ]
        }
        guard let bytes = Base64URL.decode(Substring(parts[1])) else {
            throw APIError.invalid("cursor", "is not a cursor this API returned")
        }
        let label = Value.string(String(decoding: bytes, as: UTF8.self))
        return ["$or": [["label": ["$gt": label]], ["label": label, "actionId": ["$gt": id]]]]
    }

    /// A user's own action; its `actionId` comes from the command id, so a redelivered
    /// create finds the first one instead of making a second.
    func create(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let fields = try QuickActionRules.fields(try command.jsonBody(), creating: true)
        let actionId = "qa-\(command.id.prefix(24))"
        let now = Value.date(Timestamp.now())
        var doc: Document = ["_id": .objectId(ObjectId()), "actionId": .string(actionId)]
        for pair in fields.pairs { doc[pair.key] = pair.value }
        doc["isDefault"] = false
        doc["isActive"] = true
        doc["usageCount"] = .int64(0)
        doc["createdBy"] = .objectId(user)
        doc["createdAt"] = now
        doc["updatedAt"] = now
        do {
            try actions.insertOne(doc)
        } catch {
            guard error.kind == .duplicateKey,
                let existing = try actions.findOne(
                    ["actionId": .string(actionId), "createdBy": .objectId(user)])
            else { throw error }
            return Reply(status: 201, QuickActionRules.render(existing))
        }
        return Reply(status: 201, QuickActionRules.render(doc))
    }

    /// What a caller may change: an admin any action, anyone else their own non-defaults.
    private func editable(_ actionId: String, _ command: Command, user: ObjectId) -> Document {
        if command.role == "admin" { return ["actionId": .string(actionId)] }
        return [
            "actionId": .string(actionId), "createdBy": .objectId(user),
            "isDefault": .notStoredTrue,
        ]
    }

    /// Why an action could not be changed: 403 for a default, otherwise 404.
    private func refusal(_ actionId: String) throws(MongoError) -> APIError {
        let isDefault = try actions.findOne(
            ["actionId": .string(actionId), "isDefault": .storedTrue], projection: ["_id": 1])
        if isDefault != nil {
            return .forbidden("only an admin may change or delete a default quick action")
        }
        return .notFound("quick action")
    }

    /// A partial update with the create rules; `isActive` hides or restores an action.
    func update(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let actionId = try pathId(command, "actionId", what: "quick action")
        var set = try QuickActionRules.fields(try command.jsonBody(), creating: false)
        set["updatedAt"] = .date(Timestamp.now())
        guard
            let updated = try actions.findOneAndUpdate(
                editable(actionId, command, user: user), ["$set": .document(set)])
        else { throw try refusal(actionId) }
        return Reply(status: 200, QuickActionRules.render(updated))
    }

    /// Removes a user's action. A default is only deactivated (by an admin), so that the
    /// seeding at the next start does not bring it back; `PUT {"isActive": true}` restores it.
    func delete(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let actionId = try pathId(command, "actionId", what: "quick action")
        let done: Reply = Reply(
            status: 200, ["actionId": .string(actionId), "deleted": true])
        if command.role == "admin" {
            let deactivated = try actions.updateOne(
                ["actionId": .string(actionId), "isDefault": .storedTrue],
                ["$set": ["isActive": false, "updatedAt": .date(Timestamp.now())]])
            if deactivated.matched > 0 { return done }
        }
        let removed = try actions.deleteOne(editable(actionId, command, user: user))
        guard removed > 0 else { throw try refusal(actionId) }
        return done
    }

    /// Counts one use with an atomic `$inc`; only for an active action the caller can see.
    func use(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let actionId = try pathId(command, "actionId", what: "quick action")
        guard
            let updated = try actions.findOneAndUpdate(
                [
                    "actionId": .string(actionId), "isActive": .storedTrue,
                    "$or": QuickActionRules.visible(to: user),
                ],
                ["$inc": ["usageCount": 1]])
        else { throw APIError.notFound("quick action") }
        return Reply(status: 200, QuickActionRules.render(updated))
    }
}
