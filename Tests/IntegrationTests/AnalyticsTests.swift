import Core
import Foundation
import MongoKit
import Testing

@Suite("Analytics endpoints against hand-computed fixtures")
struct AnalyticsTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    static func date(_ text: String) -> Value {
        Timestamp(iso8601: text).map { .date($0) } ?? .null
    }

    /// A `chatinteractions` document as the sessions service or the legacy backend wrote it.
    static func interaction(
        _ conversation: String, bucket: Int? = nil, user: ObjectId?, agent: ObjectId? = nil,
        messages: Int,
        tokens: Int, durationMs: Int, updatedAt: String = "2024-01-20T10:30:02.000Z"
    ) -> Document {
        var doc: Document = ["_id": .objectId(ObjectId()), "conversationId": .string(conversation)]
        if let bucket { doc["bucket"] = .int64(Int64(bucket)) }
        if let user { doc["userId"] = .objectId(user) }
        if let agent { doc["agentId"] = .objectId(agent) }
        doc["channel"] = "web"
        doc["messages"] = .array(
            (0..<messages).map { index in
                [
                    "role": index % 2 == 0 ? "user" : "assistant",
                    "content": .string("message \(index)"),
                    "attachments": [], "createdAt": date("2024-01-20T10:30:00.000Z"),
                ]
            })
        doc["metrics"] = [
            "totalTokens": .int64(Int64(tokens)), "durationMs": .int64(Int64(durationMs)),
            "turnCount": .int64(Int64(messages)),
        ]
        doc["status"] = "active"
        doc["startedAt"] = date("2024-01-20T10:30:00.000Z")
        doc["createdAt"] = date("2024-01-20T10:30:00.000Z")
        doc["updatedAt"] = date(updatedAt)
        return doc
    }

    @Test func statsAreTheCallersTotals() throws {
        let user = cluster.newUser()
        let other = cluster.newUser()
        let run = uniqueWord("fx")
        let interactions = try cluster.mongo().collection("chatinteractions")
        try interactions.insertMany([
            Self.interaction(
                "\(run)-a", bucket: 0, user: user.id, messages: 3, tokens: 100, durationMs: 1000,
                updatedAt: "2024-01-20T10:30:00.000Z"),
            Self.interaction(
                "\(run)-a", bucket: 1, user: user.id, messages: 2, tokens: 50, durationMs: 500,
                updatedAt: "2024-01-20T11:00:00.000Z"),
            Self.interaction(
                "\(run)-b", user: user.id, messages: 1, tokens: 10, durationMs: 300,
                updatedAt: "2024-01-19T08:00:00.000Z"),
            Self.interaction(
                "\(run)-c", user: other.id, messages: 4, tokens: 999, durationMs: 9999,
                updatedAt: "2025-01-01T00:00:00.000Z"),
        ])
        let stats = try cluster.get("/api/chat/stats", user)
        #expect(stats.status == 200)
        #expect(stats["totalConversations"]?.intValue == 2)
        #expect(stats["totalMessages"]?.intValue == 6)
        #expect(stats["totalTokens"]?.intValue == 160)
        #expect(stats["avgResponseTime"]?.doubleValue == 900)
        #expect(stats["lastActivity"]?.stringValue == "2024-01-20T11:00:00.000Z")

        let empty = try cluster.get("/api/chat/stats", cluster.newUser())
        #expect(empty["totalConversations"]?.intValue == 0 && empty["totalMessages"]?.intValue == 0)
        #expect(empty["avgResponseTime"]?.doubleValue == 0 && empty["lastActivity"] == .null)
        #expect(try cluster.get("/api/chat/stats?userId=\(other.id.hex)", user).status == 400)
        #expect(try cluster.get("/api/chat/stats", nil).status == 401)
    }

    @Test func statsCountMessagesSentThroughTheAPI() throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user, agentId: nil)
        for (text, tokens) in [("one", 5), ("two", 7), ("three", 0)] {
            _ = try cluster.appendMessage(user, session, text, tokens: tokens)
        }
        let stats = try cluster.get("/api/chat/stats", user)
        #expect(stats["totalConversations"]?.intValue == 1)
        #expect(stats["totalMessages"]?.intValue == 3)
        #expect(stats["totalTokens"]?.intValue == 12)
        #expect(stats["lastActivity"]?.stringValue != nil)
    }

    @Test func agentMetricsMatchHandComputedFixture() throws {
        let admin = cluster.admin()
        let (slug, id) = try cluster.createAgent(admin)
        let agent = try #require(ObjectId(hex: id))
        let first = ObjectId()
        let second = ObjectId()
        let run = uniqueWord("mx")
        let interactions = try cluster.mongo().collection("chatinteractions")
        try interactions.insertMany([
            Self.interaction(
                "\(run)-1", bucket: 0, user: first, agent: agent, messages: 2, tokens: 100,
                durationMs: 1000),
            Self.interaction(
                "\(run)-1", bucket: 1, user: first, agent: agent, messages: 1, tokens: 20,
                durationMs: 0),
            Self.interaction(
                "\(run)-2", user: first, agent: agent, messages: 2, tokens: 30, durationMs: 500),
            Self.interaction(
                "\(run)-3", user: second, agent: agent, messages: 2, tokens: 50, durationMs: 2000),
            Self.interaction(
                "\(run)-4", user: nil, agent: agent, messages: 1, tokens: 0, durationMs: 100),
            Self.interaction(
                "\(run)-5", user: second, agent: ObjectId(), messages: 9, tokens: 900,
                durationMs: 900),
        ])
        let metrics = try cluster.get("/api/agents/\(slug)/metrics", cluster.newUser())
        #expect(metrics.status == 200)
        #expect(metrics["agentId"]?.stringValue == slug)
        #expect(metrics["totalInteractions"]?.intValue == 4)
        #expect(metrics["totalUsers"]?.intValue == 2)
        #expect(metrics["avgTokensPerInteraction"]?.doubleValue == 50)
        #expect(metrics["avgDuration"]?.doubleValue == 900)
        #expect(
            try cluster.get("/api/agents/\(id)/metrics", cluster.newUser())["totalUsers"]?.intValue
                == 2)
        let cached = try cluster.get("/api/agents/\(slug)", admin).document
        #expect(cached?.value(at: "stats.totalInteractions")?.intValue == 4)
        #expect(cached?.value(at: "stats.totalUsers")?.intValue == 2)

        let (fresh, _) = try cluster.createAgent(admin)
        let none = try cluster.get("/api/agents/\(fresh)/metrics", admin)
        #expect(none["totalInteractions"]?.intValue == 0 && none["avgDuration"]?.doubleValue == 0)
    }

    @Test func metricsAndRatingsFollowTheAgentsVisibility() throws {
        let admin = cluster.admin()
        let user = cluster.newUser()
        let (hidden, _) = try cluster.createAgent(admin, extra: ["isActive": false])
        #expect(try cluster.get("/api/agents/\(hidden)/metrics", user).status == 404)
        #expect(try cluster.get("/api/agents/\(hidden)/metrics", admin).status == 200)
        #expect(try cluster.get("/api/agents/\(hidden)/ratings", user).status == 404)
        #expect(try cluster.get("/api/agents/\(hidden)/ratings", admin).status == 200)
        #expect(try cluster.get("/api/agents/no-such-agent/metrics", user).status == 404)
        #expect(try cluster.get("/api/agents/no-such-agent/ratings", user).status == 404)
        #expect(try cluster.get("/api/agents/einstein/ratings?x=1", user).status == 400)
    }

    @Test func ratingsGiveCountsPerStarOverallAndPerCategory() throws {
        let admin = cluster.admin()
        let (slug, id) = try cluster.createAgent(admin)
        let fixture: [(Int, String?)] = [
            (5, "accuracy"), (4, "accuracy"), (5, nil), (1, "speed"), (3, "speed"), (5, "speed"),
        ]
        var raters: [(TestUser, String)] = []
        for (stars, category) in fixture {
            let user = cluster.newUser()
            let session = try cluster.createSession(user, agentId: id)
            var body: Document = [
                "conversationId": .string(session), "agentId": .string(slug),
                "feedbackType": "agent",
                "rating": .int64(Int64(stars)),
            ]
            if let category { body["category"] = .string(category) }
            #expect(try cluster.post("/api/chat/feedback", user, json(body)).status == 201)
            raters.append((user, session))
        }
        // A conversation rating on the agent's session: not an agent rating.
        let (someone, session) = raters[0]
        _ = try cluster.post(
            "/api/chat/feedback", someone,
            json([
                "conversationId": .string(session), "feedbackType": "conversation", "rating": 2,
                "category": "tone",
            ]))

        var ratings = try cluster.get("/api/agents/\(slug)/ratings", cluster.newUser())
        #expect(ratings.status == 200)
        #expect(ratings["agentId"]?.stringValue == slug)
        #expect(ratings["totalRatings"]?.intValue == 6)
        #expect(ratings["averageRating"]?.doubleValue == 3.83)
        #expect(ratings["distribution"] == ["1": 1, "2": 0, "3": 1, "4": 1, "5": 3])
        let accuracy = ratings.document?.value(at: "byCategory.accuracy")?.documentValue
        #expect(
            accuracy?["totalRatings"]?.intValue == 2
                && accuracy?["averageRating"]?.doubleValue == 4.5)
        #expect(accuracy?["distribution"] == ["1": 0, "2": 0, "3": 0, "4": 1, "5": 1])
        let speed = ratings.document?.value(at: "byCategory.speed")?.documentValue
        #expect(speed?["totalRatings"]?.intValue == 3 && speed?["averageRating"]?.doubleValue == 3)
        #expect(speed?["distribution"] == ["1": 1, "2": 0, "3": 1, "4": 0, "5": 1])
        let none = ratings.document?.value(at: "byCategory.uncategorized")?.documentValue
        #expect(none?["totalRatings"]?.intValue == 1 && none?["averageRating"]?.doubleValue == 5)
        let tone = ratings.document?.value(at: "byCategory.tone")?.documentValue
        #expect(
            tone?["totalRatings"]?.intValue == 0
                && tone?["distribution"] == ["1": 0, "2": 0, "3": 0, "4": 0, "5": 0])

        // The 1-star speed rating becomes a 2: the distribution moves, the count stays.
        let (changer, changerSession) = raters[3]
        let replaced = try cluster.post(
            "/api/chat/feedback", changer,
            json([
                "conversationId": .string(changerSession), "agentId": .string(id),
                "feedbackType": "agent",
                "rating": 2, "category": "speed",
            ]))
        #expect(replaced.status == 200)
        ratings = try cluster.get("/api/agents/\(id)/ratings", cluster.newUser())
        #expect(
            ratings["totalRatings"]?.intValue == 6 && ratings["averageRating"]?.doubleValue == 4)
        #expect(ratings["distribution"] == ["1": 0, "2": 1, "3": 1, "4": 1, "5": 3])
        #expect(ratings.document?.value(at: "byCategory.speed.averageRating")?.doubleValue == 3.33)

        // The agent's stats, kept by the rating events, agree with the report.
        #expect(
            try eventually {
                let agent = try cluster.get("/api/agents/\(slug)", admin).document
                return agent?.value(at: "stats.totalRatings")?.intValue == 6
                    && agent?.value(at: "stats.averageRating")?.doubleValue == 4
            })
    }
}
