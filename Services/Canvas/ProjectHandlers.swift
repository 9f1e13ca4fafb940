import Bus
import Core
import FoundationEssentials
import MongoKit
import Providers
import ServiceKit

/// Create, read, update, delete, list and export of `chat_canvas_projects`, always scoped to
/// the caller: anyone else's project is a 404.
struct ProjectHandlers: Sendable {
    let projects: MongoCollection
    let files: MongoCollection
    let history: MongoCollection
    let versions: Versions
    let config: CanvasConfig
    let conversations: ConversationCheck

    static let creatable: Set<String> = [
        "name", "description", "template", "category", "conversationId", "status", "settings",
    ]
    static let updatable: Set<String> = ["name", "description", "settings", "status"]
    static let settingsFields: Set<String> = [
        "theme", "responsive", "animations", "provider", "model",
    ]

    /// The caller's project, or 404.
    static func owned(_ projects: MongoCollection, _ projectId: String, _ user: ObjectId) throws
        -> Document
    {
        guard
            let project = try projects.findOne(
                ["projectId": .string(projectId), "userId": .objectId(user)],
                projection: CanvasRules.projectOutput)
        else { throw APIError.notFound("project") }
        return CanvasRules.projectView(project)
    }

    /// Archived and deleted projects are read-only until set back to `active`.
    static func requireActive(_ project: Document) throws {
        let status = project["status"]?.stringValue ?? "active"
        guard status == "active" else {
            throw APIError.conflict(
                "the project is \(status); set its status to active to change it")
        }
    }

    func create(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let body = try command.jsonBody()
        var check = Validator(body, allowed: ProjectHandlers.creatable)
        let name = check.string("name", required: true, maxLength: CanvasRules.nameMax)
        let description = check.string(
            "description", maxLength: CanvasRules.descriptionMax, allowEmpty: true)
        let template = check.string("template", required: true, maxLength: CanvasRules.templateMax)
        let category = check.string("category", required: true, maxLength: CanvasRules.templateMax)
        let conversationId = check.string("conversationId", maxLength: CanvasRules.idMax)
        let status = check.oneOf("status", CanvasRules.statuses)
        let settings = ProjectHandlers.validateSettings(&check)
        try check.check()
        if let conversationId {
            try conversations.requireOwned(conversationId, by: command, field: "conversationId")
        }

        let now = Timestamp.now()
        let projectId = "canvas-\(command.id.prefix(24))"
        var merged = CanvasRules.defaultSettings
        for pair in settings.pairs { merged[pair.key] = pair.value }
        var doc: Document = [
            "_id": .objectId(ObjectId()), "projectId": .string(projectId),
            "userId": .objectId(user),
        ]
        if let conversationId { doc["conversationId"] = .string(conversationId) }
        doc["name"] = .string(name ?? "")
        if let description { doc["description"] = .string(description) }
        doc["template"] = .string(template ?? "")
        doc["category"] = .string(category ?? "")
        doc["status"] = .string(status ?? "active")
        doc["settings"] = .document(merged)
        doc["stats"] = [
            "filesGenerated": .int64(0), "totalSize": .int64(0), "lastModified": .date(now),
        ]
        doc["createdAt"] = .date(now)
        doc["updatedAt"] = .date(now)
        do {
            try projects.insertOne(doc)
        } catch {
            // A redelivered create: answer with what the first delivery stored.
            guard error.kind == .duplicateKey else { throw error }
            return Reply(status: 201, try ProjectHandlers.owned(projects, projectId, user))
        }
        return Reply(status: 201, doc.removing(["_id"]))
    }

    /// `settings`: theme, responsive, animations from the spec; provider and model choose the
    /// generator for this project.
    static func validateSettings(_ check: inout Validator) -> Document {
        guard let settings = check.document("settings") else { return Document() }
        var inner = Validator(settings, allowed: settingsFields, prefix: "settings")
        var result = Document()
        if let theme = inner.oneOf("theme", CanvasRules.themes) { result["theme"] = .string(theme) }
        if let responsive = inner.bool("responsive") { result["responsive"] = .bool(responsive) }
        if let animations = inner.bool("animations") { result["animations"] = .bool(animations) }
        if let provider = inner.oneOf("provider", CanvasProviders.names) {
            result["provider"] = .string(provider)
        }
        if let model = inner.string("model", maxLength: 100) { result["model"] = .string(model) }
        check.merge(inner)
        return result
    }

    func get(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let projectId = try pathId(command, what: "project")
        _ = try QueryReader(command, allowed: [])
        return Reply(status: 200, try ProjectHandlers.owned(projects, projectId, user))
    }

    /// A partial update: fields left out keep their values, `settings` merge key by key.
    func update(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let projectId = try pathId(command, what: "project")
        let body = try command.jsonBody()
        var check = Validator(body, allowed: ProjectHandlers.updatable)
        let name = check.string("name", maxLength: CanvasRules.nameMax)
        let description = check.string(
            "description", maxLength: CanvasRules.descriptionMax, allowEmpty: true)
        let status = check.oneOf("status", CanvasRules.statuses)
        let settings = ProjectHandlers.validateSettings(&check)
        try check.check()

        var set = Document()
        if let name { set["name"] = .string(name) }
        if let description { set["description"] = .string(description) }
        if let status { set["status"] = .string(status) }
        for pair in settings.pairs { set["settings.\(pair.key)"] = pair.value }
        var change: Document = ["$currentDate": ["updatedAt": true]]
        if !set.isEmpty { change["$set"] = .document(set) }
        guard
            let updated = try projects.findOneAndUpdate(
                ["projectId": .string(projectId), "userId": .objectId(user)], change,
                projection: CanvasRules.projectOutput)
        else { throw APIError.notFound("project") }
        return Reply(status: 200, CanvasRules.projectView(updated))
    }

    /// Removes the project, then its files, history, versions and stored contents.
    func delete(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let projectId = try pathId(command, what: "project")
        let owner: Document = ["projectId": .string(projectId), "userId": .objectId(user)]
        let removed = try projects.deleteOne(owner)
        // Also clean up after a delete that stopped halfway (the project gone, files left).
        // (Existence by findOne: the stand-in's `count` command fails on ObjectId values.)
        if removed == 0, try files.findOne(owner, projection: ["_id": 1]) == nil,
            try history.findOne(owner, projection: ["_id": 1]) == nil
        {
            throw APIError.notFound("project")
        }
        let fileCount = try files.deleteMany(owner)
        let historyCount = try history.deleteMany(owner)
        try versions.deleteProject(projectId, user: user)
        return Reply(
            status: 200,
            [
                "projectId": .string(projectId), "deleted": true,
                "filesDeleted": .int64(Int64(fileCount)),
                "historyDeleted": .int64(Int64(historyCount)),
            ])
    }

    /// Newest `updatedAt` first, `projectId` breaking ties; `deleted` projects only when asked
    /// for with `status=deleted`.
    func list(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let query = try QueryReader(
            command, pathParams: [],
            allowed: ["limit", "cursor", "status", "template", "conversationId"])
        let limit = try query.limit()
        var filter: Document = ["userId": .objectId(user)]
        if let status = try query.string("status", maxLength: 20) {
            guard CanvasRules.statuses.contains(status) else {
                throw APIError.invalid(
                    "status", "must be one of: \(CanvasRules.statuses.joined(separator: ", "))")
            }
            filter["status"] = .string(status)
        } else {
            filter["status"] = ["$in": ["active", "archived"]]
        }
        if let template = try query.string("template", maxLength: CanvasRules.templateMax) {
            filter["template"] = .string(template)
        }
        if let conversation = try query.string("conversationId", maxLength: CanvasRules.idMax) {
            filter["conversationId"] = .string(conversation)
        }
        let order = NewestFirst(idField: "projectId")
        try order.apply(cursor: try query.string("cursor", maxLength: 600), to: &filter)
        let found = try projects.find(
            filter, sort: order.sort, limit: limit + 1, projection: CanvasRules.projectOutput)
        let (page, next) = order.page(found, limit: limit)
        let items = page.map { Value.document(CanvasRules.projectView($0)) }
        return Reply(status: 200, ["items": .array(items), "nextCursor": next])
    }

    /// The project's files as a zip archive (`Content-Type: application/zip`), paths as stored
    /// without the leading `/`. The bytes travel as the reply body; see `Reply.frame`.
    func export(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let projectId = try pathId(command, what: "project")
        _ = try QueryReader(command, allowed: [])
        let project = try ProjectHandlers.owned(projects, projectId, user)
        let total = project.value(at: "stats.totalSize")?.intValue ?? 0
        guard total <= Int64(config.maxExportBytes) else {
            throw APIError.unprocessable(
                "the project holds \(total) bytes; exports are limited to \(config.maxExportBytes)")
        }
        let stored = try files.find(
            ["projectId": .string(projectId), "userId": .objectId(user)], sort: ["path": 1],
            projection: ["path": 1, "content": 1, "updatedAt": 1])
        let entries = stored.map { file in
            ZipArchive.Entry(
                name: String((file["path"]?.stringValue ?? "file").drop(while: { $0 == "/" })),
                data: Array((file["content"]?.stringValue ?? "").utf8),
                modified: file["updatedAt"]?.dateValue ?? Timestamp.now())
        }
        let archive: [UInt8]
        do {
            archive = try ZipArchive.make(entries)
        } catch {
            throw APIError.internalError("cannot build the archive: \(error.message)")
        }
        let fileName = ProjectHandlers.downloadName(project["name"]?.stringValue ?? projectId)
        return Reply(
            status: 200, body: archive,
            headers: [
                ("Content-Type", "application/zip"),
                ("Content-Disposition", "attachment; filename=\"\(fileName).zip\""),
            ])
    }

    /// A file name made of the project name's letters, digits, `-` and `_`.
    static func downloadName(_ name: String) -> String {
        var out = ""
        for scalar in name.unicodeScalars {
            if scalar.isASCII, scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                out.unicodeScalars.append(scalar)
            } else if !out.hasSuffix("-") {
                out += "-"
            }
        }
        let trimmed = out.trimming { $0 == "-" }
        return trimmed.isEmpty ? "project" : String(trimmed.prefix(80))
    }
}
