import CHiredis
import Core
import FoundationEssentials
import Glibc

/// A reply from Redis, copied out of hiredis's reply object.
public enum RedisReply: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    case null
    case error(String)

    public var text: String? {
        switch self {
        case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let s): return s
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    public var bytes: [UInt8]? {
        if case .string(let b) = self { return b }
        return nil
    }

    public var array: [RedisReply]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var integer: Int64? {
        switch self {
        case .integer(let i): return i
        case .string: return text.flatMap { Int64($0) }
        default: return nil
        }
    }

    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// An array of alternating names and values (`XINFO`, a stream entry's fields) as a table.
    public var fieldMap: [String: RedisReply] {
        let items = array ?? []
        var fields: [String: RedisReply] = [:]
        var index = 0
        while index + 1 < items.count {
            if let key = items[index].text { fields[key] = items[index + 1] }
            index += 2
        }
        return fields
    }
}

/// Stream entry ids (`milliseconds-sequence`).
public enum StreamId {
    /// True when `a` comes before `b`, both compared as numbers; false if either is malformed.
    public static func isBefore(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: "-").compactMap { UInt64($0) }
        let y = b.split(separator: "-").compactMap { UInt64($0) }
        guard x.count == 2, y.count == 2 else { return false }
        return (x[0], x[1]) < (y[0], y[1])
    }
}

/// What went wrong talking to Redis: the connection (retry elsewhere) or the server's answer.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case connection, server }
    public let kind: Kind
    public let message: String

    public static func connection(_ message: String) -> RedisError {
        RedisError(kind: .connection, message: message)
    }

    public static func server(_ message: String) -> RedisError {
        RedisError(kind: .server, message: message)
    }

    public var description: String { "redis \(kind): \(message)" }
}

/// One hiredis connection. Not thread-safe: one per thread, or guarded by its owner.
///
/// Arguments go to Redis as an argv vector with lengths, so user text is never a format string.
/// After a connection error the context is dropped and the next call reconnects.
public final class RedisConnection: @unchecked Sendable {
    public let address: RedisAddress
    private let timeoutMs: Int
    private var context: UnsafeMutablePointer<redisContext>?

    public init(address: RedisAddress, timeoutMs: Int = 5000) {
        self.address = address
        self.timeoutMs = timeoutMs
    }

    deinit { disconnect() }

    public var isConnected: Bool { context != nil }

    public func disconnect() {
        if let context { redisFree(context) }
        context = nil
    }

    private func timeval(ms: Int) -> timeval {
        Glibc.timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
    }

    /// Connects if there is no live context yet.
    public func connect() throws(RedisError) {
        if context != nil { return }
        guard
            let made = redisConnectWithTimeout(
                address.host, Int32(address.port), timeval(ms: timeoutMs))
        else { throw .connection("cannot allocate a redis context") }
        if made.pointee.err != 0 {
            let message = RedisConnection.errorText(made)
            redisFree(made)
            throw .connection("connect to \(address): \(message)")
        }
        redisSetTimeout(made, timeval(ms: timeoutMs))
        context = made
    }

    /// Sets the socket timeout; it must exceed any BLOCK time used on this connection.
    public func setTimeout(ms: Int) {
        if let context { redisSetTimeout(context, timeval(ms: ms)) }
    }

    static func errorText(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// Sends one command and waits for its reply. An error reply is returned, not thrown.
    public func send(_ arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        try connect()
        guard let context else { throw .connection("not connected") }
        let raw = RedisConnection.withArgv(arguments) { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        guard let raw else {
            let message = RedisConnection.errorText(context)
            disconnect()
            throw .connection(message)
        }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return RedisConnection.copy(reply)
    }

    /// Sends one command already in wire form and waits for its reply.
    public func send(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try send(command) { $0.copied }
    }

    /// Sends one command already in wire form and lends its reply, uncopied, to `read`.
    public func send<Result>(
        _ command: RedisCommand, reading read: (RedisReplyView) -> Result
    ) throws(RedisError) -> Result {
        try connect()
        guard let context else { throw .connection("not connected") }
        var raw: UnsafeMutableRawPointer?
        if !command.queue(on: context) || redisGetReply(context, &raw) != REDIS_OK || raw == nil {
            let message = RedisConnection.errorText(context)
            disconnect()
            throw .connection(message)
        }
        defer { freeReplyObject(raw) }
        return read(RedisReplyView(raw!.assumingMemoryBound(to: redisReply.self)))
    }

    /// Sends several commands already in wire form in one round trip and reads their replies.
    public func send(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        try connect()
        guard let context else { throw .connection("not connected") }
        for command in commands where !command.queue(on: context) {
            disconnect()
            throw .connection("append failed")
        }
        return try readReplies(commands.count, from: context)
    }

    /// Sends several commands in one round trip and reads all their replies in order.
    public func pipeline(_ commands: [[RedisArgument]]) throws(RedisError) -> [RedisReply] {
        try connect()
        guard let context else { throw .connection("not connected") }
        for command in commands {
            let status = RedisConnection.withArgv(command) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            if status != REDIS_OK {
                disconnect()
                throw .connection("append failed")
            }
        }
        return try readReplies(commands.count, from: context)
    }

    private func readReplies(
        _ count: Int, from context: UnsafeMutablePointer<redisContext>
    ) throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        for _ in 0..<count {
            var raw: UnsafeMutableRawPointer?
            if redisGetReply(context, &raw) != REDIS_OK || raw == nil {
                let message = RedisConnection.errorText(context)
                disconnect()
                throw .connection(message)
            }
            defer { freeReplyObject(raw) }
            replies.append(RedisConnection.copy(raw!.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    /// Runs `body`, and once more on a new connection when the connection it found open fails
    /// at once: Redis closed it (a restart, `CLIENT KILL`, an idle timeout) while it sat idle.
    /// A connection that fails by timing out is not retried. Only for commands that may be
    /// applied twice (a dead connection may have delivered them before it failed).
    public func retryingStaleConnection<Result>(
        _ body: (RedisConnection) throws(RedisError) -> Result
    ) throws(RedisError) -> Result {
        let wasOpen = isConnected
        let started = Timestamp.now().milliseconds
        do {
            return try body(self)
        } catch {
            let failedAtOnce = Timestamp.now().milliseconds - started < 200
            guard error.kind == .connection, wasOpen, failedAtOnce else { throw error }
            return try body(self)
        }
    }

    /// Sends a command and throws if Redis answered with an error.
    @discardableResult
    public func run(_ arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        let reply = try send(arguments)
        if case .error(let message) = reply { throw .server(message) }
        return reply
    }

    /// Lays the arguments end to end in one buffer (one allocation, not one per argument) and
    /// hands hiredis pointers into it.
    static func withArgv<R>(
        _ arguments: [RedisArgument],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        var total = 1
        for argument in arguments {
            lengths.append(argument.bytes.count)
            total += argument.bytes.count
        }
        var blob: [UInt8] = []
        blob.reserveCapacity(total)
        for argument in arguments { blob += argument.bytes }
        // Never empty, so the buffer has an address even when every argument is "".
        blob.append(0)
        return blob.withUnsafeBytes { raw in
            withUnsafeTemporaryAllocation(
                of: UnsafePointer<CChar>?.self, capacity: max(1, arguments.count)
            ) { pointers in
                var offset = 0
                for (index, length) in lengths.enumerated() {
                    pointers[index] = (raw.baseAddress! + offset).assumingMemoryBound(
                        to: CChar.self)
                    offset += length
                }
                return lengths.withUnsafeBufferPointer { lengthPointer in
                    body(Int32(arguments.count), pointers.baseAddress!, lengthPointer.baseAddress!)
                }
            }
        }
    }

    static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .string(bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let child = r.element[i] {
                    items.append(copy(child))
                } else {
                    items.append(.null)
                }
            }
            return .array(items)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }
}

/// One argument of a Redis command: raw bytes, binary-safe.
public struct RedisArgument: Sendable, ExpressibleByStringLiteral {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ text: String) { bytes = Array(text.utf8) }
    public init(_ number: Int) { bytes = Array(String(number).utf8) }
    public init(_ number: Int64) { bytes = Array(String(number).utf8) }
    public init(stringLiteral value: String) { bytes = Array(value.utf8) }
}
