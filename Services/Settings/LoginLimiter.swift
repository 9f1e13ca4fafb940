import Bus
import Core
import Crypt
import RedisKit
import ServiceKit
import Synchronization

/// A few Redis connections shared by the worker threads; a connection that failed is
/// dropped and the next call opens a new one.
final class RedisPool: Sendable {
    let address: RedisAddress
    private let idle = Mutex<[RedisConnection]>([])

    init(address: RedisAddress) { self.address = address }

    func pipeline(_ commands: [[RedisArgument]]) throws(RedisError) -> [RedisReply] {
        let connection =
            idle.withLock { $0.popLast() } ?? RedisConnection(address: address, timeoutMs: 2000)
        let replies = try connection.pipeline(commands)
        idle.withLock { if $0.count < 16 { $0.append(connection) } }
        return replies
    }
}

/// Counts failed logins per email and per client address in Redis, so the limit holds
/// across gateway and service replicas. Each counter lives for a fixed window from its
/// first failure; at the limit, logins for that email or from that address get 429 with
/// `Retry-After` until the window ends, even with the right password. A successful login
/// clears the email's counter. Keys hold a hash of the email, not the email.
///
/// If Redis cannot be reached, logins answer 503 rather than run without a limit.
struct LoginLimiter: Sendable {
    let redis: RedisPool
    let windowSeconds: Int
    let maxPerEmail: Int
    let maxPerAddress: Int

    static func emailKey(_ emailLower: String) -> String {
        "uc:login-failures:email:" + Crypto.sha256Hex(Array(emailLower.utf8))
    }

    static func addressKey(_ address: String) -> String { "uc:login-failures:addr:" + address }

    /// Whole seconds to wait when a counter is at its limit, else nil.
    static func retryAfter(count: Int64?, ttlMs: Int64?, limit: Int, windowSeconds: Int) -> Int? {
        guard let count, count >= Int64(limit) else { return nil }
        let remaining = (ttlMs ?? -1) > 0 ? ttlMs ?? 0 : Int64(windowSeconds) * 1000
        return Int((remaining + 999) / 1000)
    }

    /// Seconds to wait before another attempt, or nil when a login may be tried.
    func blocked(email: String, address: String) throws(APIError) -> Int? {
        let emailKey = RedisArgument(LoginLimiter.emailKey(email))
        var commands: [[RedisArgument]] = [["GET", emailKey], ["PTTL", emailKey]]
        if !address.isEmpty {
            let addressKey = RedisArgument(LoginLimiter.addressKey(address))
            commands += [["GET", addressKey], ["PTTL", addressKey]]
        }
        let replies = try run(commands)
        var waits: [Int] = []
        for (index, limit) in [maxPerEmail, maxPerAddress].enumerated() {
            guard replies.count > index * 2 + 1 else { break }
            let wait = LoginLimiter.retryAfter(
                count: replies[index * 2].integer, ttlMs: replies[index * 2 + 1].integer,
                limit: limit, windowSeconds: windowSeconds)
            if let wait { waits.append(wait) }
        }
        return waits.max()
    }

    func recordFailure(email: String, address: String) throws(APIError) {
        var keys = [LoginLimiter.emailKey(email)]
        if !address.isEmpty { keys.append(LoginLimiter.addressKey(address)) }
        var commands: [[RedisArgument]] = []
        for key in keys.map({ RedisArgument($0) }) {
            commands.append(["SET", key, "0", "EX", RedisArgument(windowSeconds), "NX"])
            commands.append(["INCR", key])
        }
        _ = try run(commands)
    }

    func reset(email: String) throws(APIError) {
        _ = try run([["DEL", RedisArgument(LoginLimiter.emailKey(email))]])
    }

    private func run(_ commands: [[RedisArgument]]) throws(APIError) -> [RedisReply] {
        do {
            return try redis.pipeline(commands)
        } catch {
            throw APIError.unavailable("the login rate limit store is unavailable")
        }
    }

    /// The 429 answer, with `Retry-After` in seconds.
    static func tooManyAttempts(retryAfter seconds: Int) -> Reply {
        let error = APIError.tooManyRequests(
            "too many failed logins; try again in \(seconds) seconds")
        return Reply(status: 429, body: error.body, headers: [("Retry-After", String(seconds))])
    }
}
