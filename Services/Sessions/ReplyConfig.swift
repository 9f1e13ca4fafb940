import Core
import Providers

/// One provider of the spec's enum and how this server reaches it.
struct ChatProviderEntry: Sendable {
    /// The wire protocols we speak; a provider without one (gemini, cohere) cannot answer yet.
    enum Wire: String, Sendable {
        case openAICompatible = "openai-compatible"
        case anthropic
    }

    let name: String
    let prefix: String
    let wire: Wire?
    let config: HTTPProviderConfig?
    /// `<PREFIX>_CONTEXT_TOKENS`, when set.
    let contextTokens: Int?

    /// A base URL or a key was given, so the provider may be asked.
    var isConfigured: Bool { config?.isConfigured ?? false }

    /// A client for one call.
    func client() -> (any StreamingChatProvider)? {
        guard let wire, let config else { return nil }
        switch wire {
        case .openAICompatible: return OpenAICompatibleProvider(config: config)
        case .anthropic: return AnthropicProvider(config: config)
        }
    }
}

/// What the sessions service reads from the environment to answer as an agent.
///
/// Per provider `<PREFIX>_BASE_URL`, `_API_KEY`, `_MODEL`, `_TIMEOUT_MS`,
/// `_CONNECT_TIMEOUT_MS`, `_RETRIES`, `_RETRY_BASE_MS`, `_RETRY_MAX_MS`, `_MAX_OUTPUT_TOKENS`
/// (the numbers fall back to `PROVIDER_*`) and `_CONTEXT_TOKENS`. A provider is usable once a
/// key or a base URL is set; keys are never logged.
struct ReplyConfig: Sendable {
    struct Known: Sendable {
        let name: String
        let prefix: String
        let wire: ChatProviderEntry.Wire?
        let baseURL: String
        let model: String
    }

    /// The spec's provider enum, mapped onto the protocols we speak.
    static let known: [Known] = [
        Known(
            name: "openai", prefix: "OPENAI", wire: .openAICompatible,
            baseURL: "https://api.openai.com/v1", model: "gpt-4o-mini"),
        Known(
            name: "anthropic", prefix: "ANTHROPIC", wire: .anthropic,
            baseURL: "https://api.anthropic.com", model: "claude-3-5-sonnet-latest"),
        Known(
            name: "mistral", prefix: "MISTRAL", wire: .openAICompatible,
            baseURL: "https://api.mistral.ai/v1", model: "mistral-small-latest"),
        Known(
            name: "groq", prefix: "GROQ", wire: .openAICompatible,
            baseURL: "https://api.groq.com/openai/v1", model: "llama-3.1-8b-instant"),
        Known(
            name: "xai", prefix: "XAI", wire: .openAICompatible, baseURL: "https://api.x.ai/v1",
            model: "grok-2-latest"),
        Known(
            name: "huggingface", prefix: "HUGGINGFACE", wire: .openAICompatible,
            baseURL: "https://router.huggingface.co/v1",
            model: "meta-llama/Llama-3.1-8B-Instruct"),
        // TODO: gemini and cohere have their own protocols; they are refused with 400 until then.
        Known(name: "gemini", prefix: "GEMINI", wire: nil, baseURL: "", model: ""),
        Known(name: "cohere", prefix: "COHERE", wire: nil, baseURL: "", model: ""),
    ]

    let providers: [String: ChatProviderEntry]
    /// `CONTEXT_TOKENS`: a model's context window when nothing more specific is set.
    let contextTokens: Int
    /// `CONTEXT_TOKENS_BY_MODEL`: `model=tokens,...`, the most specific setting.
    let modelContextTokens: [String: Int]
    /// `RESPOND_TIMEOUT_MS`: the gateway's deadline for a respond request (read by both).
    let respondTimeoutMs: Int
    /// `RESPOND_WORKERS`: threads generating replies, apart from the other commands' workers.
    let respondWorkers: Int
    /// `RESPOND_CHUNK_TTL_MS`: how long a streamed reply's chunks stay in Redis.
    let chunkTTLms: Int
    let offline: OfflineChatProvider
    let redis: RedisAddress

    init(_ env: Environment) {
        var providers: [String: ChatProviderEntry] = [:]
        for known in ReplyConfig.known {
            let contextTokens = env.values["\(known.prefix)_CONTEXT_TOKENS"].flatMap { Int($0) }
            let config =
                known.wire == nil
                ? nil
                : HTTPProviderConfig(
                    env, prefix: known.prefix, fallbackPrefix: "PROVIDER",
                    defaultBaseURL: known.baseURL, defaultModel: known.model)
            providers[known.name] = ChatProviderEntry(
                name: known.name, prefix: known.prefix, wire: known.wire, config: config,
                contextTokens: contextTokens.map { max(256, $0) })
        }
        self.providers = providers
        contextTokens = max(256, env.int("CONTEXT_TOKENS", 8000))
        var byModel: [String: Int] = [:]
        for item in env.string("CONTEXT_TOKENS_BY_MODEL", "").split(separator: ",") {
            guard let equals = item.lastIndex(of: "="),
                let tokens = Int(item[item.index(after: equals)...])
            else { continue }
            let model = item[..<equals].trimmingWhitespace
            if !model.isEmpty { byModel[model] = max(256, tokens) }
        }
        modelContextTokens = byModel
        respondTimeoutMs = max(1000, env.int("RESPOND_TIMEOUT_MS", 60_000))
        respondWorkers = max(1, env.int("RESPOND_WORKERS", 4))
        chunkTTLms = max(10_000, env.int("RESPOND_CHUNK_TTL_MS", 120_000))
        offline = OfflineChatProvider(pieceDelayMs: max(0, env.int("OFFLINE_PIECE_DELAY_MS", 20)))
        redis = RedisAddress(url: env.string("REDIS_URL", "redis://127.0.0.1:6379"))
    }

    /// The context window of a model: by model, else by provider, else `CONTEXT_TOKENS`.
    func contextTokens(provider: String, model: String) -> Int {
        modelContextTokens[model] ?? providers[provider]?.contextTokens ?? contextTokens
    }

    /// The longest one provider call may take with its retries.
    var slowestCallMs: Int {
        providers.values.compactMap { $0.config?.worstCaseMs }.max() ?? 60_000
    }

    /// A respond command may outlive its deadline by one running call (it is finished and
    /// stored, not cut off); a consumer takes it over only after this much silence.
    var claimIdleMs: Int { respondTimeoutMs + slowestCallMs + 30_000 }

    /// For the start-up log line; keys are masked.
    var summary: String {
        let configured = ReplyConfig.known.compactMap { known -> String? in
            guard let entry = providers[known.name], let config = entry.config,
                entry.isConfigured
            else { return nil }
            return "\(known.name)=[\(config.summary)]"
        }
        return "respondTimeoutMs=\(respondTimeoutMs) respondWorkers=\(respondWorkers)"
            + " contextTokens=\(contextTokens) providers="
            + (configured.isEmpty ? "none (offline answers)" : configured.joined(separator: " "))
    }
}
