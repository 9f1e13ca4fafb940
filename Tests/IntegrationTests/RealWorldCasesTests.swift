import Core
import Foundation
import Synchronization
import Testing

/// The cases of ../shared/cases/real-world-cases.md that need no process to be stopped.
@Suite("Real-world cases")
struct RealWorldCasesTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    @Test("C01: a retried message save has one effect and crashes nothing")
    func retriedMessageSaveHasOneEffect() throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user, name: "dup-test")
        let path = "/api/chat/sessions/\(session)/messages"
        let gatewayPids = cluster.pids("gateway")
        let servicePids = cluster.pids("sessions")

        let withClientId = try cluster.post(
            path, user, #"{"role":"user","content":"hello","id":"m-dup-1"}"#)
        #expect(withClientId.status == 400)
        #expect(withClientId.errorFields == ["id"])

        let key = ["Idempotency-Key": "k-dup-1"]
        let body = #"{"role":"user","content":"hello"}"#
        let first = try cluster.post(path, user, body, headers: key)
        #expect(first.status == 201)
        let again = try cluster.post(path, user, body, headers: key)
        #expect(again.status == 201)
        #expect(again["messageId"] == first["messageId"])
        let statuses = Mutex<[Int]>([])
        parallel(2) { _ in
            let result = try? cluster.post(path, user, body, headers: key)
            statuses.withLock { $0.append(result?.status ?? -1) }
        }
        #expect(statuses.withLock { $0 } == [201, 201])
        #expect(try cluster.get("/api/chat/sessions", user).status == 200)

        let detail = try cluster.get("/api/chat/sessions/\(session)", user)
        let hellos = detail["messages"]?.arrayValue?.filter {
            $0.documentValue?["content"]?.stringValue == "hello"
        }
        #expect(hellos?.count == 1)
        #expect(detail.document?.value(at: "stats.messageCount")?.intValue == 1)

        let otherBody = try cluster.post(
            path, user, #"{"role":"user","content":"different"}"#, headers: key)
        #expect(otherBody.status == 422)
        #expect(cluster.pids("gateway") == gatewayPids)
        #expect(cluster.pids("sessions") == servicePids)
    }

    @Test("C07: malformed or foreign ids answer 404, never 500")
    func malformedIdsAreNotFound() throws {
        let user = cluster.newUser()
        let ids = [
            "abc", "1", "-1", "aaaaaaaaaaaa", "zzzzzzzzzzzzzzzzzzzzzzzz",
            String(repeating: "a", count: 23),
            String(repeating: "a", count: 25), "000000000000000000000000", "%00", "a%2Fb", "null",
            "undefined",
        ]
        for id in ids {
            for (method, suffix) in [
                ("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/messages"),
                ("GET", "/messages"),
            ] {
                let body =
                    method == "PUT"
                    ? #"{"name":"x"}"# : method == "POST" ? #"{"role":"user","content":"x"}"# : nil
                let result = try HTTPClient.send(
                    cluster, method, "/api/chat/sessions/\(id)\(suffix)", token: user.token,
                    body: body)
                #expect(
                    result.status == 404,
                    "\(method) \(id)\(suffix) -> \(result.status) \(result.text)")
                #expect(result.errorCode != nil)
            }
        }
        let long = try cluster.get(
            "/api/chat/sessions/" + String(repeating: "a", count: 10_000), user)
        #expect([400, 404, 414].contains(long.status))
    }

    @Test("C19: user text is never a Redis format string")
    func percentAndProtocolTextRoundTrip() throws {
        let user = cluster.newUser()
        let redis = cluster.redis()
        try redis.run(["SET", "canary", "1"])
        let session = try cluster.createSession(user, name: "%s %n")
        let contents = [
            "100% sure", "%s%s%s%s%n%n", "%d %x %p %b", "%%", "a b\r\n*1\r\n$8\r\nFLUSHALL\r\n",
            String(repeating: "%", count: 1_000_000), "nul\u{0}inside",
        ]
        var ids: [String] = []
        for content in contents {
            let result = try cluster.post(
                "/api/chat/sessions/\(session)/messages", user,
                json(["role": "user", "content": .string(content)]))
            #expect(result.status == 201)
            #expect(result["content"]?.stringValue == content)
            ids.append(result["messageId"]?.stringValue ?? "")
        }
        let empty = try cluster.post(
            "/api/chat/sessions/\(session)/messages", user, #"{"role":"user","content":""}"#)
        #expect(empty.status == 400)
        let page = try cluster.get("/api/chat/sessions/\(session)/messages?limit=100", user)
        let stored = page["items"]?.arrayValue?.compactMap {
            $0.documentValue?["content"]?.stringValue
        }
        #expect(stored == contents)
        #expect(
            try cluster.get("/api/chat/sessions/\(session)", user)["name"]?.stringValue == "%s %n")
        #expect(try redis.run(["GET", "canary"]).text == "1")
        #expect(try cluster.post("/api/chat/sessions", user, #"{"name":" "}"#).status == 400)
    }

    @Test("C21: responses carry plain JSON numbers, strings and dates")
    func noDriverNativeJSONLeaks() throws {
        let user = cluster.newUser()
        let created = try cluster.post(
            "/api/chat/sessions", user,
            #"{"name":"c21","settings":{"temperature":0.7,"maxTokens":4000}}"#)
        let id = try #require(created["sessionId"]?.stringValue)
        _ = try cluster.post(
            "/api/chat/sessions/\(id)/messages", user, #"{"role":"user","content":"x","tokens":3}"#)
        for result in [
            try cluster.get("/api/chat/sessions/\(id)", user),
            try cluster.get("/api/chat/sessions", user),
        ] {
            #expect(result.status == 200)
            for marker in [
                "$oid", "$date", "$numberInt", "$numberLong", "$numberDouble", "0.700000", "__v",
                "\"_id\"",
            ] {
                #expect(!result.text.contains(marker), "\(marker) in \(result.text)")
            }
        }
        let detail = try cluster.get("/api/chat/sessions/\(id)", user)
        #expect(detail.text.contains(#""temperature":0.7"#))
        #expect(detail.text.contains(#""maxTokens":4000"#))
        let created_at = try #require(detail["createdAt"]?.stringValue)
        #expect(Timestamp(iso8601: created_at) != nil)
        #expect(created_at.hasSuffix("Z") && created_at.count == 24)
        #expect(ObjectId(hex: detail["userId"]?.stringValue ?? "") == user.id)
    }

    @Test("C22: Content-Length counts bytes, and chunked uploads are read whole")
    func contentLengthCountsBytes() throws {
        let user = cluster.newUser()
        let name = "Ünïcødé 😀 日本語 — ✓"
        let session = try cluster.createSession(user, name: name)
        let long = String(repeating: "日", count: 3000)
        #expect(
            try cluster.post(
                "/api/chat/sessions/\(session)/messages", user,
                json(["role": "user", "content": .string(long)])
            ).status == 201)

        let connection = try RawConnection(port: cluster.httpPort)
        connection.write(
            "GET /api/chat/sessions/\(session) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(user.token)\r\n\r\n"
        )
        let response = try #require(connection.readResponse())
        #expect(response.status == 200)
        #expect(Int(response.headers["content-length"] ?? "") == response.body.count)
        let document = try #require(
            HTTPResult(status: 200, headers: [:], body: response.body).document)
        #expect(document["name"]?.stringValue == name)
        #expect(
            document["messages"]?.arrayValue?.first?.documentValue?["content"]?.stringValue == long)

        let body = Array(json(["role": "user", "content": .string("chunked ✓ \(long)")]).utf8)
        let half = body.count / 2
        let chunked = try RawConnection(port: cluster.httpPort)
        chunked.write(
            "POST /api/chat/sessions/\(session)/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(user.token)\r\n"
                + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in [Array(body[..<half]), Array(body[half...])] {
            chunked.write(String(part.count, radix: 16) + "\r\n")
            chunked.write(part)
            chunked.write("\r\n")
        }
        chunked.write("0\r\n\r\n")
        let answer = try #require(chunked.readResponse())
        #expect(answer.status == 201)
        let stored = HTTPResult(status: 201, headers: [:], body: answer.body)["content"]?
            .stringValue
        #expect(stored == "chunked ✓ \(long)")
    }

    @Test("C23: oversized bodies get 413 and connections stay sane")
    func oversizedBodiesGetCleanAnswers() throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user)
        let big = json([
            "role": "user", "content": .string(String(repeating: "x", count: 11 << 20)),
        ])
        let result = try cluster.post("/api/chat/sessions/\(session)/messages", user, big)
        #expect(result.status == 413)
        #expect(result.text.contains("1048576"))

        let connection = try RawConnection(port: cluster.httpPort)
        let request =
            "GET /api/chat/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(user.token)\r\n\r\n"
        connection.write(request + request)
        #expect(connection.readResponse()?.status == 200)
        #expect(connection.readResponse()?.status == 200)

        let huge = try RawConnection(port: cluster.httpPort)
        huge.write(
            "GET /api/chat/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(String(repeating: "a", count: 65536))\r\n\r\n"
        )
        let refused = huge.readResponse()
        #expect(refused == nil || [400, 413, 431].contains(refused?.status ?? 0))
        #expect(try cluster.get("/api/chat/sessions", user).status == 200)
    }

    @Test(
        "C24: malformed JSON gets 400, never 500",
        arguments: [
            #"{"name":"#, "", #"{"name":"a",}"#, #"{"name":"a"}{"name":"b"}"#, "null", "[]",
            #""str""#,
            "\u{FEFF}{\"name\":\"a\"}", #"{"name":"a","name":"b"}"#, #"{"temperature":NaN}"#,
            #"{"temperature":1e400}"#, "DEEP",
        ])
    func malformedJSONIsRefused(body: String) throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user)
        let text = body == "DEEP" ? String(repeating: "[", count: 100_000) : body
        for path in [
            "/api/chat/sessions", "/api/chat/sessions/\(session)/messages",
            "/api/chat/sessions/\(session)",
        ] {
            let method = path.hasSuffix(session) ? "PUT" : "POST"
            let result = try HTTPClient.send(cluster, method, path, token: user.token, body: text)
            #expect(
                result.status == 400, "\(method) \(path) \(body.prefix(20)) -> \(result.status)")
            #expect(result.errorCode != nil)
        }
        #expect(try cluster.post("/api/chat/sessions", user, #"{"name":"after"}"#).status == 201)
    }

    @Test("C24: bodies must be sent as JSON")
    func otherContentTypesAreUnsupported() throws {
        let user = cluster.newUser()
        for type in ["text/plain", "application/x-www-form-urlencoded"] {
            let result = try HTTPClient.send(
                cluster, "POST", "/api/chat/sessions", token: user.token,
                rawBody: Array(#"{"name":"a"}"#.utf8),
                headers: ["Content-Type": type])
            #expect(result.status == 415)
        }
        let charset = try HTTPClient.send(
            cluster, "POST", "/api/chat/sessions", token: user.token,
            rawBody: Array(#"{"name":"a"}"#.utf8),
            headers: ["Content-Type": "application/json; charset=utf-8"])
        #expect(charset.status == 201)
        let numbers = try cluster.post(
            "/api/chat/sessions", user,
            #"{"name":"n","settings":{"maxTokens":4000.0,"temperature":1}}"#)
        #expect(numbers.status == 201)
        #expect(numbers.document?.value(at: "settings.maxTokens")?.intValue == 4000)
        let exponent = try cluster.post(
            "/api/chat/sessions", user, #"{"name":"n","settings":{"maxTokens":1e3}}"#)
        #expect(exponent.document?.value(at: "settings.maxTokens")?.intValue == 1000)
    }

    @Test func unknownRoutesAndMethodsAreJSONErrors() throws {
        let user = cluster.newUser()
        let missing = try cluster.get("/api/nothing", user)
        #expect(missing.status == 404)
        #expect(missing.errorCode == "not_found")
        let wrong = try HTTPClient.send(cluster, "PATCH", "/api/chat/sessions", token: user.token)
        #expect(wrong.status == 405)
        #expect(wrong.headers["allow"]?.contains("GET") == true)
        #expect(missing.headers["cache-control"] == "no-store")
        #expect(missing.headers["x-content-type-options"] == "nosniff")
        #expect(missing.headers["content-type"]?.hasPrefix("application/json") == true)
    }
}
