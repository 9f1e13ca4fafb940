import Core
import Testing

@Suite("Text and dates without Foundation")
struct TextMatchingTests {
    @Test func wordsAreFoundWhateverTheirCase() {
        func count(_ pattern: String, _ text: String) -> Int {
            CaselessPattern(pattern).count(in: FoldedText(text))
        }
        let text = "Hello, HELLO and hello again; héllo is another word"
        #expect(count("hello", text) == 3)
        #expect(count("HÉLLO", text) == 1)
        #expect(count("goodbye", text) == 0)
        #expect(count("", text) == 0)
        #expect(count("aa", "aaaa") == 2)
        // An ASCII word in text that is not all ASCII, and the other way round.
        #expect(count("cafe", "Café, CAFE or cafeteria? ☕") == 2)
        #expect(count("Straße", "STRASSE, straße, STRAẞE") == 3)
        #expect(count("strasse", "Straße") == 1)
        #expect(count("café", "all ASCII here") == 0)
        // A capital I with a dot, a final sigma, an accent typed as a scalar of its own.
        #expect(count("İstanbul", "İSTANBUL and İstanbul") == 2)
        #expect(count("ΟΔΟΣ", "οδος, ΟΔΟΣ") == 2)
        #expect(count("café", "cafe\u{301} and CAFÉ") == 2)
        #expect(count("cafe\u{301}", "café") == 1)
        // A letter with an accent on it is not the bare letter (the dot of İ aside).
        #expect(count("x", "x\u{301} or x") == 1)
        #expect(count("i", "İ and i") == 2)
        #expect(count("izmir", "İZMİR") == 1)
        #expect(count("cafe", "café and cafe") == 1)
    }

    @Test func rangesAreRangesOfTheTextInNFC() throws {
        let folded = FoldedText("Ärger u\u{308}ber ÜBER")
        let text = folded.text
        #expect(text == "Ärger über ÜBER")
        let pattern = CaselessPattern("über")
        let found = try #require(pattern.firstRange(in: folded))
        #expect(text[found] == "über")
        let next = try #require(pattern.firstRange(in: folded, from: found.upperBound))
        #expect(text[next] == "ÜBER")
        #expect(pattern.firstRange(in: folded, from: next.upperBound) == nil)
        // A pattern longer than what is left of the text is not found.
        #expect(CaselessPattern("ÜBERALL").firstRange(in: folded) == nil)

        let ascii = FoldedText("say Hello twice: hello")
        let hello = try #require(CaselessPattern("HELLO").firstRange(in: ascii))
        #expect(ascii.text[hello] == "Hello")
        let second = try #require(
            CaselessPattern("HELLO").firstRange(in: ascii, from: hello.upperBound))
        #expect(ascii.text[second] == "hello")
    }

    @Test func bytesAreReplacedWhereCharactersWouldHideThem() {
        // `/` and an accent are one Character: a character-wise replace would leave `*/` in.
        let name = "x*/\u{301} body{color:red} /*"
        #expect(!name.replacingBytes(of: "*/", with: "* /").utf8.starts(with: "x*/".utf8))
        #expect(name.replacingBytes(of: "*/", with: "* /") == "x* /\u{301} body{color:red} /*")
        #expect("a\r\nb\nc".replacingBytes(of: "\n", with: " ") == "a\r b c")
        #expect("key123 and key123".replacingBytes(of: "key123", with: "***") == "*** and ***")
        #expect("abc".replacingBytes(of: "", with: "x") == "abc")
        #expect("ab".replacingBytes(of: "abc", with: "x") == "ab")
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
