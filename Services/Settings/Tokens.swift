import Core
import Crypt
import MongoKit

/// Issues access tokens (HS256 JWTs the gateway verifies on its own) and opaque refresh
/// tokens, of which only the SHA-256 is stored.
///
/// A refresh token is derived from the command that issues it (HMAC of the command id and
/// its context under a key derived from the JWT secret), so a redelivered login or refresh
/// issues the very same token and stores it once, instead of a second token or a false alarm
/// of reuse.
struct TokenIssuer: Sendable {
    let jwt: JWT
    let refreshKey: [UInt8]
    let accessTTL: Int64
    let refreshTTL: Int64
    let tokens: MongoCollection

    init(config: SettingsConfig, tokens: MongoCollection) {
        jwt = JWT(secret: config.jwtSecret)
        refreshKey = Crypto.hmacSHA256(
            key: Array(config.jwtSecret.utf8), data: Array("uc-refresh-token-key-v1".utf8))
        accessTTL = config.accessTokenTTL
        refreshTTL = config.refreshTokenTTL
        self.tokens = tokens
    }

    static func hash(_ token: String) -> String { Crypto.sha256Hex(Array(token.utf8)) }

    /// A family per login: every token rotated from it shares this id.
    static func familyId(commandId: String, user: ObjectId) -> String {
        String(Crypto.sha256Hex(Array("family\u{0}\(commandId)\u{0}\(user.hex)".utf8)).prefix(32))
    }

    func refreshToken(commandId: String, context: String) -> String {
        let input = Array("refresh\u{0}\(commandId)\u{0}\(context)".utf8)
        return "rt_" + Base64URL.encode(Crypto.hmacSHA256(key: refreshKey, data: input))
    }

    func accessToken(user: ObjectId, role: String) -> String {
        let now = Timestamp.now().milliseconds / 1000
        return jwt.sign(
            TokenClaims(userId: user, role: role, expiresAt: now + accessTTL), issuedAt: now)
    }

    /// Stores a new refresh token of the family and answers both tokens.
    func issue(
        user: ObjectId, role: String, familyId: String, commandId: String, context: String
    ) throws(MongoError) -> Document {
        let token = refreshToken(commandId: commandId, context: context)
        let now = Timestamp.now()
        let expires = Timestamp(milliseconds: now.milliseconds + refreshTTL * 1000)
        do {
            try tokens.insertOne([
                "_id": .string(TokenIssuer.hash(token)), "userId": .objectId(user),
                "familyId": .string(familyId), "issuedBy": .string(commandId),
                "createdAt": .date(now), "expiresAt": .date(expires),
            ])
        } catch {
            // The same command issued it before: a redelivery gets the same token.
            guard error.kind == .duplicateKey else { throw error }
        }
        return [
            "accessToken": .string(accessToken(user: user, role: role)),
            "tokenType": "Bearer",
            "expiresIn": .int64(accessTTL),
            "refreshToken": .string(token),
            "refreshExpiresIn": .int64(refreshTTL),
        ]
    }

    /// Marks every token of the family revoked; refreshing with any of them then fails.
    func revokeFamily(_ familyId: String) throws(MongoError) {
        try tokens.updateMany(
            ["familyId": .string(familyId), "revokedAt": ["$exists": false]],
            ["$set": ["revokedAt": .date(Timestamp.now())]])
    }
}
