import Core
import JSONKit

/// The claims this API reads from an access token.
public struct TokenClaims: Sendable, Equatable {
    public let userId: ObjectId
    public let role: String
    public let expiresAt: Int64

    public init(userId: ObjectId, role: String, expiresAt: Int64) {
        self.userId = userId
        self.role = role
        self.expiresAt = expiresAt
    }
}

/// HS256 JSON Web Tokens: HMAC-SHA256 from OpenSSL, compared in constant time.
public struct JWT: Sendable {
    private let key: [UInt8]

    public init(secret: String) { key = Array(secret.utf8) }

    public func sign(_ claims: TokenClaims, issuedAt: Int64? = nil) -> String {
        let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        var payload: Document = [
            "sub": .string(claims.userId.hex), "role": .string(claims.role),
            "exp": .int64(claims.expiresAt),
        ]
        if let issuedAt { payload["iat"] = .int64(issuedAt) }
        let body = Base64URL.encode(JSONWriter.bytes(.document(payload)))
        let signingInput = "\(header).\(body)"
        let signature = Crypto.hmacSHA256(key: key, data: Array(signingInput.utf8))
        return "\(signingInput).\(Base64URL.encode(signature))"
    }

    /// The claims of a valid, unexpired token, or nil.
    public func verify(_ token: String, now: Int64) -> TokenClaims? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count < 4096 else { return nil }
        guard let headerBytes = Base64URL.decode(parts[0]),
            let header = try? JSONParser.parseObject(headerBytes),
            header["alg"]?.stringValue == "HS256"
        else { return nil }
        guard let signature = Base64URL.decode(parts[2]) else { return nil }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let expected = Crypto.hmacSHA256(key: key, data: signingInput)
        guard Crypto.constantTimeEqual(expected, signature) else { return nil }
        guard let payloadBytes = Base64URL.decode(parts[1]),
            let payload = try? JSONParser.parseObject(payloadBytes),
            let subject = payload["sub"]?.stringValue, let userId = ObjectId(hex: subject),
            let expiry = payload["exp"]?.intValue, expiry > now
        else { return nil }
        let role = payload["role"]?.stringValue ?? "user"
        return TokenClaims(
            userId: userId, role: role == "admin" ? "admin" : "user", expiresAt: expiry)
    }
}
