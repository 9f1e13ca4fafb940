import Bus
import Core
import Foundation
import Testing

/// Everything one user owns, with a marker word in every text so that a leak is visible.
struct Holdings {
    let account: Account
    let marker: String
    let session: String
    let message: String
    let action: String
    let project: String
    let file: String
    let history: String

    var user: TestUser { account.user }

    static func make(_ cluster: Cluster, _ tag: String) throws -> Holdings {
        let marker = uniqueWord("secret\(tag)")
        let account = try cluster.register(name: "Owner \(tag)")
        let user = account.user
        let session = try cluster.createSession(user, name: "\(marker) session")
        let message = try cluster.appendMessage(user, session, "\(marker) message", role: "user")
        let feedback = try cluster.post(
            "/api/chat/feedback", user,
            json([
                "conversationId": .string(session), "feedbackType": "message",
                "messageId": .string(message), "rating": 4, "comment": .string("\(marker) comment"),
            ]))
        let settings = try cluster.put(
            "/api/chat/settings", user,
            json(["model": .string("\(marker)-model"), "maxTokens": 777]))
        let action = try cluster.post(
            "/api/chat/quick-actions", user,
            json([
                "label": .string("\(marker) label"), "prompt": "p: ", "category": "General",
                "icon": "StarIcon",
            ]))
        let project = try cluster.createProject(user, name: "\(marker) project")
        let file = try cluster.createFile(user, project, "notes/\(marker).md", "\(marker) file")
        let history = try cluster.generate(user, project, ["prompt": .string("\(marker) prompt.")])
        let finished = try cluster.finishedHistory(user, history)
        guard feedback.status == 201, settings.status == 200,
            let actionId = action["actionId"]?.stringValue,
            let fileId = file["fileId"]?.stringValue,
            finished["status"]?.stringValue == "completed"
        else {
            throw ClusterError(
                description:
                    "setup failed: \(feedback.text) \(settings.text) \(action.text) \(finished)")
        }
        return Holdings(
            account: account, marker: marker, session: session, message: message,
            action: actionId, project: project, file: fileId, history: history)
    }

    /// What the owner sees of everything, for comparing before and after the others' calls.
    func snapshot(_ cluster: Cluster) throws -> [String] {
        let paths = [
            "/api/chat/sessions/\(session)", "/api/chat/sessions/\(session)/messages",
            "/api/chat/settings", "/api/chat/feedback",
            "/api/chat/canvas/projects/\(project)", "/api/chat/canvas/projects/\(project)/files",
            "/api/chat/canvas/files/\(file)", "/api/chat/canvas/projects/\(project)/history",
            "/api/chat/canvas/history/\(history)", "/api/me",
        ]
        var lines = try paths.map { path in
            let result = try cluster.get(path, user)
            guard result.status == 200 else { return "\(path) -> \(result.status)" }
            return "\(path) -> \(result.text)"
        }
        // Only the owner's own action: other tests count uses of the shared defaults.
        let actions = try cluster.get("/api/chat/quick-actions?limit=100", user).items
        lines.append("\(actions.filter { $0["actionId"]?.stringValue == action })")
        return lines
    }
}

@Suite("Isolation between users on every id route")
struct IsolationTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    /// One call of the matrix: a route of the table with the owner's ids in it.
    struct Call {
        let route: Route
        let path: String
        let body: String?
    }

    /// Every route of `Routes.all` that takes a path id, aimed at `a`'s resources.
    func calls(at a: Holdings) -> [Call] {
        let ids: [String: String] = [
            "/api/chat/sessions/:id": a.session, "/api/chat/canvas/projects/:id": a.project,
            "/api/chat/canvas/files/:id": a.file, "/api/chat/canvas/history/:id": a.history,
        ]
        let bodies: [String: String] = [
            "sessions.update": #"{"name":"hijacked"}"#,
            "messages.append": #"{"role":"user","content":"injected"}"#,
            "agents.update": #"{"name":"hijacked"}"#,
            "quickActions.update": #"{"label":"hijacked"}"#,
            "canvas.projects.update": #"{"name":"hijacked","status":"archived"}"#,
            "canvas.generate": #"{"prompt":"injected."}"#,
            "canvas.rollback": json(["historyId": .string(a.history), "state": "before"]),
            "canvas.files.update": #"{"content":"hijacked"}"#,
        ]
        var calls: [Call] = []
        for route in Routes.all where route.segments.contains(where: { $0.hasPrefix(":") }) {
            var parts: [String] = []
            for segment in route.segments {
                switch segment {
                case ":id":
                    let prefix = "/" + parts.joined(separator: "/") + "/:id"
                    parts.append(ids[prefix] ?? "?")
                case ":actionId": parts.append(a.action)
                case ":agentId": parts.append("einstein")
                default: parts.append(segment)
                }
            }
            calls.append(
                Call(
                    route: route, path: "/" + parts.joined(separator: "/"), body: bodies[route.type]
                ))
        }
        // Deletes last: if one wrongly succeeded, nothing else in the matrix would be tested.
        return calls.filter { $0.route.method != "DELETE" }
            + calls.filter { $0.route.method == "DELETE" }
    }

    /// Routes that name another user's resources in the body or the query.
    func indirectCalls(at a: Holdings) -> [(String, String, String, String?, Set<Int>)] {
        [
            (
                "files.create(projectId)", "POST", "/api/chat/canvas/files",
                json(["projectId": .string(a.project), "path": "x.md", "content": "injected"]),
                [404]
            ),
            (
                "feedback(conversation)", "POST", "/api/chat/feedback",
                json([
                    "conversationId": .string(a.session), "feedbackType": "conversation",
                    "rating": 1,
                ]),
                [404]
            ),
            (
                "feedback(message)", "POST", "/api/chat/feedback",
                json([
                    "conversationId": .string(a.session), "feedbackType": "message",
                    "messageId": .string(a.message), "rating": 1,
                ]), [404]
            ),
            (
                "settings(favorite)", "PUT", "/api/chat/settings",
                json(["quickActions": ["favorites": [.string(a.action)]]]), [400]
            ),
            (
                "feedback?conversationId", "GET", "/api/chat/feedback?conversationId=\(a.session)",
                nil, [200]
            ),
            (
                "projects?conversationId", "GET",
                "/api/chat/canvas/projects?conversationId=\(a.session)",
                nil, [200]
            ),
            ("search(marker)", "GET", "/api/chat/search?q=\(a.marker)", nil, [200]),
            ("sessions list", "GET", "/api/chat/sessions?limit=100", nil, [200]),
            ("projects list", "GET", "/api/chat/canvas/projects?limit=100", nil, [200]),
            ("quick actions list", "GET", "/api/chat/quick-actions?limit=100", nil, [200]),
            ("settings", "GET", "/api/chat/settings", nil, [200]),
            ("me", "GET", "/api/me", nil, [200]),
        ]
    }

    /// What the other user (or nobody) may get: 404 for another user's resource, 403 where an
    /// admin role is needed, 200 only for the public agent catalog.
    static func expected(_ route: Route, case name: String) -> Set<Int> {
        guard name == "other user" else { return [401] }
        if route.path.hasPrefix("/api/agents/") {
            return route.method == "GET" ? [200] : [403]
        }
        return [404]
    }

    /// Case C11: every id route, and every route naming an id in its body or query, checks
    /// the owner; another user gets 404 and a missing or bad token 401.
    @Test func nobodyReadsOrChangesAnotherUsersResources() throws {
        let a = try Holdings.make(cluster, "a")
        let b = try Holdings.make(cluster, "b")
        let before = try a.snapshot(cluster)
        let beforeB = try b.snapshot(cluster)
        let tampered =
            String(a.user.token.dropLast(4)) + (a.user.token.hasSuffix("AAAA") ? "BBBB" : "AAAA")
        let cases: [(String, [String: String])] = [
            ("other user", ["Authorization": "Bearer \(b.user.token)"]),
            ("no token", [:]),
            ("empty bearer", ["Authorization": "Bearer "]),
            ("tampered token", ["Authorization": "Bearer \(tampered)"]),
            ("basic auth", ["Authorization": "Basic YTpi"]),
        ]
        var rows: [String] = []
        var failures: [String] = []
        for call in calls(at: a) {
            var cells: [String] = []
            for (name, headers) in cases {
                let result = try HTTPClient.send(
                    cluster, call.route.method, call.path, body: call.body, headers: headers)
                cells.append(String(result.status))
                let allowed = Self.expected(call.route, case: name)
                if !allowed.contains(result.status) {
                    failures.append(
                        "\(call.route.method) \(call.path) [\(name)] -> \(result.status)")
                }
                if result.text.contains(a.marker) {
                    failures.append(
                        "\(call.route.method) \(call.path) [\(name)] leaked \(result.text)")
                }
            }
            let label = "\(call.route.method) \(call.route.path)"
            rows.append(
                label.padding(toLength: 52, withPad: " ", startingAt: 0)
                    + cells.joined(separator: "  "))
        }
        for (label, method, path, body, allowed) in indirectCalls(at: a) {
            let result = try HTTPClient.send(cluster, method, path, token: b.user.token, body: body)
            let none = try HTTPClient.send(cluster, method, path, body: body)
            if !allowed.contains(result.status) || none.status != 401 {
                failures.append("\(label) -> \(result.status), without a token \(none.status)")
            }
            if result.text.contains(a.marker) { failures.append("\(label) leaked \(result.text)") }
            rows.append(
                "\(method) \(label)".padding(toLength: 52, withPad: " ", startingAt: 0)
                    + "\(result.status)  \(none.status)")
        }
        let header =
            "route".padding(toLength: 52, withPad: " ", startingAt: 0)
            + cases.map(\.0).joined(separator: " | ")
        print((["isolation matrix (statuses per case):", header] + rows).joined(separator: "\n"))
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")

        // As the owners: nothing changed, nothing was added.
        #expect(try a.snapshot(cluster) == before)
        #expect(try b.snapshot(cluster) == beforeB)
        let mine = try cluster.get("/api/chat/feedback", b.user).items
        #expect(
            mine.count == 1 && mine.allSatisfy { $0["conversationId"]?.stringValue == b.session })
    }
}
