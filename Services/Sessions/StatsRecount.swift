import Bus
import Core
import JSONKit
import MongoKit
import ServiceKit

/// `sessions.recount` (admins only; `uc-admin recount` sends it): sets each session's
/// `stats.messageCount` and `stats.totalTokens` from its message buckets, which hold the truth
/// when a crash fell between a message's push and the session's `$inc`.
///
/// It never races a live append: a session with a bucket written in the last `quietMs` is
/// skipped (an append may be between its two writes), and the `$set` applies only while the
/// session's `updatedAt` is the one read, so an append that lands meanwhile wins. One page of
/// sessions per command, in `sessionId` order: `after` is the last id of the previous page.
struct StatsRecount: Sendable {
    let sessions: MongoCollection
    let interactions: MongoCollection

    func recount(_ command: Command) throws -> Reply {
        guard command.role == "admin" else { throw APIError.forbidden("admins only") }
        let query = try QueryReader(
            command, pathParams: [], allowed: ["after", "limit", "quietMs", "userId"])
        let limit = try query.limit(fallback: 100, max: 1000)
        let quietMs = Int64(
            try query.string("quietMs", maxLength: 9).map { text in
                guard let value = Int(text), value >= 0 else {
                    throw APIError.invalid("quietMs", "must be a whole number of milliseconds")
                }
                return value
            } ?? 60_000)
        var filter: Document = [:]
        if let user = try query.objectId("userId") { filter["userId"] = .objectId(user) }
        if let after = try query.string("after", maxLength: 200) {
            filter["sessionId"] = ["$gt": .string(after)]
        }
        let page = try sessions.find(
            filter, sort: ["sessionId": 1], limit: limit,
            projection: ["sessionId": 1, "updatedAt": 1, "stats": 1])

        let quietSince = Timestamp.now().milliseconds - quietMs
        var fixed: [Value] = []
        var busy = 0
        for session in page {
            guard let sessionId = session["sessionId"]?.stringValue else { continue }
            let buckets = try interactions.find(
                ["conversationId": .string(sessionId)],
                projection: ["metrics": 1, "updatedAt": 1])
            let recent = buckets.contains { bucket in
                (bucket["updatedAt"]?.lenientDate?.milliseconds ?? 0) > quietSince
            }
            if recent {
                busy += 1
                continue
            }
            let messages = buckets.reduce(Int64(0)) {
                $0 + ($1.value(at: "metrics.turnCount")?.intValue ?? 0)
            }
            let tokens = buckets.reduce(Int64(0)) {
                $0 + ($1.value(at: "metrics.totalTokens")?.intValue ?? 0)
            }
            let storedMessages = session.value(at: "stats.messageCount")?.intValue ?? 0
            let storedTokens = session.value(at: "stats.totalTokens")?.intValue ?? 0
            guard messages != storedMessages || tokens != storedTokens else { continue }
            var unchanged: Document = ["sessionId": .string(sessionId)]
            unchanged["updatedAt"] = session["updatedAt"] ?? ["$exists": false]
            let result = try sessions.updateOne(
                unchanged,
                [
                    "$set": [
                        "stats.messageCount": .int64(messages), "stats.totalTokens": .int64(tokens),
                    ]
                ])
            if result.matched == 0 {
                busy += 1
                continue
            }
            fixed.append([
                "sessionId": .string(sessionId),
                "messageCount": ["was": .int64(storedMessages), "now": .int64(messages)],
                "totalTokens": ["was": .int64(storedTokens), "now": .int64(tokens)],
            ])
        }
        let last = page.last?["sessionId"] ?? .null
        return Reply(
            status: 200,
            [
                "checked": .int64(Int64(page.count)), "fixed": .array(fixed),
                "skippedBusy": .int64(Int64(busy)),
                "next": page.count == limit ? last : .null,
            ])
    }
}
