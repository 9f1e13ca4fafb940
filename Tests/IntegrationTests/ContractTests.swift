import Core
import Foundation
import JSONKit
import Testing

/// The served contract, the security headers on every kind of answer, and regressions the
/// contract test (scripts/contract-test.sh) found.
@Suite("The API contract over HTTP")
struct ContractTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    @Test func openAPIDocumentIsServedWithoutATokenExactlyAsInTheRepository() throws {
        let served = try HTTPClient.send(cluster, "GET", "/openapi.json")
        #expect(served.status == 200)
        #expect(served.headers["content-type"]?.hasPrefix("application/json") == true)
        let file = try Data(contentsOf: Cluster.root.appendingPathComponent("openapi.json"))
        #expect(served.body == Array(file), "the gateway embeds an old copy: run `make openapi`")
        #expect(served["openapi"]?.stringValue == "3.1.0")
        for path in ["/healthz", "/readyz", "/metrics"] {
            #expect(try HTTPClient.send(cluster, "GET", path).status == 200, "\(path)")
        }
    }

    @Test func sessionFlagsStayJSONBooleansAfterAnUpdate() throws {
        let user = cluster.newUser()
        let id = try cluster.createSession(user, name: "flags")
        let updated = try cluster.put(
            "/api/chat/sessions/\(id)", user, #"{"isArchived":false,"isActive":true}"#)
        #expect(updated.status == 200)
        #expect(updated["isArchived"] == .bool(false))
        #expect(updated["isActive"] == .bool(true))
        let detail = try cluster.get("/api/chat/sessions/\(id)", user)
        #expect(detail["isArchived"] == .bool(false))
        #expect(detail["isActive"] == .bool(true))
        let listed = try cluster.get("/api/chat/sessions", user)["items"]?.arrayValue?.first
        #expect(listed?.documentValue?["isArchived"] == .bool(false))
        #expect(listed?.documentValue?["isActive"] == .bool(true))
    }

    @Test func everyKindOfAnswerCarriesNoStoreAndNoSniff() throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user, name: "headers")
        let big = String(repeating: "x", count: 2 << 20)
        var answers: [(String, HTTPResult)] = [
            ("200 list", try cluster.get("/api/chat/sessions", user)),
            ("201 create", try cluster.post("/api/chat/sessions", user, #"{"name":"h"}"#)),
            ("400 invalid", try cluster.post("/api/chat/sessions", user, #"{"name":""}"#)),
            ("400 malformed", try cluster.post("/api/chat/sessions", user, "{")),
            ("401 no token", try cluster.get("/api/chat/sessions", nil)),
            ("404 route", try cluster.get("/api/nothing/here", user)),
            ("404 id", try cluster.get("/api/chat/sessions/session-unknown", user)),
            ("405", try HTTPClient.send(cluster, "PATCH", "/api/chat/sessions", token: user.token)),
            (
                "413",
                try cluster.post(
                    "/api/chat/sessions/\(session)/messages", user,
                    json(["role": "user", "content": .string(big)]))
            ),
            (
                "415",
                try HTTPClient.send(
                    cluster, "POST", "/api/chat/sessions", token: user.token,
                    rawBody: Array(#"{"name":"a"}"#.utf8),
                    headers: ["Content-Type": "text/plain"])
            ),
            (
                "414",
                try cluster.get("/api/chat/sessions/" + String(repeating: "a", count: 3000), user)
            ),
            ("healthz", try HTTPClient.send(cluster, "GET", "/healthz")),
            ("openapi", try HTTPClient.send(cluster, "GET", "/openapi.json")),
            ("metrics", try HTTPClient.send(cluster, "GET", "/metrics")),
            ("settings", try cluster.get("/api/chat/settings", user)),
            ("agents 403", try cluster.post("/api/agents", user, #"{"agentId":"x-y","name":"n"}"#)),
        ]
        let project = try cluster.post(
            "/api/chat/canvas/projects", user, #"{"name":"p","template":"Blog","category":"blog"}"#)
        if let id = project["projectId"]?.stringValue {
            answers.append(("zip", try cluster.get("/api/chat/canvas/projects/\(id)/export", user)))
        }
        let statuses = answers.map { "\($0.0)=\($0.1.status)" }
        #expect(
            answers.contains { $0.1.status == 413 } && answers.contains { $0.1.status == 414 },
            "\(statuses)")
        for (name, answer) in answers {
            #expect(answer.headers["cache-control"] == "no-store", "\(name): \(answer.status)")
            #expect(
                answer.headers["x-content-type-options"] == "nosniff", "\(name): \(answer.status)")
            if answer.status >= 400 {
                #expect(answer.errorCode != nil, "\(name): \(answer.status) is not a JSON error")
            }
        }
    }
}
