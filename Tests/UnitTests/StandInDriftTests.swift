import Core
import JSONKit
import Testing

@Suite("Reading values the MongoDB stand-in changed")
struct StandInDriftTests {
    @Test func datesWrittenAsTextReadBackAsTheSameInstant() {
        let iso = Timestamp(iso8601: "2026-12-03T17:11:28.690Z")
        #expect(Value.string("2026-12-03 17:11:28.690000").lenientDate == iso)
        #expect(Value.string("2026-12-03T17:11:28.69").lenientDate == iso)
        #expect(Value.string("2026-12-03T17:11:28.690Z").lenientDate == iso)
        #expect(
            Value.string("2024-02-29 00:00:00").lenientDate
                == Timestamp(iso8601: "2024-02-29T00:00:00Z"))
        #expect(Value.string("1969-12-31 23:59:59").lenientDate?.milliseconds == -1000)
        #expect(Value.string("not a date").lenientDate == nil)
        #expect(Value.string("2026-13-03 17:11:28").lenientDate == nil)
        #expect(Value.string("2026-12-03 17:11:28.").lenientDate == nil)
        #expect(Value.date(Timestamp(milliseconds: 5)).lenientDate?.milliseconds == 5)
    }

    @Test func legacyDatesKeepTheirOffsetAndImpossibleOnesAreRefused() {
        let noonUTC = Timestamp(iso8601: "2024-01-20T12:00:00Z")
        #expect(noonUTC != nil)
        #expect(Value.string("2024-01-20T14:00:00+02:00").lenientDate == noonUTC)
        #expect(Value.string("2024-01-20T07:00:00.000-05:00").lenientDate == noonUTC)
        for impossible in [
            "2024-02-30T10:30:00Z", "2023-02-29 00:00:00", "2024-01-20T99:99:99Z",
            "2024-01-20T24:00:00Z", "0000-01-01T00:00:00Z", "2024-04-31 12:00:00",
        ] {
            #expect(Value.string(impossible).lenientDate == nil, "\(impossible)")
            #expect(Timestamp(iso8601: impossible) == nil, "\(impossible)")
        }
    }

    @Test func documentsPushedAsTextReadBackAsDocumentsWithDates() {
        let text =
            #"{"role":"user","content":"hi","createdAt":{"$date":"2026-12-03T17:11:28.680000"}}"#
        let doc = Value.string(text).lenientDocument
        #expect(doc?["content"]?.stringValue == "hi")
        #expect(doc?["createdAt"]?.dateValue == Timestamp(iso8601: "2026-12-03T17:11:28.680Z"))
        #expect(Value.string("hello").lenientDocument == nil)
        #expect(Value.document(["a": 1]).lenientDocument == ["a": 1])
    }
}
