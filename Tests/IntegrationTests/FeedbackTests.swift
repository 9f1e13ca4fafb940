import Bus
import Core
import Foundation
import MongoKit
import RedisKit
import Testing

@Suite("Feedback over HTTP")
struct FeedbackTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    /// A user with a session on `agentId` and one assistant message in it.
    func rater(agentId: String? = nil) throws -> (user: TestUser, session: String, message: String)
    {
        let user = cluster.newUser()
        let session = try cluster.createSession(user, agentId: agentId)
        let message = try cluster.appendMessage(user, session, "E = mc²", tokens: 12)
        return (user, session, message)
    }

    func agentStats(_ slug: String) throws -> (count: Int64?, average: Double?) {
        let agent = try cluster.get("/api/agents/\(slug)", cluster.admin())
        return (
            agent.document?.value(at: "stats.totalRatings")?.intValue,
            agent.document?.value(at: "stats.averageRating")?.doubleValue
        )
    }

    @Test func ratingAMessageStoresTheSpecFields() throws {
        let einstein = try #require(
            try cluster.get("/api/agents/einstein", cluster.newUser())["id"]?.stringValue)
        let (user, session, message) = try rater(agentId: einstein)
        let body: Document = [
            "conversationId": .string(session), "messageId": .string(message),
            "feedbackType": "message",
            "rating": 5, "comment": "Very helpful explanation!", "category": "accuracy",
            "tags": ["helpful", "clear"],
            "metadata": ["messageContent": "The explanation was...", "responseTime": 2500],
        ]
        let result = try cluster.post("/api/chat/feedback", user, json(body))
        #expect(result.status == 201)
        let stored = try #require(result.document)
        #expect(stored["conversationId"]?.stringValue == session)
        #expect(stored["messageId"]?.stringValue == message)
        #expect(stored["userId"]?.stringValue == user.id.hex)
        #expect(stored["agentId"]?.stringValue == einstein)
        #expect(stored["feedbackType"]?.stringValue == "message")
        #expect(stored["rating"]?.intValue == 5)
        #expect(stored["comment"]?.stringValue == "Very helpful explanation!")
        #expect(stored["category"]?.stringValue == "accuracy")
        #expect(stored["tags"] == ["helpful", "clear"])
        #expect(stored.value(at: "metadata.responseTime")?.intValue == 2500)
        #expect(stored["createdAt"]?.stringValue?.hasSuffix("Z") == true)
        for hidden in ["_id", "targetKey", "agentRef", "version", "lastEvent", "eventState"] {
            #expect(stored[hidden] == nil, "\(hidden) must not be in the output")
        }
    }

    @Test func ratingRulesAreStrict() throws {
        let (user, session, message) = try rater()
        func body(_ changes: Document) -> String {
            var doc: Document = [
                "conversationId": .string(session), "messageId": .string(message),
                "feedbackType": "message",
                "rating": 4, "category": "accuracy", "comment": "x",
            ]
            for pair in changes.pairs { doc[pair.key] = pair.value }
            return json(doc)
        }
        let bad: [(Document, String)] = [
            (["rating": "5"], "rating"), (["rating": 4.5], "rating"), (["rating": true], "rating"),
            (["rating": 0], "rating"), (["rating": 6], "rating"), (["rating": .null], "rating"),
            (["rating": ["$gt": 0]], "rating"), (["feedbackType": "Message"], "feedbackType"),
            (["feedbackType": "session"], "feedbackType"), (["category": "nope"], "category"),
            (["comment": .string(String(repeating: "😀", count: 1001))], "comment"),
            (["comment": 5], "comment"), (["tags": "x"], "tags"), (["metadata": "x"], "metadata"),
            (["conversationId": ["$ne": "x"]], "conversationId"), (["stars": 5], "stars"),
            (["agentId": "einstein"], "agentId"),
        ]
        for (change, field) in bad {
            let result = try cluster.post("/api/chat/feedback", user, body(change))
            #expect(result.status == 400, "\(json(change))")
            #expect(result.errorFields.contains(field), "\(json(change)): \(result.errorFields)")
        }
        let noMessage = try cluster.post(
            "/api/chat/feedback", user,
            json(["conversationId": .string(session), "feedbackType": "message", "rating": 3]))
        #expect(noMessage.errorFields == ["messageId"])
        let conversationWithMessage = try cluster.post(
            "/api/chat/feedback", user, body(["feedbackType": "conversation"]))
        #expect(conversationWithMessage.errorFields == ["messageId"])
        let agentWithoutId = try cluster.post(
            "/api/chat/feedback", user,
            json(["conversationId": .string(session), "feedbackType": "agent", "rating": 3]))
        #expect(agentWithoutId.errorFields == ["agentId"])
        #expect(try cluster.post("/api/chat/feedback", user, "[1]").status == 400)

        let longest = try cluster.post(
            "/api/chat/feedback", user,
            body(["comment": .string(String(repeating: "😀", count: 1000))]))
        #expect(longest.status == 201)
        #expect(longest["comment"]?.stringValue?.unicodeScalars.count == 1000)
        let escaped = String(repeating: #"\ud83d\ude00"#, count: 1001)
        let raw =
            #"{"conversationId":"\#(session)","messageId":"\#(message)","feedbackType":"message","#
            + #""rating":4,"comment":"\#(escaped)"}"#
        #expect(try cluster.post("/api/chat/feedback", user, raw).errorFields == ["comment"])
        #expect(try cluster.post("/api/chat/feedback", user, body(["rating": 4.0])).status == 200)
    }

    @Test func feedbackAimedAtAnotherUsersConversationOrMessageIsNotFound() throws {
        let (owner, session, message) = try rater()
        let other = try rater()
        let intruder = other.user
        let onMessage = try cluster.post(
            "/api/chat/feedback", intruder,
            json([
                "conversationId": .string(session), "messageId": .string(message),
                "feedbackType": "message",
                "rating": 1,
            ]))
        #expect(onMessage.status == 404)
        let onSession = try cluster.post(
            "/api/chat/feedback", intruder,
            json(["conversationId": .string(session), "feedbackType": "conversation", "rating": 1]))
        #expect(onSession.status == 404)
        let missing = try cluster.post(
            "/api/chat/feedback", intruder,
            json([
                "conversationId": "session-doesnotexist", "feedbackType": "conversation",
                "rating": 1,
            ]))
        #expect(missing.status == 404 && missing.text == onSession.text)
        let foreignMessage = try cluster.post(
            "/api/chat/feedback", intruder,
            json([
                "conversationId": .string(other.session), "messageId": .string(message),
                "feedbackType": "message", "rating": 1,
            ]))
        #expect(foreignMessage.status == 404 && foreignMessage.errorCode == "not_found")
        let unknownAgent = try cluster.post(
            "/api/chat/feedback", intruder,
            json([
                "conversationId": .string(other.session), "agentId": .string(ObjectId().hex),
                "feedbackType": "agent", "rating": 1,
            ]))
        #expect(unknownAgent.status == 404)

        let anonymous = try cluster.post(
            "/api/chat/feedback", nil,
            json(["conversationId": .string(session), "feedbackType": "conversation"]))
        #expect(anonymous.status == 401)
        #expect(
            try HTTPClient.send(cluster, "GET", "/api/chat/feedback", token: intruder.token + "x")
                .status == 401)

        let ownList = try cluster.get("/api/chat/feedback?conversationId=\(session)", owner)
        #expect(ownList.status == 200 && ownList.items.isEmpty)
        let stored = try cluster.mongo().collection("chat_feedback")
        #expect(try stored.find(["conversationId": .string(session)]).isEmpty)
    }

    @Test func ratingTheSameTargetAgainReplacesTheEarlierRating() throws {
        let (user, session, message) = try rater()
        let first = try cluster.post(
            "/api/chat/feedback", user,
            json([
                "conversationId": .string(session), "messageId": .string(message),
                "feedbackType": "message",
                "rating": 2, "comment": "meh", "category": "tone",
            ]))
        #expect(first.status == 201)
        let second = try cluster.post(
            "/api/chat/feedback", user,
            json([
                "conversationId": .string(session), "messageId": .string(message),
                "feedbackType": "message",
                "rating": 5, "category": "accuracy",
            ]))
        #expect(second.status == 200)
        #expect(second["rating"]?.intValue == 5)
        #expect(second["comment"] == nil)
        #expect(second["category"]?.stringValue == "accuracy")
        #expect(second["createdAt"] == first["createdAt"])
        #expect(second["updatedAt"]?.stringValue.flatMap { Timestamp(iso8601: $0) } != nil)
        let onSession = try cluster.post(
            "/api/chat/feedback", user,
            json(["conversationId": .string(session), "feedbackType": "conversation", "rating": 4]))
        #expect(onSession.status == 201)

        let list = try cluster.get("/api/chat/feedback?conversationId=\(session)", user)
        #expect(list.items.count == 2)
        let ratings = list.items.compactMap { $0["rating"]?.intValue }.sorted()
        #expect(ratings == [4, 5])
        let stored = try cluster.mongo().collection("chat_feedback")
        #expect(try stored.find(["conversationId": .string(session)]).count == 2)
    }

    @Test func listShowsOnlyTheCallersOwnFeedbackInPages() throws {
        let (user, session, message) = try rater()
        let second = try cluster.appendMessage(user, session, "second answer")
        let third = try cluster.appendMessage(user, session, "third answer")
        for (index, id) in [message, second, third].enumerated() {
            let result = try cluster.post(
                "/api/chat/feedback", user,
                json([
                    "conversationId": .string(session), "messageId": .string(id),
                    "feedbackType": "message",
                    "rating": .int64(Int64(index + 3)),
                ]))
            #expect(result.status == 201)
        }
        let stranger = cluster.newUser()
        #expect(
            try cluster.get("/api/chat/feedback?conversationId=\(session)", stranger).items.isEmpty)

        var seen: [String] = []
        var cursor: String?
        repeat {
            let path =
                "/api/chat/feedback?conversationId=\(session)&limit=2"
                + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try cluster.get(path, user)
            #expect(page.status == 200)
            seen += page.items.compactMap { $0["messageId"]?.stringValue }
            for item in page.items { #expect(item["userId"]?.stringValue == user.id.hex) }
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        #expect(Set(seen) == Set([message, second, third]) && seen.count == 3)
        #expect(try cluster.get("/api/chat/feedback?feedbackType=message", user).items.count == 3)
        #expect(try cluster.get("/api/chat/feedback?feedbackType=agent", user).items.isEmpty)
        #expect(try cluster.get("/api/chat/feedback?feedbackType=bogus", user).status == 400)
        #expect(try cluster.get("/api/chat/feedback?limit=0", user).status == 400)
        #expect(try cluster.get("/api/chat/feedback?userId=\(stranger.id.hex)", user).status == 400)
    }

    @Test func agentStatsFollowAgentRatingsOncePerChange() throws {
        let admin = cluster.admin()
        let (slug, id) = try cluster.createAgent(admin)
        let first = try rater(agentId: id)
        let second = try rater(agentId: id)
        func rate(
            _ rater: (user: TestUser, session: String, message: String), _ stars: Int,
            key: String = slug
        )
            throws -> HTTPResult
        {
            try cluster.post(
                "/api/chat/feedback", rater.user,
                json([
                    "conversationId": .string(rater.session), "agentId": .string(key),
                    "feedbackType": "agent",
                    "rating": .int64(Int64(stars)),
                ]))
        }
        #expect(try rate(first, 5).status == 201)
        #expect(try rate(second, 3, key: id).status == 201)
        // Message and conversation ratings of the same agent's sessions are not agent ratings.
        let onMessage = try cluster.post(
            "/api/chat/feedback", first.user,
            json([
                "conversationId": .string(first.session), "messageId": .string(first.message),
                "feedbackType": "message", "rating": 1,
            ]))
        #expect(onMessage["agentId"]?.stringValue == id)
        #expect(try eventually { try agentStats(slug) == (2, 4.0) })
        #expect(try rate(first, 1).status == 200)
        #expect(try eventually { try agentStats(slug) == (2, 2.0) })
        #expect(try rate(first, 1).status == 200)
        let third = try rater(agentId: id)
        #expect(try rate(third, 4).status == 201)
        #expect(try eventually { try agentStats(slug) == (3, 2.67) })
        usleep(500_000)
        #expect(try agentStats(slug) == (3, 2.67))
    }

    @Test func aReplayedRatingEventDoesNotCountTwice() throws {
        let admin = cluster.admin()
        let (slug, id) = try cluster.createAgent(admin)
        let (user, session, _) = try rater(agentId: id)
        let rated = try cluster.post(
            "/api/chat/feedback", user,
            json([
                "conversationId": .string(session), "agentId": .string(id), "feedbackType": "agent",
                "rating": 4,
            ]))
        #expect(rated.status == 201)
        #expect(try eventually { try agentStats(slug) == (1, 4.0) })

        // Every event the feedback service published for this agent, delivered once more.
        let redis = cluster.redis()
        let stream = BusNames.eventStream("feedback")
        let entries = try redis.run(["XRANGE", RedisArgument(stream), "-", "+"]).array ?? []
        var replayed = 0
        for entry in entries {
            guard let parts = entry.array, parts.count == 2, let values = parts[1].array else {
                continue
            }
            let texts = values.compactMap(\.text)
            guard texts.contains(id) else { continue }
            try redis.run(
                [RedisArgument("XADD"), RedisArgument(stream), "*"]
                    + texts.map { RedisArgument($0) })
            replayed += 1
        }
        #expect(replayed == 1)
        // A new event for the same agent, sent twice: counts once.
        let fresh: [RedisArgument] = [
            "XADD", RedisArgument(stream), "*", "id", RedisArgument("test-\(UUID().uuidString)"),
            "type", "feedback.rated", "feedbackType", "agent", "agentId", RedisArgument(id),
            "userId", RedisArgument(ObjectId().hex), "oldRating", "", "newRating", "2",
        ]
        try redis.run(fresh)
        try redis.run(fresh)
        #expect(try eventually { try consumed(stream) })
        #expect(try agentStats(slug) == (2, 3.0))
    }

    @Test func aRatingWhoseEventWasNeverPublishedIsPublishedByTheSweeper() throws {
        let admin = cluster.admin()
        let (slug, id) = try cluster.createAgent(admin)
        let agent = try #require(ObjectId(hex: id))
        // What a crash between the write and the publish leaves behind.
        let user = ObjectId()
        let stale = Timestamp(milliseconds: Timestamp.now().milliseconds - 60_000)
        try cluster.mongo().collection("chat_feedback").insertOne([
            "_id": .objectId(ObjectId()), "conversationId": "session-crashed",
            "agentId": .objectId(agent), "agentRef": .string(id), "feedbackType": "agent",
            "rating": 5,
            "tags": [], "userId": .objectId(user), "targetKey": .string("agent|\(id)"),
            "version": 1,
            "lastEvent": [
                "id": .string("fb-crashed-\(UUID().uuidString)"), "oldRating": .null,
                "newRating": 5,
            ],
            "eventState": "pending", "createdAt": .date(stale), "updatedAt": .date(stale),
        ])
        #expect(try eventually { try agentStats(slug) == (1, 5.0) })
        let stored = try cluster.mongo().collection("chat_feedback").findOne([
            "userId": .objectId(user)
        ])
        #expect(stored?["eventState"]?.stringValue == "sent")
        usleep(1_500_000)
        #expect(try agentStats(slug) == (1, 5.0))
    }

    @Test func feedbackIsRefusedAndNotStoredWhileTheSessionsServiceCannotAnswer() throws {
        let own = try Cluster(services: Routes.services)
        defer { own.shutdown() }
        let user = own.newUser()
        let session = try own.createSession(user, agentId: nil)
        own.send("sessions", signal: SIGSTOP)
        let result = try own.post(
            "/api/chat/feedback", user,
            json(["conversationId": .string(session), "feedbackType": "conversation", "rating": 5]))
        own.send("sessions", signal: SIGCONT)
        #expect(result.status == 503 || result.status == 504)
        #expect(try own.mongo().collection("chat_feedback").find([:]).isEmpty)
        // Questions to a service that just left one unanswered fail at once for a moment
        // (BusRequester); then the check goes through again.
        #expect(
            eventually(seconds: 15) {
                let retried = try? own.post(
                    "/api/chat/feedback", user,
                    json([
                        "conversationId": .string(session), "feedbackType": "conversation",
                        "rating": 5,
                    ]))
                return retried?.status == 201
            })
        #expect(try own.mongo().collection("chat_feedback").find([:]).count == 1)
    }

    /// True when the sessions group has read every entry of the stream and has none pending.
    func consumed(_ stream: String) throws -> Bool {
        let redis = cluster.redis()
        let last = try redis.run(["XREVRANGE", RedisArgument(stream), "+", "-", "COUNT", "1"])
        guard let lastId = last.array?.first?.array?.first?.text else { return false }
        let groups = try redis.run(["XINFO", "GROUPS", RedisArgument(stream)]).array ?? []
        for group in groups {
            let fields = group.array ?? []
            var info: [String: RedisReply] = [:]
            var index = 0
            while index + 1 < fields.count {
                if let key = fields[index].text { info[key] = fields[index + 1] }
                index += 2
            }
            if info["name"]?.text == "sessions" {
                return info["last-delivered-id"]?.text == lastId && info["pending"]?.integer == 0
            }
        }
        return false
    }
}
