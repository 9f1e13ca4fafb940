import Core
import Testing

@Suite("Text and dates without Foundation")
struct TextMatchingTests {
    @Test func wordsAreFoundWhateverTheirCase() {
        let text = "Hello, HELLO and hello again; héllo is another word"
        #expect(CaselessPattern("hello").count(in: text) == 3)
        #expect(CaselessPattern("HÉLLO").count(in: text) == 1)
        #expect(CaselessPattern("goodbye").count(in: text) == 0)
        #expect(CaselessPattern("").count(in: text) == 0)
        #expect(CaselessPattern("aa").count(in: "aaaa") == 2)
        // An ASCII word in text that is not all ASCII, and the other way round.
        #expect(CaselessPattern("cafe").count(in: "Café, CAFE or cafeteria? ☕") == 2)
        #expect(CaselessPattern("Straße").count(in: "STRASSE, straße, STRAẞE") == 2)
    }

    @Test func rangesAreRangesOfTheTextAsWritten() throws {
        let text = "Ärger über ÜBER"
        let found = try #require(CaselessPattern("über").firstRange(in: text))
        #expect(text[found] == "über")
        let next = try #require(
            CaselessPattern("über").firstRange(in: text, from: found.upperBound))
        #expect(text[next] == "ÜBER")
        #expect(CaselessPattern("über").firstRange(in: text, from: next.upperBound) == nil)
        // A pattern longer than what is left of the text is not found.
        #expect(CaselessPattern("ÜBERALL").firstRange(in: text) == nil)
    }

    @Test func trimmingTakesOnlyTheEnds() {
        #expect(" \t a b \r\n".trimmingWhitespace == "a b")
        #expect("   ".trimmingWhitespace == "")
        #expect("--my-project--".trimming { $0 == "-" } == "my-project")
        #expect("x".trimmingWhitespace == "x")
    }

    @Test func timestampsAreReadInTheISOFormsTheyComeIn() {
        let noon = Timestamp(iso8601: "2024-01-21T12:00:00Z")
        #expect(noon?.milliseconds == 1_705_838_400_000)
        #expect(Timestamp(iso8601: "2024-01-21T12:00:00.250Z")?.milliseconds == 1_705_838_400_250)
        #expect(Timestamp(iso8601: "2024-01-21T14:00:00+02:00") == noon)
        #expect(noon?.iso8601 == "2024-01-21T12:00:00.000Z")
        for refused in ["2024-01-21", "2024-01-21T12:00:00", "yesterday", ""] {
            #expect(Timestamp(iso8601: refused) == nil, "\(refused)")
        }
    }
}
