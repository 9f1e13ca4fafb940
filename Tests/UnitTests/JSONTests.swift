import Core
import JSONKit
import Testing

@Suite("Strict JSON parsing")
struct JSONTests {
    @Test(arguments: [
        #"{"name":"#, "", #"{"name":"a",}"#, #"{"name":"a"}{"name":"b"}"#,
        #"{"name":"a","name":"b"}"#,
        #"{"temperature":NaN}"#, #"{"temperature":1e400}"#, "\u{FEFF}{\"name\":\"a\"}",
        #"{"a":"\ud83d"}"#,
    ])
    func malformedBodiesAreRefused(body: String) {
        #expect(throws: APIError.self) { try JSONParser.parseObject(Array(body.utf8)) }
    }

    @Test func deepNestingIsRefusedWithoutOverflowingTheStack() {
        let body = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: APIError.self) { try JSONParser.parse(body) }
    }

    @Test func shapesOtherThanObjectsAreRefused() {
        for body in ["null", "[]", "\"str\""] {
            #expect(throws: APIError.self) { try JSONParser.parseObject(Array(body.utf8)) }
        }
    }

    @Test func escapedAndRawUnicodeParseToTheSameText() throws {
        let escaped = try JSONParser.parseObject(Array(#"{"n":"\ud83d\ude00 \u0000x"}"#.utf8))
        let raw = try JSONParser.parseObject(Array("{\"n\":\"😀 \\u0000x\"}".utf8))
        #expect(escaped["n"]?.stringValue == "😀 \u{0}x")
        #expect(escaped == raw)
    }

    @Test func writerRoundTripsStringsAndNumbers() throws {
        let doc: Document = ["t": .double(0.7), "m": .int64(4000), "s": .string("a\"b\\c\n\u{1}😀")]
        let text = JSONWriter.string(doc)
        #expect(text.contains(#""t":0.7"#))
        #expect(text.contains(#""m":4000"#))
        #expect(
            try JSONParser.parseObject(Array(text.utf8)) == [
                "t": .double(0.7), "m": .int64(4000), "s": .string("a\"b\\c\n\u{1}😀"),
            ])
    }
}
