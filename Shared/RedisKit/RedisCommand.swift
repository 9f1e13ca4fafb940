import CHiredis

/// A command already in Redis's wire form (RESP), built argument by argument, for the callers
/// that send one per request: no array of arguments and no formatting by hiredis.
public struct RedisCommand: Sendable {
    /// The arguments, each as `$<length>\r\n<bytes>\r\n`.
    public private(set) var arguments: [UInt8] = []
    public private(set) var count = 0

    public init(_ name: StaticString) {
        arguments.reserveCapacity(256)
        append(name)
    }

    public mutating func append(_ name: StaticString) {
        name.withUTF8Buffer { append($0) }
    }

    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    public mutating func append(_ number: Int64) {
        var digits: [UInt8] = []
        RedisCommand.writeDecimal(number, to: &digits)
        append(digits)
    }

    public mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        count += 1
        arguments.append(UInt8(ascii: "$"))
        RedisCommand.writeDecimal(Int64(bytes.count), to: &arguments)
        arguments.append(13)
        arguments.append(10)
        arguments.append(contentsOf: bytes)
        arguments.append(13)
        arguments.append(10)
    }

    /// Appends the command to a context's output buffer: the `*<count>` line, then the
    /// arguments as they are, with no copy of the whole. False when hiredis refused.
    func queue(on context: UnsafeMutablePointer<redisContext>) -> Bool {
        var head: [UInt8] = [UInt8(ascii: "*")]
        RedisCommand.writeDecimal(Int64(count), to: &head)
        head += [13, 10]
        for part in [head, arguments] {
            let status = part.withUnsafeBufferPointer { raw in
                raw.withMemoryRebound(to: CChar.self) {
                    redisAppendFormattedCommand(context, $0.baseAddress, $0.count)
                }
            }
            if status != REDIS_OK { return false }
        }
        return true
    }

    /// The whole command: `*<count>\r\n` and the arguments.
    public var bytes: [UInt8] {
        var whole: [UInt8] = [UInt8(ascii: "*")]
        whole.reserveCapacity(arguments.count + 16)
        RedisCommand.writeDecimal(Int64(count), to: &whole)
        whole.append(13)
        whole.append(10)
        whole.append(contentsOf: arguments)
        return whole
    }

    static func writeDecimal(_ number: Int64, to out: inout [UInt8]) {
        // Most numbers written are argument lengths under 100.
        if number >= 0 && number < 100 {
            if number >= 10 { out.append(UInt8(ascii: "0") + UInt8(number / 10)) }
            out.append(UInt8(ascii: "0") + UInt8(number % 10))
            return
        }
        if number < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var length = 0
            repeat {
                digits[length] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                length += 1
            } while magnitude > 0
            for index in stride(from: length - 1, through: 0, by: -1) { out.append(digits[index]) }
        }
    }
}
