import Core

/// Reading back what the stand-in changed on the way in.
enum Stored {
    /// A date as stored: a BSON date, or the text nx-27017 0.8.1 keeps for a date written by
    /// `$set` (`2026-12-03 17:00:44.258000`, UTC, the fraction left out when zero). Null
    /// for anything else.
    static func date(_ value: Value?) -> Value {
        switch value {
        case .date(let time)?:
            return .date(time)
        case .string(let text)?:
            guard (19...26).contains(text.utf8.count), text.utf8.contains(UInt8(ascii: " ")) else {
                return .null
            }
            var iso = text.replacingBytes(of: " ", with: "T")
            if let dot = iso.firstIndex(of: ".") {
                iso = String(iso[..<dot]) + String(iso[dot...].prefix(4))
            }
            return Timestamp(iso8601: iso + "Z").map { .date($0) } ?? .null
        default:
            return .null
        }
    }

    /// Dotted `$set` paths as the nested document an insert stores.
    static func expand(_ paths: Document) -> Document {
        var out = Document()
        for pair in paths.pairs {
            out = setting(out, pair.key.split(separator: ".")[...], to: pair.value)
        }
        return out
    }

    private static func setting(
        _ doc: Document, _ path: ArraySlice<Substring>, to value: Value
    ) -> Document {
        guard let head = path.first.map(String.init) else { return doc }
        var copy = doc
        if path.count == 1 {
            copy[head] = value
        } else {
            let inner = copy[head]?.documentValue ?? Document()
            copy[head] = .document(setting(inner, path.dropFirst(), to: value))
        }
        return copy
    }
}
