import Bus
import Core
import Crypt
import MongoKit
import Providers
import ServiceKit

/// Create, read, update, delete and list of `chat_canvas_files`. The service computes `name`,
/// `size` and `checksum`; a client that sends `size` or `checksum` must send the right ones.
struct FileHandlers: Sendable {
    let projects: MongoCollection
    let files: MongoCollection
    let store: FileStore
    let config: CanvasConfig

    static let creatable: Set<String> = [
        "projectId", "path", "name", "type", "content", "metadata", "size", "checksum",
    ]
    static let updatable: Set<String> = [
        "path", "name", "type", "content", "metadata", "size", "checksum",
    ]
    static let metadataFields: Set<String> = ["language", "framework", "dependencies"]

    struct Fields {
        var path: String?
        var type: String?
        var content: String?
        var metadata = Document()
        var measured: (size: Int64, checksum: String)?
    }

    /// Checks the fields create and update share; a content over the limit is 413.
    func validate(_ body: Document, allowed: Set<String>) throws -> Fields {
        var check = Validator(body, allowed: allowed)
        var fields = Fields()
        if let raw = check.string("path", maxLength: CanvasPath.maxLength) {
            switch CanvasPath.normalise(raw) {
            case .success(let path): fields.path = path
            case .failure(let error): check.fail("path", error.message)
            }
        }
        if let name = check.string("name", maxLength: 255), let path = fields.path,
            name != CanvasPath.name(of: path)
        {
            check.fail("name", "must be the last segment of path (\(CanvasPath.name(of: path)))")
        } else if check.has("name") && !check.has("path") {
            check.fail("name", "follows the path; send path to rename a file")
        }
        fields.type = check.oneOf("type", CanvasFileType.all)
        if body["content"] != nil {
            guard case .string(let content) = body["content"] else {
                check.fail("content", "must be a string")
                try check.check()
                return fields
            }
            guard content.utf8.count <= config.maxFileBytes else {
                throw APIError(
                    status: 413, code: "payload_too_large",
                    message: "content is \(content.utf8.count) bytes; files are limited to "
                        + "\(config.maxFileBytes)",
                    details: [FieldError("content", "must be at most \(config.maxFileBytes) bytes")]
                )
            }
            fields.content = content
            fields.measured = FileStore.measure(content)
        }
        if let metadata = check.document("metadata") {
            var inner = Validator(
                metadata, allowed: FileHandlers.metadataFields, prefix: "metadata")
            if let language = inner.string("language", maxLength: CanvasRules.metadataTextMax) {
                fields.metadata["language"] = .string(language)
            }
            if let framework = inner.string("framework", maxLength: CanvasRules.metadataTextMax) {
                fields.metadata["framework"] = .string(framework)
            }
            if let deps = inner.stringArray(
                "dependencies", maxItems: CanvasRules.dependenciesMax,
                maxLength: CanvasRules.dependencyMax)
            {
                fields.metadata["dependencies"] = .array(deps.map { .string($0) })
            }
            check.merge(inner)
        }
        // The client's size and checksum are checked against the content, never stored.
        if let size = check.integer("size", min: 0, max: Int64.max) {
            if let measured = fields.measured {
                if size != measured.size {
                    check.fail("size", "must be \(measured.size), the content's bytes")
                }
            } else {
                check.fail("size", "is only accepted with content")
            }
        }
        if let checksum = check.string("checksum", maxLength: 64) {
            if let measured = fields.measured {
                if checksum.lowercased() != measured.checksum {
                    check.fail("checksum", "does not match the content's SHA-256")
                }
            } else {
                check.fail("checksum", "is only accepted with content")
            }
        }
        try check.check()
        return fields
    }

    func create(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let body = try command.jsonBody()
        var check = Validator(body, allowed: FileHandlers.creatable)
        let projectId = check.string("projectId", required: true, maxLength: CanvasRules.idMax)
        _ = check.string("path", required: true)
        try check.check()
        let fields = try validate(body, allowed: FileHandlers.creatable)
        guard let projectId, let path = fields.path else {
            throw APIError.invalid("path", "is required")
        }

        let fileId = "file-\(command.id.prefix(24))"
        if let existing = try files.findOne(
            ["fileId": .string(fileId), "userId": .objectId(user)],
            projection: CanvasRules.fileOutput)
        {
            return Reply(status: 201, existing)
        }
        let project = try ProjectHandlers.owned(projects, projectId, user)
        try ProjectHandlers.requireActive(project)

        let content = fields.content ?? ""
        let measured = fields.measured ?? FileStore.measure(content)
        let name = CanvasPath.name(of: path)
        var metadata: Document = ["dependencies": []]
        for pair in fields.metadata.pairs { metadata[pair.key] = pair.value }
        let now = Timestamp.now()
        let doc: Document = [
            "_id": .objectId(ObjectId()), "fileId": .string(fileId),
            "projectId": .string(projectId),
            "userId": .objectId(user), "name": .string(name), "path": .string(path),
            "type": .string(fields.type ?? CanvasFileType.infer(fromName: name)),
            "content": .string(content),
            "size": .int64(measured.size), "checksum": .string(measured.checksum),
            "metadata": .document(metadata), "createdAt": .date(now), "updatedAt": .date(now),
        ]
        do {
            try store.insert(doc, projectId: projectId, user: user, size: measured.size)
        } catch let error as MongoError where error.kind == .duplicateKey {
            if let existing = try files.findOne(
                ["fileId": .string(fileId), "userId": .objectId(user)],
                projection: CanvasRules.fileOutput)
            {
                return Reply(status: 201, existing)
            }
            throw APIError(
                status: 409, code: "conflict", message: "the project already has a file at \(path)",
                details: [FieldError("path", "is taken in this project")])
        }
        return Reply(status: 201, doc.removing(["_id"]))
    }

    func get(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let fileId = try pathId(command, what: "file")
        _ = try QueryReader(command, allowed: [])
        guard
            let file = try files.findOne(
                ["fileId": .string(fileId), "userId": .objectId(user)],
                projection: CanvasRules.fileOutput)
        else { throw APIError.notFound("file") }
        return Reply(status: 200, file)
    }

    /// New content (size and checksum recomputed), a new type, metadata merged key by key, or
    /// a new path (renames; `name` follows).
    func update(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let fileId = try pathId(command, what: "file")
        let body = try command.jsonBody()
        let fields = try validate(body, allowed: FileHandlers.updatable)
        guard
            let current = try files.findOne(
                ["fileId": .string(fileId), "userId": .objectId(user)],
                projection: ["projectId": 1, "path": 1])
        else { throw APIError.notFound("file") }
        let projectId = current["projectId"]?.stringValue ?? ""
        try ProjectHandlers.requireActive(try ProjectHandlers.owned(projects, projectId, user))
        let taken = APIError(
            status: 409, code: "conflict",
            message: "the project already has a file at \(fields.path ?? "")",
            details: [FieldError("path", "is taken in this project")])
        if let path = fields.path,
            try files.findOne(
                [
                    "projectId": .string(projectId), "path": .string(path),
                    "fileId": ["$ne": .string(fileId)],
                ],
                projection: ["_id": 1]) != nil
        {
            throw taken
        }
        if let path = fields.path {
            try store.requireNoFolderClash(
                path, projectId: projectId, user: user, movingFileId: fileId)
        }

        var set = Document()
        if let path = fields.path {
            set["path"] = .string(path)
            set["name"] = .string(CanvasPath.name(of: path))
        }
        if let type = fields.type { set["type"] = .string(type) }
        if let content = fields.content, let measured = fields.measured {
            set["content"] = .string(content)
            set["size"] = .int64(measured.size)
            set["checksum"] = .string(measured.checksum)
        }
        for pair in fields.metadata.pairs { set["metadata.\(pair.key)"] = pair.value }
        do {
            let owner: Document = ["fileId": .string(fileId), "userId": .objectId(user)]
            guard
                let updated = try store.update(
                    owner, set: set, newSize: fields.measured?.size, projectId: projectId,
                    user: user)
            else {
                // The stand-in's findAndModify answers "no document" for a duplicate key.
                if fields.path != nil, try files.findOne(owner, projection: ["_id": 1]) != nil {
                    throw taken
                }
                throw APIError.notFound("file")
            }
            if let path = fields.path, let oldPath = current["path"]?.stringValue {
                try recheckFolderClash(
                    path, movedFrom: oldPath, fileId: fileId, projectId: projectId, user: user)
            }
            return Reply(status: 200, updated)
        } catch let error as MongoError where error.kind == .duplicateKey {
            throw taken
        }
    }

    /// A rename checked again once stored, as a new file is (`FileStore.insert`): on a clash
    /// with a file written meanwhile the file goes back to its old path and the answer is 409.
    private func recheckFolderClash(
        _ path: String, movedFrom oldPath: String, fileId: String, projectId: String,
        user: ObjectId
    ) throws {
        do {
            try store.requireNoFolderClash(
                path, projectId: projectId, user: user, movingFileId: fileId)
        } catch {
            let back: Document = [
                "path": .string(oldPath), "name": .string(CanvasPath.name(of: oldPath)),
            ]
            _ = try? files.updateOne(
                ["fileId": .string(fileId), "userId": .objectId(user)], ["$set": .document(back)])
            throw error
        }
    }

    func delete(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let fileId = try pathId(command, what: "file")
        guard
            let current = try files.findOne(
                ["fileId": .string(fileId), "userId": .objectId(user)], projection: ["projectId": 1]
            )
        else { throw APIError.notFound("file") }
        let projectId = current["projectId"]?.stringValue ?? ""
        try ProjectHandlers.requireActive(try ProjectHandlers.owned(projects, projectId, user))
        guard let removed = try store.delete(fileId: fileId, user: user) else {
            throw APIError.notFound("file")
        }
        return Reply(
            status: 200,
            [
                "fileId": .string(fileId), "projectId": removed["projectId"] ?? .null,
                "deleted": true,
            ])
    }

    /// A project's files by path, without their content.
    func list(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let projectId = try pathId(command, what: "project")
        let query = try QueryReader(command, allowed: ["limit", "cursor", "type"])
        let limit = try query.limit()
        var filter: Document = ["projectId": .string(projectId), "userId": .objectId(user)]
        if let type = try query.string("type", maxLength: 20) {
            guard CanvasFileType.all.contains(type) else {
                throw APIError.invalid(
                    "type", "must be one of: \(CanvasFileType.all.joined(separator: ", "))")
            }
            filter["type"] = .string(type)
        }
        if let cursor = try query.string("cursor", maxLength: 6000) {
            // The cursor is the last path returned, base64url: paths may hold any character.
            guard let bytes = Base64URL.decode(Substring(cursor)),
                let path = String(validating: bytes, as: UTF8.self),
                case .success(let normal) = CanvasPath.normalise(path),
                Array(normal.utf8) == bytes
            else { throw APIError.invalid("cursor", "is not a cursor this API returned") }
            filter["path"] = ["$gt": .string(path)]
        }
        _ = try ProjectHandlers.owned(projects, projectId, user)
        var page = try files.find(
            filter, sort: ["path": 1], limit: limit + 1, projection: CanvasRules.fileListOutput)
        var next: Value = .null
        if page.count > limit {
            page.removeLast(page.count - limit)
            if let path = page.last?["path"]?.stringValue {
                next = .string(Base64URL.encode(Array(path.utf8)))
            }
        }
        return Reply(
            status: 200, ["items": .array(page.map { .document($0) }), "nextCursor": next])
    }
}
