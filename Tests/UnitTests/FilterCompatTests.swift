import Bus
import Core
import Testing

@testable import MongoKit

@Suite("Filters rewritten for the stand-in keep their meaning")
struct FilterCompatTests {
    @Test func objectIdEqualityBecomesIn() {
        let id = ObjectId()
        let rewritten = FilterCompat.rewrite(["userId": .objectId(id), "_id": .objectId(id)])
        #expect(rewritten["userId"] == ["$in": [.objectId(id)]])
        #expect(rewritten["_id"] == .objectId(id))
    }

    @Test func orBesideOtherFieldsIsWrappedInAnd() {
        let rewritten = FilterCompat.rewrite(["k": "a", "$or": [["x": 1], ["y": 2]]])
        #expect(rewritten == ["$and": [["k": "a"], ["$or": [["x": 1], ["y": 2]]]]])
        let alone = FilterCompat.rewrite(["$or": [["x": 1]]])
        #expect(alone == ["$or": [["x": 1]]])
    }
}

@Suite("Page cursors")
struct PageCursorTests {
    @Test func anyTextSurvivesARoundTrip() throws {
        let parts = ["Zed|one", "a\"b\\c", "日本 😀", ""]
        let cursor = Bus.PageCursor.encode(parts)
        #expect(try Bus.PageCursor.decode(cursor, parts: 4) == parts)
        #expect(throws: APIError.self) { try Bus.PageCursor.decode(cursor, parts: 2) }
        #expect(throws: APIError.self) { try Bus.PageCursor.decode("not-a-cursor!", parts: 2) }
    }
}
