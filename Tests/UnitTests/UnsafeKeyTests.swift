import Core
import JSONKit
import Testing

@Suite("Keys MongoDB cannot take")
struct UnsafeKeyTests {
    @Test(arguments: [
        (#"{"a":{"":1}}"#, "a."), (#"{"":1}"#, ""), (#"{"a":[{"$x":1}]}"#, "a[0].$x"),
        (#"{"a":{"b.c":1}}"#, "a.b.c"),
    ])
    func emptyOperatorAndDottedKeysAreFoundAtAnyDepth(body: String, path: String) throws {
        let value = try JSONParser.parse(Array(body.utf8))
        #expect(Validator.unsafeKeyPath(in: value, at: "") == path)
    }

    @Test func ordinaryKeysPass() throws {
        let value = try JSONParser.parse(Array(#"{"a":{"b":[{"c":1}]},"é":2}"#.utf8))
        #expect(Validator.unsafeKeyPath(in: value, at: "") == nil)
    }
}
