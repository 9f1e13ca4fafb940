import Bus
import Core
import Foundation
import JSONKit
import MongoKit
import Testing

@Suite("uc-admin migrate: chat_sessions from chatinteractions")
struct MigrationTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    struct Run {
        let status: Int32
        let lines: [String]
        let summary: Document

        func has(_ prefix: String) -> Bool { lines.contains { $0.hasPrefix(prefix) } }
    }

    /// Runs `uc-admin migrate` against `uri` and reads its report.
    static func migrate(_ uri: String, _ arguments: [String] = []) throws -> Run {
        let process = Process()
        process.executableURL = Cluster.binDirectory.appendingPathComponent("uc-admin")
        process.arguments = ["migrate"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["MONGODB_URI"] = uri
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        let summary = lines.last.flatMap { try? JSONParser.parseObject(Array($0.utf8)) }?[
            "summary"]?.documentValue
        return Run(status: process.terminationStatus, lines: lines, summary: summary ?? [:])
    }

    static func legacy(
        _ conversation: String, user: ObjectId?, agent: ObjectId? = nil, messages: [String],
        tokens: Int,
        durationMs: Int, startedAt: String, updatedAt: String, status: String = "active",
        tags: [String] = []
    ) -> Document {
        var doc: Document = ["_id": .objectId(ObjectId()), "conversationId": .string(conversation)]
        if let user { doc["userId"] = .objectId(user) }
        if let agent { doc["agentId"] = .objectId(agent) }
        doc["channel"] = "web"
        doc["language"] = "en"
        doc["messages"] = .array(
            messages.enumerated().map { index, text in
                [
                    "role": index % 2 == 0 ? "user" : "assistant", "content": .string(text),
                    "attachments": [],
                    "createdAt": AnalyticsTests.date(startedAt),
                ]
            })
        doc["summary"] = ["keywords": [], "actionItems": []]
        doc["metrics"] = [
            "totalTokens": .int64(Int64(tokens)), "durationMs": .int64(Int64(durationMs)),
            "turnCount": .int64(Int64(messages.count)),
        ]
        doc["status"] = .string(status)
        doc["metadata"] = ["tags": .array(tags.map { .string($0) }), "priority": "medium"]
        doc["startedAt"] = AnalyticsTests.date(startedAt)
        doc["closedAt"] = .null
        doc["createdAt"] = AnalyticsTests.date(startedAt)
        doc["updatedAt"] = AnalyticsTests.date(updatedAt)
        return doc
    }

    @Test func migrationBuildsSessionsOnceAndNeverTouchesExistingOnes() throws {
        let database = "uc_migrate_\(UUID().uuidString.prefix(8).lowercased())"
        let uri = "mongodb://127.0.0.1:\(cluster.mongoPort)/\(database)"
        let pool = try cluster.mongo(database: database)
        let interactions = pool.collection("chatinteractions")
        let sessions = pool.collection("chat_sessions")
        let (first, second, agent) = (ObjectId(), ObjectId(), ObjectId())
        try interactions.insertMany([
            Self.legacy(
                "conv-a", user: first, agent: agent,
                messages: ["Hello, can you help me?", "Of course!"],
                tokens: 100, durationMs: 2500, startedAt: "2024-01-20T10:30:00.000Z",
                updatedAt: "2024-01-20T10:35:00.000Z", tags: ["general"]),
            Self.legacy(
                "conv-a", user: first, agent: agent, messages: ["Thanks"], tokens: 50,
                durationMs: 500,
                startedAt: "2024-01-21T09:00:00.000Z", updatedAt: "2024-01-21T09:05:00.000Z",
                tags: ["help"]),
            Self.legacy(
                "conv-b", user: second, messages: ["a", "b", "c"], tokens: 30, durationMs: 0,
                startedAt: "2024-02-01T00:00:00.000Z", updatedAt: "2024-02-02T00:00:00.000Z",
                status: "archived"),
            Self.legacy(
                "conv-c", user: nil, messages: ["who am I"], tokens: 1, durationMs: 1,
                startedAt: "2024-02-01T00:00:00.000Z", updatedAt: "2024-02-01T00:00:00.000Z"),
            Self.legacy(
                "conv-d", user: first, messages: ["already there"], tokens: 1, durationMs: 1,
                startedAt: "2024-02-01T00:00:00.000Z", updatedAt: "2024-02-01T00:00:00.000Z"),
            Self.legacy(
                "conv-e", user: first, messages: ["mine"], tokens: 1, durationMs: 1,
                startedAt: "2024-02-01T00:00:00.000Z", updatedAt: "2024-02-01T00:00:00.000Z"),
            Self.legacy(
                "conv-e", user: second, messages: ["yours"], tokens: 1, durationMs: 1,
                startedAt: "2024-02-01T00:00:00.000Z", updatedAt: "2024-02-01T00:00:00.000Z"),
        ])
        let kept: Document = [
            "_id": .objectId(ObjectId()), "sessionId": "conv-d", "userId": .objectId(first),
            "name": "Keep me",
            "isActive": true, "createdAt": AnalyticsTests.date("2024-03-01T00:00:00.000Z"),
        ]
        try sessions.insertOne(kept)

        let dry = try Self.migrate(uri, ["--dry-run"])
        #expect(dry.status == 0)
        #expect(dry.has("would-create conv-a for user \(first.hex) (3 messages)"))
        #expect(dry.has("would-create conv-b"))
        #expect(dry.has("skip conv-c: no userId"))
        #expect(dry.has("skip conv-e: several userIds"))
        #expect(dry.summary["wouldCreate"]?.intValue == 2 && dry.summary["existing"]?.intValue == 1)
        #expect(
            dry.summary["skippedNoUser"]?.intValue == 1
                && dry.summary["skippedSeveralUsers"]?.intValue == 1)
        #expect(try sessions.find([:]).count == 1)
        #expect(try interactions.find(["bucket": ["$exists": true]]).isEmpty)

        let run = try Self.migrate(uri)
        #expect(run.status == 0)
        #expect(run.summary["created"]?.intValue == 2 && run.summary["existing"]?.intValue == 1)
        #expect(
            run.has("create conv-a") && run.has("create conv-b")
                && run.has("skip conv-c: no userId"))
        let a = try #require(try sessions.findOne(["sessionId": "conv-a"]))
        #expect(a["userId"]?.objectIdValue == first && a["agentId"]?.objectIdValue == agent)
        #expect(a["name"]?.stringValue == "Conversation from 2024-01-20")
        #expect(a.value(at: "stats.messageCount")?.intValue == 3)
        #expect(a.value(at: "stats.totalTokens")?.intValue == 150)
        #expect(a.value(at: "stats.durationMs")?.intValue == 3000)
        #expect(
            a.value(at: "stats.lastMessageAt")?.lenientDate
                == Timestamp(iso8601: "2024-01-21T09:05:00Z"))
        #expect(a["createdAt"]?.lenientDate == Timestamp(iso8601: "2024-01-20T10:30:00Z"))
        #expect(a["updatedAt"]?.lenientDate == Timestamp(iso8601: "2024-01-21T09:05:00Z"))
        #expect(a["isActive"]?.boolValue == true && a["tags"] == ["general", "help"])
        #expect(a.value(at: "settings.provider")?.stringValue == "mistral")
        let b = try #require(try sessions.findOne(["sessionId": "conv-b"]))
        #expect(b["isArchived"]?.boolValue == true && b["isActive"]?.boolValue == false)
        #expect(try sessions.findOne(["sessionId": "conv-d"]) == kept)
        #expect(try sessions.find(["sessionId": ["$in": ["conv-c", "conv-e"]]]).isEmpty)
        let buckets = try interactions.find(["conversationId": "conv-a"], sort: ["startedAt": 1])
        #expect(buckets.compactMap { $0["bucket"]?.intValue } == [0, 1])

        let sessionsAfterFirst = try sessions.find([:], sort: ["sessionId": 1])
        let interactionsAfterFirst = try interactions.find([:], sort: ["_id": 1])
        let again = try Self.migrate(uri)
        #expect(again.status == 0)
        #expect(again.summary["created"]?.intValue == 0 && again.summary["existing"]?.intValue == 3)
        #expect(again.summary["bucketsNumbered"]?.intValue == 0)
        #expect(again.has("skip conv-c: no userId"))
        #expect(try sessions.find([:], sort: ["sessionId": 1]) == sessionsAfterFirst)
        #expect(try interactions.find([:], sort: ["_id": 1]) == interactionsAfterFirst)
    }

    @Test func migrationGoesThroughThousandsOfConversationsInBatches() throws {
        let database = "uc_migrate_\(UUID().uuidString.prefix(8).lowercased())"
        let uri = "mongodb://127.0.0.1:\(cluster.mongoPort)/\(database)"
        let interactions = try cluster.mongo(database: database).collection("chatinteractions")
        let total = 2500
        var batch: [Document] = []
        for index in 0..<total {
            let user: ObjectId? = index % 100 == 0 ? nil : ObjectId()
            batch.append(
                Self.legacy(
                    String(format: "conv-%05d", index), user: user, messages: ["hi", "hello"],
                    tokens: 2,
                    durationMs: 1, startedAt: "2024-01-20T10:30:00.000Z",
                    updatedAt: "2024-01-20T10:31:00.000Z"))
            if batch.count == 500 {
                try interactions.insertMany(batch)
                batch.removeAll()
            }
        }
        let first = try Self.migrate(uri, ["--batch-size", "200"])
        #expect(first.status == 0)
        #expect(first.summary["conversations"]?.intValue == Int64(total))
        #expect(first.summary["created"]?.intValue == Int64(total - total / 100))
        #expect(first.summary["skippedNoUser"]?.intValue == Int64(total / 100))
        #expect(first.summary["batches"]?.intValue == 13)
        let second = try Self.migrate(uri, ["--batch-size", "200"])
        #expect(second.summary["created"]?.intValue == 0)
        #expect(second.summary["existing"]?.intValue == Int64(total - total / 100))
        let sessions = try cluster.mongo(database: database).collection("chat_sessions")
        #expect(try sessions.find([:], projection: ["sessionId": 1]).count == total - total / 100)
        #expect(try Self.migrate(uri, ["--batch-size", "0"]).status != 0)
    }

    @Test func migratedConversationIsReadableThroughTheSessionsAPI() throws {
        let own = try Cluster(services: Routes.services)
        defer { own.shutdown() }
        let user = own.newUser()
        let conversation = "conv-\(UUID().uuidString.prefix(8).lowercased())"
        try own.mongo().collection("chatinteractions").insertMany([
            Self.legacy(
                conversation, user: user.id, messages: ["first question", "first answer"],
                tokens: 10,
                durationMs: 100, startedAt: "2024-01-20T10:30:00.000Z",
                updatedAt: "2024-01-20T10:31:00.000Z"),
            Self.legacy(
                conversation, user: user.id, messages: ["second question"], tokens: 5,
                durationMs: 50,
                startedAt: "2024-01-21T10:30:00.000Z", updatedAt: "2024-01-21T10:31:00.000Z"),
        ])
        #expect(try Self.migrate(own.mongoURI).summary["created"]?.intValue == 1)

        let list = try own.get("/api/chat/sessions", user)
        #expect(list.items.compactMap { $0["sessionId"]?.stringValue } == [conversation])
        #expect(try own.get("/api/chat/sessions", own.newUser()).items.isEmpty)
        let session = try own.get("/api/chat/sessions/\(conversation)", user)
        #expect(session.status == 200)
        let texts = (session["messages"]?.arrayValue ?? []).compactMap {
            $0.lenientDocument?["content"]?.stringValue
        }
        #expect(texts == ["first question", "first answer", "second question"])
        _ = try own.appendMessage(user, conversation, "a new answer")
        let after = try own.get("/api/chat/sessions/\(conversation)", user)
        let newest = after["messages"]?.arrayValue?.last?.lenientDocument?["content"]?.stringValue
        #expect(newest == "a new answer")
        let stats = try own.get("/api/chat/stats", user)
        #expect(stats["totalConversations"]?.intValue == 1 && stats["totalMessages"]?.intValue == 4)
    }
}
