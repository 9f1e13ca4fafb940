import Bus
import Core
import JSONKit
import MongoKit
import ServiceKit

/// `GET /api/chat/sessions?view=active`: the spec's "Get User's Active Sessions" projection
/// (`sessionId`, `name`, `agentName`, `stats`, `updatedAt`), newest first, paged like the
/// plain list. The agent names come from one `_id $in` query per page, joined here: `$lookup`
/// is broken on the stand-in, and a join in the service costs one query, not one per session.
struct ActiveSessionsView: Sendable {
    let sessions: MongoCollection
    let agents: MongoCollection

    /// Wraps the plain list handler: `view=active` comes here, any other `view` is a 400, and
    /// a request without `view` goes to `list` untouched.
    func routing(
        _ list: @escaping @Sendable (Command) throws -> Reply
    ) -> @Sendable (Command) throws -> Reply {
        { command in
            guard let view = command.params["view"] else { return try list(command) }
            guard view == "active" else { throw APIError.invalid("view", "must be active") }
            return try self.list(command)
        }
    }

    func list(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let query = try QueryReader(command, pathParams: [], allowed: ["view", "limit", "cursor"])
        let limit = try query.limit()
        var filter: Document = ["userId": .objectId(user), "isActive": true]
        let order = NewestFirst(idField: "sessionId")
        try order.apply(cursor: try query.string("cursor", maxLength: 600), to: &filter)
        let found = try sessions.find(
            filter, sort: order.sort, limit: limit + 1,
            projection: ["sessionId": 1, "name": 1, "agentId": 1, "stats": 1, "updatedAt": 1])
        let (page, next) = order.page(found, limit: limit)
        let names = try agentNames(page.compactMap { $0["agentId"]?.objectIdValue })
        let items: [Value] = page.map { session in
            let agent = session["agentId"]?.objectIdValue
            var stats = session["stats"]?.documentValue
            if let at = stats?["lastMessageAt"]?.lenientDate { stats?["lastMessageAt"] = .date(at) }
            return .document([
                "sessionId": session["sessionId"] ?? .null,
                "name": session["name"] ?? .null,
                "agentName": agent.flatMap { names[$0.hex] }.map { .string($0) } ?? .null,
                "stats": stats.map { .document($0) } ?? .null,
                "updatedAt": session["updatedAt"]?.lenientDate.map { .date($0) } ?? .null,
            ])
        }
        return Reply(status: 200, ["items": .array(items), "nextCursor": next])
    }

    /// Agent names by ObjectId hex, in one query. Deleted agents keep their name here: the
    /// session still refers to them.
    private func agentNames(_ ids: [ObjectId]) throws(MongoError) -> [String: String] {
        var unique: [ObjectId] = []
        for id in ids where !unique.contains(id) { unique.append(id) }
        guard !unique.isEmpty else { return [:] }
        let found = try agents.find(
            ["_id": ["$in": .array(unique.map { .objectId($0) })]], projection: ["name": 1])
        var names: [String: String] = [:]
        for agent in found {
            if let id = agent["_id"]?.objectIdValue, let name = agent["name"]?.stringValue {
                names[id.hex] = name
            }
        }
        return names
    }
}
