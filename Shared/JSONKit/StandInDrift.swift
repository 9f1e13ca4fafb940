import Core
import FoundationEssentials

/// Lenient readers for two ways the MongoDB stand-in (nx-27017 0.8.1) changes stored values.
///
/// Measured through libmongoc: after a `$push` of a document, every element of that array
/// comes back as the element's JSON text (`"{\"role\":\"user\",...}"`, dates inside as
/// `{"$date": "2026-12-03T17:11:28.680000"}`); a date written by `$set`, `$min` or a dotted
/// `$set` comes back as text `"2026-12-03 17:11:28.690000"` (UTC). Real MongoDB does
/// neither. Read fields that hold documents or dates through these; other values pass.
extension Value {
    /// The document, or the document whose JSON text the stand-in returned instead.
    public var lenientDocument: Document? {
        switch self {
        case .document(let doc):
            return doc
        case .string(let text) where text.hasPrefix("{"):
            guard let doc = try? JSONParser.parseObject(Array(text.utf8)) else { return nil }
            return Value.restoringDates(doc)
        default:
            return nil
        }
    }

    /// The date, or the date the stand-in returned as text.
    public var lenientDate: Timestamp? {
        switch self {
        case .date(let at):
            return at
        case .string(let text):
            return Value.standInDate(text)
        case .document(let doc):
            return doc["$date"]?.stringValue.flatMap(Value.standInDate)
        default:
            return nil
        }
    }

    /// `2026-12-03 17:11:28.690000`, `2026-12-03T17:11:28.680000` (as UTC) or ISO 8601 with
    /// its offset; nil for a day or time that does not exist.
    static func standInDate(_ text: String) -> Timestamp? {
        guard Timestamp.namesARealMoment(text) else { return nil }
        return utcDate(text) ?? Timestamp(iso8601: text)
    }

    /// The stand-in's forms, without an offset: read as UTC. The fields' ranges are checked
    /// first, by `Timestamp.namesARealMoment`.
    private static func utcDate(_ text: String) -> Timestamp? {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count >= 19, scalars.count <= 32 else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                guard index < scalars.count else { return nil }
                let code = scalars[index].value
                guard code >= 48, code <= 57 else { return nil }
                value = value * 10 + Int64(code - 48)
            }
            return value
        }
        guard scalars[4] == "-", scalars[7] == "-", scalars[10] == " " || scalars[10] == "T",
            scalars[13] == ":", scalars[16] == ":", let year = number(0..<4),
            let month = number(5..<7),
            let day = number(8..<10), let hour = number(11..<13), let minute = number(14..<16),
            let second = number(17..<19)
        else { return nil }
        var millis: Int64 = 0
        var index = 19
        if index < scalars.count, scalars[index] == "." {
            index += 1
            var digits = 0
            while index < scalars.count, let digit = number(index..<(index + 1)) {
                if digits < 3 { millis = millis * 10 + digit }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            if digits < 3 {
                for _ in digits..<3 { millis *= 10 }
            }
        }
        if index < scalars.count, scalars[index] == "Z" { index += 1 }
        guard index == scalars.count else { return nil }
        // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
        return Timestamp(milliseconds: seconds * 1000 + millis)
    }

    /// Turns `{"$date": text}` objects back into dates, at any depth.
    static func restoringDates(_ doc: Document) -> Document {
        Document(doc.pairs.map { pair in (pair.key, restoringDates(pair.value)) })
    }

    static func restoringDates(_ value: Value) -> Value {
        switch value {
        case .document(let doc):
            if doc.count == 1, let text = doc["$date"]?.stringValue, let at = standInDate(text) {
                return .date(at)
            }
            return .document(restoringDates(doc))
        case .array(let items):
            return .array(items.map(restoringDates))
        default:
            return value
        }
    }
}
