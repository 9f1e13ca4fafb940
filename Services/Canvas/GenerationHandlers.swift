import Bus
import Core
import MongoKit
import Providers
import RedisKit
import ServiceKit
import Synchronization

/// A project's lock: one generation or rollback at a time. It names its holder and expires by
/// itself (`lock.until`), so a holder that died never blocks the project for good.
struct ProjectLock: Sendable {
    let projects: MongoCollection

    func acquire(_ projectId: String, user: ObjectId, holder: String, until: Timestamp) throws
        -> Bool
    {
        let now = Timestamp.now()
        let result = try projects.updateOne(
            [
                "projectId": .string(projectId), "userId": .objectId(user),
                "$or": [
                    ["lock": ["$exists": false]], ["lock.until": ["$lt": .date(now)]],
                    ["lock.id": .string(holder)],
                ],
            ],
            ["$set": ["lock": ["id": .string(holder), "until": .date(until)]]])
        return result.matched > 0
    }

    func release(_ projectId: String, holder: String) {
        _ = try? projects.updateOne(
            ["projectId": .string(projectId), "lock.id": .string(holder)], ["$unset": ["lock": ""]])
    }
}

/// Puts generation jobs on their Redis stream, over a few connections shared by the handler
/// threads (a hiredis context serves one thread at a time).
final class JobQueue: Sendable {
    let address: RedisAddress
    let stream: String
    private let idle = Mutex<[RedisConnection]>([])

    init(address: RedisAddress, stream: String) {
        self.address = address
        self.stream = stream
    }

    func enqueue(historyId: String, projectId: String, user: ObjectId) throws(RedisError) {
        let redis =
            idle.withLock { $0.popLast() } ?? RedisConnection(address: address, timeoutMs: 2000)
        let reply = try redis.run([
            "XADD", RedisArgument(stream), "*", "historyId", RedisArgument(historyId),
            "projectId", RedisArgument(projectId), "user", RedisArgument(user.hex),
        ])
        if let message = reply.errorMessage { throw .server(message) }
        idle.withLock { if $0.count < 4 { $0.append(redis) } }
    }
}

/// `generate`, `rollback` and the history routes.
struct GenerationHandlers: Sendable {
    let projects: MongoCollection
    let history: MongoCollection
    let versions: Versions
    let store: FileStore
    let lock: ProjectLock
    let queue: JobQueue
    let config: CanvasConfig

    /// 202 with the pending history entry at once; a job worker does the rest.
    func generate(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let projectId = try pathId(command, what: "project")
        let body = try command.jsonBody()
        var check = Validator(body, allowed: ["prompt", "provider", "model"])
        let prompt = check.string("prompt", required: true, maxLength: config.promptMax)
        let requested = check.oneOf("provider", CanvasProviders.names)
        let requestedModel = check.string("model", maxLength: 100)
        try check.check()

        let project = try ProjectHandlers.owned(projects, projectId, user)
        try ProjectHandlers.requireActive(project)
        let provider =
            requested ?? project.value(at: "settings.provider")?.stringValue
            ?? config.defaultProvider
        if case .failure(let error) = config.providers.provider(provider) {
            throw APIError.invalid("provider", "\(provider) \(error.message)")
        }
        let model =
            requestedModel
            ?? (requested == nil ? project.value(at: "settings.model")?.stringValue : nil)
            ?? config.providers.defaultModel(provider)

        let historyId = "hist-\(command.id.prefix(24))"
        let now = Timestamp.now()
        let until = Timestamp(milliseconds: now.milliseconds + Int64(config.jobMaxAgeMs))
        guard try lock.acquire(projectId, user: user, holder: historyId, until: until) else {
            throw APIError.conflict("a generation or rollback is already running for this project")
        }
        let entry: Document = [
            "_id": .objectId(ObjectId()), "historyId": .string(historyId),
            "projectId": .string(projectId),
            "userId": .objectId(user), "prompt": .string(prompt ?? ""), "status": "pending",
            "result": .null, "error": .null,
            "metadata": ["provider": .string(provider), "model": .string(model)],
            "createdAt": .date(now), "updatedAt": .date(now),
        ]
        do {
            try history.insertOne(entry)
        } catch {
            // A redelivered request: the entry and its job exist already.
            guard error.kind == .duplicateKey else {
                lock.release(projectId, holder: historyId)
                throw error
            }
            guard let existing = try findHistory(historyId, user: user) else { throw error }
            return Reply(status: 202, existing)
        }
        do {
            try queue.enqueue(historyId: historyId, projectId: projectId, user: user)
        } catch {
            _ = try? history.deleteOne(["historyId": .string(historyId)])
            lock.release(projectId, holder: historyId)
            throw APIError.unavailable("the job queue is unavailable; try again")
        }
        return Reply(status: 202, entry.removing(["_id"]))
    }

    func findHistory(_ historyId: String, user: ObjectId) throws(MongoError) -> Document? {
        try history.findOne(
            ["historyId": .string(historyId), "userId": .objectId(user)],
            projection: CanvasRules.historyOutput
        ).map(CanvasRules.historyView)
    }

    func get(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let historyId = try pathId(command, what: "history entry")
        _ = try QueryReader(command, allowed: [])
        guard let entry = try findHistory(historyId, user: user) else {
            throw APIError.notFound("history entry")
        }
        return Reply(status: 200, entry)
    }

    /// Newest first, `historyId` breaking ties.
    func list(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let projectId = try pathId(command, what: "project")
        let query = try QueryReader(command, allowed: ["limit", "cursor", "status"])
        let limit = try query.limit()
        var filter: Document = ["projectId": .string(projectId), "userId": .objectId(user)]
        if let status = try query.string("status", maxLength: 20) {
            guard CanvasRules.historyStatuses.contains(status) else {
                throw APIError.invalid(
                    "status",
                    "must be one of: \(CanvasRules.historyStatuses.joined(separator: ", "))")
            }
            filter["status"] = .string(status)
        }
        let order = NewestFirst(dateField: "createdAt", idField: "historyId")
        try order.apply(cursor: try query.string("cursor", maxLength: 600), to: &filter)
        _ = try ProjectHandlers.owned(projects, projectId, user)
        let found = try history.find(
            filter, sort: order.sort, limit: limit + 1, projection: CanvasRules.historyOutput)
        let (page, next) = order.page(found, limit: limit)
        let items = page.map { Value.document(CanvasRules.historyView($0)) }
        return Reply(status: 200, ["items": .array(items), "nextCursor": next])
    }

    // TODO: a rollback is not recorded in the history; it could be an entry of its own.
    /// Restores the project's files to how they were after a completed generation (or, with
    /// `"state": "before"`, how they were just before it).
    func rollback(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let projectId = try pathId(command, what: "project")
        let body = try command.jsonBody()
        var check = Validator(body, allowed: ["historyId", "state"])
        let historyId = check.string("historyId", required: true, maxLength: CanvasRules.idMax)
        let state = check.oneOf("state", ["after", "before"]) ?? "after"
        try check.check()
        guard let historyId else { throw APIError.invalid("historyId", "is required") }

        let project = try ProjectHandlers.owned(projects, projectId, user)
        try ProjectHandlers.requireActive(project)
        guard let entry = try findHistory(historyId, user: user),
            entry["projectId"]?.stringValue == projectId
        else {
            throw APIError(
                status: 404, code: "not_found", message: "history entry not found in this project",
                details: [FieldError("historyId", "names no generation of this project")])
        }
        guard entry["status"]?.stringValue == "completed",
            let manifest = try versions.manifest(historyId: historyId, user: user, state: state)
        else {
            throw APIError(
                status: 409, code: "conflict",
                message: "only a completed generation can be restored",
                details: [
                    FieldError("historyId", "is \(entry["status"]?.stringValue ?? "unknown")")
                ])
        }
        let holder = "rollback-\(command.id.prefix(24))"
        let until = Timestamp(milliseconds: Timestamp.now().milliseconds + 120_000)
        guard try lock.acquire(projectId, user: user, holder: holder, until: until) else {
            throw APIError.conflict("a generation or rollback is already running for this project")
        }
        defer { lock.release(projectId, holder: holder) }
        let restored = try versions.restore(
            manifest, projectId: projectId, user: user, store: store, seed: holder)
        let after = try ProjectHandlers.owned(projects, projectId, user)
        return Reply(
            status: 200,
            [
                "projectId": .string(projectId), "historyId": .string(historyId),
                "state": .string(state),
                "filesWritten": .int64(Int64(restored.written)),
                "filesRemoved": .int64(Int64(restored.removed)),
                "filesUnchanged": .int64(Int64(restored.unchanged)),
                "stats": after["stats"] ?? .null,
            ])
    }
}
