import Core
import Dispatch
import FoundationEssentials
import Glibc

/// One message of a conversation sent to a model.
public struct ChatMessage: Sendable, Equatable {
    public let role: String
    public let content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// What to ask a model: a system prompt, the conversation, and sampling limits.
public struct ChatRequest: Sendable {
    public var model: String?
    public var system: String?
    public var messages: [ChatMessage]
    public var temperature: Double?
    public var maxTokens: Int?

    public init(
        model: String? = nil, system: String? = nil, messages: [ChatMessage],
        temperature: Double? = nil, maxTokens: Int? = nil
    ) {
        self.model = model
        self.system = system
        self.messages = messages
        self.temperature = temperature
        self.maxTokens = maxTokens
    }
}

/// Tokens a call used: as the provider reported them, or an estimate (`estimated`).
public struct TokenUsage: Sendable, Equatable {
    public let input: Int
    public let output: Int
    public let estimated: Bool

    public init(input: Int, output: Int, estimated: Bool) {
        self.input = input
        self.output = output
        self.estimated = estimated
    }

    public var total: Int { input + output }

    public static let zero = TokenUsage(input: 0, output: 0, estimated: false)

    /// About four characters a token, for providers that report nothing.
    public static func estimate(input: String, output: String) -> TokenUsage {
        TokenUsage(
            input: (input.unicodeScalars.count + 3) / 4,
            output: (output.unicodeScalars.count + 3) / 4,
            estimated: true)
    }
}

/// A model's answer.
public struct ChatCompletion: Sendable {
    public let text: String
    public let provider: String
    public let model: String
    public let usage: TokenUsage
    /// `stop`, `length` (cut off at the token limit) or what the provider said.
    public let finishReason: String
    /// HTTP attempts it took, retries included.
    public let attempts: Int
    public let durationMs: Int
}

/// Why a provider gave no usable answer. `movesToNextProvider` says whether another provider
/// (or a later retry) may do better: timeouts, connection failures, 429 and 5xx do; a request
/// the provider refused (another 4xx) or an answer we cannot use do not.
public struct ProviderError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notConfigured, timeout, connection, rateLimited, server, rejected, malformed
        /// The answer parsed but is not what was asked for (for example, not the file shape).
        case invalidOutput
    }

    public let kind: Kind
    public let provider: String
    public let status: Int?
    public let message: String
    public let attempts: Int

    public init(
        _ kind: Kind, provider: String, status: Int? = nil, message: String, attempts: Int = 1
    ) {
        self.kind = kind
        self.provider = provider
        self.status = status
        self.message = message
        self.attempts = attempts
    }

    public var movesToNextProvider: Bool {
        [.timeout, .connection, .rateLimited, .server].contains(kind)
    }

    public var description: String {
        let tries = attempts > 1 ? " after \(attempts) attempts" : ""
        return "\(provider): \(message)\(tries)"
    }
}

/// A chat model behind some wire protocol. Implementations are thread-safe.
public protocol ChatProvider: Sendable {
    /// The protocol's name as the API spells it (`openai-compatible`, `anthropic`).
    var name: String { get }
    var defaultModel: String { get }
    func complete(_ request: ChatRequest) throws(ProviderError) -> ChatCompletion
}

/// Where a network provider lives and how patiently to call it, from the environment.
///
/// With the prefix `CANVAS` it reads `CANVAS_BASE_URL`, `CANVAS_API_KEY`, `CANVAS_MODEL`,
/// `CANVAS_TIMEOUT_MS`, `CANVAS_CONNECT_TIMEOUT_MS`, `CANVAS_RETRIES`, `CANVAS_RETRY_BASE_MS`,
/// `CANVAS_RETRY_MAX_MS` and `CANVAS_MAX_OUTPUT_TOKENS`; a setting missing under the prefix is
/// looked up under `fallbackPrefix`.
public struct HTTPProviderConfig: Sendable {
    public var baseURL: String
    public var apiKey: String
    public var model: String
    public var timeoutMs: Int
    public var connectTimeoutMs: Int
    /// Retries after the first attempt, for 429, 5xx and connection failures.
    public var retries: Int
    public var retryBaseMs: Int
    /// The longest wait before a retry; a `Retry-After` asking for more ends the call instead.
    public var retryMaxMs: Int
    public var maxOutputTokens: Int
    /// True when a base URL or a key was given, so the provider may be chosen.
    public var isConfigured: Bool

    public init(
        baseURL: String, apiKey: String = "", model: String, timeoutMs: Int = 60_000,
        connectTimeoutMs: Int = 5000, retries: Int = 2, retryBaseMs: Int = 500,
        retryMaxMs: Int = 10_000,
        maxOutputTokens: Int = 8000, isConfigured: Bool = true
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.model = model
        self.timeoutMs = timeoutMs
        self.connectTimeoutMs = connectTimeoutMs
        self.retries = retries
        self.retryBaseMs = retryBaseMs
        self.retryMaxMs = retryMaxMs
        self.maxOutputTokens = maxOutputTokens
        self.isConfigured = isConfigured
    }

    public init(
        _ env: Environment, prefix: String, fallbackPrefix: String? = nil, defaultBaseURL: String,
        defaultModel: String
    ) {
        func text(_ name: String) -> String? {
            for p in [prefix, fallbackPrefix].compactMap({ $0 }) {
                if let value = env.values["\(p)_\(name)"], !value.isEmpty { return value }
            }
            return nil
        }
        func number(_ name: String, _ fallback: Int, min: Int) -> Int {
            Swift.max(min, text(name).flatMap { Int($0) } ?? fallback)
        }
        let explicitURL = env.values["\(prefix)_BASE_URL"].map { !$0.isEmpty } ?? false
        let key = env.values["\(prefix)_API_KEY"] ?? ""
        self.init(
            baseURL: explicitURL
                ? env.string("\(prefix)_BASE_URL", defaultBaseURL) : defaultBaseURL,
            apiKey: key, model: env.string("\(prefix)_MODEL", defaultModel),
            timeoutMs: number("TIMEOUT_MS", 60_000, min: 100),
            connectTimeoutMs: number("CONNECT_TIMEOUT_MS", 5000, min: 100),
            retries: number("RETRIES", 2, min: 0),
            retryBaseMs: number("RETRY_BASE_MS", 500, min: 1),
            retryMaxMs: number("RETRY_MAX_MS", 10_000, min: 1),
            maxOutputTokens: number("MAX_OUTPUT_TOKENS", 8000, min: 1),
            isConfigured: explicitURL || !key.isEmpty)
    }

    /// The longest a call with all its retries can take, for leases and deadlines.
    public var worstCaseMs: Int {
        (retries + 1) * (timeoutMs + connectTimeoutMs) + retries * retryMaxMs
    }

    /// For the start-up log line: the key is never shown.
    public var summary: String {
        "baseURL=\(baseURL) model=\(model) key=\(apiKey.isEmpty ? "none" : "***")"
            + " timeoutMs=\(timeoutMs) retries=\(retries) configured=\(isConfigured)"
    }

    /// `baseURL` joined with a path, without doubling the slash.
    public func url(_ path: String) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }
}

/// Sends a JSON request with the retry rules every network provider shares: 429, 5xx and
/// connection failures are retried with exponential backoff and jitter (a `Retry-After` in
/// seconds is honoured when it fits `retryMaxMs`); a timeout or another 4xx ends the call.
struct RetryingCaller {
    let provider: String
    let config: HTTPProviderConfig
    /// Pulls the provider's own error message out of an error body.
    let errorMessage: @Sendable ([UInt8]) -> String?

    func post(_ path: String, headers: [(String, String)], body: [UInt8]) throws(ProviderError)
        -> (HTTPAnswer, Int)
    {
        let call = HTTPCall(
            url: config.url(path), headers: headers + [("Content-Type", "application/json")],
            body: body, timeoutMs: config.timeoutMs, connectTimeoutMs: config.connectTimeoutMs)
        var attempt = 0
        while true {
            attempt += 1
            var waitMs = backoff(attempt)
            let answer: HTTPAnswer
            do {
                answer = try HTTPTransport.send(call)
            } catch {
                let failure = transportFailure(error, attempt: attempt)
                guard failure.kind == .connection, attempt <= config.retries else { throw failure }
                usleep(UInt32(min(waitMs, config.retryMaxMs)) * 1000)
                continue
            }
            let failure: ProviderError
            switch answer.status {
            case 200..<300:
                return (answer, attempt)
            case 429:
                failure = ProviderError(
                    .rateLimited, provider: provider, status: 429,
                    message: "rate limited (429)\(detail(answer))", attempts: attempt)
                if let seconds = answer.headers["retry-after"].flatMap({ Int($0) }) {
                    guard seconds * 1000 <= config.retryMaxMs else { throw failure }
                    waitMs = max(waitMs, seconds * 1000)
                }
            case 500..<600:
                failure = ProviderError(
                    .server, provider: provider, status: answer.status,
                    message: "server error (\(answer.status))\(detail(answer))", attempts: attempt)
            default:
                throw ProviderError(
                    .rejected, provider: provider, status: answer.status,
                    message: "request refused (\(answer.status))\(detail(answer))",
                    attempts: attempt)
            }
            guard attempt <= config.retries else { throw failure }
            usleep(UInt32(min(waitMs, config.retryMaxMs)) * 1000)
        }
    }

    private func transportFailure(_ error: TransportError, attempt: Int) -> ProviderError {
        switch error.kind {
        case .timeout:
            return ProviderError(
                .timeout, provider: provider, message: error.message, attempts: attempt)
        case .connection:
            return ProviderError(
                .connection, provider: provider, message: error.message, attempts: attempt)
        case .tooLarge, .other:
            return ProviderError(
                .malformed, provider: provider, message: error.message, attempts: attempt)
        }
    }

    /// base, 2x base, 4x base ... capped, with up to 25% jitter so clients do not retry in step.
    func backoff(_ attempt: Int) -> Int {
        let exponent = min(attempt - 1, 16)
        let plain = min(config.retryMaxMs, config.retryBaseMs << exponent)
        return plain + Int.random(in: 0...(plain / 4))
    }

    private func detail(_ answer: HTTPAnswer) -> String {
        guard let message = errorMessage(answer.body), !message.isEmpty else { return "" }
        return ": " + String(message.unicodeScalars.prefix(200).map(Character.init))
    }
}
