import Core
import Crypt

/// Everything the gateway reads from the environment, in one place.
struct GatewayConfig {
    let host: String
    let port: Int
    let redisURL: String
    let jwtSecret: String
    let usingDevelopmentSecret: Bool
    let requestTimeoutMs: Int
    /// `RESPOND_TIMEOUT_MS`: the deadline of long-running requests (`respond: true`).
    let respondTimeoutMs: Int
    /// `SSE_HEARTBEAT_MS`: a comment line on a quiet event stream this often.
    let sseHeartbeatMs: Int
    let maxBodyBytes: Int
    let maxUploadBytes: Int
    let connectionTimeoutSeconds: Int
    let connectionLimit: Int
    /// `HTTP_CONNECTION_MEMORY`: bytes per connection for the request line and headers.
    let connectionMemoryBytes: Int
    let streamMaxBacklog: Int
    let gatewayId: String
    /// `GATEWAY_LOOPS`: threads that each serve a share of the connections from end to end.
    let loops: Int
    let writeLimit: Int
    let writeWindowMs: Int
    /// Registrations and logins per client address and window: each costs a bcrypt hash.
    let accountLimit: Int
    let accountWindowMs: Int
    let corsOrigins: [String]

    static let developmentSecret = "universal-chat-development-secret-change-me"

    init(_ env: Environment = Environment()) {
        host = env.string("HOST", "127.0.0.1")
        port = env.int("PORT", 8080)
        redisURL = env.string("REDIS_URL", "redis://127.0.0.1:6379")
        let secret = env.string("JWT_SECRET", "")
        usingDevelopmentSecret = secret.isEmpty
        jwtSecret = secret.isEmpty ? GatewayConfig.developmentSecret : secret
        requestTimeoutMs = max(100, env.int("REQUEST_TIMEOUT_MS", 5000))
        respondTimeoutMs = max(requestTimeoutMs, env.int("RESPOND_TIMEOUT_MS", 60_000))
        sseHeartbeatMs = max(1000, env.int("SSE_HEARTBEAT_MS", 10_000))
        maxBodyBytes = max(1024, env.int("MAX_BODY_BYTES", 1 << 20))
        maxUploadBytes = max(maxBodyBytes, env.int("MAX_UPLOAD_BYTES", 6 << 20))
        connectionTimeoutSeconds = max(1, env.int("HTTP_CONNECTION_TIMEOUT_S", 15))
        connectionLimit = max(64, env.int("HTTP_CONNECTION_LIMIT", 4000))
        connectionMemoryBytes = max(8192, env.int("HTTP_CONNECTION_MEMORY", 16 * 1024))
        streamMaxBacklog = max(1000, env.int("STREAM_MAX_BACKLOG", 100_000))
        gatewayId = env.string("GATEWAY_ID", Crypto.randomHex(6))
        loops = min(16, max(1, env.int("GATEWAY_LOOPS", 2)))
        writeLimit = max(0, env.int("RATE_LIMIT_WRITES", 1000))
        writeWindowMs = max(1000, env.int("RATE_LIMIT_WINDOW_MS", 10_000))
        accountLimit = max(0, env.int("RATE_LIMIT_ACCOUNTS", 120))
        accountWindowMs = max(1000, env.int("RATE_LIMIT_ACCOUNTS_WINDOW_MS", 60_000))
        corsOrigins = env.string("CORS_ORIGINS", "").split(separator: ",")
            .map(\.trimmingWhitespace).filter { !$0.isEmpty }
    }

    /// The settings for the start-up log line, the secret masked.
    var summary: String {
        "host=\(host) port=\(port) redis=\(redisURL)"
            + " jwtSecret=\(usingDevelopmentSecret ? "development" : "***")"
            + " requestTimeoutMs=\(requestTimeoutMs) respondTimeoutMs=\(respondTimeoutMs)"
            + " maxBodyBytes=\(maxBodyBytes) maxUploadBytes=\(maxUploadBytes)"
            + " gatewayId=\(gatewayId) loops=\(loops) writeLimit=\(writeLimit)/\(writeWindowMs)ms"
            + " accountLimit=\(accountLimit)/\(accountWindowMs)ms"
            + " cors=\(corsOrigins.isEmpty ? "off" : corsOrigins.joined(separator: ","))"
    }
}
