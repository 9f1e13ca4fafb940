import FoundationEssentials
import Synchronization

/// A MongoDB ObjectId: 4 bytes of seconds, 5 random bytes per process, a 3-byte counter.
public struct ObjectId: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    private static let processRandom: [UInt8] = (0..<5).map { _ in UInt8.random(in: 0...255) }
    private static let counter = Atomic<UInt32>(UInt32.random(in: 0..<0xFF_FFFF))

    public init() {
        let seconds = UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970))
        let count = ObjectId.counter.wrappingAdd(1, ordering: .relaxed).newValue
        var raw = [UInt8](repeating: 0, count: 12)
        raw[0] = UInt8(seconds >> 24)
        raw[1] = UInt8((seconds >> 16) & 0xFF)
        raw[2] = UInt8((seconds >> 8) & 0xFF)
        raw[3] = UInt8(seconds & 0xFF)
        for i in 0..<5 { raw[4 + i] = ObjectId.processRandom[i] }
        raw[9] = UInt8((count >> 16) & 0xFF)
        raw[10] = UInt8((count >> 8) & 0xFF)
        raw[11] = UInt8(count & 0xFF)
        bytes = raw
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 12 else { return nil }
        self.bytes = bytes
    }

    /// Accepts exactly 24 hexadecimal digits, nothing else.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 24 else { return nil }
        var raw = [UInt8](repeating: 0, count: 12)
        for i in 0..<12 {
            guard let hi = ObjectId.nibble(utf8[2 * i]), let lo = ObjectId.nibble(utf8[2 * i + 1])
            else {
                return nil
            }
            raw[i] = hi << 4 | lo
        }
        bytes = raw
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}

/// Lower-case hexadecimal encoding.
public enum Hex {
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let direct = bytes.withContiguousStorageIfAvailable { encode(UnsafeRawBufferPointer($0)) }
        if let direct { return direct }
        return Array(bytes).withUnsafeBytes { encode($0) }
    }

    /// Lower-case hex of raw bytes, written straight into the string's storage.
    public static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            var index = 0
            for byte in bytes {
                let high = byte >> 4
                let low = byte & 0x0F
                out[index] = high < 10 ? 0x30 + high : 0x57 + high
                out[index + 1] = low < 10 ? 0x30 + low : 0x57 + low
                index += 2
            }
            return index
        }
    }
}
