import Core
import Dispatch
import FoundationEssentials
import Glibc
import JSONKit

/// A chat provider that hands its answer over piece by piece while it is generated.
public protocol StreamingChatProvider: ChatProvider {
    /// Calls `onText` with each piece of the answer, in order, on the calling thread; the
    /// completion's text is all the pieces joined. A failure after some pieces were handed
    /// over is thrown as it is (no retry would repeat them): the caller decides what to do.
    func stream(_ request: ChatRequest, onText: @escaping @Sendable (String) -> Void)
        throws(ProviderError) -> ChatCompletion
}

/// Splits a `text/event-stream` body into events as its bytes arrive.
public struct ServerSentEventParser: Sendable {
    public struct Event: Sendable, Equatable {
        public let name: String?
        public let data: String

        public init(name: String?, data: String) {
            self.name = name
            self.data = data
        }
    }

    private var buffer: [UInt8] = []
    private var name: String?
    private var data: [String] = []

    public init() {}

    /// The events completed by these bytes (an event ends at a blank line).
    public mutating func feed(_ bytes: [UInt8]) -> [Event] {
        buffer.append(contentsOf: bytes)
        var events: [Event] = []
        var start = 0
        while let end = buffer[start...].firstIndex(of: 0x0A) {
            var line = buffer[start..<end]
            if line.last == 0x0D { line = line.dropLast() }
            start = end + 1
            let text = String(decoding: line, as: UTF8.self)
            if text.isEmpty {
                if !data.isEmpty || name != nil {
                    events.append(Event(name: name, data: data.joined(separator: "\n")))
                }
                name = nil
                data = []
            } else if text.hasPrefix(":") {
                continue
            } else if let colon = text.firstIndex(of: ":") {
                var value = text[text.index(after: colon)...]
                if value.first == " " { value = value.dropFirst() }
                switch text[..<colon] {
                case "event": name = String(value)
                case "data": data.append(String(value))
                default: break
                }
            }
        }
        buffer.removeFirst(start)
        return events
    }
}

/// What a streamed answer said so far, in either protocol.
final class StreamedAnswer: @unchecked Sendable {
    enum Wire { case openAI, anthropic }

    let wire: Wire
    private var parser = ServerSentEventParser()
    private(set) var text = ""
    private(set) var done = false
    private(set) var malformed: String?
    private(set) var serverError: String?
    private(set) var model: String?
    private(set) var finishReason: String?
    private(set) var inputTokens: Int?
    private(set) var outputTokens: Int?
    private(set) var emitted = false
    let onText: @Sendable (String) -> Void

    init(wire: Wire, onText: @escaping @Sendable (String) -> Void) {
        self.wire = wire
        self.onText = onText
    }

    /// Takes a piece of the body; false stops the transfer (the answer cannot be used).
    func take(_ bytes: [UInt8]) -> Bool {
        var pieces: [String] = []
        for event in parser.feed(bytes) {
            guard malformed == nil, serverError == nil, !done else { break }
            switch wire {
            case .openAI: openAI(event, &pieces)
            case .anthropic: anthropic(event, &pieces)
            }
        }
        let joined = pieces.joined()
        if !joined.isEmpty {
            text += joined
            emitted = true
            onText(joined)
        }
        return malformed == nil && serverError == nil
    }

    private func json(_ data: String) -> Document? {
        do {
            return try JSONParser.parseObject(Array(data.utf8))
        } catch {
            malformed = "a streamed event is not a JSON object (\(error.message))"
            return nil
        }
    }

    private func openAI(_ event: ServerSentEventParser.Event, _ pieces: inout [String]) {
        if event.data == "[DONE]" {
            done = true
            return
        }
        guard let doc = json(event.data) else { return }
        if doc["error"] != nil {
            serverError =
                doc.value(at: "error.message")?.stringValue ?? doc["error"]?.stringValue
                ?? "the provider reported an error"
            return
        }
        if let name = doc["model"]?.stringValue { model = name }
        if let choice = doc["choices"]?.arrayValue?.first?.documentValue {
            if let piece = choice.value(at: "delta.content")?.stringValue { pieces.append(piece) }
            if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
        }
        if let input = doc.value(at: "usage.prompt_tokens")?.intValue,
            let output = doc.value(at: "usage.completion_tokens")?.intValue
        {
            inputTokens = Int(input)
            outputTokens = Int(output)
        }
    }

    private func anthropic(_ event: ServerSentEventParser.Event, _ pieces: inout [String]) {
        guard let doc = json(event.data) else { return }
        switch doc["type"]?.stringValue ?? event.name ?? "" {
        case "message_start":
            model = doc.value(at: "message.model")?.stringValue ?? model
            if let input = doc.value(at: "message.usage.input_tokens")?.intValue {
                inputTokens = Int(input)
            }
        case "content_block_delta":
            if doc.value(at: "delta.type")?.stringValue == "text_delta",
                let piece = doc.value(at: "delta.text")?.stringValue
            {
                pieces.append(piece)
            }
        case "message_delta":
            if let reason = doc.value(at: "delta.stop_reason")?.stringValue {
                finishReason = reason == "max_tokens" ? "length" : "stop"
            }
            if let output = doc.value(at: "usage.output_tokens")?.intValue {
                outputTokens = Int(output)
            }
        case "message_stop":
            done = true
        case "error":
            serverError =
                doc.value(at: "error.message")?.stringValue ?? "the provider reported an error"
        default:
            break
        }
    }

    var usage: TokenUsage? {
        guard let inputTokens, let outputTokens else { return nil }
        return TokenUsage(input: inputTokens, output: outputTokens, estimated: false)
    }
}

/// Sends a streaming request with the retry rules of `RetryingCaller`, as long as nothing of
/// the answer was handed over yet: 429 (honouring a `Retry-After` that fits), 5xx and
/// connection failures are retried; a timeout or another 4xx ends the call.
// TODO: an idle timeout for streamed answers; `timeoutMs` bounds the whole answer as it is.
struct StreamingCaller {
    let provider: String
    let config: HTTPProviderConfig

    func post(
        _ path: String, headers: [(String, String)], body: [UInt8],
        answer make: () -> StreamedAnswer
    ) throws(ProviderError) -> (StreamedAnswer, Int) {
        let call = HTTPCall(
            url: config.url(path),
            headers: headers + [
                ("Content-Type", "application/json"), ("Accept", "text/event-stream"),
            ],
            body: body, timeoutMs: config.timeoutMs, connectTimeoutMs: config.connectTimeoutMs)
        let retrying = RetryingCaller(
            provider: provider, config: config, errorMessage: ProviderJSON.errorMessage)
        var attempt = 0
        while true {
            attempt += 1
            var waitMs = retrying.backoff(attempt)
            let answer = make()
            let reply: HTTPAnswer
            do {
                reply = try HTTPTransport.send(call) { answer.take($0) }
            } catch {
                if let failure = unusable(answer, attempt: attempt) { throw failure }
                let failure = transportFailure(error, attempt: attempt, partial: answer.emitted)
                guard failure.kind == .connection, !answer.emitted, attempt <= config.retries
                else { throw failure }
                usleep(UInt32(min(waitMs, config.retryMaxMs)) * 1000)
                continue
            }
            let failure: ProviderError
            switch reply.status {
            case 200..<300:
                if let failure = unusable(answer, attempt: attempt) { throw failure }
                guard answer.done else {
                    throw ProviderError(
                        .connection, provider: provider, status: reply.status,
                        message: "the stream ended before the answer was complete",
                        attempts: attempt)
                }
                return (answer, attempt)
            case 429:
                failure = ProviderError(
                    .rateLimited, provider: provider, status: 429,
                    message: "rate limited (429)\(detail(reply))", attempts: attempt)
                if let seconds = reply.headers["retry-after"].flatMap({ Int($0) }) {
                    guard seconds * 1000 <= config.retryMaxMs else { throw failure }
                    waitMs = max(waitMs, seconds * 1000)
                }
            case 500..<600:
                failure = ProviderError(
                    .server, provider: provider, status: reply.status,
                    message: "server error (\(reply.status))\(detail(reply))", attempts: attempt)
            default:
                throw ProviderError(
                    .rejected, provider: provider, status: reply.status,
                    message: "request refused (\(reply.status))\(detail(reply))",
                    attempts: attempt)
            }
            guard attempt <= config.retries, !answer.emitted else { throw failure }
            usleep(UInt32(min(waitMs, config.retryMaxMs)) * 1000)
        }
    }

    /// A stream that said it failed, or that we could not read.
    private func unusable(_ answer: StreamedAnswer, attempt: Int) -> ProviderError? {
        if let message = answer.serverError {
            return ProviderError(
                .server, provider: provider,
                message: "the stream reported an error: \(message)", attempts: attempt)
        }
        if let message = answer.malformed {
            return ProviderError(
                .malformed, provider: provider, message: message, attempts: attempt)
        }
        return nil
    }

    private func transportFailure(_ error: TransportError, attempt: Int, partial: Bool)
        -> ProviderError
    {
        let suffix = partial ? " (after part of the answer)" : ""
        switch error.kind {
        case .timeout:
            return ProviderError(
                .timeout, provider: provider, message: error.message + suffix, attempts: attempt)
        case .connection:
            return ProviderError(
                .connection, provider: provider, message: error.message + suffix,
                attempts: attempt)
        case .tooLarge, .other:
            return ProviderError(
                .malformed, provider: provider, message: error.message + suffix,
                attempts: attempt)
        }
    }

    private func detail(_ answer: HTTPAnswer) -> String {
        guard let message = ProviderJSON.errorMessage(answer.body), !message.isEmpty else {
            return ""
        }
        return ": " + String(message.unicodeScalars.prefix(200).map(Character.init))
    }
}

extension OpenAICompatibleProvider: StreamingChatProvider {
    public func stream(_ request: ChatRequest, onText: @escaping @Sendable (String) -> Void)
        throws(ProviderError) -> ChatCompletion
    {
        try streamCompletion(
            provider: name, config: config, path: "/chat/completions", headers: headers,
            body: body(request, stream: true), wire: .openAI, request: request, onText: onText)
    }
}

extension AnthropicProvider: StreamingChatProvider {
    public func stream(_ request: ChatRequest, onText: @escaping @Sendable (String) -> Void)
        throws(ProviderError) -> ChatCompletion
    {
        try streamCompletion(
            provider: name, config: config, path: "/v1/messages", headers: headers,
            body: body(request, stream: true), wire: .anthropic, request: request, onText: onText)
    }
}

/// Posts a streaming request in either protocol and turns the streamed answer into a
/// completion, estimating the token counts when the provider reported none.
private func streamCompletion(
    provider: String, config: HTTPProviderConfig, path: String, headers: [(String, String)],
    body: Document, wire: StreamedAnswer.Wire, request: ChatRequest,
    onText: @escaping @Sendable (String) -> Void
) throws(ProviderError) -> ChatCompletion {
    let started = Timestamp.now().milliseconds
    let caller = StreamingCaller(provider: provider, config: config)
    let (answer, attempts) = try caller.post(
        path, headers: headers, body: JSONWriter.bytes(.document(body))
    ) { StreamedAnswer(wire: wire, onText: onText) }
    return ChatCompletion(
        text: answer.text, provider: provider,
        model: answer.model ?? request.model ?? config.model,
        usage: answer.usage
            ?? .estimate(input: request.messages.map(\.content).joined(), output: answer.text),
        finishReason: answer.finishReason ?? "stop", attempts: attempts,
        durationMs: Int(Timestamp.now().milliseconds - started))
}
