import Bus
import Core
import Crypt
import Dispatch
import FoundationEssentials
import Glibc
import MongoKit
import Providers
import RedisKit
import ServiceKit
import Synchronization

/// Runs generation jobs from the `uc:jobs:canvas` stream in the `canvas-jobs` group.
///
/// A job is only a history id; the history entry is the truth. A run first claims the entry
/// with one conditional update (status `pending` and no live lease), so a job delivered twice
/// (a redelivered request, a reclaimed stream entry) runs once at a time; its end is another
/// conditional update naming the run. The stream entry is acknowledged only when the entry is
/// `completed` or `failed`, so a job survives a crash or restart of the service: a restarted
/// consumer reads its own pending entries first, others take them after
/// `CANVAS_JOB_CLAIM_IDLE_MS`, and a run whose lease expired may be taken over. Each job ends:
/// provider errors and timeouts fail it, a job re-run `CANVAS_JOB_MAX_ATTEMPTS` times fails, and
/// a sweeper fails any entry still pending `CANVAS_JOB_MAX_AGE_MS` after it was asked for.
final class JobWorker: @unchecked Sendable {
    let config: CanvasConfig
    let redis: RedisAddress
    let consumer: String
    let instance = Crypto.randomHex(8)
    let logger: Logger
    let projects: MongoCollection
    let history: MongoCollection
    let store: FileStore
    let versions: Versions
    let lock: ProjectLock
    private let stopping = Atomic<Bool>(false)
    private let running = Atomic<Int>(0)

    init(
        config: CanvasConfig, redis: RedisAddress, consumer: String, logger: Logger,
        projects: MongoCollection, history: MongoCollection, store: FileStore, versions: Versions,
        lock: ProjectLock
    ) {
        self.config = config
        self.redis = redis
        self.consumer = consumer
        self.logger = logger
        self.projects = projects
        self.history = history
        self.store = store
        self.versions = versions
        self.lock = lock
    }

    func start() {
        logger.info("running jobs", [.stream: config.jobStream, .count: String(config.jobWorkers)])
        running.store(config.jobWorkers + 1, ordering: .sequentiallyConsistent)
        for index in 0..<config.jobWorkers {
            startThread(named: "canvas-job-\(index)") { [self] in
                readLoop()
                running.subtract(1, ordering: .sequentiallyConsistent)
            }
        }
        startThread(named: "canvas-keeper") { [self] in
            keeperLoop()
            running.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Stops taking jobs and waits up to `graceMs` for runs in progress to end. A run cut off
    /// here stays pending in the stream and is taken over after restart.
    func stop(graceMs: Int) {
        stopping.store(true, ordering: .sequentiallyConsistent)
        let end = Timestamp.now().milliseconds + Int64(graceMs)
        while running.load(ordering: .sequentiallyConsistent) > 0
            && Timestamp.now().milliseconds < end
        {
            usleep(50_000)
        }
    }

    private var isStopping: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    struct Job {
        let streamId: String
        let historyId: String
    }

    private func ensureGroup(_ connection: RedisConnection) throws(RedisError) {
        let reply = try connection.send([
            "XGROUP", "CREATE", RedisArgument(config.jobStream), RedisArgument(config.jobGroup),
            "0", "MKSTREAM",
        ])
        if let message = reply.errorMessage, !message.hasPrefix("BUSYGROUP") {
            throw .server(message)
        }
    }

    private func readLoop() {
        let connection = RedisConnection(address: redis, timeoutMs: 4000)
        var groupReady = false
        var backoffMs = 100
        while !isStopping {
            do {
                if !groupReady {
                    try ensureGroup(connection)
                    groupReady = true
                }
                let reply = try connection.send([
                    "XREADGROUP", "GROUP", RedisArgument(config.jobGroup), RedisArgument(consumer),
                    "COUNT", "1",
                    "BLOCK", "1000", "STREAMS", RedisArgument(config.jobStream), ">",
                ])
                if let message = reply.errorMessage { throw RedisError.server(message) }
                backoffMs = 100
                for job in JobWorker.jobs(inRead: reply) { try handle(job, connection) }
            } catch {
                if isStopping { break }
                logger.warning(
                    "job stream read failed; retrying",
                    [.stream: config.jobStream, .error: "\(error)"])
                groupReady = false
                usleep(UInt32(backoffMs * 1000))
                backoffMs = min(backoffMs * 2, 2000)
            }
        }
    }

    /// At start, this consumer's own unacknowledged jobs (left by a previous process with the
    /// same name); then, periodically, jobs idle in other consumers and the stale-job sweep.
    private func keeperLoop() {
        let connection = RedisConnection(address: redis, timeoutMs: 5000)
        var resumed = false
        var sinceClaim = config.jobClaimIdleMs
        var sinceSweep = 0
        while !isStopping {
            do {
                if !resumed {
                    try ensureGroup(connection)
                    let reply = try connection.run([
                        "XREADGROUP", "GROUP", RedisArgument(config.jobGroup),
                        RedisArgument(consumer),
                        "COUNT", "100", "STREAMS", RedisArgument(config.jobStream), "0",
                    ])
                    let own = JobWorker.jobs(inRead: reply)
                    if !own.isEmpty {
                        logger.info("resuming own jobs", [.count: String(own.count)])
                    }
                    for job in own { try handle(job, connection) }
                    resumed = true
                }
                if sinceClaim >= config.jobClaimIdleMs / 2 {
                    sinceClaim = 0
                    let reply = try connection.run([
                        "XAUTOCLAIM", RedisArgument(config.jobStream),
                        RedisArgument(config.jobGroup),
                        RedisArgument(consumer), RedisArgument(config.jobClaimIdleMs), "0-0",
                        "COUNT", "16",
                    ])
                    if let parts = reply.array, parts.count >= 2 {
                        for job in JobWorker.jobs(in: parts[1]) { try handle(job, connection) }
                    }
                }
                if sinceSweep >= 5000 {
                    sinceSweep = 0
                    sweep()
                }
            } catch {
                logger.debug(
                    "job keeper failed; retrying", [.stream: config.jobStream, .error: "\(error)"])
            }
            usleep(200_000)
            sinceClaim += 200
            sinceSweep += 200
        }
    }

    static func jobs(inRead reply: RedisReply) -> [Job] {
        guard let streams = reply.array else { return [] }
        return streams.flatMap { stream -> [Job] in
            guard let pair = stream.array, pair.count == 2 else { return [] }
            return jobs(in: pair[1])
        }
    }

    static func jobs(in list: RedisReply) -> [Job] {
        (list.array ?? []).compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].text,
                let fields = parts[1].array
            else { return nil }
            var index = 0
            while index + 1 < fields.count {
                if fields[index].text == "historyId", let historyId = fields[index + 1].text {
                    return Job(streamId: id, historyId: historyId)
                }
                index += 2
            }
            // An entry that is no job: acknowledge it so it does not come back.
            return Job(streamId: id, historyId: "")
        }
    }

    private func handle(_ job: Job, _ connection: RedisConnection) throws(RedisError) {
        let done = job.historyId.isEmpty || run(job.historyId)
        guard done else { return }
        _ = try connection.pipeline([
            [
                "XACK", RedisArgument(config.jobStream), RedisArgument(config.jobGroup),
                RedisArgument(job.streamId),
            ],
            ["XDEL", RedisArgument(config.jobStream), RedisArgument(job.streamId)],
        ])
    }

    // TODO: renew the lease while a provider call runs, so it can be short and a run whose
    // process died under another consumer name is taken over sooner than `jobLeaseMs`.
    /// Runs one job; true when its entry is finished (or gone) and the stream entry may go.
    func run(_ historyId: String) -> Bool {
        let now = Timestamp.now()
        let claimed: Document?
        do {
            claimed = try history.findOneAndUpdate(
                [
                    "historyId": .string(historyId), "status": "pending",
                    "$or": [
                        ["run": ["$exists": false]], ["run.leaseUntil": ["$lt": .date(now)]],
                        [
                            "run.owner": .string(consumer),
                            "run.instance": ["$ne": .string(instance)],
                        ],
                    ],
                ],
                [
                    // `run` is set whole: the stand-in keeps dates only inside a set document.
                    "$set": [
                        "run": [
                            "owner": .string(consumer), "instance": .string(instance),
                            "startedAt": .date(now),
                            "leaseUntil": .date(
                                Timestamp(milliseconds: now.milliseconds + Int64(config.jobLeaseMs))
                            ),
                        ]
                    ],
                    "$inc": ["runCount": 1],
                    "$currentDate": ["updatedAt": true],
                ])
        } catch {
            logger.warning("cannot claim a job", [.request: historyId, .error: error.description])
            return false
        }
        guard let entry = claimed else {
            // Finished, deleted with its project, or held by a live run elsewhere.
            let current = try? history.findOne(
                ["historyId": .string(historyId)], projection: ["status": 1])
            guard let current else { return true }
            return current["status"]?.stringValue != "pending"
        }
        do {
            return try execute(entry, startedAt: now)
        } catch {
            // The database failed us: hand the job back for a later attempt.
            logger.warning(
                "job interrupted; will retry", [.request: historyId, .error: "\(error)"])
            _ = try? history.updateOne(
                ["historyId": .string(historyId), "run.instance": .string(instance)],
                ["$unset": ["run": ""]])
            return false
        }
    }

    /// True when the entry is finished; false when another run took it over meanwhile.
    private func execute(_ entry: Document, startedAt: Timestamp) throws -> Bool {
        let historyId = entry["historyId"]?.stringValue ?? ""
        let projectId = entry["projectId"]?.stringValue ?? ""
        guard let user = entry["userId"]?.objectIdValue else {
            return try finish(entry, error: "the job names no user", startedAt: startedAt)
        }
        let attempts = entry["runCount"]?.intValue ?? 1
        guard attempts <= Int64(config.jobMaxAttempts) else {
            return try finish(
                entry, error: "gave up after \(config.jobMaxAttempts) interrupted runs",
                startedAt: startedAt)
        }
        guard
            let project = try projects.findOne([
                "projectId": .string(projectId), "userId": .objectId(user),
            ])
        else {
            return try finish(entry, error: "the project no longer exists", startedAt: startedAt)
        }
        let providerName = entry.value(at: "metadata.provider")?.stringValue ?? "template"
        let provider: any CanvasProvider
        switch config.providers.provider(providerName) {
        case .success(let found): provider = found
        case .failure(let error):
            return try finish(entry, error: error.description, startedAt: startedAt)
        }
        let model = entry.value(at: "metadata.model")?.stringValue
        let before = try versions.capture(projectId, user: user)
        let request = CanvasRequest(
            prompt: entry["prompt"]?.stringValue ?? "",
            projectName: project["name"]?.stringValue ?? projectId,
            description: project["description"]?.stringValue ?? "",
            template: project["template"]?.stringValue ?? "",
            category: project["category"]?.stringValue ?? "",
            theme: project.value(at: "settings.theme")?.stringValue ?? "light",
            responsive: project.value(at: "settings.responsive")?.boolValue ?? true,
            animations: project.value(at: "settings.animations")?.boolValue ?? true,
            model: model,
            existingPaths: before.compactMap { $0.documentValue?["path"]?.stringValue })
        logger.debug("job started", [.request: historyId, .type: providerName])

        let generation: CanvasGeneration
        do {
            generation = try provider.generate(request)
        } catch {
            logger.info("generation failed", [.request: historyId, .error: error.description])
            return try finish(entry, error: error.description, startedAt: startedAt)
        }
        guard try stillOurs(historyId) else { return false }

        var written: Int64 = 0
        var bytes: Int64 = 0
        let now = Timestamp.now()
        do {
            for file in generation.files {
                bytes += try store.put(
                    file, projectId: projectId, user: user,
                    newFileId: FileStore.derivedId(seed: historyId, path: file.path), now: now)
                written += 1
            }
        } catch let error as APIError {
            return try finish(
                entry, error: "cannot write the files: \(error.message)", startedAt: startedAt,
                files: written, bytes: bytes, generation: generation)
        }
        let after = try versions.capture(projectId, user: user)
        try versions.save(
            historyId: historyId, projectId: projectId, user: user, before: before, after: after)
        logger.debug("job completed", [.request: historyId, .count: String(written)])
        return try finish(
            entry, error: nil, startedAt: startedAt, files: written, bytes: bytes,
            generation: generation)
    }

    /// False when another run took the job over (this run's lease expired).
    private func stillOurs(_ historyId: String) throws -> Bool {
        try history.findOne(
            [
                "historyId": .string(historyId), "status": "pending",
                "run.instance": .string(instance),
            ],
            projection: ["_id": 1]) != nil
    }

    /// Ends the entry `completed` (no error) or `failed`, if this run still holds it, and frees
    /// the project for the next generation.
    private func finish(
        _ entry: Document, error: String?, startedAt: Timestamp, files: Int64 = 0, bytes: Int64 = 0,
        generation: CanvasGeneration? = nil
    ) throws -> Bool {
        let historyId = entry["historyId"]?.stringValue ?? ""
        let now = Timestamp.now()
        var set: Document = [
            "status": .string(error == nil ? "completed" : "failed"),
            "result": [
                "filesGenerated": .int64(files), "totalSize": .int64(bytes),
                "duration": .int64(now.milliseconds - startedAt.milliseconds),
            ],
            "error": error.map { .string(String($0.prefix(1000))) } ?? .null,
        ]
        if let generation {
            set["metadata.provider"] = .string(generation.provider)
            set["metadata.model"] = .string(generation.model)
            set["metadata.tokens"] = .int64(Int64(generation.usage.total))
            set["metadata.inputTokens"] = .int64(Int64(generation.usage.input))
            set["metadata.outputTokens"] = .int64(Int64(generation.usage.output))
            set["metadata.tokensEstimated"] = .bool(generation.usage.estimated)
            set["metadata.attempts"] = .int64(Int64(generation.attempts))
        }
        let result = try history.updateOne(
            [
                "historyId": .string(historyId), "status": "pending",
                "run.instance": .string(instance),
            ],
            ["$set": .document(set), "$currentDate": ["updatedAt": true]])
        if result.matched > 0 {
            lock.release(entry["projectId"]?.stringValue ?? "", holder: historyId)
        }
        return true
    }

    /// Fails entries still pending long after they were asked for: their job was lost (for
    /// example, Redis lost the stream) or keeps failing.
    private func sweep() {
        let now = Timestamp.now()
        let cutoff = Timestamp(milliseconds: now.milliseconds - Int64(config.jobMaxAgeMs))
        guard
            let stale = try? history.find(
                ["status": "pending", "createdAt": ["$lt": .date(cutoff)]], sort: ["createdAt": 1],
                limit: 50,
                projection: ["historyId": 1, "projectId": 1])
        else { return }
        for entry in stale {
            guard let historyId = entry["historyId"]?.stringValue else { continue }
            let failed = try? history.updateOne(
                [
                    "historyId": .string(historyId), "status": "pending",
                    "$or": [["run": ["$exists": false]], ["run.leaseUntil": ["$lt": .date(now)]]],
                ],
                [
                    "$set": [
                        "status": "failed",
                        "error": .string(
                            "the job did not finish within \(config.jobMaxAgeMs / 1000) s"),
                    ],
                    "$currentDate": ["updatedAt": true],
                ])
            if (failed?.matched ?? 0) > 0 {
                logger.warning("failed a stale job", [.request: historyId])
                lock.release(entry["projectId"]?.stringValue ?? "", holder: historyId)
            }
        }
    }
}
