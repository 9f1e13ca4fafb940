import Core
import FoundationEssentials
import JSONKit

/// The chat completions protocol that OpenAI, Mistral, Groq, xAI and local servers
/// (llama.cpp, vLLM, Ollama) share: `POST {baseURL}/chat/completions` with a bearer key.
/// `baseURL` includes the version, e.g. `https://api.openai.com/v1`. Streamed answers:
/// `ChatStreaming.swift`.
public struct OpenAICompatibleProvider: ChatProvider {
    public let name = "openai-compatible"
    public let config: HTTPProviderConfig

    public init(config: HTTPProviderConfig) { self.config = config }

    public var defaultModel: String { config.model }

    /// The request body; `stream` asks for Server-Sent Events with the usage at the end.
    func body(_ request: ChatRequest, stream: Bool) -> Document {
        let model = request.model ?? config.model
        var messages: [Value] = []
        if let system = request.system {
            messages.append(["role": "system", "content": .string(system)])
        }
        for message in request.messages {
            messages.append(["role": .string(message.role), "content": .string(message.content)])
        }
        var body: Document = [
            "model": .string(model), "messages": .array(messages), "stream": .bool(stream),
        ]
        // TODO: a switch per provider for servers that refuse `stream_options` (none seen yet).
        if stream { body["stream_options"] = ["include_usage": true] }
        if let temperature = request.temperature { body["temperature"] = .double(temperature) }
        body["max_tokens"] = .int64(Int64(request.maxTokens ?? config.maxOutputTokens))
        return body
    }

    var headers: [(String, String)] {
        config.apiKey.isEmpty ? [] : [("Authorization", "Bearer \(config.apiKey)")]
    }

    public func complete(_ request: ChatRequest) throws(ProviderError) -> ChatCompletion {
        let started = Timestamp.now().milliseconds
        let model = request.model ?? config.model
        let body = body(request, stream: false)
        let caller = RetryingCaller(
            provider: name, config: config, errorMessage: ProviderJSON.errorMessage)
        let (answer, attempts) = try caller.post(
            "/chat/completions", headers: headers, body: JSONWriter.bytes(.document(body)))

        let reply = try ProviderJSON.object(answer.body, provider: name, attempts: attempts)
        guard let choice = reply["choices"]?.arrayValue?.first?.documentValue,
            let text = choice.value(at: "message.content")?.stringValue
        else {
            throw ProviderError(
                .malformed, provider: name, status: answer.status,
                message: "the answer has no choices[0].message.content string", attempts: attempts)
        }
        let usage: TokenUsage
        if let input = reply.value(at: "usage.prompt_tokens")?.intValue,
            let output = reply.value(at: "usage.completion_tokens")?.intValue
        {
            usage = TokenUsage(input: Int(input), output: Int(output), estimated: false)
        } else {
            usage = .estimate(input: request.messages.map(\.content).joined(), output: text)
        }
        return ChatCompletion(
            text: text, provider: name, model: reply["model"]?.stringValue ?? model, usage: usage,
            finishReason: choice["finish_reason"]?.stringValue ?? "stop", attempts: attempts,
            durationMs: Int(Timestamp.now().milliseconds - started))
    }
}

/// Anthropic's messages API: `POST {baseURL}/v1/messages` with `x-api-key` and
/// `anthropic-version`; `baseURL` is `https://api.anthropic.com` by default.
public struct AnthropicProvider: ChatProvider {
    public let name = "anthropic"
    public let config: HTTPProviderConfig
    public static let apiVersion = "2023-06-01"

    public init(config: HTTPProviderConfig) { self.config = config }

    public var defaultModel: String { config.model }

    /// The request body; `stream` asks for the messages API's Server-Sent Events.
    func body(_ request: ChatRequest, stream: Bool) -> Document {
        let model = request.model ?? config.model
        // The API takes the system prompt apart and wants the conversation to open with the user.
        var system = request.system.map { [$0] } ?? []
        var messages: [Value] = []
        for message in request.messages {
            if message.role == "system" {
                system.append(message.content)
                continue
            }
            messages.append(["role": .string(message.role), "content": .string(message.content)])
        }
        var body: Document = [
            "model": .string(model),
            "max_tokens": .int64(Int64(request.maxTokens ?? config.maxOutputTokens)),
        ]
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        body["messages"] = .array(messages)
        if let temperature = request.temperature {
            body["temperature"] = .double(min(1, temperature))
        }
        if stream { body["stream"] = true }
        return body
    }

    var headers: [(String, String)] {
        [("x-api-key", config.apiKey), ("anthropic-version", AnthropicProvider.apiVersion)]
    }

    public func complete(_ request: ChatRequest) throws(ProviderError) -> ChatCompletion {
        let started = Timestamp.now().milliseconds
        let model = request.model ?? config.model
        let body = body(request, stream: false)
        let caller = RetryingCaller(
            provider: name, config: config, errorMessage: ProviderJSON.errorMessage)
        let (answer, attempts) = try caller.post(
            "/v1/messages", headers: headers, body: JSONWriter.bytes(.document(body)))

        let reply = try ProviderJSON.object(answer.body, provider: name, attempts: attempts)
        guard let blocks = reply["content"]?.arrayValue else {
            throw ProviderError(
                .malformed, provider: name, status: answer.status,
                message: "the answer has no content array", attempts: attempts)
        }
        let texts = blocks.compactMap { block -> String? in
            guard let doc = block.documentValue, doc["type"]?.stringValue == "text" else {
                return nil
            }
            return doc["text"]?.stringValue
        }
        guard !texts.isEmpty else {
            throw ProviderError(
                .malformed, provider: name, status: answer.status,
                message: "the answer has no text block", attempts: attempts)
        }
        let text = texts.joined()
        let usage: TokenUsage
        if let input = reply.value(at: "usage.input_tokens")?.intValue,
            let output = reply.value(at: "usage.output_tokens")?.intValue
        {
            usage = TokenUsage(input: Int(input), output: Int(output), estimated: false)
        } else {
            usage = .estimate(input: request.messages.map(\.content).joined(), output: text)
        }
        let stop = reply["stop_reason"]?.stringValue ?? "end_turn"
        return ChatCompletion(
            text: text, provider: name, model: reply["model"]?.stringValue ?? model, usage: usage,
            finishReason: stop == "max_tokens" ? "length" : "stop", attempts: attempts,
            durationMs: Int(Timestamp.now().milliseconds - started))
    }
}

/// Reading providers' JSON answers.
enum ProviderJSON {
    static func object(_ bytes: [UInt8], provider: String, attempts: Int) throws(ProviderError)
        -> Document
    {
        do {
            return try JSONParser.parseObject(bytes)
        } catch {
            throw ProviderError(
                .malformed, provider: provider,
                message: "the answer is not a JSON object (\(error.message))", attempts: attempts)
        }
    }

    /// `{"error": {"message": ...}}` (both protocols) or `{"error": "..."}` (some local servers).
    static let errorMessage: @Sendable ([UInt8]) -> String? = { bytes in
        guard let doc = try? JSONParser.parseObject(bytes) else { return nil }
        return doc.value(at: "error.message")?.stringValue ?? doc["error"]?.stringValue
            ?? doc["message"]?.stringValue
    }
}
