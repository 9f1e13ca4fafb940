import Core
import Foundation

/// Reads query parameters strictly: unknown names, bad numbers and bad flags are 400s.
public struct QueryReader {
    let params: [String: String]
    let pathParams: Set<String>

    public init(_ command: Command, pathParams: Set<String> = ["id"], allowed: Set<String>) throws(APIError) {
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

/// Opaque page cursors: base64url of a few `|`-separated parts.
public enum PageCursor {
    public static func encode(_ parts: [String]) -> String {
        Data(parts.joined(separator: "|").utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: String, parts count: Int) throws(APIError) -> [String] {
        var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base.count % 4 != 0 { base += "=" }
        guard text.count <= 400, let data = Data(base64Encoded: base),
            let decoded = String(data: data, encoding: .utf8)
        else { throw APIError.invalid("cursor", "is not a cursor this API returned") }
        let parts = decoded.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == count else {
            throw APIError.invalid("cursor", "is not a cursor this API returned")
        }
        return parts
    }
}

/// Path ids are plain strings of a bounded size; anything else cannot name a resource.
public func pathId(_ command: Command, _ name: String = "id", what: String) throws(APIError) -> String {
    guard let value = command.params[name], !value.isEmpty, value.utf8.count <= 128 else {
        throw APIError.notFound(what)
    }
    return value
}
