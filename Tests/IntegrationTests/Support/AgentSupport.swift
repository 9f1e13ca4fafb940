import Core
import Foundation
import MongoKit

/// Helpers for the agent, feedback, analytics, search and migration suites.
extension Cluster {
    func admin() -> TestUser { newUser(role: "admin") }

    /// Direct access to the cluster's database, for fixtures and for checking stored state.
    func mongo(database: String? = nil) throws -> MongoPool {
        var uri = mongoURI
        if let database { uri = "mongodb://127.0.0.1:\(mongoPort)/\(database)" }
        return try MongoPool(uri: uri, appName: "integration-tests")
    }

    /// Creates an agent as an admin with a unique slug and returns (slug, id hex).
    func createAgent(
        _ admin: TestUser, prefix: String = "agent", name: String? = nil, extra: Document = [:]
    ) throws -> (slug: String, id: String) {
        let slug = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        var body: Document = ["agentId": .string(slug), "name": .string(name ?? "Agent \(slug)")]
        for pair in extra.pairs { body[pair.key] = pair.value }
        let result = try post("/api/agents", admin, json(body))
        guard result.status == 201, let id = result["id"]?.stringValue else {
            throw ClusterError(description: "create agent failed: \(result.status) \(result.text)")
        }
        return (slug, id)
    }

    /// Creates a session (optionally with an agent) and returns its id.
    func createSession(_ user: TestUser, agentId: String?, tags: [String] = []) throws -> String {
        var body: Document = ["name": "rated session"]
        if let agentId { body["agentId"] = .string(agentId) }
        if !tags.isEmpty { body["tags"] = .array(tags.map { .string($0) }) }
        let result = try post("/api/chat/sessions", user, json(body))
        guard result.status == 201, let id = result["sessionId"]?.stringValue else {
            throw ClusterError(
                description: "create session failed: \(result.status) \(result.text)")
        }
        return id
    }

    /// Appends a message and returns its id.
    func appendMessage(
        _ user: TestUser, _ session: String, _ content: String, role: String = "assistant",
        tokens: Int = 0
    ) throws -> String {
        var body: Document = ["role": .string(role), "content": .string(content)]
        if tokens > 0 { body["tokens"] = .int64(Int64(tokens)) }
        let result = try post("/api/chat/sessions/\(session)/messages", user, json(body))
        guard result.status == 201, let id = result["messageId"]?.stringValue else {
            throw ClusterError(
                description: "append message failed: \(result.status) \(result.text)")
        }
        return id
    }
}

/// Polls `check` until it holds or `seconds` pass; true when it held.
func eventually(seconds: Double = 10, _ check: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    repeat {
        if try check() { return true }
        usleep(50_000)
    } while Date() < end
    return try check()
}

/// A random lowercase word, for search terms no other test uses.
func uniqueWord(_ prefix: String = "w") -> String {
    prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
}

extension HTTPResult {
    var items: [Document] { (self["items"]?.arrayValue ?? []).compactMap(\.documentValue) }
}
