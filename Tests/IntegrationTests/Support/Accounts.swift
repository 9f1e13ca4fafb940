import Core
import Crypt
import Foundation
import JSONKit
import MongoKit

/// A registered account: its tokens and what it registered with.
struct Account: Sendable {
    let user: TestUser
    let email: String
    let password: String
    let refreshToken: String
}

extension Cluster {
    /// An email nobody else in this test run uses.
    static func uniqueEmail(_ tag: String = "user") -> String {
        "\(tag)-\(UUID().uuidString.prefix(8).lowercased())@example.com"
    }

    func register(
        email: String = Cluster.uniqueEmail(), password: String = "correct horse battery",
        name: String = "Test User"
    ) throws -> Account {
        let body = json([
            "email": .string(email), "name": .string(name), "password": .string(password),
        ])
        let result = try post("/api/auth/register", nil, body)
        guard result.status == 201, let access = result["accessToken"]?.stringValue,
            let refresh = result["refreshToken"]?.stringValue,
            let id = result.document?.value(at: "user.userId")?.objectIdValue
        else { throw ClusterError(description: "register failed: \(result.status) \(result.text)") }
        return Account(
            user: TestUser(id: id, token: access), email: email, password: password,
            refreshToken: refresh)
    }

    func login(_ email: String, _ password: String) throws -> HTTPResult {
        try post(
            "/api/auth/login", nil, json(["email": .string(email), "password": .string(password)]))
    }

    func refresh(_ token: String) throws -> HTTPResult {
        try post("/api/auth/refresh", nil, json(["refreshToken": .string(token)]))
    }

    /// Direct access to the cluster's database, for checks the API does not expose.
    func mongo() throws -> MongoPool { try MongoPool(uri: mongoURI, appName: "integration-tests") }
}

/// The claims part of a JWT, decoded without checking anything.
func jwtPayload(_ token: String) -> Document? {
    let parts = token.split(separator: ".")
    guard parts.count == 3, let bytes = Base64URL.decode(parts[1]) else { return nil }
    return try? JSONParser.parseObject(bytes)
}
