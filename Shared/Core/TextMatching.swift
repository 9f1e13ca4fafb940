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

/// A word or phrase to find in text whatever the case of its letters: each Unicode scalar of the
/// text is compared by its lowercase form, so the ranges found are ranges of the text as
/// written. When the pattern and the text are both ASCII, bytes are compared instead.
public struct CaselessPattern: Sendable {
    private let scalars: [Unicode.Scalar]
    /// The lowercase pattern's bytes when it is all ASCII.
    private let asciiBytes: [UInt8]?

    public init(_ text: String) {
        let lowered = text.lowercased()
        scalars = Array(lowered.unicodeScalars)
        asciiBytes = lowered.utf8.allSatisfy { $0 < 0x80 } ? Array(lowered.utf8) : nil
    }

    /// The first occurrence in `text` that starts at or after `start`.
    public func firstRange(in text: String, from start: String.Index? = nil)
        -> Range<String.Index>?
    {
        let from = start ?? text.startIndex
        if let asciiBytes,
            let offsets = Self.asciiOffsets(
                of: asciiBytes, in: text, from: text.utf8.distance(from: text.startIndex, to: from),
                limit: 1)
        {
            guard let found = offsets.first else { return nil }
            let lower = text.utf8.index(text.startIndex, offsetBy: found)
            return lower..<text.utf8.index(lower, offsetBy: asciiBytes.count)
        }
        return scalarRange(in: text.unicodeScalars, from: from)
    }

    /// How many times it occurs in `text`, without overlaps.
    public func count(in text: String) -> Int {
        if let asciiBytes,
            let offsets = Self.asciiOffsets(of: asciiBytes, in: text, from: 0, limit: .max)
        {
            return offsets.count
        }
        var count = 0
        var from = text.startIndex
        while let found = scalarRange(in: text.unicodeScalars, from: from) {
            count += 1
            from = found.upperBound
        }
        return count
    }

    private func scalarRange(in text: String.UnicodeScalarView, from start: String.Index)
        -> Range<String.Index>?
    {
        guard let first = scalars.first else { return nil }
        var candidate = start
        while candidate < text.endIndex {
            if Self.matches(text[candidate], first) {
                var cursor = text.index(after: candidate)
                var matched = 1
                while matched < scalars.count, cursor < text.endIndex,
                    Self.matches(text[cursor], scalars[matched])
                {
                    matched += 1
                    cursor = text.index(after: cursor)
                }
                if matched == scalars.count { return candidate..<cursor }
            }
            candidate = text.index(after: candidate)
        }
        return nil
    }

    /// Whether a scalar of the text is `lowered`, a scalar of the lowercase pattern.
    private static func matches(_ scalar: Unicode.Scalar, _ lowered: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            return lowered.isASCII && lowercaseASCII(UInt8(scalar.value)) == lowered.value
        }
        if scalar == lowered { return true }
        guard scalar.properties.changesWhenLowercased else { return false }
        let mapping = scalar.properties.lowercaseMapping.unicodeScalars
        return mapping.count == 1 && mapping.first == lowered
    }

    /// The byte offsets of the matches at or after `from`, without overlaps and at most
    /// `limit`; nil when the text is not all ASCII, so that scalars must be compared.
    private static func asciiOffsets(of pattern: [UInt8], in text: String, from: Int, limit: Int)
        -> [Int]?
    {
        guard !pattern.isEmpty else { return [] }
        let found = text.utf8.withContiguousStorageIfAvailable { bytes -> [Int]? in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            var offsets: [Int] = []
            var offset = from
            while offset + pattern.count <= bytes.count, offsets.count < limit {
                var matched = 0
                while matched < pattern.count,
                    lowercaseASCII(bytes[offset + matched]) == pattern[matched]
                {
                    matched += 1
                }
                if matched == pattern.count {
                    offsets.append(offset)
                    offset += pattern.count
                } else {
                    offset += 1
                }
            }
            return offsets
        }
        return found ?? nil
    }

    private static func lowercaseASCII(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }
}
