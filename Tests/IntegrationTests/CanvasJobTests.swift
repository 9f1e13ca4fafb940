import Bus
import Core
import Foundation
import Testing

/// Generation jobs with the network providers, end to end: a cluster of its own whose canvas
/// service talks to the fake model server (`CANVAS_*`), and that these tests may restart.
@Suite("Canvas generation jobs with network providers", .serialized)
final class CanvasJobTests {
    let server: FakeModelServer
    let cluster: Cluster

    init() throws {
        server = try FakeModelServer()
        cluster = try Cluster(
            services: Routes.services,
            environment: [
                "CANVAS_BASE_URL": server.openAIBaseURL, "CANVAS_API_KEY": FakeModelServer.key,
                "CANVAS_ANTHROPIC_BASE_URL": server.anthropicBaseURL,
                "CANVAS_ANTHROPIC_API_KEY": FakeModelServer.key,
                "CANVAS_TIMEOUT_MS": "1500", "CANVAS_RETRIES": "2", "CANVAS_RETRY_BASE_MS": "20",
                "CANVAS_RETRY_MAX_MS": "500", "CANVAS_JOB_CLAIM_IDLE_MS": "1000",
            ])
    }

    deinit {
        cluster.shutdown()
        server.stop()
    }

    func unique(_ behaviour: String) -> String { "\(behaviour):\(UUID().uuidString.prefix(8))" }

    @Test func networkProvidersWriteTheValidatedFiles() throws {
        let user = cluster.newUser()
        for provider in ["openai-compatible", "anthropic"] {
            let id = try cluster.createProject(user)
            let model = unique("good")
            let historyId = try cluster.generate(
                user, id,
                [
                    "prompt": .string("Orbit for \(provider)"), "provider": .string(provider),
                    "model": .string(model),
                ])
            let done = try cluster.finishedHistory(user, historyId)
            #expect(done["status"]?.stringValue == "completed", "\(provider): \(done)")
            #expect(done.value(at: "metadata.provider")?.stringValue == provider)
            #expect(done.value(at: "metadata.model")?.stringValue == model)
            #expect(done.value(at: "metadata.tokens") == .int64(provider == "anthropic" ? 333 : 33))
            #expect(done.value(at: "result.filesGenerated") == .int64(4))
            #expect(
                try cluster.fileContent(user, id, path: "/index.html")?.contains(
                    "Orbit for \(provider)") == true)
            #expect(server.count(model) == 1)
        }
    }

    @Test func projectSettingsChooseTheProvider() throws {
        let user = cluster.newUser()
        let model = unique("good")
        let id = try cluster.createProject(
            user, settings: ["provider": "anthropic", "model": .string(model)])
        let done = try cluster.finishedHistory(
            user, try cluster.generate(user, id, ["prompt": "From settings"]))
        #expect(done.value(at: "metadata.provider")?.stringValue == "anthropic")
        #expect(server.count(model) == 1)
        // The request's provider wins over the project's.
        let overridden = try cluster.finishedHistory(
            user,
            try cluster.generate(user, id, ["prompt": "Template now", "provider": "template"]))
        #expect(overridden.value(at: "metadata.provider")?.stringValue == "template")
    }

    @Test func failingProvidersEndTheJobFailedWithTheReason() throws {
        let user = cluster.newUser()
        let cases: [(String, String)] = [
            ("malformed", "not a JSON object"), ("badshape", "no \"files\" array"),
            ("badpath", "'..'"),
            ("slow", "no complete answer within 1500 ms"), ("500always", "server error (503)"),
            ("429always", "rate limited (429)"), ("400", "request refused (400)"),
        ]
        for (behaviour, reason) in cases {
            let id = try cluster.createProject(user)
            let model = unique(behaviour)
            let historyId = try cluster.generate(
                user, id,
                ["prompt": "Nope", "provider": "openai-compatible", "model": .string(model)])
            let done = try cluster.finishedHistory(user, historyId, seconds: 20)
            #expect(done["status"]?.stringValue == "failed", "\(behaviour)")
            #expect(
                done["error"]?.stringValue?.contains(reason) == true,
                "\(behaviour): \(done["error"] ?? .null)")
            #expect(try cluster.listFiles(user, id).isEmpty, "\(behaviour) wrote files")
            // The project is free again for the next generation.
            let next = try cluster.generate(
                user, id, ["prompt": "Template", "provider": "template"])
            #expect(try cluster.finishedHistory(user, next)["status"]?.stringValue == "completed")
        }
    }

    @Test func retriedRateLimitStillCompletes() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let model = unique("429once")
        let done = try cluster.finishedHistory(
            user,
            try cluster.generate(
                user, id,
                ["prompt": "Eventually", "provider": "openai-compatible", "model": .string(model)]))
        #expect(done["status"]?.stringValue == "completed")
        #expect(done.value(at: "metadata.attempts") == .int64(2))
        #expect(server.count(model) == 2)
    }

    @Test func secondGenerationWhileOneRunsIsRefused() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let model = unique("slow-1")
        let first = try cluster.generate(
            user, id,
            ["prompt": "Slow one", "provider": "openai-compatible", "model": .string(model)])
        let second = try cluster.post(
            "/api/chat/canvas/projects/\(id)/generate", user, #"{"prompt":"Too soon"}"#)
        #expect(second.status == 409)
        let rollback = try cluster.post(
            "/api/chat/canvas/projects/\(id)/rollback", user, #"{"historyId":"\#(first)"}"#)
        #expect(rollback.status == 409)
        #expect(try cluster.finishedHistory(user, first)["status"]?.stringValue == "completed")
        #expect(
            try cluster.post("/api/chat/canvas/projects/\(id)/generate", user, #"{"prompt":"Now"}"#)
                .status == 202)
    }

    @Test func jobSurvivesACanvasRestartAndRunsToTheEnd() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let model = unique("slow-1")
        let historyId = try cluster.generate(
            user, id,
            ["prompt": "Survivor", "provider": "openai-compatible", "model": .string(model)])
        // Kill the service while the provider call is in flight.
        let end = Date().addingTimeInterval(5)
        while server.count(model) == 0 && Date() < end { usleep(20_000) }
        #expect(server.count(model) == 1)
        try cluster.stop("canvas", signal: SIGKILL)
        #expect(try cluster.get("/api/chat/canvas/history/\(historyId)", user).status == 504)
        try cluster.startService("canvas")

        let done = try cluster.finishedHistory(user, historyId, seconds: 20)
        #expect(done["status"]?.stringValue == "completed")
        #expect(server.count(model) == 2)
        #expect(try cluster.listFiles(user, id).count == 4)
        let project = try cluster.get("/api/chat/canvas/projects/\(id)", user)
        #expect(project.document?.value(at: "stats.filesGenerated") == .int64(4))
        let history = try cluster.get("/api/chat/canvas/projects/\(id)/history", user)
        #expect(history["items"]?.arrayValue?.count == 1)
    }

    @Test func repeatedRequestWhileRunningStartsNoSecondJob() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let model = unique("slow-1")
        let headers = ["Idempotency-Key": "repeat-\(UUID().uuidString)"]
        let body = json([
            "prompt": "Once only", "provider": "openai-compatible", "model": .string(model),
        ])
        let path = "/api/chat/canvas/projects/\(id)/generate"
        let first = try cluster.post(path, user, body, headers: headers)
        let again = try cluster.post(path, user, body, headers: headers)
        #expect(first.status == 202 && again.status == 202)
        #expect(first["historyId"] == again["historyId"])
        _ = try cluster.finishedHistory(user, first["historyId"]?.stringValue ?? "")
        usleep(300_000)
        #expect(server.count(model) == 1)
    }
}
