import Core
import Foundation
import RedisKit
import Synchronization

/// The gateway's side of the bus: writes commands to service streams and hands each reply
/// to the request waiting for it.
///
/// Threads: one writer (pipelined `XADD`s), one reader (`BLMPOP` on this process's reply
/// key), one sweeper (deadlines). Two Redis connections in all, however many requests wait.
public final class BusClient: @unchecked Sendable {
    public typealias Completion = @Sendable (Reply?) -> Void

    struct Outgoing {
        let stream: String
        let command: Command
        let limit: RateLimit?
    }

    /// A budget of `limit` commands per `windowMs` for one key (a user's writes).
    public struct RateLimit: Sendable {
        public let key: String
        public let limit: Int
        public let windowMs: Int

        public init(key: String, limit: Int, windowMs: Int) {
            self.key = key
            self.limit = limit
            self.windowMs = windowMs
        }
    }

    /// Counts against the budget and adds the command in one atomic step, or refuses with
    /// `RATELIMIT <ms until the window ends>`.
    static let limitedAdd = """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        if n > tonumber(ARGV[1]) then
          return redis.error_reply('RATELIMIT ' .. redis.call('PTTL', KEYS[1]))
        end
        return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
        """

    struct Waiting {
        let deadline: Int64
        let completion: Completion
    }

    public let replyKey: String
    let address: RedisAddress
    let logger: Logger
    let maxBacklog: Int
    private let backlog = PlainLock<[String: Int64]>([:])
    private let queue = WorkQueue<Outgoing>()
    private let waiting = PlainLock<[String: Waiting]>([:])
    private let stopping = Atomic<Bool>(false)
    public let redisUp = Atomic<Bool>(true)

    /// `maxBacklog`: a stream longer than this sheds new commands with 503 instead of growing;
    /// services trim acknowledged entries, so it only fills when they fall behind.
    public init(address: RedisAddress, gatewayId: String, logger: Logger, maxBacklog: Int) {
        self.address = address
        self.replyKey = BusNames.replyKey(gatewayId)
        self.logger = logger
        self.maxBacklog = maxBacklog
    }

    public func start() {
        for (name, body) in [
            ("bus-writer", writerLoop), ("bus-reader", readerLoop), ("bus-sweeper", sweepLoop),
        ] {
            startThread(named: name) { body() }
        }
    }

    /// Commands of a stream not yet answered: undelivered (`lag`) plus delivered and
    /// unacknowledged (`pending`) for the stream's service group. Acknowledged entries waiting
    /// for the next trim do not count.
    static func backlog(of reply: RedisReply, stream: String) -> Int64 {
        let service = String(stream.dropFirst(BusNames.commandStream("").count))
        for group in reply.array ?? [] {
            let fields = group.fieldMap
            guard fields["name"]?.text == service else { continue }
            return (fields["lag"]?.integer ?? 0) + (fields["pending"]?.integer ?? 0)
        }
        return 0
    }

    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
    }

    public var inFlight: Int { waiting.withLock { $0.count } }

    /// Sends a command; `completion` runs once, with the reply or nil at the deadline.
    public func submit(
        _ command: Command, to service: String, limit: RateLimit? = nil,
        completion: @escaping Completion
    ) {
        let stream = BusNames.commandStream(service)
        if let length = backlog.withLock({ $0[stream] }), length > Int64(maxBacklog) {
            return completion(
                Reply(APIError.unavailable("the \(service) service is overloaded; retry later")))
        }
        waiting.withLock {
            $0[command.requestId] = Waiting(deadline: command.deadline, completion: completion)
        }
        queue.push(Outgoing(stream: stream, command: command, limit: limit))
    }

    private func complete(_ id: String, with reply: Reply?) {
        guard let entry = waiting.withLock({ $0.removeValue(forKey: id) }) else { return }
        entry.completion(reply)
    }

    private func writerLoop() {
        let redis = RedisConnection(address: address, timeoutMs: 2000)
        var lastBacklogCheck: Int64 = 0
        while !stopping.load(ordering: .sequentiallyConsistent) {
            let batch = queue.popAll(timeoutMs: 200)
            let now = Timestamp.now().milliseconds
            let checkBacklog = now - lastBacklogCheck > 200
            // A stream being shed gets no commands, so it is checked without any: otherwise
            // the gateway would refuse its service's requests for good.
            let shedding = checkBacklog ? sheddingStreams() : []
            guard !batch.isEmpty || !shedding.isEmpty else { continue }
            var commands: [[RedisArgument]] = batch.map { item in
                guard let limit = item.limit else {
                    return ["XADD", RedisArgument(item.stream), "*"] + item.command.fields
                }
                return [
                    "EVAL", RedisArgument(BusClient.limitedAdd), "2", RedisArgument(limit.key),
                    RedisArgument(item.stream), RedisArgument(limit.limit),
                    RedisArgument(limit.windowMs),
                ]
                    + item.command.fields
            }
            let streams = Array(Set(batch.map(\.stream)).union(shedding))
            if checkBacklog {
                lastBacklogCheck = now
                commands += streams.map { ["XINFO", "GROUPS", RedisArgument($0)] }
            }
            do {
                // A command sent twice is harmless: services deduplicate by command id. (A
                // rate-limited one may count twice against its budget.)
                let replies = try redis.retryingStaleConnection { (connection) throws(RedisError) in
                    try connection.pipeline(commands)
                }
                if checkBacklog {
                    let lengths = zip(streams, replies.suffix(streams.count)).map { stream, reply in
                        BusClient.backlog(of: reply, stream: stream)
                    }
                    backlog.withLock { table in
                        for (stream, length) in zip(streams, lengths) { table[stream] = length }
                    }
                }
                redisUp.store(true, ordering: .relaxed)
                for (item, reply) in zip(batch, replies) {
                    if let message = reply.errorMessage, message.hasPrefix("RATELIMIT") {
                        let waitMs = Int(message.split(separator: " ").last ?? "") ?? 1000
                        let seconds = String(max(1, (waitMs + 999) / 1000))
                        let refusal = APIError.tooManyRequests(
                            "too many requests; retry after \(seconds) s")
                        complete(
                            item.command.requestId,
                            with: Reply(
                                status: 429, body: refusal.body, headers: [("Retry-After", seconds)]
                            ))
                    } else if let message = reply.errorMessage {
                        logger.error("XADD refused", [.stream: item.stream, .error: message])
                        complete(
                            item.command.requestId,
                            with: Reply(APIError.unavailable("the message bus refused the request"))
                        )
                    }
                }
            } catch {
                redisUp.store(false, ordering: .relaxed)
                logger.warning("redis unavailable for XADD", [.error: error.description])
                for item in batch {
                    complete(
                        item.command.requestId,
                        with: Reply(APIError.unavailable("the message bus is unavailable")))
                }
            }
        }
    }

    /// Streams whose last known backlog is over the limit.
    private func sheddingStreams() -> [String] {
        backlog.withLock { table in
            table.filter { $0.value > Int64(maxBacklog) }.map(\.key)
        }
    }

    private func readerLoop() {
        let redis = RedisConnection(address: address, timeoutMs: 4000)
        var backoffMs = 100
        while !stopping.load(ordering: .sequentiallyConsistent) {
            do {
                let reply = try redis.run([
                    "BLMPOP", "1", "1", RedisArgument(replyKey), "LEFT", "COUNT", "256",
                ])
                backoffMs = 100
                guard let parts = reply.array, parts.count == 2, let frames = parts[1].array else {
                    continue
                }
                for frame in frames {
                    guard let bytes = frame.bytes, let (id, reply) = Reply.parse(frame: bytes)
                    else { continue }
                    complete(id, with: reply)
                }
            } catch {
                if stopping.load(ordering: .sequentiallyConsistent) { break }
                redisUp.store(false, ordering: .relaxed)
                logger.warning("reply reader lost redis; reconnecting", [.error: error.description])
                usleep(UInt32(backoffMs * 1000))
                backoffMs = min(backoffMs * 2, 1000)
            }
        }
    }

    private func sweepLoop() {
        while !stopping.load(ordering: .sequentiallyConsistent) {
            usleep(20_000)
            let now = Timestamp.now().milliseconds
            let expired = waiting.withLock { table -> [Waiting] in
                let ids = table.filter { $0.value.deadline <= now }.map(\.key)
                return ids.compactMap { table.removeValue(forKey: $0) }
            }
            for entry in expired { entry.completion(nil) }
        }
    }
}
