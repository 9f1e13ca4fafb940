import Bus
import Core
import Foundation
import JSONKit
import Synchronization
import Testing

/// A user with one of everything, for aiming hostile input at real routes.
struct Target {
    let user: TestUser
    let admin: TestUser
    let session: String
    let message: String
    let project: String
    let file: String
    let history: String
    let action: String

    static func make(_ cluster: Cluster) throws -> Target {
        let user = try cluster.register().user
        let session = try cluster.createSession(user, name: "target")
        let message = try cluster.appendMessage(user, session, "hello", role: "user")
        let project = try cluster.createProject(user, name: "target")
        let file = try cluster.createFile(user, project, "a.md", "a")["fileId"]?.stringValue ?? ""
        let history = try cluster.generate(user, project, ["prompt": "A page."])
        _ = try cluster.finishedHistory(user, history)
        let action =
            try cluster.post(
                "/api/chat/quick-actions", user,
                #"{"label":"t","prompt":"p","category":"General","icon":"i"}"#)["actionId"]?
            .stringValue ?? ""
        return Target(
            user: user, admin: cluster.newUser(role: "admin"), session: session, message: message,
            project: project, file: file, history: history, action: action)
    }

    /// The route's path with this user's ids, or `id` in every id segment when given.
    func path(_ route: Route, id: String? = nil) -> String {
        var parts: [String] = []
        for segment in route.segments {
            guard segment.hasPrefix(":") else {
                parts.append(segment)
                continue
            }
            if let id {
                parts.append(id)
                continue
            }
            let prefix = "/" + parts.joined(separator: "/")
            switch (segment, prefix) {
            case (":actionId", _): parts.append(action)
            case (":agentId", _): parts.append("einstein")
            case (_, "/api/chat/sessions"): parts.append(session)
            case (_, "/api/chat/canvas/projects"): parts.append(project)
            case (_, "/api/chat/canvas/files"): parts.append(file)
            default: parts.append(history)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// A valid body for each writing route.
    func body(_ route: Route) -> String? {
        switch route.type {
        case "sessions.create", "sessions.update": return #"{"name":"n"}"#
        case "messages.append": return #"{"role":"user","content":"c"}"#
        case "agents.create": return #"{"agentId":"hostile-x","name":"n"}"#
        case "agents.update": return #"{"description":"d"}"#
        case "feedback.create":
            return json([
                "conversationId": .string(session), "feedbackType": "conversation", "rating": 3,
            ])
        case "auth.register": return #"{"email":"h@example.com","name":"n","password":"12345678"}"#
        case "auth.login": return #"{"email":"h@example.com","password":"x"}"#
        case "auth.refresh", "auth.logout": return #"{"refreshToken":"rt_x"}"#
        case "me.update": return #"{"bio":"b"}"#
        case "settings.update": return #"{"mode":"fast"}"#
        case "quickActions.create":
            return #"{"label":"l","prompt":"p","category":"General","icon":"i"}"#
        case "quickActions.update": return #"{"label":"l"}"#
        case "canvas.projects.create": return #"{"name":"n","template":"Blog","category":"blog"}"#
        case "canvas.projects.update": return #"{"description":"d"}"#
        case "canvas.generate": return #"{"prompt":"p"}"#
        case "canvas.rollback": return json(["historyId": .string(history)])
        case "canvas.files.create": return json(["projectId": .string(project), "path": "n.md"])
        case "canvas.files.update": return #"{"content":"c"}"#
        default: return nil
        }
    }

    func token(_ route: Route) -> String? {
        route.path.hasPrefix("/api/agents") ? admin.token : user.token
    }
}

/// Hostile and odd input: each a clear 4xx that changes nothing and crashes no process.
@Suite("Hostile and odd input")
struct HostileInputTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    var allPids: [Int32] {
        (["gateway"] + Routes.services).flatMap { cluster.pids($0) }
    }

    /// What a fresh user has stored, for "nothing changed".
    func stored(_ user: TestUser) throws -> [Int] {
        try [
            "/api/chat/sessions", "/api/chat/canvas/projects", "/api/chat/feedback",
            "/api/chat/quick-actions?limit=100",
        ].map { try cluster.get($0, user).items.count }
    }

    @Test(arguments: [
        ("POST", "/api/chat/sessions", #"{"name":"x","$where":"1"}"#),
        ("POST", "/api/chat/sessions", #"{"name":"x","settings":{"$set":{"mode":"fast"}}}"#),
        ("POST", "/api/chat/sessions", #"{"name":"x","settings":{"mode.x":"fast"}}"#),
        ("POST", "/api/chat/sessions", #"{"name":"x","a.b":1}"#),
        ("POST", "/api/chat/sessions", #"{"name":"x","tags":[{"$gt":""}]}"#),
        (
            "POST", "/api/chat/feedback",
            ratedFeedback(metadata: #"{"a":{"$gt":1}}"#)
        ),
        (
            "POST", "/api/chat/feedback",
            ratedFeedback(metadata: #"{"a":[{"b.c":1}]}"#)
        ),
        (
            "POST", "/api/chat/feedback",
            ratedFeedback(metadata: #"{"$inc":{"x":1}}"#)
        ),
        ("PUT", "/api/chat/settings", #"{"notifications":{"$set":true}}"#),
        ("PUT", "/api/chat/settings", #"{"$unset":{"model":""}}"#),
        ("PUT", "/api/me", #"{"preferences":{"notifications":{"e.mail":true}}}"#),
        ("PUT", "/api/me", #"{"socialLinks":{"$where":"x"}}"#),
        (
            "POST", "/api/chat/quick-actions",
            #"{"label":"l","prompt":"p","category":"General","icon":"i","$inc":{"usageCount":9}}"#
        ),
        (
            "POST", "/api/chat/canvas/projects",
            #"{"name":"n","template":"t","category":"c","settings":{"theme.$":"dark"}}"#
        ),
        (
            "POST", "/api/chat/canvas/files",
            #"{"projectId":"P","path":"x.md","metadata":{"$language":"x"}}"#
        ),
        (
            "POST", "/api/chat/sessions/S/messages",
            #"{"role":"user","content":"c","attachments":[{"$ref":"x"}]}"#
        ),
        (
            "POST", "/api/chat/sessions/S/messages",
            #"{"role":"user","content":"c","attachments":[{"a":{"b.c":1}}]}"#
        ),
        ("POST", "/api/auth/login", #"{"email":"a@b.co","password":"x","$or":[{}]}"#),
        (
            "POST", "/api/chat/sessions/S/messages",
            #"{"role":"user","content":"c","attachments":[{"":1}]}"#
        ),
        (
            "POST", "/api/chat/sessions/S/messages",
            #"{"role":"user","content":"c","attachments":[[{"a":{"":1}}]]}"#
        ),
        (
            "POST", "/api/chat/feedback",
            #"{"conversationId":"S","feedbackType":"conversation","rating":3,"metadata":{"":1}}"#
        ),
        (
            "POST", "/api/chat/feedback",
            ratedFeedback(metadata: #"{"a":{"":{}}}"#)
        ),
    ])
    func operatorAndDottedKeysAreRefusedAnywhereInABody(method: String, path: String, body: String)
        throws
    {
        let user = cluster.newUser()
        let session = try cluster.createSession(user, name: "keys")
        let project = try cluster.createProject(user, name: "keys")
        let before = try stored(user)
        let settingsBefore = try cluster.get("/api/chat/settings", user).text
        let text = body.replacingOccurrences(of: #""S""#, with: "\"\(session)\"")
            .replacingOccurrences(of: #""P""#, with: "\"\(project)\"")
        let result = try HTTPClient.send(
            cluster, method, path.replacingOccurrences(of: "/S/", with: "/\(session)/"),
            token: user.token, body: text)
        #expect(result.status == 400, "\(body) -> \(result.status) \(result.text)")
        #expect(result.errorCode == "validation_failed")
        let details = (result.document?.value(at: "error.details")?.arrayValue ?? []).map {
            ($0.documentValue?["field"]?.stringValue ?? "")
                + ": " + ($0.documentValue?["message"]?.stringValue ?? "")
        }
        #expect(Set(details).count == details.count, "a problem named twice: \(result.text)")
        #expect(try stored(user) == before)
        #expect(try cluster.get("/api/chat/settings", user).text == settingsBefore)
        let messages = try cluster.get("/api/chat/sessions/\(session)/messages", user).items
        #expect(messages.isEmpty)
    }

    @Test func operatorObjectsWhereStringsBelongNameTheField() throws {
        let target = try Target.make(cluster)
        let user = target.user
        let op: Value = ["$gt": ""]
        let cases: [(String, String, Document, String)] = [
            ("POST", "/api/chat/sessions", ["name": op], "name"),
            ("POST", "/api/chat/sessions", ["name": "n", "description": op], "description"),
            (
                "POST", "/api/chat/sessions", ["name": "n", "settings": ["model": op]],
                "settings.model"
            ),
            ("PUT", "/api/chat/sessions/\(target.session)", ["name": op], "name"),
            (
                "POST", "/api/chat/sessions/\(target.session)/messages",
                ["role": "user", "content": op], "content"
            ),
            (
                "POST", "/api/chat/sessions/\(target.session)/messages",
                ["role": op, "content": "c"], "role"
            ),
            (
                "POST", "/api/chat/feedback",
                ["conversationId": op, "feedbackType": "conversation", "rating": 3],
                "conversationId"
            ),
            (
                "POST", "/api/chat/feedback",
                [
                    "conversationId": .string(target.session), "feedbackType": "conversation",
                    "rating": 3,
                    "comment": op,
                ], "comment"
            ),
            (
                "POST", "/api/chat/feedback",
                [
                    "conversationId": .string(target.session), "feedbackType": "message",
                    "rating": 3,
                    "messageId": op,
                ], "messageId"
            ),
            ("POST", "/api/auth/login", ["email": op, "password": "x"], "email"),
            ("POST", "/api/auth/login", ["email": "a@b.co", "password": op], "password"),
            (
                "POST", "/api/auth/register",
                ["email": "a@b.co", "name": op, "password": "12345678"], "name"
            ),
            ("POST", "/api/auth/refresh", ["refreshToken": op], "refreshToken"),
            ("PUT", "/api/me", ["bio": op], "bio"),
            ("PUT", "/api/chat/settings", ["mode": op], "mode"),
            ("PUT", "/api/chat/settings", ["model": op], "model"),
            (
                "POST", "/api/chat/quick-actions",
                ["label": op, "prompt": "p", "category": "General", "icon": "i"],
                "label"
            ),
            ("PUT", "/api/chat/quick-actions/\(target.action)", ["prompt": op], "prompt"),
            (
                "POST", "/api/chat/canvas/projects",
                ["name": "n", "template": op, "category": "c"], "template"
            ),
            (
                "PUT", "/api/chat/canvas/projects/\(target.project)", ["description": op],
                "description"
            ),
            ("POST", "/api/chat/canvas/files", ["projectId": op, "path": "x.md"], "projectId"),
            (
                "POST", "/api/chat/canvas/files",
                ["projectId": .string(target.project), "path": op], "path"
            ),
            ("PUT", "/api/chat/canvas/files/\(target.file)", ["content": op], "content"),
            (
                "POST", "/api/chat/canvas/projects/\(target.project)/generate", ["prompt": op],
                "prompt"
            ),
            (
                "POST", "/api/chat/canvas/projects/\(target.project)/rollback", ["historyId": op],
                "historyId"
            ),
        ]
        let before = try stored(user)
        for (method, path, body, field) in cases {
            let token = path.hasPrefix("/api/auth") ? nil : user.token
            let result = try HTTPClient.send(cluster, method, path, token: token, body: json(body))
            #expect(
                result.status == 400,
                "\(method) \(path) \(field) -> \(result.status) \(result.text)")
            #expect(result.errorFields.contains(field), "\(method) \(path) -> \(result.text)")
        }
        #expect(try stored(user) == before)
        #expect(try cluster.get("/api/chat/sessions/\(target.session)", user)["name"] == "target")
    }

    @Test(arguments: [
        [UInt8](#"{"name":""#.utf8) + [0xFF] + [UInt8](#""}"#.utf8),
        [UInt8](#"{"name":"a"#.utf8) + [0xC3] + [UInt8](#""}"#.utf8),
        [UInt8](#"{"name":""#.utf8) + [0xC0, 0xAF] + [UInt8](#""}"#.utf8),
        [UInt8](#"{"name":""#.utf8) + [0xED, 0xA0, 0x80] + [UInt8](#""}"#.utf8),
        [UInt8](#"{"name":"\ud800"}"#.utf8),
        [UInt8](#"{"name":"\udc00x"}"#.utf8),
        [UInt8](#"{"name":"\ud83d"}"#.utf8),
        [UInt8](#"{"name":"x","\ud800":1}"#.utf8),
        [UInt8](#"{"na\u0000me":"x"}"#.utf8),
        [UInt8](#"{"name":"x","settings":{"mo\u0000de":"fast"}}"#.utf8),
        [UInt8](#"{"name":"x","tags":["a","\udfff"]}"#.utf8),
    ])
    func invalidUTF8LoneSurrogatesAndNULKeysAreRefused(body: [UInt8]) throws {
        let user = cluster.newUser()
        let result = try HTTPClient.send(
            cluster, "POST", "/api/chat/sessions", token: user.token, rawBody: body,
            headers: ["Content-Type": "application/json"])
        #expect(result.status == 400, "\(body) -> \(result.status) \(result.text)")
        #expect(result.errorCode != nil)
        #expect(try cluster.get("/api/chat/sessions", user).items.isEmpty)
    }

    @Test func oddBytesInPathsAndQueriesAreClearAnswers() throws {
        let user = cluster.newUser()
        let pids = allPids
        for path in [
            "/api/chat/sessions/%FF%FE", "/api/chat/sessions/%C0%AF",
            "/api/chat/sessions/%ED%A0%80",
            "/api/chat/canvas/files/%00", "/api/agents/%F0%9F%98%80",
        ] {
            let result = try cluster.get(path, user)
            #expect(result.status == 404, "\(path) -> \(result.status)")
            #expect(result.errorCode != nil)
        }
        for query in ["tag=%FF", "tag=%00", "tag=%ED%A0%80", "agentId=%FF", "cursor=%FF%FF"] {
            let result = try cluster.get("/api/chat/sessions?\(query)", user)
            #expect([200, 400].contains(result.status), "\(query) -> \(result.status)")
            #expect(result.status == 400 || result.items.isEmpty)
        }
        let header = try HTTPClient.send(
            cluster, "GET", "/api/chat/sessions",
            headers: ["Authorization": "Bearer \u{00FF}\u{00FE}"])
        #expect(header.status == 401)
        #expect(allPids == pids)
    }

    @Test func anEncodedNULNeverShortensThePathOrAQueryValue() throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user, name: "nul")
        // Decoded, the NUL would end the C string: this was a DELETE of the session itself.
        let wrongMethod = try cluster.delete("/api/chat/sessions/\(session)%00/messages", user)
        #expect(wrongMethod.status == 405)
        #expect(try cluster.delete("/api/chat/sessions/\(session)%00", user).status == 404)
        #expect(try cluster.get("/api/chat/sessions/\(session)%00", user).status == 404)
        #expect(try cluster.get("/api/chat/sessions/\(session)", user).status == 200)
        let long = String(repeating: "c", count: 100) + "%00" + String(repeating: "d", count: 100)
        let tooLong = try cluster.get("/api/chat/feedback?conversationId=\(long)", user)
        #expect(tooLong.status == 400)
        #expect(tooLong.errorFields == ["conversationId"])
        let tagged = try cluster.put("/api/chat/sessions/\(session)", user, #"{"tags":["a"]}"#)
        #expect(tagged.status == 200)
        #expect(try cluster.get("/api/chat/sessions?tag=a%00b", user).items.isEmpty)
        #expect(try cluster.get("/api/chat/sessions?tag=a", user).items.count == 1)
        #expect(try cluster.get("/api/chat/sessions?tag=%61", user).items.count == 1)
    }

    @Test func malformedAndTraversingIdsInEveryPathAreNotFound() throws {
        let target = try Target.make(cluster)
        let pids = allPids
        let ids = [
            "abc", "1", "-1", "aaaaaaaaaaaa", String(repeating: "z", count: 24),
            String(repeating: "a", count: 23), String(repeating: "a", count: 25),
            "000000000000000000000000", "%00", "a%2Fb", "null", "undefined", "..", "%2e%2e",
            "..%2F..%2Fetc%2Fpasswd", "%252e%252e%252f", "....%2F%2F", "%5C..%5C", "$where",
            "%7B%22%24gt%22%3A%22%22%7D", "session-%0D%0AX-Injected:%201", "%20", "~",
        ]
        var unexpected: [String] = []
        var checked = 0
        for route in Routes.all where route.segments.contains(where: { $0.hasPrefix(":") }) {
            for id in ids {
                let path = target.path(route, id: id)
                let result = try HTTPClient.send(
                    cluster, route.method, path, token: target.token(route),
                    body: target.body(route))
                checked += 1
                // A literal `..` is resolved by the client: the request names the parent route.
                let allowed: Set<Int> = id == ".." ? [404, 405] : [404]
                if !allowed.contains(result.status) || result.errorCode == nil {
                    unexpected.append(
                        "\(route.method) \(path) -> \(result.status) \(result.text.prefix(120))")
                }
                if result.headers["x-injected"] != nil {
                    unexpected.append("header injected by \(path)")
                }
            }
            let long = try HTTPClient.send(
                cluster, route.method,
                target.path(route, id: String(repeating: "a", count: 10_000)),
                token: target.token(route), body: target.body(route))
            if ![404, 414].contains(long.status) || long.errorCode == nil {
                unexpected.append(
                    "\(route.method) \(route.path) with a 10,000-character id -> \(long.status)")
            }
        }
        #expect(unexpected.isEmpty, "\(unexpected.joined(separator: "\n"))")
        #expect(checked > 500)
        #expect(try cluster.get("/api/chat/sessions/\(target.session)", target.user).status == 200)
        #expect(try cluster.get("/api/chat/canvas/files/\(target.file)", target.user).status == 200)
        #expect(allPids == pids)
    }

    /// Every list route of the table (with this user's ids), and its required query.
    func listPaths(_ target: Target) -> [String] {
        Routes.all.filter {
            $0.method == "GET" && ($0.type.hasSuffix(".list") || $0.type == "chat.search")
        }
        .map { route in target.path(route) + (route.type == "chat.search" ? "?q=hello&" : "?") }
            + ["/api/chat/sessions?view=active&"]
    }

    @Test func limitsOutsideOneToAHundredAreRefusedOnEveryListRoute() throws {
        let target = try Target.make(cluster)
        let paths = listPaths(target)
        #expect(paths.count >= 10)
        for path in paths {
            for limit in [
                "0", "-1", "101", "1000000", "99999999999999999999", "abc", "1.5", "1e2", "", "%20",
            ] {
                let result = try cluster.get(path + "limit=\(limit)", target.user)
                #expect(result.status == 400, "\(path)limit=\(limit) -> \(result.status)")
                #expect(result.errorFields == ["limit"], "\(path)limit=\(limit) -> \(result.text)")
            }
            for limit in ["1", "100"] {
                let result = try cluster.get(path + "limit=\(limit)", target.user)
                #expect(
                    result.status == 200, "\(path)limit=\(limit) -> \(result.status) \(result.text)"
                )
                #expect(result.items.count <= Int(limit)!)
            }
        }
    }

    @Test func repeatedUnknownAndWrongTypedQueryParametersAreRefused() throws {
        let target = try Target.make(cluster)
        for path in listPaths(target) {
            for query in [
                "limit=5&limit=6", "limit[]=5", "limit[$gt]=0", "cursor=%21%21%21", "cursor=",
                "userId=\(target.user.id.hex)", "unknown=1", "cursor=a&cursor=b",
            ] {
                let result = try cluster.get(path + query, target.user)
                #expect(result.status == 400, "\(path)\(query) -> \(result.status) \(result.text)")
            }
        }
        for query in [
            "isActive=yes", "isActive=1", "isArchived=TRUE", "agentId=abc", "tag=", "view=all",
            "view=active&isActive=true", "view=active&view=active",
        ] {
            let result = try cluster.get("/api/chat/sessions?\(query)", target.user)
            #expect(result.status == 400, "\(query) -> \(result.status)")
        }
        for (path, query) in [
            ("/api/chat/quick-actions", "sort=usage&sort=label"),
            ("/api/chat/quick-actions", "sort=-1"),
            ("/api/chat/canvas/projects", "status=gone"),
            ("/api/chat/feedback", "feedbackType=Message"),
            ("/api/chat/search", "q=a&q=b"), ("/api/chat/search", "q=%21%21"),
            ("/api/chat/search", ""),
            ("/api/chat/settings", "x=1"), ("/api/chat/sessions/\(target.session)", "expand=all"),
        ] {
            let result = try cluster.get("\(path)?\(query)", target.user)
            #expect(result.status == 400, "\(path)?\(query) -> \(result.status)")
        }
        let spoof = try cluster.post(
            "/api/auth/login?clientAddress=10.0.0.1", nil, #"{"email":"a@b.co","password":"x"}"#)
        #expect(spoof.status == 400)
    }

    @Test func veryLongURLsAndHeadersGetClearAnswers() throws {
        let user = cluster.newUser()
        let pids = allPids
        let longPath = try cluster.get(
            "/api/chat/sessions/" + String(repeating: "a", count: 4000), user)
        #expect(longPath.status == 414)
        #expect(longPath.errorCode == "uri_too_long")
        let longQuery = try cluster.get(
            "/api/chat/sessions?tag=" + String(repeating: "t", count: 8000), user)
        #expect(longQuery.status == 400)
        #expect(longQuery.errorFields == ["tag"])
        // 80 headers of 100 bytes fit the 16 KB of connection memory (HTTP_CONNECTION_MEMORY).
        let manyHeaders = (0..<80).reduce(into: [String: String]()) {
            $0["X-Filler-\($1)"] = String(repeating: "h", count: 100)
        }
        #expect(
            try HTTPClient.send(
                cluster, "GET", "/api/chat/sessions", token: user.token, headers: manyHeaders
            ).status == 200)

        // Past libmicrohttpd's connection memory: its own 414/431 page, or a close.
        // TODO: these answers are libmicrohttpd's HTML pages, not the JSON error shape.
        for request in [
            RawConnection.head(
                "GET", "/api/chat/sessions?tag=\(String(repeating: "t", count: 100_000))")
                + "\r\n",
            RawConnection.head("GET", "/api/chat/sessions")
                + "X-Big: \(String(repeating: "b", count: 70_000))\r\n\r\n",
            RawConnection.head(
                "GET", "/api/chat/sessions", token: String(repeating: "a", count: 65_536))
                + "\r\n",
        ] {
            let connection = try RawConnection(port: cluster.httpPort, timeoutSeconds: 5)
            connection.write(request)
            let answer = connection.readResponse()
            #expect(
                answer == nil || [400, 413, 414, 431].contains(answer?.status ?? 0),
                "\(answer?.status ?? 0)")
        }
        // What libmicrohttpd logs about them is a JSON line like every other, not plain text.
        let gatewayLog = cluster.log("gateway")
        #expect(gatewayLog.contains(#""service":"libmicrohttpd""#))
        let plain = gatewayLog.split(separator: "\n").filter { !$0.hasPrefix("{") }
        #expect(plain.isEmpty, "\(plain.prefix(3))")
        #expect(try cluster.get("/api/chat/sessions", user).status == 200)
        #expect(allPids == pids)
    }

    /// Two Content-Length headers, two Transfer-Encodings, or one of each: 400 in JSON and the
    /// connection closed, with nothing applied. libmicrohttpd used one length and parsed the
    /// rest of the body as a second request, which a proxy in front may have framed otherwise.
    @Test func ambiguousBodyFramingIsRefusedAndNothingIsApplied() throws {
        let user = cluster.newUser()
        let body = #"{"name":"a"}GET /api/ping HTTP/1.1\#r\#nHost: x\#r\#n\#r\#n"#
        let head =
            RawConnection.head("POST", "/api/chat/sessions", token: user.token)
            + "Content-Type: application/json\r\n"
        for framing in [
            "Content-Length: 12\r\nContent-Length: \(body.utf8.count)\r\n",
            "Content-Length: 12\r\nContent-Length: 12\r\n",
            "Content-Length: 12\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        ] {
            let connection = try RawConnection(port: cluster.httpPort, timeoutSeconds: 5)
            connection.write(head + framing + "\r\n" + body)
            let answer = try #require(connection.readResponse(), "\(framing)")
            #expect(answer.status == 400, "\(framing)")
            #expect(answer.headers["content-type"]?.hasPrefix("application/json") == true)
            #expect(answer.headers["connection"]?.lowercased() == "close", "\(framing)")
            #expect(connection.readResponse() == nil, "a second answer on \(framing)")
        }
        #expect(try cluster.get("/api/chat/sessions", user)["items"] == [])
    }

    @Test func bodiesOverTheLimitGet413BeforeTheyAreRead() throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user)
        let pids = allPids
        for (path, declared, limit) in [
            ("/api/chat/sessions/\(session)/messages", 11 << 20, 1 << 20),
            ("/api/chat/sessions", (1 << 20) + 1, 1 << 20),
            ("/api/chat/canvas/files", 7 << 20, 6 << 20),
        ] {
            let connection = try RawConnection(port: cluster.httpPort, timeoutSeconds: 5)
            let started = Date()
            connection.write(
                RawConnection.head("POST", path, token: user.token)
                    + "Content-Type: application/json\r\nContent-Length: \(declared)\r\n\r\n"
                    + "{\"role\":"
            )
            let answer = try #require(connection.readResponse(), "no answer for \(path)")
            #expect(answer.status == 413)
            #expect(Date().timeIntervalSince(started) < 3, "413 only after waiting for the body")
            let error = HTTPResult(status: 413, headers: [:], body: answer.body)
            #expect(error.errorCode == "payload_too_large")
            #expect(error.text.contains(String(limit)))
            #expect(answer.headers["connection"]?.lowercased() == "close")
            #expect(connection.isClosedByPeer())
        }
        // Chunked, with no length to check up front: refused once the limit is passed.
        let chunked = try RawConnection(port: cluster.httpPort, timeoutSeconds: 5)
        chunked.write(
            "POST /api/chat/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(user.token)\r\n"
                + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = String(repeating: "x", count: 65536)
        for _ in 0..<20 {
            chunked.write(String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n")
        }
        chunked.write("0\r\n\r\n")
        let refused = chunked.readResponse()
        #expect(
            refused?.status == 413, "a chunked body past the limit got no answer (an empty reply)")
        #expect(
            HTTPResult(status: 413, headers: [:], body: refused?.body ?? []).errorCode
                == "payload_too_large")
        #expect(try cluster.get("/api/chat/sessions", user).items.count == 1)
        #expect(allPids == pids)
    }

    /// A client that does not wait for `100 Continue` is still sending when the 413 arrives.
    /// The socket must stay open and be read to the end: closed with unread bytes, the kernel
    /// resets it and the client gets "broken pipe" in place of the answer (case C23).
    @Test func aClientStillUploadingAfterThe413IsNotReset() throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user)
        let connection = try RawConnection(port: cluster.httpPort, timeoutSeconds: 10)
        connection.write(
            "POST /api/chat/sessions/\(session)/messages HTTP/1.1\r\nHost: x\r\n"
                + "Authorization: Bearer \(user.token)\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(2 << 20)\r\n\r\n{\"role\":\"user\",\"content\":\"")
        let answer = try #require(connection.readResponse(), "no answer before the body")
        #expect(answer.status == 413)

        let piece = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
        var failures: [Int32] = []
        for _ in 0..<24 {
            let failure = connection.send(piece)
            if failure != 0 { failures.append(failure) }
            usleep(10_000)
        }
        #expect(failures.isEmpty, "sending the rest of the body failed: errno \(failures)")
        #expect(connection.isClosedByPeer(), "the socket was reset, not closed after the answer")
        #expect(try cluster.get("/api/chat/sessions/\(session)/messages", user).items.isEmpty)
    }

    /// A field, where it is written and where it is read back.
    struct Field {
        let label: String
        let write: (String) -> (String, String, Document)
        let read: (HTTPResult) -> String?
        let limit: Int
    }

    func fields(_ target: Target) -> [Field] {
        let s = target.session
        let p = target.project
        let top: (String) -> (HTTPResult) -> String? = { key in { $0[key]?.stringValue } }
        let at: (String) -> (HTTPResult) -> String? = { path in
            { $0.document?.value(at: path)?.stringValue }
        }
        let first: (String) -> (HTTPResult) -> String? = { key in
            { $0[key]?.arrayValue?.first?.stringValue }
        }
        return [
            Field(
                label: "session name",
                write: { ("PUT", "/api/chat/sessions/\(s)", ["name": .string($0)]) },
                read: top("name"), limit: 100),
            Field(
                label: "session description",
                write: { ("PUT", "/api/chat/sessions/\(s)", ["description": .string($0)]) },
                read: top("description"), limit: 500),
            Field(
                label: "session tag",
                write: { ("PUT", "/api/chat/sessions/\(s)", ["tags": [.string($0)]]) },
                read: first("tags"), limit: 50),
            Field(
                label: "session model",
                write: { ("PUT", "/api/chat/sessions/\(s)", ["settings": ["model": .string($0)]]) },
                read: at("settings.model"), limit: 100),
            Field(
                label: "settings model",
                write: { ("PUT", "/api/chat/settings", ["model": .string($0)]) },
                read: top("model"), limit: 100),
            Field(
                label: "profile name", write: { ("PUT", "/api/me", ["name": .string($0)]) },
                read: top("name"), limit: 100),
            Field(
                label: "profile bio", write: { ("PUT", "/api/me", ["bio": .string($0)]) },
                read: top("bio"), limit: 500),
            Field(
                label: "profile website",
                write: { ("PUT", "/api/me", ["socialLinks": ["website": .string($0)]]) },
                read: at("socialLinks.website"), limit: 200),
            Field(
                label: "quick action label",
                write: {
                    ("PUT", "/api/chat/quick-actions/\(target.action)", ["label": .string($0)])
                },
                read: top("label"), limit: 50),
            Field(
                label: "quick action prompt",
                write: {
                    ("PUT", "/api/chat/quick-actions/\(target.action)", ["prompt": .string($0)])
                },
                read: top("prompt"), limit: 500),
            Field(
                label: "project name",
                write: { ("PUT", "/api/chat/canvas/projects/\(p)", ["name": .string($0)]) },
                read: top("name"), limit: 100),
            Field(
                label: "project description",
                write: { ("PUT", "/api/chat/canvas/projects/\(p)", ["description": .string($0)]) },
                read: top("description"), limit: 500),
            Field(
                label: "project model",
                write: {
                    ("PUT", "/api/chat/canvas/projects/\(p)", ["settings": ["model": .string($0)]])
                },
                read: at("settings.model"), limit: 100),
            Field(
                label: "file language",
                write: {
                    (
                        "PUT", "/api/chat/canvas/files/\(target.file)",
                        ["metadata": ["language": .string($0)]]
                    )
                },
                read: at("metadata.language"), limit: 50),
            Field(
                label: "file dependency",
                write: {
                    (
                        "PUT", "/api/chat/canvas/files/\(target.file)",
                        ["metadata": ["dependencies": [.string($0)]]]
                    )
                },
                read: {
                    $0.document?.value(at: "metadata.dependencies")?.arrayValue?.first?.stringValue
                },
                limit: 100),
            Field(
                label: "feedback comment",
                write: {
                    (
                        "POST", "/api/chat/feedback",
                        [
                            "conversationId": .string(s), "feedbackType": "conversation",
                            "rating": 2,
                            "comment": .string($0),
                        ]
                    )
                },
                read: top("comment"), limit: 1000),
            Field(
                label: "feedback tag",
                write: {
                    (
                        "POST", "/api/chat/feedback",
                        [
                            "conversationId": .string(s), "feedbackType": "conversation",
                            "rating": 2,
                            "tags": [.string($0)],
                        ]
                    )
                },
                read: first("tags"), limit: 50),
            Field(
                label: "message content",
                write: {
                    (
                        "POST", "/api/chat/sessions/\(s)/messages",
                        ["role": "user", "content": .string($0)]
                    )
                },
                read: top("content"), limit: 0),
            Field(
                label: "file content",
                write: {
                    ("PUT", "/api/chat/canvas/files/\(target.file)", ["content": .string($0)])
                },
                read: top("content"), limit: 0),
        ]
    }

    /// Where each write is read back from, for the byte-for-byte comparison.
    func readBack(_ target: Target, _ method: String, _ path: String, _ written: HTTPResult) throws
        -> HTTPResult
    {
        switch path {
        case "/api/chat/feedback":
            return HTTPResult(
                status: 200, headers: [:],
                body: JSONWriter.bytes(
                    .document(
                        try cluster.get(
                            "/api/chat/feedback?conversationId=\(target.session)", target.user
                        )
                        .items.first ?? [:])))
        case _ where path.hasSuffix("/messages"):
            let id = written["messageId"]?.stringValue ?? ""
            let items = try cluster.get("\(path)?limit=100", target.user).items
            return HTTPResult(
                status: 200, headers: [:],
                body: JSONWriter.bytes(
                    .document(items.first { $0["messageId"]?.stringValue == id } ?? [:])))
        case _ where path.hasPrefix("/api/chat/quick-actions/"):
            let items = try cluster.get("/api/chat/quick-actions?limit=100", target.user).items
            return HTTPResult(
                status: 200, headers: [:],
                body: JSONWriter.bytes(
                    .document(items.first { $0["actionId"]?.stringValue == target.action } ?? [:])))
        default:
            return try cluster.get(path, target.user)
        }
    }

    static func scalars(_ text: String?) -> [UInt32] { (text ?? "").unicodeScalars.map(\.value) }

    @Test func protocolTextRightToLeftAndCombiningMarksAreKeptByteForByte() throws {
        let target = try Target.make(cluster)
        let redis = cluster.redis()
        try redis.run(["SET", "canary-hostile", "1"])
        let pids = allPids
        let texts = [
            "*1\r\n$8\r\nFLUSHALL\r\n", "%s%s%n%x %d %%", "a\r\nb\r\n\r\nHTTP/1.1 200 OK",
            "nul\u{0}byte",
            "שלום עולם", "مرحبا بالعالم \u{200F}", "\u{202E}gnp.exe", "e\u{0301}",
            "\u{00E9}", "A\u{030A}\u{0327}", "👨‍👩‍👧‍👦 family", "\u{FEFF}bom inside", "tab\there",
            "\\u0000 literal",
        ]
        var problems: [String] = []
        for field in fields(target) {
            for text in texts where field.limit == 0 || text.unicodeScalars.count <= field.limit {
                let (method, path, body) = field.write(text)
                let written = try HTTPClient.send(
                    cluster, method, path, token: target.user.token, body: json(body))
                guard [200, 201].contains(written.status) else {
                    problems.append(
                        "\(field.label) \(text.debugDescription) -> \(written.status) "
                            + written.text
                    )
                    continue
                }
                let read = try readBack(target, method, path, written)
                for (stage, result) in [("answer", written), ("read", read)]
                where Self.scalars(field.read(result)) != Self.scalars(text) {
                    problems.append(
                        "\(field.label) \(stage): "
                            + "\(field.read(result)?.debugDescription ?? "nil") != "
                            + text.debugDescription
                    )
                }
            }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        #expect(try redis.run(["GET", "canary-hostile"]).text == "1")
        #expect(allPids == pids)
    }

    @Test func lengthLimitsCountCodePointsOnEveryLimitedField() throws {
        let target = try Target.make(cluster)
        let wide = "\u{1F600}"
        let astral = "\u{2000B}"
        var problems: [String] = []
        for field in fields(target) where field.limit > 0 {
            for (unit, name) in [(wide, "emoji"), (astral, "CJK Ext B")] {
                let fits = String(repeating: unit, count: field.limit)
                let (method, path, body) = field.write(fits)
                let ok = try HTTPClient.send(
                    cluster, method, path, token: target.user.token, body: json(body))
                if ![200, 201].contains(ok.status)
                    || Self.scalars(field.read(ok)) != Self.scalars(fits)
                {
                    problems.append(
                        "\(field.label): \(field.limit) \(name) -> \(ok.status) "
                            + ok.text.prefix(200)
                    )
                }
                let over = field.write(fits + unit)
                let refused = try HTTPClient.send(
                    cluster, over.0, over.1, token: target.user.token, body: json(over.2))
                if refused.status != 400 || refused.errorFields.isEmpty {
                    problems.append(
                        "\(field.label): \(field.limit + 1) \(name) -> \(refused.status)")
                }
                let after = try readBack(target, method, path, ok)
                if Self.scalars(field.read(after)) != Self.scalars(fits) {
                    problems.append("\(field.label): the refused write changed the stored value")
                }
            }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }
}

/// Connections that never finish: each needs its own cluster with a short timeout.
@Suite("Stalled and slow clients", .serialized)
struct SlowClientTests {
    /// Reads until the server closes (true) or `seconds` pass (false).
    static func closedWithin(_ connection: RawConnection, seconds: Int) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let end = Date().addingTimeInterval(Double(seconds))
        while Date() < end {
            let n = recv(connection.fd, &buffer, buffer.count, 0)
            if n == 0 { return true }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return true }
        }
        return false
    }

    @Test func stalledBodiesAndSlowHeadersAreClosedWhileOthersAreServed() throws {
        let cluster = try Cluster(
            services: ["sessions"],
            environment: ["HTTP_CONNECTION_TIMEOUT_S": "2", "RATE_LIMIT_WRITES": "0"])
        defer { cluster.shutdown() }
        let user = cluster.newUser()
        let session = try cluster.createSession(user)
        let pids = cluster.pids("gateway") + cluster.pids("sessions")

        // 100 uploads that declare 1,000 bytes and send 10, and 100 clients that send their
        // headers a few bytes at a time and never finish them.
        var stalled: [RawConnection] = []
        for index in 0..<200 {
            let connection = try RawConnection(port: cluster.httpPort, timeoutSeconds: 1)
            if index % 2 == 0 {
                connection.write(
                    RawConnection.head(
                        "POST", "/api/chat/sessions/\(session)/messages", token: user.token)
                        + "Content-Type: application/json\r\n"
                        + "Content-Length: 1000\r\n\r\n{\"role\":\"u")
            } else {
                connection.write("GET /api/chat/sess")
            }
            stalled.append(connection)
        }
        var slowest = 0.0
        for index in 0..<20 {
            for (number, connection) in stalled.enumerated() where number % 2 == 1 {
                connection.write("i")
            }
            let started = Date()
            let read = try cluster.get("/api/chat/sessions/\(session)", user)
            let wrote = try cluster.post(
                "/api/chat/sessions/\(session)/messages", user,
                json(["role": "user", "content": .string("n\(index)")]))
            slowest = max(slowest, Date().timeIntervalSince(started))
            #expect(read.status == 200 && wrote.status == 201)
            usleep(50_000)
        }
        #expect(slowest < 1.5, "normal requests waited \(slowest) s behind stalled ones")

        // The stalled ones end once the 2 s timeout passes (a close, or a 4xx and a close).
        var open = 0
        for connection in stalled where !SlowClientTests.closedWithin(connection, seconds: 6) {
            open += 1
        }
        #expect(open == 0, "\(open) stalled connections still open")
        let detail = try cluster.get("/api/chat/sessions/\(session)", user)
        #expect(
            detail.document?.value(at: "stats.messageCount")?.intValue == 20,
            "no stalled upload was stored")
        #expect(cluster.pids("gateway") + cluster.pids("sessions") == pids)
    }

    static func residentKB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test(
        "C23: idle keep-alive connections are reused or closed; memory returns after big bodies"
    )
    func keepAliveReuseAndMemoryAfterBigBodies() throws {
        let cluster = try Cluster(
            services: ["sessions"],
            environment: ["HTTP_CONNECTION_TIMEOUT_S": "2", "RATE_LIMIT_WRITES": "0"])
        defer { cluster.shutdown() }
        let user = cluster.newUser()
        let request = RawConnection.head("GET", "/api/chat/sessions", token: user.token) + "\r\n"

        // Just under the timeout: the same connection is served again.
        let reused = try RawConnection(port: cluster.httpPort, timeoutSeconds: 5)
        reused.write(request)
        #expect(reused.readResponse()?.status == 200)
        usleep(1_200_000)
        reused.write(request)
        #expect(reused.readResponse()?.status == 200)
        // Past it: the server closes the idle connection by itself (an orderly FIN, read as EOF).
        let idle = try RawConnection(port: cluster.httpPort, timeoutSeconds: 6)
        idle.write(request)
        #expect(idle.readResponse()?.status == 200)
        #expect(idle.isClosedByPeer())

        guard let gateway = cluster.pids("gateway").first else {
            Issue.record("no gateway")
            return
        }
        let baseline = SlowClientTests.residentKB(gateway)
        let chunk = String(repeating: "x", count: 65536)
        parallel(10) { _ in
            for _ in 0..<4 {
                guard
                    let connection = try? RawConnection(port: cluster.httpPort, timeoutSeconds: 10)
                else { return }
                connection.write(
                    RawConnection.head("POST", "/api/chat/sessions", token: user.token)
                        + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in 0..<24 {
                    connection.write(String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n")
                }
                connection.write("0\r\n\r\n")
                _ = connection.readResponse()
                let declared = try? RawConnection(port: cluster.httpPort, timeoutSeconds: 10)
                declared?.write(
                    RawConnection.head("POST", "/api/chat/sessions", token: user.token)
                        + "Content-Type: application/json\r\nContent-Length: \(11 << 20)\r\n\r\n")
                _ = declared?.readResponse()
            }
        }
        let ceiling = baseline + 64 * 1024
        let settled = eventually(seconds: 5) { SlowClientTests.residentKB(gateway) < ceiling }
        let resident = SlowClientTests.residentKB(gateway)
        #expect(settled, "gateway RSS \(resident) KB after big bodies, \(baseline) KB before")
        #expect(try cluster.get("/api/chat/sessions", user).status == 200)
        #expect(cluster.pids("gateway") == [gateway])
    }
}

/// A feedback body for a conversation "S" with the given `metadata` JSON.
private func ratedFeedback(metadata: String) -> String {
    #"{"conversationId":"S","feedbackType":"conversation","rating":3,"metadata":"#
        + metadata + "}"
}
