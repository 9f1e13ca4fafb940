import Core
import Foundation
import JSONKit
import MongoKit
import Providers
import Synchronization
import Testing

/// Fake model servers started for this suite, killed when the test process exits.
private let fakeServerPids = Mutex<[Int32]>([])
private let killFakeServers: Void = {
    atexit {
        for pid in fakeServerPids.withLock({ $0 }) { kill(pid, SIGKILL) }
    }
}()

/// A cluster (sessions + gateway) whose providers point at one fake model server:
/// openai, anthropic and groq are configured (groq with a short timeout), mistral, xai and
/// huggingface are not.
final class RepliesFixture: Sendable {
    let cluster: Cluster
    let fake: FakeModelServer
    /// The model whose context window is small (`CONTEXT_TOKENS_BY_MODEL`).
    static let smallWindowModel = "good:chat:smallwindow"

    static let shared: Result<RepliesFixture, ClusterError> = {
        do { return .success(try RepliesFixture()) } catch let error as ClusterError {
            return .failure(error)
        } catch { return .failure(ClusterError(description: "\(error)")) }
    }()

    private init() throws {
        _ = killFakeServers
        let fake = try FakeModelServer()
        let pid = fake.pid
        fakeServerPids.withLock { $0.append(pid) }
        self.fake = fake
        let key = FakeModelServer.key
        cluster = try Cluster(
            services: ["sessions"],
            environment: [
                "OPENAI_BASE_URL": fake.openAIBaseURL, "OPENAI_API_KEY": key,
                "ANTHROPIC_BASE_URL": fake.anthropicBaseURL, "ANTHROPIC_API_KEY": key,
                "GROQ_BASE_URL": fake.openAIBaseURL, "GROQ_API_KEY": key, "GROQ_TIMEOUT_MS": "1500",
                "MISTRAL_BASE_URL": "", "MISTRAL_API_KEY": "", "XAI_BASE_URL": "",
                "XAI_API_KEY": "",
                "HUGGINGFACE_BASE_URL": "", "HUGGINGFACE_API_KEY": "",
                "PROVIDER_TIMEOUT_MS": "10000", "PROVIDER_RETRIES": "1",
                "PROVIDER_RETRY_BASE_MS": "20", "PROVIDER_RETRY_MAX_MS": "1500",
                "RESPOND_TIMEOUT_MS": "20000", "RESPOND_WORKERS": "8",
                "OFFLINE_PIECE_DELAY_MS": "0",
                "CONTEXT_TOKENS_BY_MODEL": "\(RepliesFixture.smallWindowModel)=600",
            ])
    }
}

@Suite("Agents answer through provider chains")
struct AgentRepliesTests {
    let cluster: Cluster
    let fake: FakeModelServer
    let user: TestUser

    init() throws {
        let fixture = try RepliesFixture.shared.get()
        cluster = fixture.cluster
        fake = fixture.fake
        user = cluster.newUser()
    }

    /// A model name for the fake server: its behaviour, chat mode and a key of this test.
    func model(_ behaviour: String) -> String {
        "\(behaviour):chat:\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// An agent with this chain and a session of `user` with it.
    func session(
        primary: (String, String)?, fallbacks: [(String, String, Int)] = [],
        settings: Document? = nil, systemPrompt: String = "You are a test agent."
    ) throws -> String {
        var providerConfig: Document = [
            "fallbackProviders": .array(
                fallbacks.map {
                    [
                        "provider": .string($0.0), "model": .string($0.1),
                        "priority": .int64(Int64($0.2)),
                    ]
                }),
            "systemPrompt": .string(systemPrompt),
        ]
        if let primary {
            providerConfig["primaryProvider"] = .string(primary.0)
            providerConfig["primaryModel"] = .string(primary.1)
        }
        let (_, agentId) = try cluster.createAgent(
            cluster.admin(), prefix: "replies",
            extra: [
                "providerConfig": .document(providerConfig),
                "config": ["systemPrompt": .string(systemPrompt)],
            ])
        var body: Document = ["name": "replies", "agentId": .string(agentId)]
        if let settings { body["settings"] = .document(settings) }
        let created = try cluster.post("/api/chat/sessions", user, json(body))
        guard created.status == 201, let id = created["sessionId"]?.stringValue else {
            throw ClusterError(description: "create session: \(created.status) \(created.text)")
        }
        return id
    }

    func ask(_ session: String, _ content: String, headers: [String: String] = [:]) throws
        -> HTTPResult
    {
        try cluster.post(
            "/api/chat/sessions/\(session)/messages", user,
            json(["role": "user", "content": .string(content), "respond": true]), headers: headers)
    }

    func stream(_ session: String, _ content: String, headers: [String: String] = [:]) throws
        -> SSEClient
    {
        try SSEClient(
            port: cluster.httpPort, path: "/api/chat/sessions/\(session)/messages",
            token: user.token,
            body: json(["role": "user", "content": .string(content), "respond": true]),
            headers: headers)
    }

    func stored(_ session: String) throws -> [Document] {
        try cluster.get("/api/chat/sessions/\(session)/messages?limit=100", user).items
    }

    func attempts(_ reply: Document?) -> [(String, String, String)] {
        (reply?.value(at: "metadata.attempts")?.arrayValue ?? []).compactMap(\.documentValue).map {
            (
                $0["provider"]?.stringValue ?? "", $0["model"]?.stringValue ?? "",
                $0["outcome"]?.stringValue ?? ""
            )
        }
    }

    static func expectedText(_ protocolName: String, _ question: String) -> String {
        "Fake \(protocolName) answer to \"\(question)\". It has several words, so that it streams "
            + "in more than one piece."
    }

    static func text(of events: [SSEClient.Event]) -> String {
        var text = ""
        for event in events {
            if event.name == "reset" { text = "" }
            if event.name == "delta",
                let piece = (try? JSONParser.parseObject(Array(event.data.utf8)))?["text"]?
                    .stringValue
            {
                text += piece
            }
        }
        return text
    }

    // MARK: answers and what they record

    @Test func respondStoresTheMessageAndTheAgentsReplyWithItsCosts() throws {
        let primary = model("good")
        let session = try session(primary: ("openai", primary), systemPrompt: "You are Ada.")
        let result = try ask(session, "What is an engine?")
        #expect(result.status == 201)
        let message = result["message"]?.documentValue
        let reply = result["reply"]?.documentValue
        #expect(message?["role"]?.stringValue == "user")
        #expect(message?["content"]?.stringValue == "What is an engine?")
        #expect(reply?["role"]?.stringValue == "assistant")
        #expect(reply?["content"]?.stringValue == Self.expectedText("openai", "What is an engine?"))
        #expect(reply?.value(at: "metadata.provider")?.stringValue == "openai")
        #expect(reply?.value(at: "metadata.protocol")?.stringValue == "openai-compatible")
        #expect(reply?.value(at: "metadata.model")?.stringValue == primary)
        #expect(reply?.value(at: "metadata.tokensIn")?.intValue == 11)
        #expect(reply?.value(at: "metadata.tokensOut")?.intValue == 22)
        #expect(reply?.value(at: "metadata.tokenCount")?.stringValue == "reported")
        #expect(reply?["tokens"]?.intValue == 33)
        #expect(reply?.value(at: "metadata.inReplyTo") == message?["messageId"])
        let duration = reply?.value(at: "metadata.durationMs")?.intValue ?? -1
        #expect(duration >= 0)

        // The provider got the agent's system prompt, then the conversation.
        let sent = fake.requests(primary).first?["body"]?.documentValue
        let sentMessages = (sent?["messages"]?.arrayValue ?? []).compactMap(\.documentValue)
        #expect(sentMessages.first?["role"]?.stringValue == "system")
        #expect(sentMessages.first?["content"]?.stringValue == "You are Ada.")
        #expect(sentMessages.last?["content"]?.stringValue == "What is an engine?")

        // Both are stored; the session and the bucket add up tokens and time.
        let items = try stored(session)
        #expect(items.map { $0["role"]?.stringValue ?? "" } == ["user", "assistant"])
        #expect(items.last?["content"] == reply?["content"])
        #expect(items.last?.value(at: "metadata.provider")?.stringValue == "openai")
        let got = try cluster.get("/api/chat/sessions/\(session)", user)
        #expect(got["stats"]?.documentValue?["messageCount"]?.intValue == 2)
        #expect(got["stats"]?.documentValue?["totalTokens"]?.intValue == 33)
        #expect(got["stats"]?.documentValue?["durationMs"]?.intValue == duration)
        let bucket = try cluster.mongo().collection("chatinteractions").findOne([
            "conversationId": .string(session)
        ])
        #expect(bucket?.value(at: "metrics.totalTokens")?.intValue == 33)
        #expect(bucket?.value(at: "metrics.durationMs")?.intValue == duration)
        #expect(bucket?.value(at: "metrics.turnCount")?.intValue == 2)
    }

    @Test func fallbacksAreAskedInPriorityOrderAndTheAnsweringProviderIsRecorded() throws {
        let broken = model("500always")
        let malformed = model("malformed")
        let good = model("good")
        let session = try session(
            primary: ("openai", broken),
            fallbacks: [("anthropic", good, 2), ("openai", malformed, 1)])
        let result = try ask(session, "Who answers?")
        #expect(result.status == 201)
        let reply = result["reply"]?.documentValue
        #expect(reply?.value(at: "metadata.provider")?.stringValue == "anthropic")
        #expect(reply?.value(at: "metadata.model")?.stringValue == good)
        #expect(reply?.value(at: "metadata.tokensIn")?.intValue == 111)
        #expect(reply?.value(at: "metadata.tokensOut")?.intValue == 222)
        // The session's default provider (mistral) has no key here: passed over, recorded.
        #expect(
            attempts(reply).map { "\($0.0) \($0.1) \($0.2)" } == [
                "mistral mistral-small-latest skipped", "openai \(broken) failed",
                "openai \(malformed) failed", "anthropic \(good) answered",
            ])
        // 5xx is retried once (PROVIDER_RETRIES=1) before moving on; malformed JSON is not.
        #expect(fake.count(broken) == 2)
        #expect(fake.count(malformed) == 1)
        #expect(fake.count(good) == 1)
        let failed = reply?.value(at: "metadata.attempts")?.arrayValue?[1].documentValue
        #expect(failed?["status"]?.intValue == 503)
        #expect(failed?["requests"]?.intValue == 2)
    }

    @Test func theSessionsOwnProviderAndModelComeFirst() throws {
        let chosen = model("good")
        let session = try session(
            primary: ("openai", model("good")),
            settings: ["provider": "groq", "model": .string(chosen)])
        let result = try ask(session, "Which one?")
        #expect(result.status == 201)
        #expect(
            result["reply"]?.documentValue?.value(at: "metadata.provider")?.stringValue == "groq")
        #expect(result["reply"]?.documentValue?.value(at: "metadata.model")?.stringValue == chosen)
        #expect(fake.count(chosen) == 1)
    }

    @Test func rateLimitedProviderIsRetriedWithinRetryAfterElseTheNextAnswers() throws {
        let once = model("429once")
        let first = try ask(try session(primary: ("openai", once)), "Again?")
        #expect(first.status == 201)
        let reply = first["reply"]?.documentValue
        #expect(reply?.value(at: "metadata.provider")?.stringValue == "openai")
        #expect(fake.count(once) == 2)
        #expect(
            reply?.value(at: "metadata.attempts")?.arrayValue?.last?.documentValue?["requests"]?
                .intValue == 2)

        // Retry-After: 120 is longer than PROVIDER_RETRY_MAX_MS: no wait, the fallback answers.
        let long = model("429long")
        let good = model("good")
        let started = Date()
        let second = try ask(
            try session(primary: ("openai", long), fallbacks: [("anthropic", good, 1)]), "Later?")
        #expect(second.status == 201)
        #expect(Date().timeIntervalSince(started) < 5)
        let answered = second["reply"]?.documentValue
        #expect(answered?.value(at: "metadata.provider")?.stringValue == "anthropic")
        #expect(fake.count(long) == 1)
        let limited = answered?.value(at: "metadata.attempts")?.arrayValue?[1].documentValue
        #expect(limited?["status"]?.intValue == 429)
        #expect(limited?["outcome"]?.stringValue == "failed")
    }

    @Test func slowProviderTimesOutAndTheNextAnswers() throws {
        let slow = model("slow-3")
        let good = model("good")
        let started = Date()
        let result = try ask(
            try session(primary: ("groq", slow), fallbacks: [("openai", good, 1)]), "Quickly?")
        let elapsed = Date().timeIntervalSince(started)
        #expect(result.status == 201)
        let reply = result["reply"]?.documentValue
        #expect(reply?.value(at: "metadata.provider")?.stringValue == "openai")
        #expect(elapsed >= 1.4 && elapsed < 3)
        let timedOut = reply?.value(at: "metadata.attempts")?.arrayValue?[1].documentValue
        #expect(timedOut?["provider"]?.stringValue == "groq")
        #expect(timedOut?["reason"]?.stringValue?.contains("1500 ms") == true)
    }

    @Test func providerRefusingTheRequestStopsTheChainWith422() throws {
        let refusing = model("400")
        let good = model("good")
        let session = try session(
            primary: ("openai", refusing), fallbacks: [("anthropic", good, 1)])
        let result = try ask(session, "Too much?")
        #expect(result.status == 422)
        #expect(result.errorCode == "provider_refused")
        #expect(
            result.document?.value(at: "error.message")?.stringValue?.contains("max_tokens") == true
        )
        #expect(result["message"]?.documentValue?["content"]?.stringValue == "Too much?")
        #expect(fake.count(refusing) == 1)
        #expect(fake.count(good) == 0)
        #expect(try stored(session).map { $0["role"]?.stringValue ?? "" } == ["user"])
    }

    @Test func everyProviderFailingAnswers502AndKeepsTheMessage() throws {
        let session = try session(
            primary: ("openai", model("500always")),
            fallbacks: [("anthropic", model("500always"), 1)])
        let result = try ask(session, "Anyone?")
        #expect(result.status == 502)
        #expect(result.errorCode == "provider_failed")
        #expect(
            result.errorFields == ["provider.mistral", "provider.openai", "provider.anthropic"])
        #expect(result["message"]?.documentValue?["role"]?.stringValue == "user")
        #expect(try stored(session).count == 1)
    }

    @Test func unusedTokenFiguresAreEstimatedAndSaySo() throws {
        let session = try session(primary: ("openai", model("nousage")))
        let result = try ask(session, "Count me")
        #expect(result.status == 201)
        let reply = result["reply"]?.documentValue
        let text = reply?["content"]?.stringValue ?? ""
        #expect(reply?.value(at: "metadata.tokenCount")?.stringValue == "estimated")
        #expect(
            reply?.value(at: "metadata.tokensOut")?.intValue == Int64((text.utf8.count + 3) / 4))
        #expect(
            reply?.value(at: "metadata.tokensIn")?.intValue
                == reply?.value(at: "metadata.context.tokens")?.intValue)
    }

    @Test func contextHoldsTheSystemPromptAndTheNewestMessagesThatFit() throws {
        let session = try session(
            primary: ("openai", RepliesFixture.smallWindowModel), systemPrompt: "You are brief.")
        let filler = String(repeating: "abcd", count: 100)  // 400 bytes: 100 tokens
        for index in 1...6 {
            _ = try cluster.appendMessage(
                user, session, "m\(index) " + filler.dropFirst(3),
                role: index % 2 == 1 ? "user" : "assistant")
        }
        let before = fake.count(RepliesFixture.smallWindowModel)
        let result = try ask(session, "And now?")
        #expect(result.status == 201)
        // A 600-token window less the reply's share (300) leaves 300: the prompt, the question,
        // m6 and m5 fit, m4 would not.
        let reply = result["reply"]?.documentValue
        #expect(reply?.value(at: "metadata.context.budget")?.intValue == 300)
        #expect(reply?.value(at: "metadata.context.messages")?.intValue == 3)
        #expect(reply?.value(at: "metadata.context.omitted")?.intValue == 4)
        let requests = fake.requests(RepliesFixture.smallWindowModel)
        #expect(requests.count == before + 1)
        let sent = (requests.last?.value(at: "body.messages")?.arrayValue ?? []).compactMap(
            \.documentValue)
        #expect(
            sent.map { $0["role"]?.stringValue ?? "" } == ["system", "user", "assistant", "user"])
        #expect(sent.first?["content"]?.stringValue == "You are brief.")
        #expect(sent[1]["content"]?.stringValue?.hasPrefix("m5 ") == true)
        #expect(sent.last?["content"]?.stringValue == "And now?")
    }

    // MARK: streaming

    @Test func streamedTextEqualsTheStoredReply() throws {
        let session = try session(primary: ("anthropic", model("drip-20")))
        let client = try stream(session, "Stream it")
        #expect(client.status == 200)
        #expect(client.headers["content-type"]?.hasPrefix("text/event-stream") == true)
        let events = client.all()
        #expect(events.first?.name == "message")
        #expect(events.filter { $0.name == "delta" }.count > 3)
        #expect(events.last?.name == "done")
        let done = try JSONParser.parseObject(Array((events.last?.data ?? "").utf8))
        let text = Self.text(of: events)
        #expect(text == Self.expectedText("anthropic", "Stream it"))
        #expect(done.value(at: "reply.content")?.stringValue == text)
        #expect(done.value(at: "reply.metadata.provider")?.stringValue == "anthropic")
        #expect(done.value(at: "reply.metadata.tokensOut")?.intValue == 222)
        #expect(try stored(session).last?["content"]?.stringValue == text)
    }

    /// A streamed request repeated with its `Idempotency-Key` gets what the first one stored,
    /// in the same shape: the user's message, then `done` with the reply; nothing runs twice.
    @Test func aRepeatedStreamedRequestStartsWithTheStoredMessage() throws {
        let session = try session(primary: ("anthropic", model("drip-20")))
        let key = ["Idempotency-Key": "stream-\(UUID().uuidString)"]
        let first = try stream(session, "Once", headers: key).all()
        let again = try stream(session, "Once", headers: key).all()
        #expect(first.first?.name == "message" && first.last?.name == "done")
        #expect(again.map(\.name) == ["message", "done"])
        #expect(again.first?.data == first.first?.data)
        let firstDone = try JSONParser.parseObject(Array((first.last?.data ?? "").utf8))
        let againDone = try JSONParser.parseObject(Array((again.last?.data ?? "").utf8))
        #expect(againDone.value(at: "reply.messageId") == firstDone.value(at: "reply.messageId"))
        #expect(try stored(session).count == 2)
    }

    @Test func openAIStreamsReportTheirUsage() throws {
        let session = try session(primary: ("openai", model("good")))
        let events = try stream(session, "Usage?").all()
        let done = try JSONParser.parseObject(Array((events.last?.data ?? "").utf8))
        #expect(events.last?.name == "done")
        #expect(done.value(at: "reply.metadata.tokenCount")?.stringValue == "reported")
        #expect(done.value(at: "reply.metadata.tokensIn")?.intValue == 11)
        #expect(Self.text(of: events) == done.value(at: "reply.content")?.stringValue)
    }

    @Test func aProviderBreakingMidStreamIsResetAndTheNextOneAnswers() throws {
        let cut = model("cutoff")
        let good = model("good")
        let session = try session(primary: ("openai", cut), fallbacks: [("anthropic", good, 1)])
        let events = try stream(session, "Break?").all()
        let names = events.map(\.name)
        #expect(names.contains("reset"))
        let reset = names.firstIndex(of: "reset") ?? 0
        #expect(names[..<reset].contains("delta"))
        #expect(events.last?.name == "done")
        let text = Self.text(of: events)
        #expect(text == Self.expectedText("anthropic", "Break?"))
        #expect(try stored(session).last?["content"]?.stringValue == text)
        let done = try JSONParser.parseObject(Array((events.last?.data ?? "").utf8))
        #expect(
            done.value(at: "reply.metadata.attempts")?.arrayValue?[1].documentValue?["outcome"]?
                .stringValue == "failed")
    }

    @Test func malformedStreamMovesToTheNextProvider() throws {
        let session = try session(
            primary: ("openai", model("malformed")), fallbacks: [("anthropic", model("good"), 1)])
        let events = try stream(session, "Garbled?").all()
        #expect(events.last?.name == "done")
        #expect(!events.contains { $0.name == "reset" })
        #expect(Self.text(of: events) == Self.expectedText("anthropic", "Garbled?"))
    }

    @Test func clientLeavingMidStreamStillLeavesTheWholeReplyStored() throws {
        let session = try session(primary: ("anthropic", model("drip-100")))
        let client = try stream(session, "Leave early")
        var sawDelta = false
        while let event = client.next() {
            if event.name == "delta" {
                sawDelta = true
                break
            }
        }
        #expect(sawDelta)
        client.hangUp()
        let expected = Self.expectedText("anthropic", "Leave early")
        let complete = try eventually(seconds: 15) {
            try stored(session).last?["content"]?.stringValue == expected
        }
        #expect(complete)
        let reply = try stored(session).last
        #expect(reply?.value(at: "metadata.provider")?.stringValue == "anthropic")
        #expect(
            try cluster.get("/api/chat/sessions/\(session)", user)["stats"]?.documentValue?[
                "messageCount"]?.intValue == 2)
    }

    @Test func streamedErrorBeforeAnyTextIsAPlainJSONAnswer() throws {
        let session = try session(
            primary: ("openai", model("good")), settings: ["provider": "gemini"])
        let client = try stream(session, "Gemini?")
        #expect(client.status == 400)
        let body = try JSONParser.parseObject(Array(client.rest().utf8))
        #expect(
            body.value(at: "error.details")?.arrayValue?.first?.documentValue?["field"]?.stringValue
                == "settings.provider")
    }

    // MARK: offline, refusals, validation

    @Test func offlineProviderAnswersWhenNoProviderOfTheChainIsConfigured() throws {
        let session = try session(primary: ("xai", "grok-2"), settings: ["provider": "huggingface"])
        let first = try ask(session, "Hello offline")
        #expect(first.status == 201)
        let reply = first["reply"]?.documentValue
        let text = reply?["content"]?.stringValue ?? ""
        #expect(text.contains("offline provider"))
        #expect(text.contains("Hello offline"))
        #expect(reply?.value(at: "metadata.provider")?.stringValue == "offline")
        #expect(reply?.value(at: "metadata.tokenCount")?.stringValue == "estimated")
        #expect(
            attempts(reply).map(\.2) == ["skipped", "skipped", "answered"])
        // The same question gets the same answer, streamed or not.
        let events = try stream(session, "Hello offline").all()
        #expect(Self.text(of: events) == text)
        #expect(events.last?.name == "done")
    }

    @Test func providersWithoutAProtocolAreRefusedWith400WhenChosen() throws {
        let session = try session(
            primary: ("openai", model("good")), settings: ["provider": "gemini"])
        let refused = try ask(session, "Gemini?")
        #expect(refused.status == 400)
        #expect(refused.errorFields == ["settings.provider"])
        #expect(
            refused.document?.value(at: "error.details")?.arrayValue?.first?.documentValue?[
                "message"]?.stringValue?.contains("gemini") == true)
        #expect(try stored(session).isEmpty)
        // Storing a message without asking for a reply is fine with any provider of the enum.
        let plain = try cluster.post(
            "/api/chat/sessions/\(session)/messages", user, #"{"role":"user","content":"hi"}"#)
        #expect(plain.status == 201)

        // A fallback without a protocol is passed over.
        let good = model("good")
        let other = try self.session(
            primary: ("openai", model("500always")),
            fallbacks: [("cohere", "command-r", 1), ("anthropic", good, 2)])
        let answered = try ask(other, "Cohere?")
        #expect(answered.status == 201)
        let reply = answered["reply"]?.documentValue
        #expect(reply?.value(at: "metadata.provider")?.stringValue == "anthropic")
        #expect(attempts(reply).map { "\($0.0) \($0.2)" }.contains("cohere skipped"))
    }

    @Test func respondNeedsAUserMessageAndABooleanFlag() throws {
        let session = try session(primary: ("openai", model("good")))
        let notBool = try cluster.post(
            "/api/chat/sessions/\(session)/messages", user,
            #"{"role":"user","content":"hi","respond":"yes"}"#)
        #expect(notBool.status == 400)
        #expect(notBool.errorFields == ["respond"])
        let assistant = try cluster.post(
            "/api/chat/sessions/\(session)/messages", user,
            #"{"role":"assistant","content":"hi","respond":true}"#)
        #expect(assistant.status == 400)
        #expect(assistant.errorFields == ["role"])
        let plain = try cluster.post(
            "/api/chat/sessions/\(session)/messages", user,
            #"{"role":"user","content":"just store","respond":false}"#)
        #expect(plain.status == 201)
        #expect(plain["messageId"]?.stringValue != nil)
        #expect(try stored(session).count == 1)
        // Another user's session is not found, whatever the flag.
        let stranger = cluster.newUser()
        let foreign = try cluster.post(
            "/api/chat/sessions/\(session)/messages", stranger,
            #"{"role":"user","content":"mine?","respond":true}"#)
        #expect(foreign.status == 404)
        #expect(try stored(session).count == 1)
    }

    @Test func retryWithTheSameIdempotencyKeyAsksNoProviderAgain() throws {
        let good = model("good")
        let session = try session(primary: ("openai", good))
        let key = UUID().uuidString
        let first = try ask(session, "Once", headers: ["Idempotency-Key": key])
        let second = try ask(session, "Once", headers: ["Idempotency-Key": key])
        #expect(first.status == 201)
        #expect(second.status == 201)
        #expect(
            second["reply"]?.documentValue?["messageId"]
                == first["reply"]?.documentValue?["messageId"])
        #expect(fake.count(good) == 1)
        #expect(try stored(session).count == 2)
    }
}
