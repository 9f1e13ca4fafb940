import Core
import RedisKit

/// Chunks of a reply that is streamed while a service works on it.
///
/// The gateway names a per-request Redis stream in the command (`Command.chunkKey`); the
/// service appends entries `event <name> data <json>` to it with `XADD` (the key expires after
/// a TTL) and ends with `done` or `error`; the gateway reads them with `XREAD` and relays them
/// to the client as Server-Sent Events.
public enum ReplyChunks {
    public static let prefix = "uc:chunks:"

    public static func key(_ requestId: String) -> String { prefix + requestId }

    /// Events that end a stream.
    public static let terminal: Set<String> = ["done", "error"]

    /// Decodes the field-value pairs of one stream entry into (event, data).
    public static func decode(_ fields: [RedisReply]) -> (event: String, data: [UInt8])? {
        var event: String?
        var data: [UInt8] = []
        var index = 0
        while index + 1 < fields.count {
            switch fields[index].text {
            case "event": event = fields[index + 1].text
            case "data": data = fields[index + 1].bytes ?? []
            default: break
            }
            index += 2
        }
        guard let event else { return nil }
        return (event, data)
    }
}

/// The service's side: appends events to one request's chunk stream. Publishing is best
/// effort: a Redis failure is logged and the work goes on (the stored result matters more than
/// the live view of it). Not thread-safe; one per command.
public final class ReplyChunkPublisher {
    public let key: String
    private let redis: RedisConnection
    private let ttlMs: Int
    private let logger: Logger
    private var failed = false

    /// Nil unless `key` is a chunk key (a command names it; nothing else is written to).
    public init?(key: String?, address: RedisAddress, ttlMs: Int, logger: Logger) {
        guard let key, key.hasPrefix(ReplyChunks.prefix), key.utf8.count <= 200 else {
            return nil
        }
        self.key = key
        self.redis = RedisConnection(address: address, timeoutMs: 2000)
        self.ttlMs = ttlMs
        self.logger = logger
    }

    /// Appends one event; false when it could not be stored (logged once per run of failures).
    /// A connection Redis closed while it sat idle is replaced and the event sent again.
    @discardableResult
    public func publish(_ event: String, _ data: [UInt8]) -> Bool {
        // The expiry is renewed on every entry: a reader may delete the key while we write.
        let commands: [[RedisArgument]] = [
            [
                "XADD", RedisArgument(key), "*", "event", RedisArgument(event), "data",
                RedisArgument(data),
            ],
            ["PEXPIRE", RedisArgument(key), RedisArgument(ttlMs)],
        ]
        let last = ReplyChunks.terminal.contains(event)
        defer { if last { redis.disconnect() } }
        do {
            _ = try redis.retryingStaleConnection { (connection) throws(RedisError) in
                try connection.pipeline(commands)
            }
            failed = false
            return true
        } catch {
            if !failed {
                logger.warning("cannot publish a reply chunk", [.stream: key, .error: "\(error)"])
            }
            failed = true
            return false
        }
    }

    @discardableResult
    public func publish(_ event: String, _ document: Document) -> Bool {
        publish(event, JSONWriter.bytes(.document(document)))
    }
}
