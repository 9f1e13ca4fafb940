import Core
import Foundation
import Testing

@Suite("Write rate limits and CORS", .serialized)
struct LimitsTests {
    @Test func writesBeyondTheBudgetGet429WithRetryAfter() throws {
        let cluster = try Cluster(
            services: ["sessions"],
            environment: ["RATE_LIMIT_WRITES": "5", "RATE_LIMIT_WINDOW_MS": "60000"])
        defer { cluster.shutdown() }
        let busy = cluster.newUser()
        let calm = cluster.newUser()
        // HEAD reads like GET: it spends nothing of the write budget.
        for _ in 0..<8 {
            let head = try HTTPClient.send(
                cluster, "HEAD", "/api/chat/sessions",
                headers: ["Authorization": "Bearer \(busy.token)"])
            #expect(head.status == 200)
        }
        #expect(try HTTPClient.send(cluster, "HEAD", "/healthz").status == 200)
        for index in 0..<5 {
            #expect(
                try cluster.post("/api/chat/sessions", busy, json(["name": .string("s\(index)")]))
                    .status == 201)
        }
        let refused = try cluster.post("/api/chat/sessions", busy, #"{"name":"one too many"}"#)
        #expect(refused.status == 429)
        #expect(refused.errorCode == "rate_limited")
        #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 >= 1)
        #expect(try cluster.get("/api/chat/sessions", busy)["items"]?.arrayValue?.count == 5)
        #expect(
            try cluster.post("/api/chat/sessions", calm, #"{"name":"other user"}"#).status == 201)
    }

    /// Each registration and login costs the settings service a bcrypt hash, so one client
    /// address gets `RATE_LIMIT_ACCOUNTS` of them per window; users with a token are not held up.
    @Test func registrationsAndLoginsFromOneAddressAreLimited() throws {
        let cluster = try Cluster(
            services: ["settings"],
            environment: [
                "RATE_LIMIT_ACCOUNTS": "3", "RATE_LIMIT_ACCOUNTS_WINDOW_MS": "60000",
                "BCRYPT_COST": "4",
            ])
        defer { cluster.shutdown() }
        let tag = UUID().uuidString.prefix(8).lowercased()
        func register(_ index: Int) throws -> HTTPResult {
            try cluster.post(
                "/api/auth/register", nil,
                json([
                    "email": .string("limit-\(tag)-\(index)@example.com"), "name": "Limited",
                    "password": "correct horse battery",
                ]))
        }
        for index in 0..<3 { #expect(try register(index).status == 201) }
        let refused = try register(3)
        #expect(refused.status == 429)
        #expect(refused.errorCode == "rate_limited")
        #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 >= 1)
        let login = try cluster.post(
            "/api/auth/login", nil,
            #"{"email":"limit-\#(tag)-0@example.com","password":"correct horse battery"}"#)
        #expect(login.status == 429)

        let users = try cluster.mongo().collection("users")
        #expect(try users.find(["emailLower": .string("limit-\(tag)-3@example.com")]).isEmpty)
        #expect(try cluster.get("/api/chat/settings", cluster.newUser()).status == 200)
    }

    @Test func corsIsOffByDefaultAndAnswersAllowedOrigins() throws {
        let shared = try Cluster.sharedCluster()
        let user = shared.newUser()
        let plain = try HTTPClient.send(
            shared, "GET", "/api/chat/sessions", token: user.token,
            headers: ["Origin": "https://app.example"])
        #expect(plain.headers["access-control-allow-origin"] == nil)
        let noPreflight = try HTTPClient.send(shared, "OPTIONS", "/api/chat/sessions")
        #expect(noPreflight.status == 405)
        #expect(noPreflight.errorCode == "method_not_allowed")
        #expect(noPreflight.headers["allow"] == "GET, POST")
        let nowhere = try HTTPClient.send(shared, "OPTIONS", "/api/nothing/here")
        #expect(nowhere.status == 404 && nowhere.errorCode == "not_found")

        let cluster = try Cluster(
            services: ["sessions"], environment: ["CORS_ORIGINS": "https://app.example"])
        defer { cluster.shutdown() }
        let preflight = try HTTPClient.send(
            cluster, "OPTIONS", "/api/chat/sessions",
            headers: ["Origin": "https://app.example", "Access-Control-Request-Method": "POST"])
        #expect(preflight.status == 204)
        #expect(preflight.headers["access-control-allow-origin"] == "https://app.example")
        #expect(
            preflight.headers["access-control-allow-headers"]?.contains("Authorization") == true)
        let allowed = try HTTPClient.send(
            cluster, "GET", "/api/chat/sessions", token: cluster.newUser().token,
            headers: ["Origin": "https://app.example"])
        #expect(allowed.status == 200)
        #expect(allowed.headers["access-control-allow-origin"] == "https://app.example")
        let foreign = try HTTPClient.send(
            cluster, "GET", "/api/chat/sessions", token: cluster.newUser().token,
            headers: ["Origin": "https://evil.example"])
        #expect(foreign.headers["access-control-allow-origin"] == nil)
    }
}
