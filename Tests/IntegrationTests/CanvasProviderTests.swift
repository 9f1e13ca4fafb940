import Core
import Foundation
import Providers
import Testing

/// The network providers against the fake model server, called directly: protocol, retries,
/// timeouts and validation of the answer.
@Suite("Canvas providers against a fake model server")
struct CanvasProviderTests {
    let server: FakeModelServer
    let limits = CanvasLimits(maxFileBytes: 2 << 20, maxFiles: 50)

    init() throws { server = try FakeModelServer() }

    func config(_ base: String, model: String, timeoutMs: Int = 5000, retries: Int = 2)
        -> HTTPProviderConfig
    {
        HTTPProviderConfig(
            baseURL: base, apiKey: FakeModelServer.key, model: model, timeoutMs: timeoutMs,
            connectTimeoutMs: 1000, retries: retries, retryBaseMs: 20, retryMaxMs: 2000)
    }

    func openAI(_ model: String, timeoutMs: Int = 5000, retries: Int = 2) -> ModelCanvasProvider {
        ModelCanvasProvider(
            chat: OpenAICompatibleProvider(
                config: config(
                    server.openAIBaseURL, model: model, timeoutMs: timeoutMs, retries: retries)),
            limits: limits)
    }

    func anthropic(_ model: String) -> ModelCanvasProvider {
        ModelCanvasProvider(
            chat: AnthropicProvider(config: config(server.anthropicBaseURL, model: model)),
            limits: limits)
    }

    func request(_ prompt: String = "Launch Orbit Analytics") -> CanvasRequest {
        CanvasRequest(
            prompt: prompt, projectName: "Orbit", template: "SaaS Landing", category: "Landing")
    }

    func unique(_ behaviour: String) -> String { "\(behaviour):\(UUID().uuidString.prefix(8))" }

    func failure(_ provider: ModelCanvasProvider) -> ProviderError? {
        do {
            _ = try provider.generate(request())
            return nil
        } catch {
            return error
        }
    }

    @Test func openAICompatibleAnswerBecomesValidatedFiles() throws {
        let model = unique("good")
        let generation = try openAI(model).generate(request("Launch Orbit Analytics"))
        #expect(
            generation.files.map(\.path) == ["/index.html", "/styles.css", "/app.js", "/README.md"])
        #expect(generation.files[2].type == "js")
        #expect(generation.files[0].content.contains("Launch Orbit Analytics"))
        #expect(generation.usage == TokenUsage(input: 11, output: 22, estimated: false))
        #expect(generation.provider == "openai-compatible" && generation.model == model)

        let sent = try #require(server.requests(model).first)
        #expect(sent["auth"]?.stringValue == "Bearer \(FakeModelServer.key)")
        #expect(
            sent.value(at: "body.messages")?.arrayValue?.first?.documentValue?["role"] == "system")
        #expect(sent.value(at: "body.stream") == .bool(false))
    }

    @Test func anthropicAnswerBecomesValidatedFiles() throws {
        let model = unique("good")
        let generation = try anthropic(model).generate(request())
        #expect(generation.files.count == 4)
        #expect(generation.usage.total == 333)
        let sent = try #require(server.requests(model).first)
        #expect(sent["auth"]?.stringValue == FakeModelServer.key)
        #expect(sent["version"]?.stringValue == AnthropicProvider.apiVersion)
        #expect(sent.value(at: "body.system")?.stringValue?.contains("\"files\"") == true)
        #expect(sent.value(at: "body.max_tokens")?.intValue == 8000)
    }

    @Test func answerInsideACodeFenceIsAccepted() throws {
        #expect(try openAI(unique("fenced")).generate(request()).files.count == 4)
    }

    @Test func rateLimitedCallIsRetriedAfterBackoff() throws {
        let model = unique("429once")
        let generation = try openAI(model).generate(request())
        #expect(generation.attempts == 2)
        #expect(server.count(model) == 2)
    }

    @Test func serverErrorIsRetriedThenReported() throws {
        let once = unique("500once")
        #expect(try openAI(once).generate(request()).attempts == 2)

        let always = unique("500always")
        let error = try #require(failure(openAI(always, retries: 2)))
        #expect(error.kind == .server && error.status == 503 && error.attempts == 3)
        #expect(error.movesToNextProvider)
        #expect(server.count(always) == 3)
    }

    @Test func persistentRateLimitEndsAsRateLimited() throws {
        let model = unique("429always")
        let error = try #require(failure(openAI(model, retries: 1)))
        #expect(error.kind == .rateLimited && error.attempts == 2)
        #expect(server.count(model) == 2)

        // A Retry-After longer than the configured maximum wait ends the call at once.
        let long = unique("429long")
        let started = Date()
        let refused = try #require(failure(openAI(long)))
        #expect(refused.kind == .rateLimited && refused.attempts == 1)
        #expect(Date().timeIntervalSince(started) < 2)
    }

    @Test func requestErrorIsNotRetried() throws {
        let model = unique("400")
        let error = try #require(failure(openAI(model)))
        #expect(error.kind == .rejected && error.status == 400)
        #expect(error.message.contains("max_tokens is too large"))
        #expect(!error.movesToNextProvider)
        #expect(server.count(model) == 1)
    }

    @Test func wrongKeyIsRefusedAndNeverLogged() throws {
        var settings = config(server.openAIBaseURL, model: unique("good"))
        settings.apiKey = "wrong-secret-key"
        let provider = ModelCanvasProvider(
            chat: OpenAICompatibleProvider(config: settings), limits: limits)
        let error = try #require(failure(provider))
        #expect(error.kind == .rejected && error.status == 401)
        #expect(!error.description.contains("wrong-secret-key"))
        #expect(!settings.summary.contains("wrong-secret-key"))
    }

    @Test func slowProviderTimesOutWithoutRetrying() throws {
        let model = unique("slow")
        let started = Date()
        let error = try #require(failure(openAI(model, timeoutMs: 400)))
        #expect(error.kind == .timeout)
        #expect(Date().timeIntervalSince(started) < 2.5)
        #expect(server.count(model) == 1)
    }

    @Test func unusableAnswersAreRefusedBeforeAnythingIsWritten() throws {
        let cases: [(String, ProviderError.Kind, String)] = [
            ("malformed", .malformed, "not a JSON object"),
            ("notjson", .invalidOutput, "not JSON"),
            ("badshape", .invalidOutput, "no \"files\" array"),
            ("badpath", .invalidOutput, "'..'"),
            ("truncated", .invalidOutput, "cut off"),
        ]
        for (behaviour, kind, words) in cases {
            let error = try #require(failure(openAI(unique(behaviour))), "\(behaviour)")
            #expect(error.kind == kind, "\(behaviour): \(error)")
            #expect(error.message.contains(words), "\(behaviour): \(error.message)")
            let viaAnthropic = try #require(failure(anthropic(unique(behaviour))), "\(behaviour)")
            #expect(viaAnthropic.kind == kind, "anthropic \(behaviour): \(viaAnthropic)")
        }
    }

    @Test func unreachableServerIsAConnectionError() throws {
        let port = try Cluster.freePort()
        var settings = config("http://127.0.0.1:\(port)/v1", model: "good", retries: 1)
        settings.retryBaseMs = 10
        let provider = ModelCanvasProvider(
            chat: OpenAICompatibleProvider(config: settings), limits: limits)
        let error = try #require(failure(provider))
        #expect(error.kind == .connection && error.attempts == 2)
    }

    @Test func unconfiguredProviderIsRefusedByName() {
        let providers = CanvasProviders(Environment([:]), limits: limits)
        if case .failure(let error) = providers.provider("openai-compatible") {
            #expect(error.kind == .notConfigured)
            #expect(error.message.contains("CANVAS_API_KEY"))
        } else {
            Issue.record("an unconfigured provider was offered")
        }
        if case .success(let template) = providers.provider("template") {
            #expect(template.name == "template")
        } else {
            Issue.record("the template provider is missing")
        }
    }
}
