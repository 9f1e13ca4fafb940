import Core
import Dispatch
import FoundationEssentials
import Glibc
import RedisKit
import Synchronization

extension BusNames {
    /// A stream of domain events one service publishes and others consume in their own groups.
    public static func eventStream(_ topic: String) -> String { "uc:events:\(topic)" }
}

/// One event read from an events stream: its stream entry id and its field-value pairs.
public struct BusEvent: Sendable {
    public let streamId: String
    public let fields: [String: String]

    public init(streamId: String, fields: [String: String]) {
        self.streamId = streamId
        self.fields = fields
    }

    /// The publisher's id for the event; consumers deduplicate on it, not on `streamId`,
    /// since a publisher that retries may add the same event twice.
    public var id: String { fields["id"] ?? streamId }

    public subscript(_ key: String) -> String? { fields[key] }
}

/// Appends events to a stream. One connection, shared by the caller's threads under a lock.
///
/// The stream is trimmed by its consumer groups' positions, as the command streams are: every
/// `trimEveryMs` the entries before the oldest one any group has not read or not acknowledged
/// are dropped, so a group whose service is stopped for a while loses nothing. `maxLength`
/// only guards memory (a group that is gone for good would keep everything).
public final class EventPublisher: Sendable {
    struct State {
        let redis: RedisConnection
        /// When each stream was last trimmed (ms).
        var trimmedAt: [String: Int64] = [:]
    }

    let state: Mutex<State>
    let maxLength: Int
    let trimEveryMs: Int64

    public init(address: RedisAddress, maxLength: Int = 1_000_000, trimEveryMs: Int64 = 10_000) {
        state = Mutex(State(redis: RedisConnection(address: address, timeoutMs: 2000)))
        self.maxLength = maxLength
        self.trimEveryMs = trimEveryMs
    }

    /// Adds one event; throws when Redis cannot be reached, so the caller can retry later.
    public func publish(_ stream: String, _ fields: [(String, String)]) throws(RedisError) {
        var argv: [RedisArgument] = [
            "XADD", RedisArgument(stream), "MAXLEN", "~", RedisArgument(maxLength), "*",
        ]
        for (key, value) in fields {
            argv.append(RedisArgument(key))
            argv.append(RedisArgument(value))
        }
        let now = Timestamp.now().milliseconds
        let result: Result<RedisReply, RedisError> = state.withLock { current in
            do throws(RedisError) {
                let added = try current.redis.run(argv)
                if now - (current.trimmedAt[stream] ?? 0) >= trimEveryMs {
                    current.trimmedAt[stream] = now
                    // Best effort: a failed trim is tried again at the next interval.
                    try? StreamTrim.belowEveryGroup(stream, on: current.redis, approximate: false)
                }
                return .success(added)
            } catch {
                return .failure(error)
            }
        }
        _ = try result.get()
    }
}

/// Trimming of a stream read by consumer groups.
public enum StreamTrim {
    /// Drops the entries every group of `stream` has read and acknowledged, so nothing
    /// pending or unread is lost; nothing when the stream has no group yet. `approximate`:
    /// `MINID ~`, which Redis does in whole nodes (cheaper, keeps a little more). `LIMIT 0`
    /// lifts the 10,000 entries Redis removes at most per approximate call by default: a
    /// stream fed faster than that between two trims would otherwise grow without end.
    public static func belowEveryGroup(
        _ stream: String, on redis: RedisConnection, approximate: Bool
    ) throws(RedisError) {
        let groups = try redis.run(["XINFO", "GROUPS", RedisArgument(stream)]).array ?? []
        var floor: String?
        for group in groups {
            let fields = group.fieldMap
            guard let name = fields["name"]?.text, var oldest = fields["last-delivered-id"]?.text
            else { return }
            let pending = try redis.run(["XPENDING", RedisArgument(stream), RedisArgument(name)])
            if let first = pending.array?.dropFirst().first?.text,
                StreamId.isBefore(first, oldest)
            {
                oldest = first
            }
            if floor.map({ StreamId.isBefore(oldest, $0) }) ?? true { floor = oldest }
        }
        guard let floor else { return }
        let limit: [RedisArgument] = approximate ? ["LIMIT", "0"] : []
        let mode: [RedisArgument] = approximate ? ["MINID", "~"] : ["MINID"]
        try redis.run(["XTRIM", RedisArgument(stream)] + mode + [RedisArgument(floor)] + limit)
    }
}

/// Consumes an events stream in a consumer group on its own thread.
///
/// An event is acknowledged only after `handle` returned; when it throws, the event stays
/// pending and is tried again. Events another consumer left pending longer than
/// `claimIdleMs` are taken over. Delivery is therefore at least once: `handle` must make a
/// second delivery of the same event id harmless.
public final class EventConsumer: @unchecked Sendable {
    public typealias Handle = @Sendable (BusEvent) throws -> Void

    let stream: String
    let group: String
    let consumer: String
    let address: RedisAddress
    let logger: Logger
    let blockMs: Int
    let claimIdleMs: Int
    let handle: Handle
    private let stopping = Atomic<Bool>(false)
    public let appliedCount = Atomic<Int>(0)

    public init(
        stream: String, group: String, consumer: String, address: RedisAddress, logger: Logger,
        blockMs: Int = 1000, claimIdleMs: Int = 15_000, handle: @escaping Handle
    ) {
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.address = address
        self.logger = logger
        self.blockMs = blockMs
        self.claimIdleMs = claimIdleMs
        self.handle = handle
    }

    public func start() {
        startThread(named: "events-\(group)") { [self] in loop() }
    }

    public func stop() { stopping.store(true, ordering: .sequentiallyConsistent) }

    private var isStopping: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    private func loop() {
        let redis = RedisConnection(address: address, timeoutMs: blockMs + 3000)
        var groupReady = false
        // "0" first: entries this consumer read before a restart and never acknowledged.
        var readFrom = "0"
        var sinceClaim = 0
        var backoffMs = 100
        logger.info("consuming events", [.stream: stream, .consumer: consumer])
        while !isStopping {
            do {
                if !groupReady {
                    let reply = try redis.send([
                        "XGROUP", "CREATE", RedisArgument(stream), RedisArgument(group), "0",
                        "MKSTREAM",
                    ])
                    if let message = reply.errorMessage, !message.hasPrefix("BUSYGROUP") {
                        throw RedisError.server(message)
                    }
                    groupReady = true
                }
                var argv: [RedisArgument] = [
                    "XREADGROUP", "GROUP", RedisArgument(group), RedisArgument(consumer), "COUNT",
                    "64",
                ]
                if readFrom == ">" { argv += ["BLOCK", RedisArgument(blockMs)] }
                argv += ["STREAMS", RedisArgument(stream), RedisArgument(readFrom)]
                let reply = try redis.run(argv)
                let events = EventConsumer.events(inRead: reply)
                let failed = process(events, redis: redis)
                if readFrom == "0" && events.isEmpty { readFrom = ">" }
                if failed { readFrom = "0" }
                sinceClaim += events.isEmpty ? blockMs : 50
                if sinceClaim >= claimIdleMs / 2 {
                    sinceClaim = 0
                    claim(redis)
                }
                backoffMs = failed ? min(backoffMs * 2, 2000) : 100
                if failed { usleep(UInt32(backoffMs * 1000)) }
            } catch {
                if isStopping { break }
                logger.warning(
                    "event read failed; retrying", [.stream: stream, .error: "\(error)"])
                groupReady = false
                usleep(UInt32(backoffMs * 1000))
                backoffMs = min(backoffMs * 2, 2000)
            }
        }
    }

    /// Applies events in order and acknowledges each one that was applied; true when one failed
    /// (the rest of the batch is left for the retry, to keep the order).
    private func process(_ events: [BusEvent], redis: RedisConnection) -> Bool {
        for event in events {
            do {
                try handle(event)
                appliedCount.add(1, ordering: .relaxed)
            } catch {
                logger.warning(
                    "event not applied; will retry",
                    [.stream: stream, .command: event.id, .error: "\(error)"])
                return true
            }
            do {
                try redis.run([
                    "XACK", RedisArgument(stream), RedisArgument(group),
                    RedisArgument(event.streamId),
                ])
            } catch {
                // Applied but not acknowledged: the redelivery is deduplicated by the handler.
                logger.warning("cannot acknowledge event", [.stream: stream, .error: "\(error)"])
                return true
            }
        }
        return false
    }

    private func claim(_ redis: RedisConnection) {
        do {
            let reply = try redis.run([
                "XAUTOCLAIM", RedisArgument(stream), RedisArgument(group), RedisArgument(consumer),
                RedisArgument(claimIdleMs), "0-0", "COUNT", "64",
            ])
            guard let parts = reply.array, parts.count >= 2 else { return }
            let events = EventConsumer.events(inList: parts[1])
            if !events.isEmpty {
                logger.info(
                    "claimed pending events", [.stream: stream, .count: String(events.count)])
                _ = process(events, redis: redis)
            }
        } catch {
            logger.debug("event claim failed", [.stream: stream, .error: "\(error)"])
        }
    }

    static func events(inRead reply: RedisReply) -> [BusEvent] {
        guard let streams = reply.array else { return [] }
        var found: [BusEvent] = []
        for streamReply in streams {
            guard let pair = streamReply.array, pair.count == 2 else { continue }
            found += events(inList: pair[1])
        }
        return found
    }

    static func events(inList list: RedisReply) -> [BusEvent] {
        guard let entries = list.array else { return [] }
        return entries.compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].text,
                let values = parts[1].array
            else { return nil }
            var fields: [String: String] = [:]
            var index = 0
            while index + 1 < values.count {
                if let key = values[index].text, let value = values[index + 1].text {
                    fields[key] = value
                }
                index += 2
            }
            return BusEvent(streamId: id, fields: fields)
        }
    }
}
