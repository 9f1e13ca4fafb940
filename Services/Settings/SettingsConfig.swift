import Core

/// Everything the settings service reads from the environment, in one place.
struct SettingsConfig: Sendable {
    static let developmentSecret = "universal-chat-development-secret-change-me"

    let mongoURI: String
    /// The HS256 key the gateway verifies access tokens with (`JWT_SECRET`).
    let jwtSecret: String
    let usingDevelopmentSecret: Bool
    /// Access-token lifetime; a deactivated user's tokens stop working within it.
    let accessTokenTTL: Int64
    let refreshTokenTTL: Int64
    let bcryptCost: Int
    /// Failed logins are counted per email and per client address in a fixed window.
    let loginWindowSeconds: Int
    let maxFailuresPerEmail: Int
    let maxFailuresPerAddress: Int

    init(_ env: Environment = Environment()) {
        mongoURI = env.string("MONGODB_URI", "mongodb://127.0.0.1:27017/universal_chat")
        let secret = env.string("JWT_SECRET", "")
        usingDevelopmentSecret = secret.isEmpty
        jwtSecret = secret.isEmpty ? SettingsConfig.developmentSecret : secret
        accessTokenTTL = Int64(min(86_400, max(5, env.int("ACCESS_TOKEN_TTL_S", 900))))
        refreshTokenTTL = Int64(max(60, env.int("REFRESH_TOKEN_TTL_S", 30 * 86_400)))
        bcryptCost = min(15, max(4, env.int("BCRYPT_COST", 10)))
        loginWindowSeconds = max(1, env.int("LOGIN_WINDOW_S", 900))
        maxFailuresPerEmail = max(1, env.int("LOGIN_MAX_FAILURES_PER_EMAIL", 5))
        maxFailuresPerAddress = max(1, env.int("LOGIN_MAX_FAILURES_PER_ADDRESS", 50))
    }

    /// The settings for the start-up log line, the secret masked.
    var summary: String {
        "jwtSecret=\(usingDevelopmentSecret ? "development" : "***") accessTokenTTL=\(accessTokenTTL)"
            + " refreshTokenTTL=\(refreshTokenTTL) bcryptCost=\(bcryptCost)"
            + " loginWindow=\(loginWindowSeconds) maxFailuresPerEmail=\(maxFailuresPerEmail)"
            + " maxFailuresPerAddress=\(maxFailuresPerAddress)"
    }
}
