import Bus
import Core
import Crypt
import Foundation
import MongoKit
import Synchronization
import Testing

/// Real-world cases that need a system of their own: C13 (N+1 on list routes), C20 (many
/// concurrent mixed callers), and C24 on every route that reads a body.
@Suite("Real-world cases under load", .serialized)
struct LoadCasesTests {
    // MARK: C13

    /// A user's sessions (with messages) and canvas projects (with files), written straight
    /// into the database in the services' own document shapes.
    static func seed(
        _ pool: MongoPool, user: ObjectId, sessions: Int, messages: Int, projects: Int, files: Int
    ) throws {
        let base = Timestamp.now().milliseconds - 10_000_000
        var sessionDocs: [Document] = []
        var buckets: [Document] = []
        for index in 0..<sessions {
            let at = Value.date(Timestamp(milliseconds: base + Int64(index) * 1000))
            let id = "session-\(user.hex.suffix(8))\(String(format: "%05d", index))"
            sessionDocs.append([
                "_id": .objectId(ObjectId()), "sessionId": .string(id), "userId": .objectId(user),
                "name": .string("seeded \(index)"), "isActive": true, "isArchived": false,
                "tags": [],
                "settings": [
                    "temperature": 0.7, "maxTokens": .int64(2000), "mode": "balanced",
                    "provider": "mistral",
                ],
                "stats": [
                    "messageCount": .int64(Int64(messages)), "totalTokens": .int64(0),
                    "durationMs": .int64(0),
                    "lastMessageAt": at,
                ],
                "createdAt": at, "updatedAt": at,
            ])
            let items: [Value] = (0..<messages).map { number in
                .document([
                    "messageId": .string("msg-\(id)-\(number)"), "role": "user",
                    "content": .string(String(repeating: "message text ", count: 20)),
                    "attachments": [],
                    "createdAt": at,
                ])
            }
            buckets.append([
                "_id": .objectId(ObjectId()), "conversationId": .string(id), "bucket": .int64(0),
                "userId": .objectId(user), "messages": .array(items),
                "messageIds": .array(items.compactMap { $0.documentValue?["messageId"] }),
                "metrics": [
                    "totalTokens": .int64(0), "durationMs": .int64(0),
                    "turnCount": .int64(Int64(messages)),
                    "contentBytes": .int64(Int64(messages * 300)),
                ],
                "status": "active", "startedAt": at, "createdAt": at, "updatedAt": at,
            ])
        }
        var projectDocs: [Document] = []
        var fileDocs: [Document] = []
        for index in 0..<projects {
            let at = Value.date(Timestamp(milliseconds: base + Int64(index) * 1000))
            let id = "canvas-\(user.hex.suffix(8))\(String(format: "%05d", index))"
            projectDocs.append([
                "_id": .objectId(ObjectId()), "projectId": .string(id), "userId": .objectId(user),
                "name": .string("seeded \(index)"), "template": "Blog", "category": "blog",
                "status": "active",
                "settings": ["theme": "light", "responsive": true, "animations": true],
                "stats": [
                    "filesGenerated": .int64(Int64(files)),
                    "totalSize": .int64(Int64(files * 2000)),
                    "lastModified": at,
                ],
                "createdAt": at, "updatedAt": at,
            ])
            for number in 0..<files {
                let content = String(repeating: "<p>file</p>\n", count: 160)
                fileDocs.append([
                    "_id": .objectId(ObjectId()), "fileId": .string("file-\(id)-\(number)"),
                    "projectId": .string(id), "userId": .objectId(user),
                    "name": .string("f\(number).html"),
                    "path": .string("/pages/f\(String(format: "%03d", number)).html"),
                    "type": "html",
                    "content": .string(content), "size": .int64(Int64(content.utf8.count)),
                    "checksum": .string(Crypto.sha256Hex(Array(content.utf8))),
                    "metadata": ["dependencies": []], "createdAt": at, "updatedAt": at,
                ])
            }
        }
        for (name, docs) in [
            ("chat_sessions", sessionDocs), ("chatinteractions", buckets),
            ("chat_canvas_projects", projectDocs), ("chat_canvas_files", fileDocs),
        ] {
            var start = 0
            while start < docs.count {
                let end = min(start + 200, docs.count)
                _ = try pool.collection(name).insertMany(Array(docs[start..<end]), ordered: true)
                start = end
            }
        }
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    @Test("C13: list routes cost the same few queries and a bounded page however much a user has")
    func listRoutesDoNotGrowWithTheData() throws {
        let dataDir = try temporaryDirectory("c13-mongo")
        let upstreamPort = try Cluster.freePort()
        let (program, prefix) = Cluster.standInCommand
        let standIn = Process()
        standIn.executableURL = URL(fileURLWithPath: program)
        standIn.arguments =
            prefix + [
                "--host", "127.0.0.1", "-p", String(upstreamPort), "--data-dir", dataDir.path,
                "--log-file", dataDir.appendingPathComponent("nx.log").path,
                "--pid-file", dataDir.appendingPathComponent("nx.pid").path,
            ]
        standIn.standardOutput = FileHandle.nullDevice
        standIn.standardError = FileHandle.nullDevice
        try standIn.run()
        defer {
            kill(standIn.processIdentifier, SIGKILL)
            try? FileManager.default.removeItem(at: dataDir)
        }
        let end = Date().addingTimeInterval(20)
        while !Cluster.canConnect(port: upstreamPort) && Date() < end { usleep(50_000) }
        let proxy = try MongoCountingProxy(upstreamPort: upstreamPort)
        defer { proxy.stop() }
        let cluster = try Cluster(
            services: ["sessions", "canvas"],
            environment: [
                "MONGODB_URI": "mongodb://127.0.0.1:\(proxy.port)/c13", "RATE_LIMIT_WRITES": "0",
            ])
        defer { cluster.shutdown() }

        let a = cluster.newUser()
        let d = cluster.newUser()
        let pool = try MongoPool(
            uri: "mongodb://127.0.0.1:\(upstreamPort)/c13", appName: "c13-seed")
        try Self.seed(pool, user: a.id, sessions: 10, messages: 5, projects: 5, files: 2)
        try Self.seed(pool, user: d.id, sessions: 300, messages: 20, projects: 100, files: 20)

        func firstIds(_ user: TestUser) throws -> (String, String) {
            let session = try #require(
                try cluster.get("/api/chat/sessions?limit=1", user).items.first?["sessionId"]?
                    .stringValue)
            let project = try #require(
                try cluster.get("/api/chat/canvas/projects?limit=1", user).items.first?[
                    "projectId"]?.stringValue)
            return (session, project)
        }
        let (aSession, aProject) = try firstIds(a)
        let (dSession, dProject) = try firstIds(d)
        let paths: [(String, (String, String) -> String)] = [
            ("sessions", { _, _ in "/api/chat/sessions" }),
            ("active sessions", { _, _ in "/api/chat/sessions?view=active" }),
            ("projects", { _, _ in "/api/chat/canvas/projects" }),
            ("session", { session, _ in "/api/chat/sessions/\(session)" }),
            ("messages", { session, _ in "/api/chat/sessions/\(session)/messages" }),
            ("files", { _, project in "/api/chat/canvas/projects/\(project)/files" }),
            ("search", { _, _ in "/api/chat/search?q=message" }),
        ]
        var report: [String] = []
        for (label, path) in paths {
            var queries: [String: Int] = [:]
            var medians: [String: Double] = [:]
            var sizes: [String: Int] = [:]
            let callers = [("A", a, path(aSession, aProject)), ("D", d, path(dSession, dProject))]
            for (name, user, url) in callers {
                // The fewest queries of three tries: the canvas job sweeper also queries now and then.
                var fewest = Int.max
                for _ in 0..<3 {
                    let before = proxy.queries
                    let result = try cluster.get(url, user)
                    #expect(result.status == 200, "\(url) -> \(result.status)")
                    fewest = min(fewest, proxy.queries - before)
                    sizes[name] = result.body.count
                }
                queries[name] = fewest
            }
            // Interleaved, so that load from other tests slows both callers alike.
            var times: [String: [Double]] = [:]
            for _ in 0..<20 {
                for (name, user, url) in callers {
                    let started = Date()
                    _ = try cluster.get(url, user)
                    times[name, default: []].append(Date().timeIntervalSince(started))
                }
            }
            for (name, values) in times { medians[name] = Self.median(values) }
            let (qa, qd) = (queries["A"] ?? 0, queries["D"] ?? 0)
            let (ta, td) = (medians["A"] ?? 0, medians["D"] ?? 0)
            report.append(
                "\(label): queries A \(qa) D \(qd); median A \(Int(ta * 1000)) ms D \(Int(td * 1000)) ms; "
                    + "first page D \(sizes["D"] ?? 0) bytes")
            #expect(qd <= max(qa, 3), "\(label): \(qd) queries for D against \(qa) for A")
            #expect(
                (sizes["D"] ?? 0) < 200_000, "\(label): the first page is \(sizes["D"] ?? 0) bytes")
            #expect(
                td <= max(3 * ta, ta + 0.15), "\(label): D's median \(td) s against A's \(ta) s")
        }
        print((["C13 (N+1):"] + report).joined(separator: "\n"))
    }

    // MARK: C20

    @Test("C20: 50 concurrent mixed callers get no 5xx and only their own data")
    func concurrentCallersNeverSeeEachOthersData() throws {
        let cluster = try Cluster(
            services: ["sessions", "settings", "canvas"], environment: ["RATE_LIMIT_WRITES": "0"])
        defer { cluster.shutdown() }
        let users = (0..<10).map { _ in cluster.newUser() }
        var sessions: [[String]] = []
        for (k, user) in users.enumerated() {
            let marker = json([
                "temperature": .double(Double(k + 1) / 10),
                "maxTokens": .int64(Int64(100 * (k + 1))),
            ])
            #expect(try cluster.put("/api/chat/settings", user, marker).status == 200)
            sessions.append([
                try cluster.createSession(user, name: "u\(k)-a"),
                try cluster.createSession(user, name: "u\(k)-b"),
            ])
            _ = try cluster.createProject(user, name: "u\(k)")
        }
        let pids = (["gateway"] + cluster.services).flatMap { cluster.pids($0) }
        let owned = sessions
        let seconds = 15.0
        let deadline = Date().addingTimeInterval(seconds)
        let problems = Mutex<[String]>([])
        let statuses = Mutex<[Int: Int]>([:])
        parallel(50) { worker in
            var generator = SystemRandomNumberGenerator()
            var calls = 0
            while Date() < deadline && calls < 2000 {
                calls += 1
                let k = Int.random(in: 0..<10, using: &generator)
                let user = users[k]
                let session = owned[k][Int.random(in: 0..<2, using: &generator)]
                let marker = (Double(k + 1) / 10, Int64(100 * (k + 1)))
                let op = Int.random(in: 0..<6, using: &generator)
                let result: HTTPResult?
                var wrong: String?
                switch op {
                case 0:
                    result = try? cluster.get("/api/chat/sessions", user)
                    if let items = result?.items,
                        items.contains(where: { $0["userId"]?.stringValue != user.id.hex })
                            || items.count != 2
                    {
                        wrong = "list of user \(k): \(result?.text ?? "")"
                    }
                case 1:
                    result = try? cluster.get("/api/chat/sessions/\(session)", user)
                    if result?.status == 200, result?["userId"]?.stringValue != user.id.hex {
                        wrong = "session of user \(k): \(result?.text ?? "")"
                    }
                case 2:
                    result = try? cluster.post(
                        "/api/chat/sessions/\(session)/messages", user,
                        json(["role": "user", "content": .string("w\(worker)-\(calls)")]))
                    if result?.status == 201, result?["sessionId"]?.stringValue != session {
                        wrong = "message of user \(k): \(result?.text ?? "")"
                    }
                case 3, 4:
                    result =
                        op == 3
                        ? try? cluster.get("/api/chat/settings", user)
                        : try? cluster.put(
                            "/api/chat/settings", user,
                            json(["temperature": .double(marker.0), "maxTokens": .int64(marker.1)]))
                    if result?.status == 200,
                        result?["temperature"]?.doubleValue != marker.0
                            || result?["maxTokens"]?.intValue != marker.1
                            || result?["userId"]?.stringValue != user.id.hex
                    {
                        wrong = "settings of user \(k): \(result?.text ?? "")"
                    }
                default:
                    result = try? cluster.get("/api/chat/canvas/projects", user)
                    if let items = result?.items,
                        items.contains(where: { $0["userId"]?.stringValue != user.id.hex })
                            || items.count != 1
                    {
                        wrong = "projects of user \(k): \(result?.text ?? "")"
                    }
                }
                let status = result?.status ?? -1
                statuses.withLock { $0[status, default: 0] += 1 }
                if status >= 500 && status != 503 || status < 0 {
                    wrong = "op \(op) of user \(k) -> \(status) \(result?.text ?? "no answer")"
                }
                if let wrong { problems.withLock { $0.append(wrong) } }
            }
        }
        let counted = statuses.withLock { $0 }
        print(
            "C20: \(counted.values.reduce(0, +)) calls in \(Int(seconds)) s by status: \(counted)")
        let found = problems.withLock { $0 }
        #expect(found.isEmpty, "\(found.prefix(10).joined(separator: "\n"))")
        #expect(counted.values.reduce(0, +) > 500)
        #expect((["gateway"] + cluster.services).flatMap { cluster.pids($0) } == pids)
        for name in ["gateway"] + cluster.services {
            let log = cluster.log(name)
            for sign in ["Unknown rpc type", "precondition", "double free", "Fatal error"] {
                #expect(!log.contains(sign), "\(name) logged \(sign)")
            }
        }
    }

    // MARK: C24 on every route with a body

    @Test("C24: malformed JSON to every route that reads a body is 400, and the next request works")
    func malformedBodiesAreRefusedOnEveryWritingRoute() throws {
        let cluster = try Cluster.sharedCluster()
        let target = try Target.make(cluster)
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let bodies = [
            #"{"name":"#, "", #"{"a":1,}"#, #"{"a":1}{"a":2}"#, deep, "null", "[]", #""str""#, "42",
            "\u{FEFF}{}", #"{"x":NaN}"#, #"{"x":1e400}"#, #"{"x":-Infinity}"#, #"{"a":1,"a":2}"#,
            "{'a':1}", #"{"a":"\x"}"#,
        ]
        var unexpected: [String] = []
        var routes = 0
        for route in Routes.all
        where ["POST", "PUT"].contains(route.method) && route.type != "quickActions.use" {
            routes += 1
            let path = target.path(route)
            for body in bodies {
                let result = try HTTPClient.send(
                    cluster, route.method, path, token: target.token(route),
                    rawBody: Array(body.utf8),
                    headers: ["Content-Type": "application/json"])
                if result.status != 400 || result.errorCode == nil {
                    unexpected.append(
                        "\(route.method) \(route.path) \(body.prefix(16).debugDescription) -> \(result.status)"
                    )
                }
            }
        }
        #expect(routes >= 20)
        #expect(unexpected.isEmpty, "\(unexpected.joined(separator: "\n"))")
        #expect(
            try cluster.post("/api/chat/sessions", target.user, #"{"name":"after"}"#).status == 201)
    }
}
