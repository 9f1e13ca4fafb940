import Core
import Providers

/// Who is asked for a reply, in which order, and with what instructions.
///
/// The chain: the session's `settings.provider` (with `settings.model`, else the agent's
/// `primaryModel` when it is the agent's primary provider, else the provider's default model),
/// then the agent's `providerConfig.primaryProvider`/`primaryModel`, then its
/// `fallbackProviders` by ascending `priority`; a repeated provider and model is asked once.
/// The first provider of the chain must have a protocol (gemini and cohere have none yet: 400);
/// a later one without a protocol is skipped.
struct ReplyPlan: Sendable {
    struct Step: Sendable, Equatable {
        let provider: String
        /// Nil: the provider's default model (`<PREFIX>_MODEL`).
        let model: String?
        /// Where the step came from, for error details: `settings.provider`, ...
        let source: String
    }

    // TODO: settings.mode (professional, fast, coding, ...) changes neither prompt nor model yet.
    // TODO: attachments are stored with the message but not sent to the model.
    let steps: [Step]
    let system: String?
    let temperature: Double?
    let maxTokens: Int?

    static func make(session: Document, agent: Document?, config: ReplyConfig) throws(APIError)
        -> ReplyPlan
    {
        let settings = session["settings"]?.documentValue ?? Document()
        let agentConfig = agent?["providerConfig"]?.documentValue ?? Document()
        let primary = agentConfig["primaryProvider"]?.stringValue
        let primaryModel = agentConfig["primaryModel"]?.stringValue
        var steps: [Step] = []
        if let provider = settings["provider"]?.stringValue {
            let model =
                settings["model"]?.stringValue ?? (provider == primary ? primaryModel : nil)
            steps.append(Step(provider: provider, model: model, source: "settings.provider"))
        }
        if let primary {
            steps.append(
                Step(
                    provider: primary, model: primaryModel,
                    source: "agent.providerConfig.primaryProvider"))
        }
        let fallbacks = (agentConfig["fallbackProviders"]?.arrayValue ?? []).enumerated()
            .compactMap { index, value -> (Int64, Int, Step)? in
                guard let doc = value.documentValue, let provider = doc["provider"]?.stringValue
                else { return nil }
                let step = Step(
                    provider: provider, model: doc["model"]?.stringValue,
                    source: "agent.providerConfig.fallbackProviders[\(index)]")
                return (doc["priority"]?.intValue ?? Int64.max, index, step)
            }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
            .map(\.2)
        steps += fallbacks

        var unique: [Step] = []
        for step in steps {
            let model = step.model ?? config.providers[step.provider]?.config?.model
            let seen = unique.contains {
                $0.provider == step.provider
                    && ($0.model ?? config.providers[$0.provider]?.config?.model) == model
            }
            if !seen { unique.append(step) }
        }
        if let first = unique.first, config.providers[first.provider]?.wire == nil {
            let usable = ReplyConfig.known.filter { $0.wire != nil }.map(\.name)
            throw APIError.invalid(
                first.source,
                "provider \(first.provider) cannot answer yet (no protocol for it in this "
                    + "server); choose one of \(usable.joined(separator: ", "))")
        }

        let agentSettings = agent ?? Document()
        let prompts = [
            agentSettings.value(at: "config.systemPrompt"), agentConfig["systemPrompt"],
            agentSettings["prompt"],
        ]
        let system = prompts.compactMap { $0?.stringValue }.first { !$0.isEmpty }
        let temperature =
            settings["temperature"]?.doubleValue ?? agentConfig["temperature"]?.doubleValue
            ?? agentSettings["temperature"]?.doubleValue
        let maxTokens =
            settings["maxTokens"]?.intValue ?? agentConfig["maxTokens"]?.intValue
            ?? agentSettings["maxTokens"]?.intValue
        return ReplyPlan(
            steps: unique, system: system, temperature: temperature,
            maxTokens: maxTokens.map { Int($0) })
    }
}

/// Token counts without a tokenizer: a quarter of the UTF-8 bytes, rounded up.
// TODO: a tokenizer per model family for the context window; the estimate can be off by 2x.
enum TokenEstimate {
    static func of(_ text: String) -> Int { (text.utf8.count + 3) / 4 }
}

/// The system prompt and the newest messages that fit a model's context window.
struct ContextWindow: Sendable {
    let messages: [ChatMessage]
    /// The estimated tokens of the system prompt and the messages.
    let tokens: Int
    /// The tokens the prompt and the messages could use.
    let budget: Int
    /// Older messages left out for lack of room.
    let omitted: Int

    /// Takes messages from the newest back while they fit `budget`, less the reply's maximum
    /// (at most half the window); the newest message is always in. The window starts with a
    /// user message, as the messages API requires.
    static func build(
        history: [ChatMessage], system: String?, contextTokens: Int, maxTokens: Int?
    ) -> ContextWindow {
        let reserve = min(maxTokens ?? contextTokens / 4, contextTokens / 2)
        let budget = contextTokens - reserve
        var used = TokenEstimate.of(system ?? "")
        var kept: [ChatMessage] = []
        let usable = history.filter { !$0.content.isEmpty }
        for message in usable.reversed() {
            let cost = TokenEstimate.of(message.content)
            if !kept.isEmpty && used + cost > budget { break }
            kept.append(message)
            used += cost
        }
        kept.reverse()
        while kept.count > 1, kept.first?.role != "user" {
            used -= TokenEstimate.of(kept.removeFirst().content)
        }
        return ContextWindow(
            messages: kept, tokens: used, budget: budget, omitted: usable.count - kept.count)
    }
}
