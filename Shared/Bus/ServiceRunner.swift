import Core
import Foundation
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
    public let consumer: String

    public init(service: String, environment env: Environment = Environment()) {
        redis = RedisAddress(url: env.string("REDIS_URL", "redis://127.0.0.1:6379"))
        workers = max(1, env.int("WORKERS", 8))
        blockMs = max(50, env.int("BUS_BLOCK_MS", 1000))
        claimIdleMs = max(1000, env.int("CLAIM_IDLE_MS", 15_000))
        replyTTLms = max(1000, env.int("REPLY_TTL_MS", 30_000))
        let host = ProcessInfo.processInfo.hostName
        consumer = env.string("CONSUMER_NAME", "\(service)-\(host)-\(getpid())")
    }
}

/// A command handler: `mutating` ones go through the ledger so their effect happens once.
public struct Handler: Sendable {
    public let mutating: Bool
    public let run: @Sendable (Command) throws -> Reply

    public init(mutating: Bool, _ run: @escaping @Sendable (Command) throws -> Reply) {
        self.mutating = mutating
        self.run = run
    }
}

/// Reads a service's command stream in its consumer group with several worker threads,
/// applies each command, writes the reply to the command's reply key and acknowledges it.
public final class ServiceRunner: @unchecked Sendable {
    public let service: String
    public let config: BusConfig
    let logger: Logger
    let ledger: CommandLedger?
    let handlers: [String: Handler]
    let stream: String
    private let stopping = Atomic<Bool>(false)
    private let threadsLeft = Atomic<Int>(0)
    public let expiredCount = Atomic<Int>(0)
    public let handledCount = Atomic<Int>(0)

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
    }

    /// Starts the workers and blocks until SIGTERM or SIGINT, then drains and returns.
    public func run() {
        let signals = [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.stop() }
            source.resume()
            return source
        }
        logger.info(
            "consuming", [.stream: stream, .consumer: config.consumer, .count: String(config.workers)])
        threadsLeft.store(config.workers + 1, ordering: .sequentiallyConsistent)
        for index in 0..<config.workers {
            let thread = Thread { [self] in
                workerLoop(index: index)
                threadsLeft.subtract(1, ordering: .sequentiallyConsistent)
            }
            thread.name = "\(service)-worker-\(index)"
            thread.start()
        }
        let claimer = Thread { [self] in
            claimLoop()
            threadsLeft.subtract(1, ordering: .sequentiallyConsistent)
        }
        claimer.start()
        while threadsLeft.load(ordering: .sequentiallyConsistent) > 0 {
            usleep(50_000)
        }
        _ = signals
        logger.info("stopped", [.stream: stream])
    }

    public func stop() {
        if !stopping.exchange(true, ordering: .sequentiallyConsistent) {
            logger.info("draining", [.stream: stream])
        }
    }

    private var isStopping: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    private func ensureGroup(_ redis: RedisConnection) throws(RedisError) {
        let reply = try redis.send(["XGROUP", "CREATE", RedisArgument(stream), RedisArgument(service), "0", "MKSTREAM"])
        if let message = reply.errorMessage, !message.hasPrefix("BUSYGROUP") {
            throw .server(message)
        }
    }

    private func workerLoop(index: Int) {
        let redis = RedisConnection(address: config.redis, timeoutMs: config.blockMs + 3000)
        var groupReady = false
        var backoffMs = 100
        while !isStopping {
            do {
                if !groupReady {
                    try ensureGroup(redis)
                    groupReady = true
                }
                let reply = try redis.send([
                    "XREADGROUP", "GROUP", RedisArgument(service), RedisArgument(config.consumer),
                    "COUNT", "16", "BLOCK", RedisArgument(config.blockMs), "STREAMS", RedisArgument(stream), ">",
                ])
                if let message = reply.errorMessage {
                    if message.hasPrefix("NOGROUP") { groupReady = false }
                    throw RedisError.server(message)
                }
                backoffMs = 100
                let commands = ServiceRunner.entries(of: reply)
                if !commands.isEmpty { try process(commands, redis: redis) }
            } catch {
                if isStopping { break }
                logger.warning("redis read failed; retrying", [.stream: stream, .error: "\(error)"])
                groupReady = false
                usleep(UInt32(backoffMs * 1000))
                backoffMs = min(backoffMs * 2, 2000)
            }
        }
    }

    /// Takes over commands another consumer left pending for longer than the claim idle time.
    private func claimLoop() {
        let redis = RedisConnection(address: config.redis, timeoutMs: 5000)
        var slept = 0
        var sinceBeat = 1000
        while !isStopping {
            usleep(100_000)
            slept += 100
            sinceBeat += 100
            if sinceBeat >= 1000 {
                sinceBeat = 0
                heartbeat(redis)
            }
            guard slept >= config.claimIdleMs / 2 else { continue }
            slept = 0
            do {
                let reply = try redis.run([
                    "XAUTOCLAIM", RedisArgument(stream), RedisArgument(service), RedisArgument(config.consumer),
                    RedisArgument(config.claimIdleMs), "0-0", "COUNT", "64",
                ])
                guard let parts = reply.array, parts.count >= 2 else { continue }
                let commands = ServiceRunner.commands(in: parts[1])
                if !commands.isEmpty {
                    logger.info("claimed pending commands", [.stream: stream, .count: String(commands.count)])
                    try process(commands, redis: redis)
                }
            } catch {
                logger.debug("claim failed", [.stream: stream, .error: "\(error)"])
            }
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

    static func entries(of reply: RedisReply) -> [Command] {
        guard let streams = reply.array else { return [] }
        var commands: [Command] = []
        for streamReply in streams {
            guard let pair = streamReply.array, pair.count == 2 else { continue }
            commands += ServiceRunner.commands(in: pair[1])
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

    private func process(_ commands: [Command], redis: RedisConnection) throws(RedisError) {
        var pipeline: [[RedisArgument]] = []
        for command in commands {
            guard !command.streamId.isEmpty else { continue }
            if command.deadline < Timestamp.now().milliseconds {
                expiredCount.add(1, ordering: .relaxed)
                logger.debug("dropped expired command", [.command: command.id, .type: command.type])
                pipeline.append(["XACK", RedisArgument(stream), RedisArgument(service), RedisArgument(command.streamId)])
                continue
            }
            guard let reply = apply(command) else { continue }
            pipeline.append(["RPUSH", RedisArgument(command.replyKey), RedisArgument(reply.frame(requestId: command.requestId))])
            pipeline.append(["PEXPIRE", RedisArgument(command.replyKey), RedisArgument(config.replyTTLms)])
            pipeline.append(["XACK", RedisArgument(stream), RedisArgument(service), RedisArgument(command.streamId)])
        }
        if !pipeline.isEmpty { _ = try redis.pipeline(pipeline) }
    }

    /// Runs the handler; nil means "leave it pending" (another delivery is still applying it).
    func apply(_ command: Command) -> Reply? {
        handledCount.add(1, ordering: .relaxed)
        guard let handler = handlers[command.type] else {
            return Reply(APIError.notFound("route"))
        }
        guard handler.mutating, let ledger else { return execute(handler, command) }
        do {
            switch try ledger.begin(command, consumer: config.consumer) {
            case .fresh:
                return finish(handler, command, ledger)
            case .done(let reply):
                return reply
            case .conflict:
                return Reply(APIError.unprocessable("this Idempotency-Key was used with another request"))
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

    private func execute(_ handler: Handler, _ command: Command) -> Reply {
        do {
            return try handler.run(command)
        } catch {
            return Reply(ServiceRunner.apiError(for: error, logger: logger, command: command))
        }
    }

    static func apiError(for error: Error, logger: Logger, command: Command) -> APIError {
        switch error {
        case let api as APIError:
            return api
        case let mongo as MongoError where mongo.kind == .unavailable:
            logger.warning("mongodb unavailable", [.command: command.id, .error: mongo.description])
            return .unavailable("the database is unavailable")
        case let mongo as MongoError where mongo.kind == .duplicateKey:
            return .conflict("a document with the same unique key exists")
        default:
            logger.error("command failed", [.command: command.id, .type: command.type, .error: "\(error)"])
            return .internalError()
        }
    }
}
