import Core
import Crypt
import Foundation

/// Tokens that the gateway must refuse.
enum JWTFactory {
    static func expired(_ user: ObjectId) -> String {
        JWT(secret: Cluster.secret).sign(
            TokenClaims(
                userId: user, role: "user", expiresAt: Int64(Date().timeIntervalSince1970) - 10))
    }

    static func wrongSecret(_ user: ObjectId) -> String {
        JWT(secret: "not-the-secret").sign(
            TokenClaims(
                userId: user, role: "user", expiresAt: Int64(Date().timeIntervalSince1970) + 600))
    }
}
