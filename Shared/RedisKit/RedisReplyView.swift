import CHiredis

/// A stream entry's field-value list as the decoder reads it: a copied reply or one still in
/// hiredis's memory (`RedisReplyView`), so that both go through one decoder.
public protocol RedisFieldList {
    /// Names and values together.
    var count: Int { get }
    /// Lends element `index`'s bytes to `body`; nil when it is not a string.
    func withBytes<Result>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>?) -> Result) -> Result
}

extension Array: RedisFieldList where Element == RedisReply {
    public func withBytes<Result>(
        at index: Int, _ body: (UnsafeBufferPointer<UInt8>?) -> Result
    ) -> Result {
        guard case .string(let bytes) = self[index] else { return body(nil) }
        return bytes.withUnsafeBufferPointer { body($0) }
    }
}

/// A reply read where hiredis parsed it, without copying it first: valid only inside the
/// closure it is lent to (`RedisConnection.send(_:reading:)`), and never to be kept.
public struct RedisReplyView: RedisFieldList {
    private let reply: UnsafeMutablePointer<redisReply>

    init(_ reply: UnsafeMutablePointer<redisReply>) { self.reply = reply }

    /// The number of elements of an array; 0 for anything else.
    public var count: Int {
        reply.pointee.type == REDIS_REPLY_ARRAY ? reply.pointee.elements : 0
    }

    /// Element `index` of an array; nil when it is null or out of range.
    public subscript(index: Int) -> RedisReplyView? {
        guard index >= 0, index < count, let element = reply.pointee.element[index] else {
            return nil
        }
        return RedisReplyView(element)
    }

    public var errorMessage: String? {
        guard reply.pointee.type == REDIS_REPLY_ERROR else { return nil }
        return withBytes {
            String(decoding: $0 ?? UnsafeBufferPointer(start: nil, count: 0), as: UTF8.self)
        }
    }

    /// A string or status reply as text; nil for anything else.
    public var text: String? {
        withBytes { bytes in bytes.map { String(decoding: $0, as: UTF8.self) } }
    }

    /// Lends the bytes of a string or status reply to `body`; nil for anything else.
    public func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>?) -> Result) -> Result {
        let type = reply.pointee.type
        guard type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS || type == REDIS_REPLY_ERROR
        else { return body(nil) }
        guard let start = reply.pointee.str, reply.pointee.len > 0 else {
            return body(UnsafeBufferPointer(start: nil, count: 0))
        }
        return start.withMemoryRebound(to: UInt8.self, capacity: reply.pointee.len) {
            body(UnsafeBufferPointer(start: $0, count: reply.pointee.len))
        }
    }

    public func withBytes<Result>(
        at index: Int, _ body: (UnsafeBufferPointer<UInt8>?) -> Result
    ) -> Result {
        guard let element = self[index] else { return body(nil) }
        return element.withBytes(body)
    }

    /// A copy that outlives the closure.
    public var copied: RedisReply { RedisConnection.copy(reply) }
}
