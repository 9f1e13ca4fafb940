import FoundationEssentials
import Glibc

/// A document value as MongoDB stores it and as the API speaks it.
///
/// One type serves both sides: JSON bodies parse into it, BSON documents convert to and
/// from it, and it renders as plain JSON (ids as hex strings, dates as ISO 8601).
public enum Value: Sendable, Equatable {
    case null
    case bool(Bool)
    case int32(Int32)
    case int64(Int64)
    case double(Double)
    case string(String)
    case objectId(ObjectId)
    case date(Timestamp)
    case binary([UInt8])
    case array([Value])
    case document(Document)

    /// Any integer width, or a double with no fractional part.
    public var intValue: Int64? {
        switch self {
        case .int32(let v): return Int64(v)
        case .int64(let v): return v
        case .double(let v):
            guard v.isFinite, v.rounded() == v, abs(v) < 9.0e15 else { return nil }
            return Int64(v)
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int32(let v): return Double(v)
        case .int64(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }

    /// A bool, or the stand-in's 0/1 integers for one.
    public var boolValue: Bool? {
        switch self {
        case .bool(let b): return b
        case .int32(let v): return v != 0
        case .int64(let v): return v != 0
        default: return nil
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var documentValue: Document? {
        if case .document(let d) = self { return d }
        return nil
    }

    public var arrayValue: [Value]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectIdValue: ObjectId? {
        switch self {
        case .objectId(let id): return id
        case .string(let s): return ObjectId(hex: s)
        default: return nil
        }
    }

    public var dateValue: Timestamp? {
        if case .date(let t) = self { return t }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The JSON type name used in validation messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int32, .int64: return "integer"
        case .double: return "number"
        case .string, .objectId, .date: return "string"
        case .binary: return "binary"
        case .array: return "array"
        case .document: return "object"
        }
    }
}

extension Value: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral,
    ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int64(Int64(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    public init(dictionaryLiteral elements: (String, Value)...) {
        self = .document(Document(elements))
    }
}

/// An ordered list of key-value pairs: the order matters for sorts and index keys.
public struct Document: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var pairs: [(key: String, value: Value)]

    public init() { pairs = [] }

    public init(_ pairs: [(String, Value)]) {
        self.pairs = pairs.map { (key: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, Value)...) {
        self.init(elements)
    }

    public var keys: [String] { pairs.map(\.key) }
    public var isEmpty: Bool { pairs.isEmpty }
    public var count: Int { pairs.count }

    public subscript(key: String) -> Value? {
        get { pairs.first(where: { $0.key == key })?.value }
        set {
            if let index = pairs.firstIndex(where: { $0.key == key }) {
                if let newValue { pairs[index].value = newValue } else { pairs.remove(at: index) }
            } else if let newValue {
                pairs.append((key: key, value: newValue))
            }
        }
    }

    /// Looks a value up by a dotted path such as `settings.temperature`.
    public func value(at path: String) -> Value? {
        var current: Value = .document(self)
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard case .document(let doc) = current, let next = doc[String(part)] else {
                return nil
            }
            current = next
        }
        return current
    }

    public mutating func append(_ key: String, _ value: Value) {
        pairs.append((key: key, value: value))
    }

    public static func == (lhs: Document, rhs: Document) -> Bool {
        guard lhs.pairs.count == rhs.pairs.count else { return false }
        for (l, r) in zip(lhs.pairs, rhs.pairs) where l.key != r.key || l.value != r.value {
            return false
        }
        return true
    }

    /// A copy without the given top-level keys.
    public func removing(_ keys: Set<String>) -> Document {
        var copy = self
        copy.pairs.removeAll { keys.contains($0.key) }
        return copy
    }
}

/// Milliseconds since the Unix epoch, the precision BSON dates keep.
public struct Timestamp: Sendable, Hashable, Comparable {
    public let milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(milliseconds: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.milliseconds < b.milliseconds }

    /// `2024-01-20T10:30:00.000Z`
    public var iso8601: String {
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let millis = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return
            "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(millis), 3))Z"
    }

    /// FoundationEssentials' parser: it takes fractional seconds when present.
    private static let iso8601Style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// Parses the ISO 8601 form this API writes (fractional seconds optional, `Z` or offset).
    /// A date or time that does not exist (February 31, 25:00) is refused rather than rolled
    /// over, as the parser alone would.
    public init?(iso8601 text: String) {
        guard Timestamp.namesARealMoment(text),
            let date = try? Timestamp.iso8601Style.parse(text)
        else { return nil }
        milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    /// Whether text that starts `YYYY-MM-DD` (then `T` or a space and `HH:MM:SS`) names a day
    /// of the calendar and a time of the day: year 1 or later, the month's own days, hours up
    /// to 23, minutes up to 59, seconds up to 60 (a leap second).
    public static func namesARealMoment(_ text: String) -> Bool {
        let digits = Array(text.utf8.prefix(19))
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= digits.count else { return nil }
            var value = 0
            for byte in digits[range] {
                guard byte &- 0x30 < 10 else { return nil }
                value = value * 10 + Int(byte &- 0x30)
            }
            return value
        }
        guard digits.count >= 10, digits[4] == 0x2D, digits[7] == 0x2D,
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            year >= 1, (1...12).contains(month)
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return false }
        guard digits.count > 10 else { return true }
        guard digits.count == 19, digits[13] == 0x3A, digits[16] == 0x3A,
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return false }
        return hour <= 23 && minute <= 59 && second <= 60
    }
}
