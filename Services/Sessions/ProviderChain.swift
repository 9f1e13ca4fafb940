import Core
import FoundationEssentials
import Providers

/// One provider of a chain asked (or passed over) for a reply, as the stored reply records it.
struct ChainAttempt: Sendable {
    enum Outcome: String, Sendable { case answered, failed, skipped }

    let provider: String
    let model: String
    let outcome: Outcome
    let reason: String?
    let status: Int?
    let durationMs: Int
    /// HTTP requests made, retries included.
    let requests: Int

    var document: Document {
        var doc: Document = [
            "provider": .string(provider), "model": .string(model),
            "outcome": .string(outcome.rawValue),
        ]
        if let reason { doc["reason"] = .string(reason) }
        if let status { doc["status"] = .int64(Int64(status)) }
        doc["durationMs"] = .int64(Int64(durationMs))
        doc["requests"] = .int64(Int64(requests))
        return doc
    }
}

/// A reply some provider gave.
struct ChainAnswer: Sendable {
    let text: String
    let provider: String
    let wire: String
    let model: String
    let usage: TokenUsage
    let finishReason: String
    let window: ContextWindow
    let attempts: [ChainAttempt]
    /// From the first request to the answer, failed attempts included.
    let durationMs: Int
}

/// Why no reply came: a provider refused the request (4xx that is the request's fault), or
/// every provider failed (timeouts, connection failures, 429, 5xx, unusable answers).
struct ChainFailure: Error, Sendable {
    let refused: Bool
    let attempts: [ChainAttempt]
    let durationMs: Int

    var error: APIError {
        let details = attempts.map { attempt in
            FieldError(
                "provider.\(attempt.provider)",
                "\(attempt.model): \(attempt.outcome.rawValue)"
                    + (attempt.reason.map { " (\($0))" } ?? ""))
        }
        if refused, let last = attempts.last {
            return APIError(
                status: 422, code: "provider_refused",
                message: "\(last.provider) refused the request: \(last.reason ?? "no reason")",
                details: details)
        }
        return APIError(
            status: 502, code: "provider_failed",
            message: "no provider could answer; the message is stored, try again later",
            details: details)
    }
}

/// Receives a streamed reply as it is generated; called on the generating thread only.
protocol ReplySink: AnyObject, Sendable {
    func text(_ piece: String)
    /// The text sent so far is void: the provider that produced it failed, the next starts over.
    func reset(_ failed: ChainAttempt)
}

/// Asks the providers of a plan in order until one answers.
struct ProviderChain: Sendable {
    let config: ReplyConfig
    let logger: Logger

    /// `deadline`: no provider is started after it (one that runs is let finish, so that its
    /// reply is stored whole even when the client stopped waiting).
    func run(
        _ plan: ReplyPlan, history: [ChatMessage], deadline: Int64, sink: (any ReplySink)?
    ) -> Result<ChainAnswer, ChainFailure> {
        let started = Timestamp.now().milliseconds
        var attempts: [ChainAttempt] = []
        var anyConfigured = false
        for step in plan.steps {
            let model = step.model ?? config.providers[step.provider]?.config?.model ?? ""
            func skip(_ reason: String) {
                attempts.append(
                    ChainAttempt(
                        provider: step.provider, model: model, outcome: .skipped, reason: reason,
                        status: nil, durationMs: 0, requests: 0))
            }
            guard let entry = config.providers[step.provider], let client = entry.client() else {
                skip("no protocol for this provider yet")
                continue
            }
            guard entry.isConfigured else {
                skip("not configured (no \(entry.prefix)_API_KEY or \(entry.prefix)_BASE_URL)")
                continue
            }
            anyConfigured = true
            guard Timestamp.now().milliseconds < deadline else {
                skip("the request's deadline has passed")
                continue
            }
            let window = ContextWindow.build(
                history: history, system: plan.system,
                contextTokens: config.contextTokens(provider: step.provider, model: model),
                maxTokens: plan.maxTokens)
            let request = ChatRequest(
                model: model, system: plan.system, messages: window.messages,
                temperature: plan.temperature, maxTokens: plan.maxTokens)
            let callStarted = Timestamp.now().milliseconds
            let progress = StreamProgress()
            do throws(ProviderError) {
                let completion: ChatCompletion
                if let sink {
                    completion = try client.stream(request) { piece in
                        progress.started = true
                        sink.text(piece)
                    }
                } else {
                    completion = try client.complete(request)
                }
                let elapsed = Int(Timestamp.now().milliseconds - callStarted)
                attempts.append(
                    ChainAttempt(
                        provider: step.provider, model: model, outcome: .answered, reason: nil,
                        status: nil, durationMs: elapsed, requests: completion.attempts))
                return .success(
                    answer(
                        completion, provider: step.provider, wire: client.name, model: model,
                        window: window, plan: plan, attempts: attempts, started: started))
            } catch {
                let attempt = ChainAttempt(
                    provider: step.provider, model: model, outcome: .failed,
                    reason: ProviderChain.redact(error.message, entry.config?.apiKey),
                    status: error.status,
                    durationMs: Int(Timestamp.now().milliseconds - callStarted),
                    requests: error.attempts)
                attempts.append(attempt)
                logger.info(
                    "provider failed",
                    [
                        .type: "\(step.provider)/\(model)",
                        .error: ProviderChain.redact(error.description, entry.config?.apiKey),
                    ])
                if progress.started { sink?.reset(attempt) }
                if !ProviderChain.movesOn(error) {
                    return .failure(
                        ChainFailure(refused: true, attempts: attempts, durationMs: since(started)))
                }
            }
        }
        guard !anyConfigured else {
            return .failure(
                ChainFailure(refused: false, attempts: attempts, durationMs: since(started)))
        }
        return .success(offline(plan, history: history, attempts: attempts, sink: sink))
    }

    /// Timeouts, connection failures, 429, 5xx and unusable answers move on; so do 401, 403,
    /// 404 and 408, which say the provider's setup (key, model name) is wrong, not the request.
    static func movesOn(_ error: ProviderError) -> Bool {
        if error.movesToNextProvider { return true }
        switch error.kind {
        case .malformed, .invalidOutput, .notConfigured: return true
        case .rejected: return [401, 403, 404, 408].contains(error.status ?? 0)
        default: return false
        }
    }

    /// A provider's error text with our key blotted out, should it quote it back: attempts are
    /// stored and shown to the client, and logs must not hold keys either.
    static func redact(_ text: String, _ key: String?) -> String {
        guard let key, key.utf8.count >= 4 else { return text }
        return text.replacingBytes(of: key, with: "***")
    }

    /// No provider of the chain is configured: the offline provider answers.
    private func offline(
        _ plan: ReplyPlan, history: [ChatMessage], attempts: [ChainAttempt],
        sink: (any ReplySink)?
    ) -> ChainAnswer {
        let started = Timestamp.now().milliseconds
        let provider = config.offline
        let window = ContextWindow.build(
            history: history, system: plan.system, contextTokens: config.contextTokens,
            maxTokens: plan.maxTokens)
        let request = ChatRequest(
            model: provider.defaultModel, system: plan.system, messages: window.messages)
        let completion: ChatCompletion
        if let sink {
            completion = provider.reply(request) { sink.text($0) }
        } else {
            completion = provider.reply(request)
        }
        let attempt = ChainAttempt(
            provider: "offline", model: provider.defaultModel, outcome: .answered,
            reason: attempts.isEmpty
                ? "no provider chosen" : "no provider of the chain is configured",
            status: nil, durationMs: since(started), requests: 0)
        return answer(
            completion, provider: "offline", wire: "offline", model: provider.defaultModel,
            window: window, plan: plan, attempts: attempts + [attempt], started: started)
    }

    private func answer(
        _ completion: ChatCompletion, provider: String, wire: String, model: String,
        window: ContextWindow, plan: ReplyPlan, attempts: [ChainAttempt], started: Int64
    ) -> ChainAnswer {
        var usage = completion.usage
        if usage.estimated {
            usage = TokenUsage(
                input: window.tokens, output: TokenEstimate.of(completion.text), estimated: true)
        }
        return ChainAnswer(
            text: completion.text, provider: provider, wire: wire,
            model: completion.model.isEmpty ? model : completion.model, usage: usage,
            finishReason: completion.finishReason, window: window, attempts: attempts,
            durationMs: since(started))
    }

    private func since(_ start: Int64) -> Int { Int(Timestamp.now().milliseconds - start) }
}

/// Whether a streamed attempt handed over any text (set on the generating thread only).
private final class StreamProgress: @unchecked Sendable {
    var started = false
}
