import CHiredis
import Core
import FoundationEssentials
import Glibc

/// A hiredis connection for an event loop: commands are queued and written as far as the socket
/// takes them, and replies are read as they arrive, without ever blocking after the connect.
///
/// Replies come back in the order their commands were queued; the owner matches them up. Not
/// thread-safe: it belongs to the loop's thread. After an error it is closed for good; the
/// owner makes a new one.
public final class RedisPipe: @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?
    /// The socket, to watch for readability (replies) and writability (a write left
    /// unfinished); kept after `close` so that the owner can stop watching it.
    public let descriptor: Int32

    /// Connects, waiting at most `timeoutMs`, then turns the socket non-blocking.
    public init(address: RedisAddress, timeoutMs: Int) throws(RedisError) {
        let limit = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        guard let made = redisConnectWithTimeout(address.host, Int32(address.port), limit) else {
            throw .connection("cannot allocate a redis context")
        }
        if made.pointee.err != 0 {
            let message = RedisConnection.errorText(made)
            redisFree(made)
            throw .connection("connect to \(address): \(message)")
        }
        let flags = fcntl(made.pointee.fd, F_GETFL)
        _ = fcntl(made.pointee.fd, F_SETFL, flags | O_NONBLOCK)
        // hiredis treats EAGAIN as "try again later" only on a context not marked blocking.
        made.pointee.flags &= ~Int32(REDIS_BLOCK)
        context = made
        descriptor = made.pointee.fd
    }

    deinit { close() }

    public var isOpen: Bool { context != nil }

    public func close() {
        if let context { redisFree(context) }
        context = nil
    }

    /// Queues one command; nothing is sent before `write`.
    public func queue(_ arguments: [RedisArgument]) throws(RedisError) {
        guard let context else { throw .connection("closed") }
        let status = RedisConnection.withArgv(arguments) { argc, argv, lengths in
            redisAppendCommandArgv(context, argc, argv, lengths)
        }
        if status != REDIS_OK { throw fail("cannot queue a command") }
    }

    /// Queues one command already in wire form.
    public func queue(_ command: RedisCommand) throws(RedisError) {
        guard let context else { throw .connection("closed") }
        if !command.queue(on: context) { throw fail("cannot queue a command") }
    }

    /// Writes what the socket takes now; true when nothing is left to write.
    public func write() throws(RedisError) -> Bool {
        guard let context else { throw .connection("closed") }
        var done: Int32 = 0
        while done == 0 {
            let before = uc_redis_unwritten(context)
            if redisBufferWrite(context, &done) != REDIS_OK { throw fail("write failed") }
            if done == 0 && uc_redis_unwritten(context) == before { return false }
        }
        return true
    }

    /// Reads what has arrived and returns every complete reply, in order (possibly none).
    public func read() throws(RedisError) -> [RedisReply] {
        guard let context else { throw .connection("closed") }
        if redisBufferRead(context) != REDIS_OK { throw fail("read failed") }
        var replies: [RedisReply] = []
        while true {
            var raw: UnsafeMutableRawPointer?
            if redisGetReplyFromReader(context, &raw) != REDIS_OK {
                throw fail("malformed reply")
            }
            guard let raw else { return replies }
            replies.append(RedisConnection.copy(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
    }

    private func fail(_ what: String) -> RedisError {
        let message = context.map { RedisConnection.errorText($0) } ?? ""
        close()
        return .connection(message.isEmpty ? what : "\(what): \(message)")
    }
}
