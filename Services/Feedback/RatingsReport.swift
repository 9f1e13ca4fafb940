import Bus
import Core
import JSONKit
import MongoKit
import ServiceKit

/// `GET /api/agents/:agentId/ratings`: the spec's "Get Agent Average Rating" over the
/// agent-type feedback, with the distribution as counts per star, overall and per category.
///
/// One aggregation grouped by category that counts each star with `$cond` (at most seven
/// rows back), instead of the spec's `$push` of every rating, which grows with the data.
/// It matches on `agentRef`, the agent id as text: the stand-in cannot `$match` ObjectIds.
struct RatingsReport: Sendable {
    let feedback: MongoCollection
    let requester: BusRequester

    func ratings(_ command: Command) throws -> Reply {
        _ = try command.requireUser()
        _ = try QueryReader(command, pathParams: ["agentId"], allowed: [])
        let key = try pathId(command, "agentId", what: "agent")
        guard FeedbackRules.isAgentKey(key) else { throw APIError.notFound("agent") }
        guard
            let reply = requester.request(
                "agents.resolve", to: "sessions", for: command, params: ["agentId": key],
                timeoutMs: FeedbackHandlers.checkTimeoutMs,
                marginMs: FeedbackHandlers.answerMarginMs)
        else { throw APIError.unavailable("the sessions service is not answering; retry shortly") }
        guard reply.status == 200 else {
            if (400..<500).contains(reply.status) { throw FeedbackHandlers.passedOn(reply) }
            throw APIError.unavailable("the sessions service could not find the agent")
        }
        let agent = try JSONParser.parseObject(reply.body)
        guard let hex = agent["agentId"]?.stringValue else { throw APIError.notFound("agent") }

        var group: Document = [
            "_id": "$category", "count": ["$sum": 1], "sum": ["$sum": "$rating"],
        ]
        for star in 1...5 {
            group["r\(star)"] = [
                "$sum": ["$cond": [["$eq": ["$rating", .int64(Int64(star))]], 1, 0]]
            ]
        }
        let rows = try feedback.aggregate([
            ["$match": ["agentRef": .string(hex), "feedbackType": "agent"]],
            ["$group": .document(group)],
        ])
        var overall = Tally()
        var byCategory: [String: Tally] = [:]
        for row in rows {
            var tally = Tally()
            tally.count = row["count"]?.intValue ?? 0
            tally.sum = row["sum"]?.intValue ?? 0
            for star in 1...5 { tally.stars[star - 1] = row["r\(star)"]?.intValue ?? 0 }
            let category = row["_id"]?.stringValue ?? "uncategorized"
            byCategory[category, default: Tally()].add(tally)
            overall.add(tally)
        }
        var categories = Document()
        for category in FeedbackRules.categories + ["uncategorized"] {
            categories[category] = .document((byCategory[category] ?? Tally()).document)
        }
        var out: Document = ["agentId": agent["agentSlug"] ?? .null, "id": .string(hex)]
        for pair in overall.document.pairs { out[pair.key] = pair.value }
        out["byCategory"] = .document(categories)
        return Reply(status: 200, out)
    }

    struct Tally {
        var count: Int64 = 0
        var sum: Int64 = 0
        var stars: [Int64] = [0, 0, 0, 0, 0]

        mutating func add(_ other: Tally) {
            count += other.count
            sum += other.sum
            for index in 0..<5 { stars[index] += other.stars[index] }
        }

        var document: Document {
            let average = count > 0 ? (Double(sum) / Double(count) * 100).rounded() / 100 : 0
            var distribution = Document()
            for star in 1...5 { distribution["\(star)"] = .int64(stars[star - 1]) }
            return [
                "averageRating": .double(average), "totalRatings": .int64(count),
                "distribution": .document(distribution),
            ]
        }
    }
}
