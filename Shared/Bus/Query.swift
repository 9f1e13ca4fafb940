import Core
import FoundationEssentials
import JSONKit

/// Reads query parameters strictly: unknown names, bad numbers and bad flags are 400s.
public struct QueryReader {
    let params: [String: String]
    let pathParams: Set<String>

    public init(_ command: Command, pathParams: Set<String> = ["id"], allowed: Set<String>)
        throws(APIError)
    {
        self.params = command.params
        self.pathParams = pathParams
        for key in command.params.keys where !allowed.contains(key) && !pathParams.contains(key) {
            throw APIError.invalid(key, "unknown query parameter")
        }
    }

    public func string(_ name: String, maxLength: Int = 200) throws(APIError) -> String? {
        guard let value = params[name] else { return nil }
        guard !value.isEmpty, value.unicodeScalars.count <= maxLength else {
            throw APIError.invalid(name, "must be 1 to \(maxLength) characters")
        }
        return value
    }

    /// `limit`: an integer from 1 to `max`; absent gives `fallback`.
    public func limit(fallback: Int = 20, max: Int = 100) throws(APIError) -> Int {
        guard let text = params["limit"] else { return fallback }
        guard let value = Int(text), value >= 1, value <= max else {
            throw APIError.invalid("limit", "must be an integer from 1 to \(max)")
        }
        return value
    }

    public func flag(_ name: String) throws(APIError) -> Bool? {
        guard let text = params[name] else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default: throw APIError.invalid(name, "must be true or false")
        }
    }

    public func objectId(_ name: String) throws(APIError) -> ObjectId? {
        guard let text = params[name] else { return nil }
        guard let id = ObjectId(hex: text) else {
            throw APIError.invalid(name, "must be an id of 24 hexadecimal digits")
        }
        return id
    }
}

/// Opaque page cursors: base64url of a JSON array of strings, so any text fits in a part.
public enum PageCursor {
    public static func encode(_ parts: [String]) -> String {
        let json = JSONWriter.bytes(.array(parts.map { .string($0) }))
        return Data(json).base64EncodedString()
            .replacingBytes(of: "+", with: "-").replacingBytes(of: "/", with: "_").replacingBytes(
                of: "=", with: "")
    }

    public static func decode(_ text: String, parts count: Int) throws(APIError) -> [String] {
        let refused = APIError.invalid("cursor", "is not a cursor this API returned")
        var base = text.replacingBytes(of: "-", with: "+").replacingBytes(of: "_", with: "/")
        while base.count % 4 != 0 { base += "=" }
        guard text.count <= 600, let data = Data(base64Encoded: base),
            case .array(let items)? = try? JSONParser.parse(Array(data)), items.count == count
        else { throw refused }
        let parts = items.compactMap(\.stringValue)
        guard parts.count == count else { throw refused }
        return parts
    }
}

/// Keyset pages newest first: a date field descending, a unique id field breaking ties. The
/// cursor names the last item returned, so items never repeat or go missing between pages.
public struct NewestFirst: Sendable {
    public let dateField: String
    public let idField: String

    /// Dates a cursor may carry: years 1970 to 9999.
    static let dateRange: ClosedRange<Int64> = 0...253_402_300_799_999

    public init(dateField: String = "updatedAt", idField: String) {
        self.dateField = dateField
        self.idField = idField
    }

    public var sort: Document { [dateField: -1, idField: -1] }

    /// Adds "after the cursor" to the filter (wrapped in `$and` with what is there).
    public func apply(cursor: String?, to filter: inout Document) throws(APIError) {
        guard let cursor else { return }
        let parts = try PageCursor.decode(cursor, parts: 2)
        guard let millis = Int64(parts[0]), NewestFirst.dateRange.contains(millis) else {
            throw APIError.invalid("cursor", "is not a cursor this API returned")
        }
        let at = Value.date(Timestamp(milliseconds: millis))
        let after: Value = [
            "$or": [
                [dateField: ["$lt": at]],
                [dateField: at, idField: ["$lt": .string(parts[1])]],
            ]
        ]
        filter["$and"] = .array((filter["$and"]?.arrayValue ?? []) + [after])
    }

    /// Cuts a page fetched with `limit + 1` to `limit` and makes the next cursor, or null.
    public func page(_ documents: [Document], limit: Int) -> (items: [Document], next: Value) {
        guard documents.count > limit else { return (documents, .null) }
        let items = Array(documents.prefix(limit))
        guard let last = items.last, let at = last[dateField]?.dateValue,
            let id = last[idField]?.stringValue
        else { return (items, .null) }
        return (items, .string(PageCursor.encode([String(at.milliseconds), id])))
    }
}

/// Path ids are plain strings of a bounded size; anything else cannot name a resource.
public func pathId(_ command: Command, _ name: String = "id", what: String) throws(APIError)
    -> String
{
    guard let value = command.params[name], !value.isEmpty, value.utf8.count <= 128 else {
        throw APIError.notFound(what)
    }
    return value
}
