import Core
import JSONKit

extension Route.LongRunning {
    /// True when the body is a JSON object with `"<flag>": true`. Bodies that cannot hold the
    /// flag (no `"<flag>"` and no `\u` escape in the bytes) are not parsed, so ordinary
    /// requests of the route pay a byte scan only.
    public func isAsked(by body: [UInt8]) -> Bool {
        guard
            Route.LongRunning.contains(body, Array("\"\(flag)\"".utf8))
                || Route.LongRunning.contains(body, Array("\\u".utf8))
        else { return false }
        guard let document = try? JSONParser.parseObject(body) else { return false }
        return document[flag] == .bool(true)
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first,
                haystack[index..<(index + needle.count)].elementsEqual(needle)
            {
                return true
            }
            index += 1
        }
        return false
    }
}
