import Bus
import Core
import Dispatch
import FoundationEssentials
import Glibc
import HTTPKit
import MongoKit
import RedisKit
import Synchronization

/// How a service reads its command stream.
public struct BusConfig: Sendable {
    public let redis: RedisAddress
    public let workers: Int
    public let blockMs: Int
    public let claimIdleMs: Int
    public let replyTTLms: Int
    public let maxDeliveries: Int
    public let consumerIdleLimitMs: Int
    public let metricsPort: Int
    public let consumer: String
    /// At shutdown, how long replies that cannot be written (Redis gone) are retried before
    /// the process exits without them. Their commands stay unacknowledged, so another
    /// consumer claims them and the ledger answers with the stored result.
    public let drainLimitMs: Int
    /// Commands read ahead per worker (the local queue holds `workers` times this); 1 for slow
    /// commands, so that few wait in this process while other replicas could take them.
    public var queuePerWorker = 8

    public init(service: String, environment env: Environment = Environment()) {
        redis = RedisAddress(url: env.string("REDIS_URL", "redis://127.0.0.1:6379"))
        workers = max(1, env.int("WORKERS", 8))
        blockMs = max(50, env.int("BUS_BLOCK_MS", 1000))
        claimIdleMs = max(500, env.int("CLAIM_IDLE_MS", 15_000))
        replyTTLms = max(1000, env.int("REPLY_TTL_MS", 30_000))
        maxDeliveries = max(1, env.int("MAX_DELIVERIES", 5))
        consumerIdleLimitMs = max(60_000, env.int("CONSUMER_IDLE_LIMIT_MS", 3_600_000))
        metricsPort = env.int("METRICS_PORT", 0)
        drainLimitMs = max(0, env.int("DRAIN_LIMIT_MS", 8000))
        let host = ProcessInfo.processInfo.hostName
        let replica = env.string("REPLICA", "")
        let stable = replica.isEmpty ? "\(service)-\(host)" : "\(service)-\(host)-\(replica)"
        consumer = env.string("CONSUMER_NAME", stable)
    }

    public var summary: String {
        "redis=\(redis) workers=\(workers) consumer=\(consumer) claimIdleMs=\(claimIdleMs)"
            + " maxDeliveries=\(maxDeliveries) replyTTLms=\(replyTTLms) metricsPort=\(metricsPort)"
            + " drainLimitMs=\(drainLimitMs)"
    }
}

/// A command handler. `mutating` ones go through the ledger so their effect happens once and a
/// retry gets the first reply. Handlers that are `idempotent` by construction (ids derived from
/// the command id, conditional writes) skip the ledger unless the client sent an
/// `Idempotency-Key`, which needs the ledger to tell a retry from another body (422).
public struct Handler: Sendable {
    public let mutating: Bool
    public let idempotent: Bool
    public let run: @Sendable (Command) throws -> Reply

    public init(
        mutating: Bool, idempotent: Bool = false,
        _ run: @escaping @Sendable (Command) throws -> Reply
    ) {
        self.mutating = mutating
        self.idempotent = idempotent
        self.run = run
    }
}

/// Reads a service's command stream in its consumer group with several worker threads,
/// applies each command, writes the reply to the command's reply key and only then
/// acknowledges it.
///
/// A maintenance thread beats the heartbeat, claims commands left pending by dead consumers,
/// moves commands delivered `maxDeliveries` times to the dead-letter stream, trims the stream
/// below the oldest pending command and forgets consumers long gone with nothing pending.
public final class ServiceRunner: @unchecked Sendable {
    public let service: String
    public let config: BusConfig
    public let metrics = Metrics()
    let logger: Logger
    let ledger: CommandLedger?
    let handlers: [String: Handler]
    let stream: String
    private let stopping = Atomic<Bool>(false)
    private let threadsLeft = Atomic<Int>(0)
    private var extraThreads: [(String, @Sendable () -> Void)] = []

    public init(
        service: String, config: BusConfig, logger: Logger, ledger: CommandLedger?,
        handlers: [String: Handler]
    ) {
        self.service = service
        self.config = config
        self.logger = logger
        self.ledger = ledger
        self.handlers = handlers
        self.stream = BusNames.commandStream(service)
        self.answerConnection = RedisConnection(address: config.redis, timeoutMs: 5000)
    }

    public var isStopping: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    /// Runs `body` on its own thread next to the workers; it should return soon after
    /// `isStopping` turns true.
    public func addThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
        extraThreads.append((name, body))
    }

    /// Starts the workers and blocks until SIGTERM or SIGINT, then drains and returns.
    public func run() {
        TerminationSignal.shared.onReceipt { [weak self] in self?.stop() }
        let metricsServer = startMetricsServer()
        logger.info(
            "consuming",
            [.stream: stream, .consumer: config.consumer, .count: String(config.workers)])
        var bodies: [(String, @Sendable () -> Void)] = (0..<config.workers).map { index in
            ("worker-\(index)", { [self] in workerLoop() })
        }
        bodies.append(("stream-reader", { [self] in readerLoop() }))
        bodies.append(("reply-flusher", { [self] in flusherLoop() }))
        bodies.append(("maintenance", { [self] in maintenanceLoop() }))
        bodies += extraThreads
        threadsLeft.store(bodies.count, ordering: .sequentiallyConsistent)
        // Counted before any thread runs, so the flusher never sees zero workers too early.
        workersLeft.store(config.workers, ordering: .sequentiallyConsistent)
        for (name, body) in bodies {
            startThread(named: name) { [self] in
                body()
                threadsLeft.subtract(1, ordering: .sequentiallyConsistent)
            }
        }
        while threadsLeft.load(ordering: .sequentiallyConsistent) > 0 {
            usleep(50_000)
        }
        metricsServer?.stop()
        logger.info("stopped", [.stream: stream])
    }

    public func stop() {
        if !stopping.exchange(true, ordering: .sequentiallyConsistent) {
            logger.info("draining", [.stream: stream])
        }
    }

    private func startMetricsServer() -> HTTPServer? {
        guard config.metricsPort > 0 else { return nil }
        let server = HTTPServer(
            config: HTTPServerConfig(
                host: "0.0.0.0", port: config.metricsPort, threads: 1, maxBodyBytes: 1024,
                connectionTimeoutSeconds: 5, connectionLimit: 64, defaultHeaders: []),
            handler: { [self] request, responder in
                guard request.path == "/metrics" else {
                    return responder.respond(.error(.notFound("route")))
                }
                sampleStream()
                responder.respond(
                    HTTPResponse(
                        status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")],
                        body: Array(metrics.render().utf8)))
            })
        do {
            try server.start()
            logger.info("metrics listening", [.port: String(config.metricsPort)])
            return server
        } catch {
            logger.warning("cannot serve metrics", [.error: error.message])
            return nil
        }
    }

    /// Stream length, pending count and lag as gauges, read when metrics are scraped.
    private func sampleStream() {
        let redis = RedisConnection(address: config.redis, timeoutMs: 1000)
        guard let groups = try? redis.run(["XINFO", "GROUPS", RedisArgument(stream)]).array,
            let length = try? redis.run(["XLEN", RedisArgument(stream)]).integer
        else { return }
        metrics.set(
            "uc_stream_length", Double(length), labels: [("stream", stream)],
            help: "entries in the stream")
        for group in groups {
            let fields = group.fieldMap
            guard fields["name"]?.text == service else { continue }
            if let pending = fields["pending"]?.integer {
                metrics.set(
                    "uc_pending_commands", Double(pending), labels: [("stream", stream)],
                    help: "delivered but not yet acknowledged")
            }
            if let lag = fields["lag"]?.integer {
                metrics.set(
                    "uc_consumer_lag", Double(lag), labels: [("stream", stream)],
                    help: "entries not yet delivered to the group")
            }
        }
    }

    private func ensureGroup(_ redis: RedisConnection) throws(RedisError) {
        let reply = try redis.send([
            "XGROUP", "CREATE", RedisArgument(stream), RedisArgument(service), "0", "MKSTREAM",
        ])
        if let message = reply.errorMessage, !message.hasPrefix("BUSYGROUP") {
            throw .server(message)
        }
    }

    /// Commands read and not yet applied; the reader stops reading while it is full, so the
    /// rest stays in the stream for other replicas.
    private let jobs = WorkQueue<Command>()
    /// Time to apply each command type: a worker that takes a quick one (a ping) keeps the rest
    /// of the batch for itself rather than waking another worker for it.
    private let durations = DurationAverages()
    /// An answer not yet written: the reply frame (nil for a dropped command) and the entry to ack.
    typealias Answer = (key: String, frame: [UInt8]?, entry: String)

    /// Answers not yet written, and whether a thread is writing a batch of them now. The
    /// worker that queues an answer while nobody writes becomes the writer and writes what has
    /// gathered, so a reply costs no hand-off to another thread; answers queued meanwhile go
    /// out in its next batch. The flusher thread picks up what a failed write left, and what a
    /// run of quick commands queued while one of them takes long.
    private let unsent = PlainLock(UnsentAnswers())

    struct UnsentAnswers {
        var answers: [Answer] = []
        var writing = false
        /// After a failed write nobody writes before this time (ms); then the flusher retries.
        var pausedUntil: Int64 = 0
    }

    /// Used only by the thread that set `writing`.
    private let answerConnection: RedisConnection
    private let readerDone = Atomic<Bool>(false)
    private let workersLeft = Atomic<Int>(0)

    private var queueCapacity: Int { config.workers * config.queuePerWorker }

    func enqueue(_ commands: [Command]) { jobs.push(commands) }

    /// One blocking `XREADGROUP` for the whole process, `COUNT` as large as the queue has room.
    private func readerLoop() {
        let redis = RedisConnection(address: config.redis, timeoutMs: config.blockMs + 3000)
        var groupReady = false
        // First this consumer's own pending history: commands it read before a crash or restart
        // and never acknowledged.
        var readingHistory = true
        var historyFrom = "0"
        var backoffMs = 100
        defer { readerDone.store(true, ordering: .sequentiallyConsistent) }
        while !isStopping {
            let room = queueCapacity - jobs.count
            if room < 1 {
                usleep(1000)
                continue
            }
            do {
                if !groupReady {
                    try ensureGroup(redis)
                    groupReady = true
                }
                var read = RedisCommand("XREADGROUP")
                read.append("GROUP")
                read.append(service)
                read.append(config.consumer)
                read.append("COUNT")
                read.append(Int64(min(room, 256)))
                read.append("BLOCK")
                read.append(Int64(readingHistory ? 1 : config.blockMs))
                read.append("STREAMS")
                read.append(stream)
                read.append(readingHistory ? historyFrom : ">")
                let (commands, failure) = try redis.send(read) { reply in
                    (ServiceRunner.entries(of: reply), reply.errorMessage)
                }
                if let failure {
                    if failure.hasPrefix("NOGROUP") { groupReady = false }
                    throw RedisError.server(failure)
                }
                backoffMs = 100
                if readingHistory {
                    guard let last = commands.last?.streamId else {
                        readingHistory = false
                        continue
                    }
                    historyFrom = last
                    metrics.add(
                        "uc_commands_redelivered_total", Double(commands.count),
                        labels: [("stream", stream)],
                        help: "commands taken over after a crash, a restart or a claim")
                    logger.info(
                        "resuming own pending commands",
                        [.stream: stream, .count: String(commands.count)])
                }
                if !commands.isEmpty { enqueue(commands) }
            } catch {
                if isStopping { break }
                logger.warning(
                    "redis read failed; retrying", [.stream: stream, .error: "\(error)"])
                groupReady = false
                usleep(UInt32(backoffMs * 1000))
                backoffMs = min(backoffMs * 2, 2000)
            }
        }
    }

    /// Applies queued commands until the reader has stopped and the queue is empty.
    ///
    /// After a quick command the worker takes the next one before it writes: answers to a run
    /// of quick commands are queued unwritten and go out together once the queue is empty, a
    /// slow command is next, or 64 are queued. Queued, not kept by the worker: should a command
    /// of the run take long after all, another worker or the flusher writes them meanwhile.
    private func workerLoop() {
        defer { workersLeft.subtract(1, ordering: .sequentiallyConsistent) }
        var queuedUnwritten = 0
        while true {
            var holdOn = false
            let next = jobs.pop(timeoutMs: queuedUnwritten == 0 ? 100 : 0) {
                [durations] command in
                holdOn = durations.isQuick(command.type)
                return holdOn
            }
            if queuedUnwritten > 0, !holdOn || queuedUnwritten >= 64 {
                answer([])
                queuedUnwritten = 0
            }
            guard let command = next else {
                if readerDone.load(ordering: .sequentiallyConsistent) && jobs.count == 0 {
                    return
                }
                continue
            }
            if let item = handle(command) {
                unsent.withLock { $0.answers.append(item) }
                queuedUnwritten += 1
            }
        }
    }

    /// Applies one command; the answer to write, or nil when another delivery answers it.
    private func handle(_ command: Command) -> Answer? {
        guard !command.streamId.isEmpty else { return nil }
        if command.deadline < Timestamp.now().milliseconds {
            metrics.add(
                "uc_commands_expired_total", labels: [("stream", stream)],
                help: "commands dropped unapplied because their deadline had passed")
            logger.debug("dropped expired command", [.command: command.id, .type: command.type])
            return (command.replyKey, nil, command.streamId)
        }
        let started = DispatchTime.now().uptimeNanoseconds
        guard let reply = apply(command) else { return nil }
        let took = DispatchTime.now().uptimeNanoseconds - started
        durations.record(command.type, nanoseconds: took)
        metrics.observe(
            "uc_command_seconds", seconds: Double(took) / 1e9,
            labels: [("type", command.type)], help: "time to apply a command")
        metrics.add(
            "uc_commands_handled_total",
            labels: [("type", command.type), ("status", String(reply.status))],
            help: "commands answered, by type and status")
        return (command.replyKey, reply.frame(requestId: command.requestId), command.streamId)
    }

    /// Queues answers and, when no other thread is writing, writes everything queued.
    private func answer(_ items: [Answer]) {
        let now = Timestamp.now().milliseconds
        let batch = unsent.withLock { state -> [Answer] in
            state.answers += items
            guard !state.writing, now >= state.pausedUntil else { return [] }
            return takeUnsent(&state)
        }
        writeWhileQueued(batch)
    }

    /// Takes the writer's role and the queued answers; called with `unsent` locked.
    private func takeUnsent(_ state: inout UnsentAnswers) -> [Answer] {
        guard !state.answers.isEmpty else { return [] }
        state.writing = true
        defer { state.answers.removeAll(keepingCapacity: true) }
        return state.answers
    }

    /// Writes `batch`, then whatever was queued meanwhile, until nothing is left; then gives up
    /// the writer's role. A failed batch goes back to the queue and nobody retries it before
    /// `pausedUntil`.
    private func writeWhileQueued(_ first: [Answer]) {
        var batch = first
        while !batch.isEmpty {
            do {
                try writeAnswers(batch)
            } catch {
                logger.warning(
                    "cannot write replies; retrying", [.stream: stream, .error: "\(error)"])
                let failed = batch
                let retryAt = Timestamp.now().milliseconds + 200
                unsent.withLock { state in
                    state.answers = failed + state.answers
                    state.writing = false
                    state.pausedUntil = retryAt
                }
                return
            }
            batch = unsent.withLock { state -> [Answer] in
                let next = takeUnsent(&state)
                if next.isEmpty { state.writing = false }
                return next
            }
        }
    }

    /// One transaction per 256 answers: `RPUSH` and `PEXPIRE` per reply key, then one `XACK`
    /// for the entries, so no command is acknowledged unless its reply is stored. Redis runs all
    /// of it or, when a command is refused as it is queued (out of memory), none of it; then the
    /// batch is written again later. Rewriting a batch repeats frames the gateway then ignores.
    /// A command that fails as the transaction runs (a reply key someone made a string) costs
    /// only its own reply, which no retry could store.
    private func writeAnswers(_ batch: [Answer]) throws(RedisError) {
        for start in stride(from: 0, to: batch.count, by: 256) {
            try writeAnswerChunk(Array(batch[start..<min(start + 256, batch.count)]))
        }
    }

    private func writeAnswerChunk(_ batch: [Answer]) throws(RedisError) {
        var keys: [String] = []
        for item in batch where item.frame != nil && !keys.contains(item.key) {
            keys.append(item.key)
        }
        var commands = [RedisCommand("MULTI")]
        for key in keys {
            var push = RedisCommand("RPUSH")
            push.append(key)
            for item in batch where item.key == key {
                if let frame = item.frame { push.append(frame) }
            }
            var expire = RedisCommand("PEXPIRE")
            expire.append(key)
            expire.append(Int64(config.replyTTLms))
            commands += [push, expire]
        }
        var ack = RedisCommand("XACK")
        ack.append(stream)
        ack.append(service)
        for item in batch { ack.append(item.entry) }
        commands += [ack, RedisCommand("EXEC")]
        let replies = try answerConnection.send(commands)
        guard case .array(let results)? = replies.last else {
            throw .server(replies.last?.errorMessage ?? "the transaction was not run")
        }
        for case .error(let message) in results {
            logger.error("a reply could not be stored", [.stream: stream, .error: message])
        }
    }

    /// Retries answers a failed write left queued (a write is never dropped), and at shutdown
    /// returns once the workers have stopped and every answer is written.
    private func flusherLoop() {
        var doneSince: Int64?
        while true {
            // Read before looking at the queue: a worker that finishes after this has queued its
            // answer first, so the next round still sees it.
            let workersDone =
                readerDone.load(ordering: .sequentiallyConsistent)
                && workersLeft.load(ordering: .sequentiallyConsistent) == 0
            let now = Timestamp.now().milliseconds
            let (batch, settled) = unsent.withLock { state -> ([Answer], Bool) in
                if state.writing { return ([], false) }
                if now < state.pausedUntil { return ([], state.answers.isEmpty) }
                let batch = takeUnsent(&state)
                return (batch, batch.isEmpty)
            }
            if settled && workersDone { return }
            if workersDone, batch.isEmpty {
                let since = doneSince ?? now
                doneSince = since
                if now - since >= Int64(config.drainLimitMs) {
                    let left = unsent.withLock { $0.answers.count }
                    logger.error(
                        "exiting with replies unwritten; their commands stay pending for others",
                        [.stream: stream, .count: String(left)])
                    return
                }
            }
            if batch.isEmpty {
                usleep(50_000)
                continue
            }
            writeWhileQueued(batch)
        }
    }

    private func maintenanceLoop() {
        let redis = RedisConnection(address: config.redis, timeoutMs: 5000)
        var last: [String: Int64] = [:]
        func due(_ name: String, everyMs: Int) -> Bool {
            let now = Timestamp.now().milliseconds
            guard now - (last[name] ?? 0) >= Int64(everyMs) else { return false }
            last[name] = now
            return true
        }
        while !isStopping {
            if due("heartbeat", everyMs: 1000) { heartbeat(redis) }
            if due("claim", everyMs: max(200, config.claimIdleMs / 2)) { claim(redis) }
            if due("trim", everyMs: 1000) { trim(redis) }
            if due("forget", everyMs: 60_000) { forgetGoneConsumers(redis) }
            usleep(100_000)
        }
    }

    /// Records that this consumer is alive; the gateway's `/readyz` reads it.
    private func heartbeat(_ redis: RedisConnection) {
        let now = Timestamp.now().milliseconds
        let key = RedisArgument(BusNames.heartbeats(service))
        _ = try? redis.pipeline([
            ["ZADD", key, RedisArgument(now), RedisArgument(config.consumer)],
            ["ZREMRANGEBYSCORE", key, "-inf", RedisArgument(now - 3_600_000)],
        ])
    }

    /// Takes over commands another consumer left pending for longer than the claim idle time.
    private func claim(_ redis: RedisConnection) {
        do {
            let reply = try redis.run([
                "XAUTOCLAIM", RedisArgument(stream), RedisArgument(service),
                RedisArgument(config.consumer),
                RedisArgument(config.claimIdleMs), "0-0", "COUNT", "64",
            ])
            guard let parts = reply.array, parts.count >= 2 else { return }
            let claimed = ServiceRunner.commands(in: parts[1])
            guard !claimed.isEmpty else { return }
            metrics.add(
                "uc_commands_redelivered_total", Double(claimed.count),
                labels: [("stream", stream)],
                help: "commands taken over after a crash, a restart or a claim")
            logger.info(
                "claimed pending commands", [.stream: stream, .count: String(claimed.count)])
            let counts = try redis.pipeline(
                claimed.map { command in
                    [
                        "XPENDING", RedisArgument(stream), RedisArgument(service),
                        RedisArgument(command.streamId),
                        RedisArgument(command.streamId), "1",
                    ]
                })
            var live: [Command] = []
            for (command, count) in zip(claimed, counts) {
                let deliveries = count.array?.first?.array?[3].integer ?? 1
                if deliveries > Int64(config.maxDeliveries) {
                    try deadLetter(
                        command, error: "delivered \(deliveries) times without an answer",
                        redis: redis)
                } else {
                    live.append(command)
                }
            }
            if !live.isEmpty { enqueue(live) }
        } catch {
            logger.debug("claim failed", [.stream: stream, .error: "\(error)"])
        }
    }

    /// Moves a command to `uc:dead:<service>` with its error, then acknowledges it.
    func deadLetter(_ command: Command, error: String, redis: RedisConnection) throws(RedisError) {
        metrics.add(
            "uc_commands_dead_lettered_total", labels: [("stream", stream)],
            help: "commands moved to the dead-letter stream")
        logger.error(
            "dead-lettered a command",
            [.stream: stream, .command: command.id, .type: command.type, .error: error])
        _ = try redis.pipeline([
            [
                "XADD", RedisArgument(BusNames.deadLetterStream(service)), "MAXLEN", "~", "10000",
                "*",
            ]
                + command.fields + [
                    "error", RedisArgument(error), "stream-id", RedisArgument(command.streamId),
                ],
            [
                "XACK", RedisArgument(stream), RedisArgument(service),
                RedisArgument(command.streamId),
            ],
        ])
    }

    /// Trims entries older than both the oldest pending command and the last delivered one,
    /// so nothing that is pending or not yet read is ever dropped.
    private func trim(_ redis: RedisConnection) {
        do {
            try StreamTrim.belowEveryGroup(stream, on: redis, approximate: true)
        } catch {
            logger.debug("trim failed", [.stream: stream, .error: "\(error)"])
        }
    }

    /// Deletes consumers idle for longer than the limit that hold no pending commands.
    private func forgetGoneConsumers(_ redis: RedisConnection) {
        guard
            let consumers = try? redis.run([
                "XINFO", "CONSUMERS", RedisArgument(stream), RedisArgument(service),
            ]).array
        else { return }
        for consumer in consumers.map(\.fieldMap) {
            guard let name = consumer["name"]?.text, name != config.consumer,
                consumer["pending"]?.integer == 0,
                let idle = consumer["idle"]?.integer, idle > Int64(config.consumerIdleLimitMs)
            else { continue }
            _ = try? redis.run([
                "XGROUP", "DELCONSUMER", RedisArgument(stream), RedisArgument(service),
                RedisArgument(name),
            ])
            logger.info("removed a consumer gone for long", [.stream: stream, .consumer: name])
        }
    }

    /// The commands in an `XREADGROUP` reply, read where hiredis parsed them.
    static func entries(of reply: RedisReplyView) -> [Command] {
        var commands: [Command] = []
        for index in 0..<reply.count {
            guard let entries = reply[index]?[1] else { continue }
            commands.reserveCapacity(commands.count + entries.count)
            for position in 0..<entries.count {
                guard let entry = entries[position], let id = entry[0]?.text,
                    let fields = entry[1], let command = Command(streamId: id, fields: fields)
                else { continue }
                commands.append(command)
            }
        }
        return commands
    }

    static func commands(in list: RedisReply) -> [Command] {
        guard let entries = list.array else { return [] }
        return entries.compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].text,
                let fields = parts[1].array
            else { return nil }
            return Command(streamId: id, fields: fields)
        }
    }

    /// Runs the handler; nil means "leave it pending" (another delivery is still applying it).
    func apply(_ command: Command) -> Reply? {
        guard let handler = handlers[command.type] else {
            return Reply(APIError.notFound("route"))
        }
        guard handler.mutating, let ledger, command.keyed || !handler.idempotent else {
            return execute(handler, command)
        }
        do {
            switch try ledger.begin(command, consumer: config.consumer) {
            case .fresh:
                return finish(handler, command, ledger)
            case .done(let reply):
                return reply
            case .conflict:
                return Reply(
                    APIError.unprocessable("this Idempotency-Key was used with another request"))
            case .inProgress(let age):
                if age > Int64(config.claimIdleMs) { return finish(handler, command, ledger) }
                return waitForOtherDelivery(command, ledger)
            }
        } catch {
            return Reply(ServiceRunner.apiError(for: error, logger: logger, command: command))
        }
    }

    private func finish(_ handler: Handler, _ command: Command, _ ledger: CommandLedger) -> Reply {
        let reply = execute(handler, command)
        if reply.status >= 500 {
            ledger.abandon(command)
            return reply
        }
        do {
            try ledger.finish(command, reply: reply)
        } catch {
            logger.warning("cannot record the reply", [.command: command.id, .error: "\(error)"])
        }
        return reply
    }

    private func waitForOtherDelivery(_ command: Command, _ ledger: CommandLedger) -> Reply? {
        while Timestamp.now().milliseconds < command.deadline {
            usleep(20_000)
            if case .done(let reply)? = try? ledger.begin(command, consumer: config.consumer) {
                return reply
            }
        }
        return nil
    }

    /// Runs the handler; while MongoDB is unreachable it retries until the command's deadline
    /// is near, then answers 503.
    private func execute(_ handler: Handler, _ command: Command) -> Reply {
        var backoffMs = 100
        while true {
            do {
                return try handler.run(command)
            } catch let error as MongoError where error.kind == .unavailable {
                let left = command.deadline - Timestamp.now().milliseconds
                if left < Int64(backoffMs + 200) {
                    return Reply(
                        ServiceRunner.apiError(for: error, logger: logger, command: command))
                }
                usleep(UInt32(backoffMs * 1000))
                backoffMs = min(backoffMs * 2, 1000)
            } catch {
                return Reply(ServiceRunner.apiError(for: error, logger: logger, command: command))
            }
        }
    }

    static func apiError(for error: Error, logger: Logger, command: Command) -> APIError {
        switch error {
        case let api as APIError:
            return api
        case let mongo as MongoError where mongo.kind == .unavailable:
            logger.warning(
                "mongodb unavailable", [.command: command.id, .error: mongo.description])
            return .unavailable("the database is unavailable")
        case let mongo as MongoError where mongo.kind == .duplicateKey:
            return .conflict("a document with the same unique key exists")
        default:
            logger.error(
                "command failed", [.command: command.id, .type: command.type, .error: "\(error)"])
            return .internalError()
        }
    }
}
