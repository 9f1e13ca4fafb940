import Core
import Foundation
import RedisKit
import Testing

/// The gateway refuses new work for a service that has fallen too far behind.
@Suite("Load shedding", .serialized)
struct LoadSheddingTests {
    @Test("A service more than STREAM_MAX_BACKLOG commands behind gets quick 503s, then recovers")
    func aBackloggedServiceShedsNewRequestsAndRecovers() throws {
        let cluster = try Cluster(
            services: ["sessions"],
            environment: ["STREAM_MAX_BACKLOG": "1000", "REQUEST_TIMEOUT_MS": "1500"])
        defer { cluster.shutdown() }
        let user = cluster.newUser()
        #expect(try cluster.get("/api/ping", user).status == 200)

        // The service stalls while other gateways keep adding: 1,100 commands nobody reads.
        cluster.send("sessions", signal: SIGSTOP)
        let redis = cluster.redis()
        let flood = (0..<1100).map { index -> [RedisArgument] in
            [
                "XADD", "uc:cmd:sessions", "*", "id", RedisArgument("flood-\(index)"),
                "type", "ping", "user", "", "role", "user", "params", "{}", "body", "",
                "reply", "uc:reply:elsewhere", "deadline", "1", "keyed", "0",
            ]
        }
        _ = try redis.pipeline(flood)
        Thread.sleep(forTimeInterval: 0.3)

        // The first request after the flood is queued (and times out); it also makes the
        // gateway look at the backlog, so the next one is refused at once.
        let first = try cluster.get("/api/ping", user)
        #expect(first.status == 504)
        let refused = try cluster.get("/api/chat/sessions", user)
        #expect(refused.status == 503)
        #expect(refused.errorCode == "unavailable")
        let created = try cluster.post("/api/chat/sessions", user, json(["name": "shed"]))
        #expect(created.status == 503)

        // Caught up (the flood's deadlines passed, so it is dropped unapplied): served again.
        cluster.send("sessions", signal: SIGCONT)
        let deadline = Date().addingTimeInterval(10)
        var status = 0
        while Date() < deadline {
            status = try cluster.get("/api/ping", user).status
            if status == 200 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(status == 200)
        let list = try cluster.get("/api/chat/sessions", user)
        #expect(list.status == 200)
        #expect(list["items"]?.arrayValue?.isEmpty == true)
    }
}
