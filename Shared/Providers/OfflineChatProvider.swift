import Core
import Dispatch
import FoundationEssentials
import Glibc

/// Answers without any network: a fixed text built from the last user message, the same
/// every time, which says that it comes from the offline provider. It lets a machine with no
/// provider keys run the whole chat flow (`make run`, the demo, tests).
public struct OfflineChatProvider: StreamingChatProvider {
    public let name = "offline"
    public let defaultModel = "offline"
    /// A pause between streamed pieces, so that streaming can be watched.
    public let pieceDelayMs: Int

    public init(pieceDelayMs: Int = 0) { self.pieceDelayMs = pieceDelayMs }

    /// The answer to a request: deterministic, and it says it is not a model's.
    public static func answer(to request: ChatRequest) -> String {
        let last = request.messages.last { $0.role == "user" }?.content ?? ""
        let words = last.split(whereSeparator: { $0.isWhitespace || $0.isNewline }).count
        var quoted = String(last.unicodeScalars.prefix(160).map(Character.init))
        if quoted.unicodeScalars.count < last.unicodeScalars.count { quoted += "…" }
        quoted = quoted.replacingBytes(of: "\n", with: " ")
        return "This answer comes from the offline provider: no model provider is configured "
            + "on this server, so no AI model was asked. I received your message of \(words) "
            + "word\(words == 1 ? "" : "s"): \"\(quoted)\". Set OPENAI_API_KEY, "
            + "ANTHROPIC_API_KEY or another provider's key (or a local server's base URL) to "
            + "get real answers."
    }

    public func complete(_ request: ChatRequest) throws(ProviderError) -> ChatCompletion {
        reply(request)
    }

    public func stream(_ request: ChatRequest, onText: @escaping @Sendable (String) -> Void)
        throws(ProviderError) -> ChatCompletion
    {
        reply(request, onText: onText)
    }

    /// The answer at once; the offline provider cannot fail.
    public func reply(_ request: ChatRequest) -> ChatCompletion {
        completion(OfflineChatProvider.answer(to: request), request, durationMs: 0)
    }

    /// The answer piece by piece (a word at a time, `pieceDelayMs` apart).
    public func reply(_ request: ChatRequest, onText: @escaping @Sendable (String) -> Void)
        -> ChatCompletion
    {
        let started = Timestamp.now().milliseconds
        let text = OfflineChatProvider.answer(to: request)
        for piece in OfflineChatProvider.pieces(text) {
            onText(piece)
            if pieceDelayMs > 0 { usleep(UInt32(pieceDelayMs) * 1000) }
        }
        return completion(
            text, request, durationMs: Int(Timestamp.now().milliseconds - started))
    }

    /// Word by word, each with the spaces before it, so the pieces join to the text.
    static func pieces(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        for character in text {
            if character == " ", !current.isEmpty, current.last != " " {
                pieces.append(current)
                current = ""
            }
            current.append(character)
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }

    private func completion(_ text: String, _ request: ChatRequest, durationMs: Int)
        -> ChatCompletion
    {
        let input = ([request.system ?? ""] + request.messages.map(\.content)).joined()
        return ChatCompletion(
            text: text, provider: name, model: defaultModel,
            usage: .estimate(input: input, output: text), finishReason: "stop", attempts: 1,
            durationMs: durationMs)
    }
}
