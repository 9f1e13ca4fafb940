/// Checks a request body field by field and collects every problem before answering.
///
/// Values that are absent come back as `nil`; present but invalid ones add a `FieldError`.
/// Lengths count Unicode code points. Types are strict: `"5"` is not a number.
public struct Validator {
    public let body: Document
    public let prefix: String
    public private(set) var errors: [FieldError] = []

    public init(_ body: Document, allowed: Set<String>, prefix: String = "") {
        self.body = body
        self.prefix = prefix
        let unsafePath = Validator.unsafeKeyPath(in: .document(body), at: prefix)
        // A key that cannot be stored is named for that alone, not also as an unknown field.
        for key in body.keys where !allowed.contains(key) && name(key) != unsafePath {
            errors.append(FieldError(name(key), "unknown field"))
        }
        if let unsafePath {
            errors.append(
                FieldError(
                    unsafePath, "keys must not be empty, start with '$' or contain '.' or NUL"))
        }
    }

    private func name(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix).\(key)" }

    public mutating func fail(_ key: String, _ message: String) {
        errors.append(FieldError(name(key), message))
    }

    /// Adds a nested validator's problems; one the outer check already named is not repeated.
    public mutating func merge(_ other: Validator) {
        for error in other.errors where !errors.contains(error) { errors.append(error) }
    }

    public func has(_ key: String) -> Bool { body[key] != nil }

    public mutating func string(
        _ key: String, required: Bool = false, maxLength: Int? = nil, allowEmpty: Bool = false
    ) -> String? {
        guard let value = body[key] else {
            if required { fail(key, "is required") }
            return nil
        }
        guard case .string(let text) = value else {
            fail(key, "must be a string")
            return nil
        }
        if !allowEmpty, text.unicodeScalars.allSatisfy(Validator.isBlank) {
            fail(key, "must not be empty")
            return nil
        }
        if let maxLength, text.unicodeScalars.count > maxLength {
            fail(key, "must be at most \(maxLength) characters")
            return nil
        }
        return text
    }

    public mutating func oneOf(_ key: String, _ allowed: [String], required: Bool = false)
        -> String?
    {
        guard let value = body[key] else {
            if required { fail(key, "is required") }
            return nil
        }
        guard case .string(let text) = value, allowed.contains(text) else {
            fail(key, "must be one of: \(allowed.joined(separator: ", "))")
            return nil
        }
        return text
    }

    public mutating func number(
        _ key: String, min: Double, max: Double, required: Bool = false
    ) -> Double? {
        guard let value = body[key] else {
            if required { fail(key, "is required") }
            return nil
        }
        guard let number = value.strictNumber, number >= min, number <= max else {
            fail(
                key,
                "must be a number from \(Value.double(min).jsonText)"
                    + " to \(Value.double(max).jsonText)"
            )
            return nil
        }
        return number
    }

    /// Integers; a JSON number with no fraction (`4000.0`, `1e3`) counts as one.
    public mutating func integer(
        _ key: String, min: Int64, max: Int64, required: Bool = false
    ) -> Int64? {
        guard let value = body[key] else {
            if required { fail(key, "is required") }
            return nil
        }
        guard value.strictNumber != nil, let number = value.intValue, number >= min, number <= max
        else {
            fail(key, "must be an integer from \(min) to \(max)")
            return nil
        }
        return number
    }

    public mutating func bool(_ key: String, required: Bool = false) -> Bool? {
        guard let value = body[key] else {
            if required { fail(key, "is required") }
            return nil
        }
        guard case .bool(let flag) = value else {
            fail(key, "must be true or false")
            return nil
        }
        return flag
    }

    public mutating func objectId(_ key: String, required: Bool = false) -> ObjectId? {
        guard let value = body[key] else {
            if required { fail(key, "is required") }
            return nil
        }
        guard case .string(let text) = value, let id = ObjectId(hex: text) else {
            fail(key, "must be an id of 24 hexadecimal digits")
            return nil
        }
        return id
    }

    public mutating func stringArray(
        _ key: String, maxItems: Int, maxLength: Int, required: Bool = false
    ) -> [String]? {
        guard let value = body[key] else {
            if required { fail(key, "is required") }
            return nil
        }
        guard case .array(let items) = value, items.count <= maxItems else {
            fail(key, "must be an array of at most \(maxItems) strings")
            return nil
        }
        var strings: [String] = []
        for item in items {
            guard case .string(let text) = item, !text.isEmpty,
                text.unicodeScalars.count <= maxLength
            else {
                fail(key, "each item must be a non-empty string of at most \(maxLength) characters")
                return nil
            }
            strings.append(text)
        }
        return strings
    }

    public mutating func document(_ key: String, required: Bool = false) -> Document? {
        guard let value = body[key] else {
            if required { fail(key, "is required") }
            return nil
        }
        guard case .document(let doc) = value else {
            fail(key, "must be an object")
            return nil
        }
        return doc
    }

    /// White space, control characters and invisible format characters (such as U+200B): a
    /// required string made only of these is empty.
    static func isBlank(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
        default: return scalar.properties.isWhitespace
        }
    }

    /// Throws a 400 naming every field that failed.
    public func check() throws {
        if !errors.isEmpty { throw APIError.validation(errors) }
    }

    /// The first key path with an operator-like, dotted or empty key, if any (MongoDB refuses
    /// to store an empty key: found by the contract test as a 500 on message attachments).
    public static func unsafeKeyPath(in value: Value, at path: String) -> String? {
        switch value {
        case .document(let doc):
            for pair in doc.pairs {
                let here = path.isEmpty ? pair.key : "\(path).\(pair.key)"
                if pair.key.isEmpty || pair.key.hasPrefix("$") || pair.key.contains(".")
                    || pair.key.utf8.contains(0)
                {
                    return here
                }
                if let found = unsafeKeyPath(in: pair.value, at: here) { return found }
            }
            return nil
        case .array(let items):
            for (i, item) in items.enumerated() {
                if let found = unsafeKeyPath(in: item, at: "\(path)[\(i)]") { return found }
            }
            return nil
        default:
            return nil
        }
    }
}

extension Value {
    /// A JSON number (not a bool or string), as a double.
    public var strictNumber: Double? {
        switch self {
        case .int32, .int64, .double: return doubleValue
        default: return nil
        }
    }

    public var jsonText: String { JSONWriter.string(self) }
}
