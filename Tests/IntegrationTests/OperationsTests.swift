import Bus
import Core
import Foundation
import RedisKit
import Testing

@Suite("Operations: metrics, dead letters, uc-admin", .serialized)
struct OperationsTests {
    func admin(_ cluster: Cluster, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = Cluster.binDirectory.appendingPathComponent("uc-admin")
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["REDIS_URL"] = "redis://127.0.0.1:\(cluster.redisPort)"
        env["JWT_SECRET"] = Cluster.secret
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func gatewayExposesPrometheusMetrics() throws {
        let cluster = try Cluster.sharedCluster()
        let user = cluster.newUser()
        _ = try cluster.get("/api/chat/sessions", user)
        let metrics = try HTTPClient.send(cluster, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(
            metrics.text.contains("uc_http_requests_total{route=\"sessions.list\",status=\"200\"}"))
        #expect(
            metrics.text.contains(
                "uc_http_request_seconds_bucket{route=\"sessions.list\",le=\"+Inf\"}"))
        #expect(metrics.text.contains("uc_gateway_in_flight"))
    }

    @Test func serviceMetricsAndDeadLettersAfterTooManyDeliveries() throws {
        let metricsPort = try Cluster.freePort()
        let cluster = try Cluster(
            services: ["sessions"],
            environment: [
                "CLAIM_IDLE_MS": "500", "MAX_DELIVERIES": "3", "METRICS_PORT": String(metricsPort),
            ])
        defer { cluster.shutdown() }
        let user = cluster.newUser()
        let redis = cluster.redis()
        let deadline = Timestamp.now().milliseconds + 60_000
        let command = Command(
            id: "poison-1", requestId: "r-poison-1", type: "sessions.create", userId: user.id,
            role: "user",
            params: [:], body: Array(#"{"name":"poison"}"#.utf8), replyKey: "uc:reply:test",
            deadline: deadline)
        // In one transaction, so the service's blocked read cannot take it first: a consumer
        // "ghost" reads it and it looks delivered seven times already.
        let entryId = "\(Timestamp.now().milliseconds)-7"
        let replies = try redis.pipeline([
            ["MULTI"], ["XADD", "uc:cmd:sessions", .init(entryId)] + command.fields,
            [
                "XREADGROUP", "GROUP", "sessions", "ghost", "COUNT", "1", "STREAMS",
                "uc:cmd:sessions", ">",
            ],
            [
                "XCLAIM", "uc:cmd:sessions", "sessions", "ghost", "0", .init(entryId), "RETRYCOUNT",
                "7",
            ], ["EXEC"],
        ])
        #expect(replies.last?.array?.count == 3)

        var dead: [RedisReply] = []
        for _ in 0..<40 where dead.isEmpty {
            Thread.sleep(forTimeInterval: 0.25)
            dead = try redis.run(["XRANGE", "uc:dead:sessions", "-", "+"]).array ?? []
        }
        #expect(dead.count == 1)
        #expect(
            try redis.run(["XPENDING", "uc:cmd:sessions", "sessions"]).array?.first?.integer == 0)
        #expect(try cluster.get("/api/chat/sessions", user)["items"]?.arrayValue?.isEmpty == true)

        let listing = try admin(cluster, ["dead", "list", "sessions"])
        #expect(listing.contains("poison-1"))
        let status = try admin(cluster, ["status", "--json"])
        #expect(status.contains("\"deadLetters\":1"))
        let replayId = try #require(dead.first?.array?.first?.text)
        #expect(try admin(cluster, ["dead", "replay", "sessions", replayId]).contains("replayed"))
        var names: [String] = []
        for _ in 0..<40 where names.isEmpty {
            Thread.sleep(forTimeInterval: 0.25)
            names = (try cluster.get("/api/chat/sessions", user)["items"]?.arrayValue ?? [])
                .compactMap { $0.documentValue?["name"]?.stringValue }
        }
        #expect(names == ["poison"])

        let scrape = try HTTPClient.send(cluster, "GET", "/metrics")
        #expect(scrape.status == 200)
        let serviceMetrics = try String(
            contentsOf: URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!, encoding: .utf8)
        #expect(
            serviceMetrics.contains("uc_commands_dead_lettered_total{stream=\"uc:cmd:sessions\"} 1")
        )
        #expect(serviceMetrics.contains("uc_stream_length"))
        #expect(serviceMetrics.contains("uc_pending_commands"))
        #expect(
            serviceMetrics.contains(
                "uc_commands_handled_total{type=\"sessions.create\",status=\"201\"}"))
    }

    @Test("uc-admin recount mends session stats a crash left short, and only those")
    func recountMendsStatsFromTheMessageBuckets() throws {
        let cluster = try Cluster.sharedCluster()
        let user = cluster.newUser()
        let short = try cluster.createSession(user, name: "short")
        let right = try cluster.createSession(user, name: "right")
        for (session, count) in [(short, 3), (right, 2)] {
            for index in 0..<count {
                let added = try cluster.post(
                    "/api/chat/sessions/\(session)/messages", user,
                    json(["role": "user", "content": .string("m\(index)"), "tokens": 5]))
                #expect(added.status == 201)
            }
        }
        // What a crash between a message's push and the session's $inc leaves behind.
        _ = try cluster.mongo().collection("chat_sessions").updateOne(
            ["sessionId": .string(short)],
            ["$set": ["stats.messageCount": 1, "stats.totalTokens": 5]])

        // Written just now: a recount waits for the sessions to be quiet and changes nothing.
        let waiting = try admin(cluster, ["recount", "--user", user.id.hex])
        #expect(waiting.contains("checked 2 sessions, fixed 0, skipped 2"), "\(waiting)")
        #expect(
            try cluster.get("/api/chat/sessions/\(short)", user)["stats"]?.documentValue?[
                "messageCount"]?.intValue == 1)

        let report = try admin(cluster, ["recount", "--user", user.id.hex, "--quiet-ms", "0"])
        #expect(report.contains("checked 2 sessions, fixed 1, skipped 0"), "\(report)")
        #expect(report.contains(short) && !report.contains(right))
        let mended = try cluster.get("/api/chat/sessions/\(short)", user)
        #expect(mended.document?.value(at: "stats.messageCount")?.intValue == 3)
        #expect(mended.document?.value(at: "stats.totalTokens")?.intValue == 15)
        let untouched = try cluster.get("/api/chat/sessions/\(right)", user)
        #expect(untouched.document?.value(at: "stats.messageCount")?.intValue == 2)

        let again = try admin(cluster, ["recount", "--user", user.id.hex, "--quiet-ms", "0"])
        #expect(again.contains("checked 2 sessions, fixed 0, skipped 0"), "\(again)")
    }

    @Test func recountIsForAdminsOnly() throws {
        let cluster = try Cluster.sharedCluster()
        let requester = BusRequester(
            address: RedisAddress(url: "redis://127.0.0.1:\(cluster.redisPort)"),
            name: "test-recount-\(UUID().uuidString.prefix(8))", logger: Logger(service: "test"))
        defer { requester.stop() }
        let reply = requester.request(
            "sessions.recount", to: "sessions", userId: ObjectId(), role: "user",
            deadline: Timestamp.now().milliseconds + 5000)
        #expect(reply?.status == 403)
    }
}
