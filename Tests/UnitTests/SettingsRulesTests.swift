import Bus
import Core
import JSONKit
import Testing

@testable import Settings

@Suite("Settings rules")
struct SettingsRulesTests {
    func body(_ text: String) throws -> Document { try JSONParser.parseObject(Array(text.utf8)) }

    func failedFields(_ text: String) throws -> [String] {
        do {
            _ = try ChatSettingsRules.change(from: try body(text))
            return []
        } catch let error as APIError {
            return error.details.map(\.field)
        }
    }

    @Test func nestedObjectsBecomeDottedPathsSoTheyMergeKeyByKey() throws {
        let change = try ChatSettingsRules.change(
            from: try body(#"{"notifications":{"systemUpdates":true},"temperature":0.5}"#))
        #expect(change.set == ["notifications.systemUpdates": true, "temperature": .double(0.5)])
        #expect(change.unset.isEmpty)
        #expect(change.favorites == nil)
    }

    @Test func nullClearsOnlyDefaultAgentAndModel() throws {
        let change = try ChatSettingsRules.change(
            from: try body(#"{"defaultAgent":null,"model":null}"#))
        #expect(change.unset == ["defaultAgent", "model"])
        #expect(try failedFields(#"{"theme":null}"#) == ["theme"])
        #expect(try failedFields(#"{"notifications":null}"#) == ["notifications"])
    }

    @Test func favoritesAreDeduplicatedInOrder() throws {
        let change = try ChatSettingsRules.change(
            from: try body(#"{"quickActions":{"favorites":["code","explain","code"]}}"#))
        #expect(change.favorites == ["code", "explain"])
        #expect(change.set["quickActions.favorites"] == ["code", "explain"])
    }

    @Test(arguments: [
        (#"{"temperature":2.5}"#, "temperature"), (#"{"temperature":-0.1}"#, "temperature"),
        (#"{"temperature":"0.5"}"#, "temperature"), (#"{"maxTokens":0}"#, "maxTokens"),
        (#"{"maxTokens":4001}"#, "maxTokens"), (#"{"maxTokens":100.5}"#, "maxTokens"),
        (#"{"mode":"turbo"}"#, "mode"), (#"{"provider":"OpenAI"}"#, "provider"),
        (#"{"theme":{"$gt":""}}"#, "theme"), (#"{"autoSave":1}"#, "autoSave"),
        (#"{"defaultAgent":"xyz"}"#, "defaultAgent"), (#"{"userId":"x"}"#, "userId"),
        (#"{"notifications":{"push":true}}"#, "notifications.push"),
        (#"{"privacy":{"saveHistory":"yes"}}"#, "privacy.saveHistory"),
        (#"{"quickActions":{"favorites":"code"}}"#, "quickActions.favorites"),
    ])
    func invalidValuesNameTheirField(text: String, field: String) throws {
        #expect(try failedFields(text).contains(field))
    }

    @Test func integralDoublesCountAsIntegers() throws {
        let change = try ChatSettingsRules.change(from: try body(#"{"maxTokens":4000.0}"#))
        #expect(change.set["maxTokens"] == .int64(4000))
    }

    @Test func renderFillsDefaultsAndRestoresTypes() {
        let user = ObjectId()
        let stored: Document = [
            "_id": .objectId(ObjectId()), "userId": .objectId(user),
            "notifications": ["systemUpdates": .int32(1)], "maxTokens": .int32(900),
            "updatedAt": "2026-12-03 17:00:44.258000",
        ]
        let out = ChatSettingsRules.render(stored, user: user)
        #expect(out["_id"] == nil)
        #expect(out.value(at: "notifications.systemUpdates") == true)
        #expect(out.value(at: "notifications.messageReceived") == true)
        #expect(out["maxTokens"] == .int64(900))
        #expect(out["temperature"] == .double(0.7))
        #expect(out["updatedAt"] == .date(Timestamp(milliseconds: 1_796_317_244_258)))
        #expect(out["createdAt"] == .null)
    }

    @Test func storedDatesAreReadInBothForms() {
        let time = Timestamp(milliseconds: 1_796_317_244_000)
        #expect(Stored.date(.date(time)) == .date(time))
        #expect(Stored.date("2026-12-03 17:00:44") == .date(time))
        #expect(Stored.date("2026-12-03 17:00:44.000000") == .date(time))
        #expect(Stored.date("Project Alpha") == .null)
        #expect(Stored.date(nil) == .null)
    }

    @Test func dottedPathsExpandIntoNestedDocuments() {
        let expanded = Stored.expand([
            "theme": "dark", "notifications.push": true, "notifications.sms": false,
            "a.b.c": 1,
        ])
        #expect(
            expanded == [
                "theme": "dark", "notifications": ["push": true, "sms": false],
                "a": ["b": ["c": 1]],
            ])
    }

    @Test func emailsArePlausibleOrRefused() {
        for good in ["a@b.co", "Mixed.Case+tag@Example.com", "ü@例え.jp"] {
            #expect(AccountRules.isPlausibleEmail(good), "\(good)")
        }
        for bad in ["", "a", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@.co", "a@b.co.", "a@b..co"] {
            #expect(!AccountRules.isPlausibleEmail(bad), "\(bad)")
        }
        #expect(AccountRules.normalized("Mixed.Case@EXAMPLE.com") == "mixed.case@example.com")
    }

    @Test func avatarInitials() {
        #expect(AccountRules.initials("John Doe") == "JD")
        #expect(AccountRules.initials("  ada  lovelace byron ") == "AL")
        #expect(AccountRules.initials("x") == "X")
    }

    @Test func userRenderIsAWhitelist() {
        let out = AccountRules.render([
            "_id": .objectId(ObjectId()), "email": "a@b.co", "emailLower": "a@b.co",
            "password": "$2b$10$abc", "registeredBy": "cmd", "isActive": .int32(1), "name": "A",
        ])
        let text = JSONWriter.string(out)
        #expect(!text.contains("$2b$"))
        #expect(out["emailLower"] == nil && out["registeredBy"] == nil && out["_id"] == nil)
        #expect(out["isActive"] == true)
    }

    @Test func retryAfterIsTheRestOfTheWindowInWholeSeconds() {
        #expect(LoginLimiter.retryAfter(count: 4, ttlMs: 5000, limit: 5, windowSeconds: 900) == nil)
        #expect(LoginLimiter.retryAfter(count: nil, ttlMs: -2, limit: 5, windowSeconds: 900) == nil)
        #expect(LoginLimiter.retryAfter(count: 5, ttlMs: 4001, limit: 5, windowSeconds: 900) == 5)
        #expect(LoginLimiter.retryAfter(count: 9, ttlMs: -1, limit: 5, windowSeconds: 900) == 900)
    }

    @Test func quickActionFieldsCountCodePoints() throws {
        let label = String(repeating: "😀", count: 50)
        let fields = try QuickActionRules.fields(
            ["label": .string(label), "prompt": "p", "category": "General", "icon": "I"],
            creating: true)
        #expect(fields["label"] == .string(label))
        #expect(throws: APIError.self) {
            try QuickActionRules.fields(["label": .string(label + "😀")], creating: false)
        }
        #expect(throws: APIError.self) {
            try QuickActionRules.fields(["label": "x", "isDefault": true], creating: false)
        }
    }
}

@Suite("Reply frames")
struct ReplyFrameTests {
    @Test func headersCrossTheBusAndUnsafeOnesAreDropped() throws {
        let reply = Reply(
            status: 429, body: Array(#"{"a":"b\nc"}"#.utf8),
            headers: [("Retry-After", "42"), ("Bad Name", "x"), ("X-Evil", "a\r\nSet-Cookie: y")])
        let parsed = try #require(Reply.parse(frame: reply.frame(requestId: "abc")))
        #expect(parsed.0 == "abc")
        #expect(parsed.1.status == 429)
        #expect(parsed.1.body == reply.body)
        #expect(parsed.1.headers.count == 1)
        #expect(parsed.1.headers.first?.0 == "Retry-After")
        #expect(parsed.1.headers.first?.1 == "42")
    }

    @Test func framesWithoutHeadersParseAsBefore() throws {
        let parsed = try #require(Reply.parse(frame: Array("id\n200\n{}".utf8)))
        #expect(parsed.1.status == 200)
        #expect(parsed.1.headers.isEmpty)
        #expect(parsed.1.body == Array("{}".utf8))
    }

    @Test func framesThatAreNotRepliesAreRefused() throws {
        for text in ["id200{}", "id\n200", "id\n\n{}", "id\nabc\n{}", "id\n2000\n{}", "id\n-1\n"] {
            #expect(Reply.parse(frame: Array(text.utf8)) == nil, "\(text)")
        }
        let empty = try #require(Reply.parse(frame: Array("\n204\n".utf8)))
        #expect(empty.0 == "")
        #expect(empty.1.status == 204)
        #expect(empty.1.body.isEmpty)
        let twoHeaders = try #require(
            Reply.parse(frame: Array("r\n201\tA: 1\tB: x: y\n\n{}".utf8)))
        #expect(twoHeaders.1.headers.map { "\($0.0)=\($0.1)" } == ["A=1", "B=x: y"])
        #expect(twoHeaders.1.body == Array("\n{}".utf8))
    }
}
