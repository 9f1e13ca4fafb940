extension String {
    /// The text in Unicode NFC, by the standard library's own normaliser (the one String
    /// comparison uses): `é` typed as one scalar or as `e` and an accent gives the same bytes.
    public var nfc: String { String(decoding: _nfcCodeUnits, as: UTF8.self) }
}

extension Unicode.Scalar {
    /// An accent or other mark that belongs to the letter before it.
    public var isCombiningMark: Bool {
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }
}

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

    /// Each code point for which `replacement` gives text replaced by it. By code point, not by
    /// Character: a `"` with an accent after it is one Character, yet still ends an attribute.
    public func escapingScalars(_ replacement: (Unicode.Scalar) -> String?) -> String {
        var out = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            if let text = replacement(scalar) {
                out.append(contentsOf: text.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Every occurrence of `target` replaced, comparing UTF-8 bytes rather than characters: a
    /// `*/` followed by a combining accent is one Character, but still ends a CSS comment.
    public func replacingBytes(of target: String, with replacement: String) -> String {
        let pattern = Array(target.utf8)
        let bytes = Array(utf8)
        guard !pattern.isEmpty, bytes.count >= pattern.count else { return String(self) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var offset = 0
        while offset < bytes.count {
            if offset + pattern.count <= bytes.count,
                bytes[offset..<offset + pattern.count].elementsEqual(pattern)
            {
                out += replacement.utf8
                offset += pattern.count
            } else {
                out.append(bytes[offset])
                offset += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Text made ready for matching without case: put in NFC, so that `é` typed as one scalar or as
/// `e` and an accent is the same, and, unless it is all ASCII, its scalars folded to lowercase
/// (final `ς` as `σ`, `ß` as `ss`, `İ` as `i`), each folded scalar remembering the scalar of
/// `text` it came from.
public struct FoldedText: Sendable {
    /// The text in NFC: the ranges a `CaselessPattern` finds are ranges of this string.
    public let text: String
    let isASCII: Bool
    let scalars: [Unicode.Scalar]
    /// Where the scalar of `text` that each folded scalar came from starts and ends.
    let starts: [String.Index]
    let ends: [String.Index]

    public init(_ original: String) {
        isASCII = original.utf8.allSatisfy { $0 < 0x80 }
        guard !isASCII else {
            (text, scalars, starts, ends) = (original, [], [], [])
            return
        }
        text = original.nfc
        var scalars: [Unicode.Scalar] = []
        var starts: [String.Index] = []
        var ends: [String.Index] = []
        let view = text.unicodeScalars
        var index = view.startIndex
        while index < view.endIndex {
            let next = view.index(after: index)
            for folded in FoldedText.fold(view[index]) {
                scalars.append(folded)
                starts.append(index)
                ends.append(next)
            }
            index = next
        }
        (self.scalars, self.starts, self.ends) = (scalars, starts, ends)
    }

    /// `text` in NFC and folded as search compares it: the lowercase form words are kept in.
    public static func folding(_ text: String) -> String {
        String(String.UnicodeScalarView(text.nfc.unicodeScalars.flatMap(fold)))
    }

    /// One scalar's lowercase form: most are one scalar, some several (`ß` is `ss`).
    static func fold(_ scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        if scalar.isASCII { return [Unicode.Scalar(lowercaseASCII(UInt8(scalar.value)))] }
        switch scalar {
        case "\u{03C2}": return ["\u{03C3}"]  // final sigma: σ
        case "\u{00DF}", "\u{1E9E}": return ["s", "s"]  // ß and ẞ: ss, as STRASSE is written
        case "\u{0130}": return ["i"]  // İ: i, not i and a combining dot
        default: break
        }
        guard scalar.properties.changesWhenLowercased else { return [scalar] }
        return Array(scalar.properties.lowercaseMapping.unicodeScalars)
    }

    static func lowercaseASCII(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }
}

/// A word or phrase to find in a `FoldedText` whatever the case of its letters. ASCII patterns in
/// ASCII text compare bytes; anything else compares folded scalars.
public struct CaselessPattern: Sendable {
    private let scalars: [Unicode.Scalar]
    /// The folded pattern's bytes when it is all ASCII.
    private let asciiBytes: [UInt8]?

    public init(_ pattern: String) {
        scalars = Array(FoldedText.folding(pattern).unicodeScalars)
        asciiBytes =
            scalars.allSatisfy(\.isASCII)
            ? scalars.map { UInt8(truncatingIfNeeded: $0.value) } : nil
    }

    /// The first occurrence in `folded.text` that starts at or after `start`.
    public func firstRange(in folded: FoldedText, from start: String.Index? = nil)
        -> Range<String.Index>?
    {
        let text = folded.text
        let from = start ?? text.startIndex
        guard !scalars.isEmpty else { return nil }
        if folded.isASCII {
            guard let asciiBytes else { return nil }
            let offset = text.utf8.distance(from: text.startIndex, to: from)
            guard
                let found = Self.asciiOffsets(of: asciiBytes, in: text, from: offset, limit: 1)
                    .first
            else { return nil }
            let lower = text.utf8.index(text.startIndex, offsetBy: found)
            return lower..<text.utf8.index(lower, offsetBy: asciiBytes.count)
        }
        var position = folded.starts.partitioningIndex { $0 >= from }
        while position + scalars.count <= folded.scalars.count {
            let after = position + scalars.count
            // A match that ends where an accent follows is part of another letter: `x` is not
            // in `x́`, nor `i` in `İ` (`i` and a dot).
            if folded.scalars[position..<after].elementsEqual(scalars),
                after == folded.scalars.count || !folded.scalars[after].isCombiningMark
            {
                return folded.starts[position]..<folded.ends[after - 1]
            }
            position += 1
        }
        return nil
    }

    /// How many times it occurs in the text, without overlaps.
    public func count(in folded: FoldedText) -> Int {
        if folded.isASCII {
            guard let asciiBytes else { return 0 }
            return Self.asciiOffsets(of: asciiBytes, in: folded.text, from: 0, limit: .max).count
        }
        var count = 0
        var from = folded.text.startIndex
        while let found = firstRange(in: folded, from: from) {
            count += 1
            from = found.upperBound
        }
        return count
    }

    /// The byte offsets of the matches at or after `from` in ASCII text, without overlaps and at
    /// most `limit`.
    private static func asciiOffsets(of pattern: [UInt8], in text: String, from: Int, limit: Int)
        -> [Int]
    {
        if let offsets = text.utf8.withContiguousStorageIfAvailable({
            scan($0, for: pattern, from: from, limit: limit)
        }) {
            return offsets
        }
        return Array(text.utf8).withUnsafeBufferPointer {
            scan($0, for: pattern, from: from, limit: limit)
        }
    }

    private static func scan(
        _ bytes: UnsafeBufferPointer<UInt8>, for pattern: [UInt8], from: Int, limit: Int
    ) -> [Int] {
        var offsets: [Int] = []
        var offset = from
        while offset + pattern.count <= bytes.count, offsets.count < limit {
            var matched = 0
            while matched < pattern.count,
                FoldedText.lowercaseASCII(bytes[offset + matched]) == pattern[matched]
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
}

extension Array {
    /// The first index whose element satisfies `belongs`, for an array in which every element that
    /// does comes after every one that does not (a binary search); `count` when none does.
    fileprivate func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongs(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
