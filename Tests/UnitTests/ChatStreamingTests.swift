import Bus
import Core
import Providers
import Testing

@Suite("Streamed chat answers: event parsing, the offline provider, the respond flag")
struct ChatStreamingTests {
    @Test func eventsSplitAcrossPiecesAreJoined() {
        var parser = ServerSentEventParser()
        var events = parser.feed(Array("event: delta\r\ndata: {\"a\"".utf8))
        #expect(events.isEmpty)
        events = parser.feed(Array(":1}\r\n\r\n: a comment\n\ndata: one\ndata: two\n".utf8))
        #expect(events == [.init(name: "delta", data: "{\"a\":1}")])
        events = parser.feed(Array("\ndata: [DONE]\n\n".utf8))
        #expect(events == [.init(name: nil, data: "one\ntwo"), .init(name: nil, data: "[DONE]")])
    }

    @Test func offlineAnswersAreTheSameEveryTimeAndStreamInPiecesThatJoin() throws {
        let provider = OfflineChatProvider()
        let request = ChatRequest(
            system: "You are a test.", messages: [ChatMessage(role: "user", content: "Hi there")])
        let pieces = Pieces()
        let streamed = provider.reply(request) { pieces.add($0) }
        let plain = provider.reply(request)
        #expect(streamed.text == plain.text)
        #expect(pieces.all.count > 5)
        #expect(pieces.all.joined() == plain.text)
        #expect(plain.text.contains("offline provider"))
        #expect(plain.text.contains("\"Hi there\""))
        #expect(plain.usage.estimated)
    }

    @Test(arguments: [
        (#"{"role":"user","content":"x","respond":true}"#, true),
        (#"{"role":"user","content":"x","respond":false}"#, false),
        (#"{"role":"user","content":"x","respond":"true"}"#, false),
        (#"{"role":"user","content":"respond: true"}"#, false),
        (#"{"role":"user","content":"x","\u0072espond":true}"#, true),
        (#"{"role":"user","content":"x"}"#, false),
        (#"not json "respond""#, false),
    ])
    func theRespondFlagIsReadFromTheBody(body: String, asked: Bool) {
        let flag = Route.LongRunning(flag: "respond", service: "s", type: "t")
        #expect(flag.isAsked(by: Array(body.utf8)) == asked)
    }

    @Test func chunkEntriesDecode() {
        let decoded = ReplyChunks.decode([
            .string(Array("event".utf8)), .string(Array("delta".utf8)),
            .string(Array("data".utf8)), .string(Array("{\"text\":\"a\"}".utf8)),
        ])
        #expect(decoded?.event == "delta")
        #expect(decoded?.data == Array("{\"text\":\"a\"}".utf8))
        #expect(ReplyChunks.key("abc") == "uc:chunks:abc")
    }
}

/// Collects streamed pieces (the callback runs on the calling thread).
private final class Pieces: @unchecked Sendable {
    private(set) var all: [String] = []
    func add(_ piece: String) { all.append(piece) }
}
