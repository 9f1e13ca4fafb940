import Bus
import Core
import RedisKit
import Testing

@Suite("Commands as stream entries")
struct CommandFieldsTests {
    private func decoded(_ command: Command) -> Command? {
        Command(streamId: "1-0", fields: command.fields.map { RedisReply.string($0.bytes) })
    }

    private func names(_ command: Command) -> [String] {
        stride(from: 0, to: command.fields.count, by: 2).map {
            String(decoding: command.fields[$0].bytes, as: UTF8.self)
        }
    }

    @Test func aCommandWithDefaultsCarriesOnlyWhatItNeedsAndReadsBackTheSame() throws {
        let user = ObjectId()
        let command = Command(
            id: "c1", requestId: "r1", type: "ping", userId: user, role: "user", params: [:],
            body: [], replyKey: "uc:reply:g", deadline: 42)
        #expect(names(command) == ["id", "rid", "type", "user", "reply", "deadline"])
        let back = try #require(decoded(command))
        #expect(back.id == "c1" && back.requestId == "r1" && back.type == "ping")
        #expect(back.userId == user && back.role == "user" && back.params.isEmpty)
        #expect(back.body.isEmpty && back.replyKey == "uc:reply:g" && back.deadline == 42)
        #expect(!back.keyed && back.chunkKey == nil && back.streamId == "1-0")
    }

    @Test func aRequestIdThatIsTheCommandIdIsLeftOutAndReadsBackTheSame() throws {
        let command = Command(
            id: "c3", requestId: "c3", type: "ping", userId: nil, role: "user", params: [:],
            body: [], replyKey: "uc:reply:g", deadline: 9)
        #expect(names(command) == ["id", "type", "reply", "deadline"])
        let back = try #require(decoded(command))
        #expect(back.id == "c3" && back.requestId == "c3")
    }

    @Test func everyFieldThatIsSetReadsBackTheSame() throws {
        var command = Command(
            id: "c2", requestId: "r2", type: "sessions.create", userId: nil, role: "admin",
            params: ["b": "2", "a": "1"], body: Array(#"{"name":"x"}"#.utf8),
            replyKey: "uc:reply:g", deadline: 7)
        command.keyed = true
        command.chunkKey = "uc:chunks:r2"
        let back = try #require(decoded(command))
        #expect(back.userId == nil && back.role == "admin" && back.params == ["a": "1", "b": "2"])
        #expect(back.body == Array(#"{"name":"x"}"#.utf8) && back.keyed)
        #expect(back.chunkKey == "uc:chunks:r2")
    }
}
