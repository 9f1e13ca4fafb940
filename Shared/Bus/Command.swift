import Core
import Glibc
import JSONKit
import RedisKit

/// Names of the streams, groups and keys on the bus, in one place.
public enum BusNames {
    public static func commandStream(_ service: String) -> String { "uc:cmd:\(service)" }
    public static func deadLetterStream(_ service: String) -> String { "uc:dead:\(service)" }
    public static func replyKey(_ gatewayId: String) -> String { "uc:reply:\(gatewayId)" }
    public static let replyPrefix = "uc:reply:"
    /// A sorted set of consumer name -> last heartbeat (ms), for readiness checks.
    public static func heartbeats(_ service: String) -> String { "uc:alive:\(service)" }
}

/// One request on its way to a service: what the gateway writes to the command stream.
public struct Command: Sendable {
    /// Names the effect: retries with the same `Idempotency-Key` share it.
    public let id: String
    /// Names this one delivery attempt of a request: the reply is matched on it.
    public let requestId: String
    public let type: String
    public let userId: ObjectId?
    public let role: String
    public let params: [String: String]
    public let body: [UInt8]
    public let replyKey: String
    public let deadline: Int64
    /// True when the client sent an `Idempotency-Key` (the id is then derived from it).
    public var keyed = false
    /// Where the service publishes the reply's chunks while it works (`ReplyChunks.key`), when
    /// the client asked for a streamed answer.
    public var chunkKey: String?
    public var streamId: String = ""

    public init(
        id: String, requestId: String, type: String, userId: ObjectId?, role: String,
        params: [String: String],
        body: [UInt8], replyKey: String, deadline: Int64
    ) {
        self.id = id
        self.requestId = requestId
        self.type = type
        self.userId = userId
        self.role = role
        self.params = params
        self.body = body
        self.replyKey = replyKey
        self.deadline = deadline
    }

    /// The stream entry's field-value pairs, readable with `XRANGE`. A field at its default
    /// (a request id that is the command id, no user, role `user`, no parameters, no body, not
    /// keyed) is left out: a ping then carries 5 fields instead of 11, which the gateway, Redis
    /// and the service all handle.
    public var fields: [RedisArgument] {
        var fields: [RedisArgument] = []
        forEachField { name, value in
            fields.append(RedisArgument(name.description))
            switch value {
            case .text(let text): fields.append(RedisArgument(text))
            case .bytes(let bytes): fields.append(RedisArgument(bytes))
            case .number(let number): fields.append(RedisArgument(number))
            }
        }
        return fields
    }

    /// Appends the same fields as `fields` to a command in wire form.
    public func appendFields(to command: inout RedisCommand) {
        forEachField { name, value in
            command.append(name)
            switch value {
            case .text(let text): command.append(text)
            case .bytes(let bytes): command.append(bytes)
            case .number(let number): command.append(number)
            }
        }
    }

    enum FieldValue {
        case text(String)
        case bytes([UInt8])
        case number(Int64)
    }

    private func forEachField(_ field: (StaticString, FieldValue) -> Void) {
        field("id", .text(id))
        if requestId != id { field("rid", .text(requestId)) }
        field("type", .text(type))
        if let userId { field("user", .text(userId.hex)) }
        if role != "user" { field("role", .text(role)) }
        if !params.isEmpty {
            let paramsDoc = Document(
                params.sorted(by: { $0.key < $1.key }).map { ($0.key, Value.string($0.value)) })
            field("params", .bytes(JSONWriter.bytes(.document(paramsDoc))))
        }
        if !body.isEmpty { field("body", .bytes(body)) }
        field("reply", .text(replyKey))
        field("deadline", .number(deadline))
        if keyed { field("keyed", .text("1")) }
        if let chunkKey { field("chunks", .text(chunkKey)) }
    }

    /// Decodes an entry read from a stream; nil when it is not a command. Field names are
    /// compared as bytes, and only the values kept become strings.
    public init?(streamId: String, fields: some RedisFieldList) {
        var id: String?
        var requestId: String?
        var type: String?
        var user: ObjectId?
        var role = "user"
        var params: [String: String] = [:]
        var body: [UInt8] = []
        var reply: String?
        var deadline: Int64?
        var keyed = false
        var chunks: String?
        var index = 0
        while index + 1 < fields.count {
            defer { index += 2 }
            fields.withBytes(at: index) { name in
                fields.withBytes(at: index + 1) { value in
                    guard let name, let value else { return }
                    var text: String { String(decoding: value, as: UTF8.self) }
                    if Command.is(name, "id") {
                        id = text
                    } else if Command.is(name, "rid") {
                        requestId = text
                    } else if Command.is(name, "type") {
                        type = text
                    } else if Command.is(name, "user") {
                        user = ObjectId(hex: text)
                    } else if Command.is(name, "role") {
                        role = text
                    } else if Command.is(name, "body") {
                        body = Array(value)
                    } else if Command.is(name, "reply") {
                        reply = text
                    } else if Command.is(name, "deadline") {
                        deadline = Int64(text)
                    } else if Command.is(name, "keyed") {
                        keyed = value.count == 1 && value[0] == 0x31
                    } else if Command.is(name, "chunks") {
                        chunks = text
                    } else if Command.is(name, "params"), value.count > 2,
                        let doc = try? JSONParser.parseObject(Array(value))
                    {
                        // Most commands carry no parameters: `{}` needs no parser.
                        for pair in doc.pairs { params[pair.key] = pair.value.stringValue }
                    }
                }
            }
        }
        guard let id, let type, let reply, let deadline else { return nil }
        self.init(
            id: id, requestId: requestId ?? id, type: type, userId: user, role: role,
            params: params, body: body, replyKey: reply, deadline: deadline)
        self.streamId = streamId
        self.keyed = keyed
        self.chunkKey = chunks
    }

    private static func `is`(_ bytes: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
        bytes.count == name.utf8CodeUnitCount
            && (bytes.count == 0 || memcmp(bytes.baseAddress!, name.utf8Start, bytes.count) == 0)
    }

    /// The caller's id; commands on authenticated routes always carry one.
    public func requireUser() throws(APIError) -> ObjectId {
        guard let userId else { throw APIError.unauthorized() }
        return userId
    }

    /// The body as a JSON object (400 when it is not one).
    public func jsonBody() throws(APIError) -> Document {
        try JSONParser.parseObject(body)
    }
}

/// A service's answer: an HTTP status and a JSON body.
public struct Reply: Sendable {
    public let status: Int
    public let body: [UInt8]
    public var headers: [(String, String)] = []

    public init(status: Int, body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    public init(status: Int, _ document: Document) {
        self.init(status: status, body: JSONWriter.bytes(.document(document)))
    }

    public init(_ error: APIError) {
        self.init(status: error.status, body: error.body)
    }

    /// `<request id>\n<status>[\t<name>: <value>]...\n<body>`: what travels on the reply key.
    /// Headers ride on the status line; one that could break the frame or the HTTP response
    /// (a name that is not a token, a value with a control character) is dropped.
    public func frame(requestId: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(requestId.utf8.count + body.count + 16)
        bytes += requestId.utf8
        bytes.append(0x0A)
        bytes += String(status).utf8
        for (name, value) in headers where Reply.isSafeHeader(name, value) {
            bytes.append(0x09)
            bytes += name.utf8
            bytes += ": ".utf8
            bytes += value.utf8
        }
        bytes.append(0x0A)
        bytes += body
        return bytes
    }

    /// Splits a frame into the request id and the reply.
    public static func parse(frame: [UInt8]) -> (String, Reply)? {
        frame.withUnsafeBufferPointer { bytes -> (String, Reply)? in
            guard let first = bytes.firstIndex(of: 0x0A),
                let second = bytes[(first + 1)...].firstIndex(of: 0x0A)
            else { return nil }
            let statusLine = UnsafeBufferPointer(rebasing: bytes[(first + 1)..<second])
            let digits = statusLine.prefix { $0 != 0x09 }
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0 &- 0x30 < 10 })
            else { return nil }
            let status = digits.reduce(0) { $0 * 10 + Int($1 &- 0x30) }
            var headers: [(String, String)] = []
            if digits.count < statusLine.count {
                let text = String(decoding: statusLine[(digits.count + 1)...], as: UTF8.self)
                headers = text.split(separator: "\t", omittingEmptySubsequences: false)
                    .compactMap { part in
                        guard let colon = part.firstRange(of: ": ") else { return nil }
                        return (
                            String(part[..<colon.lowerBound]), String(part[colon.upperBound...])
                        )
                    }
            }
            let id = String(decoding: UnsafeBufferPointer(rebasing: bytes[..<first]), as: UTF8.self)
            let body = Array(UnsafeBufferPointer(rebasing: bytes[(second + 1)...]))
            return (id, Reply(status: status, body: body, headers: headers))
        }
    }

    static func isSafeHeader(_ name: String, _ value: String) -> Bool {
        let isToken = { (byte: UInt8) -> Bool in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
                || (byte >= 0x61 && byte <= 0x7A) || byte == UInt8(ascii: "-")
        }
        let nameOK = !name.isEmpty && name.utf8.allSatisfy(isToken)
        return nameOK && value.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7F }
    }
}
