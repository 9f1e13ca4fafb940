extension StringProtocol {
    /// The text without the white space (spaces, tabs, line ends) at either end.
    public var trimmingWhitespace: String { trimming(where: \.isWhitespace) }

    /// The text without the characters at either end for which `isTrimmed` holds.
    public func trimming(where isTrimmed: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !isTrimmed($0) }),
            let last = lastIndex(where: { !isTrimmed($0) })
        else { return "" }
        return String(self[first...last])
    }
}

/// A word or phrase to find in text whatever the case of its letters: each character of the text
/// is compared by its lowercase form, so the ranges found are ranges of the text as written.
public struct CaselessPattern: Sendable {
    private let characters: [String]

    public init(_ text: String) {
        characters = text.lowercased().map { String($0) }
    }

    /// The first occurrence in `text` that starts at or after `start`.
    public func firstRange(in text: String, from start: String.Index? = nil)
        -> Range<String.Index>?
    {
        guard let first = characters.first else { return nil }
        var candidate = start ?? text.startIndex
        while candidate < text.endIndex {
            if text[candidate].lowercased() == first {
                var cursor = text.index(after: candidate)
                var matched = 1
                while matched < characters.count, cursor < text.endIndex,
                    text[cursor].lowercased() == characters[matched]
                {
                    matched += 1
                    cursor = text.index(after: cursor)
                }
                if matched == characters.count { return candidate..<cursor }
            }
            candidate = text.index(after: candidate)
        }
        return nil
    }

    /// How many times it occurs in `text`, without overlaps.
    public func count(in text: String) -> Int {
        var count = 0
        var from = text.startIndex
        while let found = firstRange(in: text, from: from) {
            count += 1
            from = found.upperBound
        }
        return count
    }
}
