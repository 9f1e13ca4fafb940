import Bus
import Core
import JSONKit
import MongoKit
import ServiceKit

/// The spec's `chatinteractions` aggregations as endpoints.
///
/// Computed by a scan in `_id` order, a page at a time, with two queries per page: a `find`
/// for the numbers and a string-keyed aggregation for the message counts (`$size`, so no
/// message text is loaded). Memory is one page, whatever the totals. Reason: the stand-in's
/// aggregations cannot `$match` an ObjectId at all (`{$in: [oid]}`, `$expr` and `_id` all
/// match nothing), nor compute `$min`/`$max` of dates, so `$match: {userId}` + `$group`
/// would answer zeros there.
///
/// Messages live in buckets (several documents per conversation): a conversation is counted
/// once, by its first bucket (`bucket` 0) or by a legacy document without a bucket.
/// `avgResponseTime` and `avgDuration` are the mean per conversation of the summed
/// `metrics.durationMs`; for one document per conversation that is the spec's `$avg`.
struct Analytics: Sendable {
    let interactions: MongoCollection
    let agents: AgentHandlers
    static let pageSize = 200

    struct Totals {
        var conversations: Int64 = 0
        var messages: Int64 = 0
        var tokens: Int64 = 0
        var durationMs: Int64 = 0
        var lastActivity: Timestamp?
        var users = Set<ObjectId>()
    }

    /// `GET /api/chat/stats`: the caller's totals.
    func stats(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        _ = try QueryReader(command, pathParams: [], allowed: [])
        let totals = try scan(["userId": .objectId(user)], countUsers: false)
        return Reply(
            status: 200,
            [
                "totalConversations": .int64(totals.conversations),
                "totalMessages": .int64(totals.messages),
                "totalTokens": .int64(totals.tokens),
                "avgResponseTime": .double(Analytics.mean(totals.durationMs, totals.conversations)),
                "lastActivity": totals.lastActivity.map { .date($0) } ?? .null,
            ])
    }

    /// `GET /api/agents/:agentId/metrics`, for any agent the caller may see.
    func metrics(_ command: Command) throws -> Reply {
        _ = try command.requireUser()
        _ = try QueryReader(command, pathParams: ["agentId"], allowed: [])
        let agent = try agents.visible(command)
        guard let id = agent["_id"]?.objectIdValue else { throw APIError.notFound("agent") }
        let totals = try scan(["agentId": .objectId(id)], countUsers: true)
        // The catalog's `stats.totalInteractions` and `totalUsers` keep the last computed values.
        try agents.agents.updateOne(
            ["_id": .objectId(id)],
            [
                "$set": [
                    "stats.totalInteractions": .int64(totals.conversations),
                    "stats.totalUsers": .int64(Int64(totals.users.count)),
                ]
            ])
        return Reply(
            status: 200,
            [
                "agentId": agent["agentId"] ?? .null,
                "id": .string(id.hex),
                "totalInteractions": .int64(totals.conversations),
                "totalUsers": .int64(Int64(totals.users.count)),
                "avgTokensPerInteraction": .double(
                    Analytics.mean(totals.tokens, totals.conversations)),
                "avgDuration": .double(Analytics.mean(totals.durationMs, totals.conversations)),
            ])
    }

    static func mean(_ sum: Int64, _ count: Int64) -> Double {
        count > 0 ? Ratings.round2(Double(sum) / Double(count)) : 0
    }

    /// Sums over every document matching `filter`, a page at a time.
    // TODO: distinct users are kept in a set (one ObjectId per user of the agent); on real
    // MongoDB a `$group` by userId + `$count` would keep that on the server.
    // TODO: an index {userId: 1, _id: 1} / {agentId: 1, _id: 1} would serve this scan on
    // MongoDB; the stand-in breaks every insert into a collection with an index on `_id`.
    func scan(_ filter: Document, countUsers: Bool) throws(MongoError) -> Totals {
        var totals = Totals()
        var after: ObjectId?
        while true {
            var pageFilter = filter
            if let after { pageFilter["_id"] = ["$gt": .objectId(after)] }
            let page = try interactions.find(
                pageFilter, sort: ["_id": 1], limit: Analytics.pageSize,
                projection: [
                    "conversationId": 1, "bucket": 1, "metrics": 1, "updatedAt": 1, "userId": 1,
                ])
            guard !page.isEmpty else { break }
            let sizes = try messageCounts(page)
            for doc in page {
                let bucket = doc["bucket"]
                if bucket == nil || bucket?.isNull == true || bucket?.intValue == 0 {
                    totals.conversations += 1
                }
                if let id = doc["_id"]?.objectIdValue { totals.messages += sizes[id] ?? 0 }
                totals.tokens += doc.value(at: "metrics.totalTokens")?.intValue ?? 0
                totals.durationMs += doc.value(at: "metrics.durationMs")?.intValue ?? 0
                if let at = doc["updatedAt"]?.lenientDate,
                    totals.lastActivity.map({ at > $0 }) ?? true
                {
                    totals.lastActivity = at
                }
                if countUsers, let user = doc["userId"]?.objectIdValue { totals.users.insert(user) }
            }
            after = page.last?["_id"]?.objectIdValue
            if page.count < Analytics.pageSize || after == nil { break }
        }
        return totals
    }

    /// The number of messages of each document of the page, counted by the server.
    private func messageCounts(_ page: [Document]) throws(MongoError) -> [ObjectId: Int64] {
        var conversations: [Value] = []
        var seen = Set<String>()
        for doc in page {
            if let id = doc["conversationId"]?.stringValue, seen.insert(id).inserted {
                conversations.append(.string(id))
            }
        }
        guard !conversations.isEmpty else { return [:] }
        let rows = try interactions.aggregate([
            ["$match": ["conversationId": ["$in": .array(conversations)]]],
            ["$project": ["n": ["$size": ["$ifNull": ["$messages", []]]]]],
        ])
        var sizes: [ObjectId: Int64] = [:]
        for row in rows {
            if let id = row["_id"]?.objectIdValue { sizes[id] = row["n"]?.intValue ?? 0 }
        }
        return sizes
    }
}
