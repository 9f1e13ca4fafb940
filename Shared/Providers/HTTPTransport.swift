import CCurl
import FoundationEssentials

/// One outgoing HTTP request to a model provider.
public struct HTTPCall: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The whole exchange, connect included, must end within this.
    public var timeoutMs: Int
    public var connectTimeoutMs: Int
    /// A larger answer is cut off and reported as an error.
    public var maxResponseBytes: Int

    public init(
        method: String = "POST", url: String, headers: [(String, String)] = [], body: [UInt8] = [],
        timeoutMs: Int, connectTimeoutMs: Int = 5000, maxResponseBytes: Int = 16 << 20
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMs = timeoutMs
        self.connectTimeoutMs = connectTimeoutMs
        self.maxResponseBytes = maxResponseBytes
    }
}

/// What came back: the status, the headers (lower-case names) and the body.
public struct HTTPAnswer: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: [UInt8]
}

/// Why no answer came back: our deadline, the network, or another libcurl failure.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case timeout, connection, tooLarge, other }
    public let kind: Kind
    public let message: String

    public var description: String { message }
}

/// Blocking HTTP client calls through libcurl, one easy handle per call (the only file that
/// imports CCurl). Safe to use from several threads at once.
public enum HTTPTransport {
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    /// Sends the call and waits for the whole answer. `onChunk`, when given, sees each piece of
    /// the body as it arrives (for streamed answers); returning false stops the transfer.
    public static func send(
        _ call: HTTPCall, onChunk: (@Sendable ([UInt8]) -> Bool)? = nil
    ) throws(TransportError) -> HTTPAnswer {
        guard initialized else {
            throw TransportError(kind: .other, message: "libcurl failed to initialise")
        }
        guard let handle = CurlEasy() else {
            throw TransportError(kind: .other, message: "libcurl could not create a handle")
        }
        let receiver = Receiver(limit: call.maxResponseBytes, onChunk: onChunk)
        let code = handle.perform(call, receiver: receiver)
        if code != CURLE_OK {
            throw mapError(code, receiver: receiver, timeoutMs: call.timeoutMs)
        }
        return HTTPAnswer(
            status: handle.status, headers: receiver.headers, body: receiver.body)
    }

    /// Maps libcurl's result codes to our kinds of failure.
    static func mapError(_ code: CURLcode, receiver: Receiver, timeoutMs: Int) -> TransportError {
        let text = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return TransportError(
                kind: .timeout, message: "no complete answer within \(timeoutMs) ms")
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY,
            CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_SSL_CONNECT_ERROR,
            CURLE_PARTIAL_FILE:
            return TransportError(kind: .connection, message: "connection failed: \(text)")
        case CURLE_WRITE_ERROR where receiver.overflowed:
            return TransportError(
                kind: .tooLarge, message: "the answer exceeds \(receiver.limit) bytes")
        case CURLE_WRITE_ERROR where receiver.stopped:
            return TransportError(kind: .other, message: "the transfer was stopped by the caller")
        default:
            return TransportError(kind: .other, message: "libcurl error \(code.rawValue): \(text)")
        }
    }
}

/// Collects the answer; libcurl's callbacks reach it through an unretained pointer that lives
/// only while `perform` runs.
final class Receiver {
    let limit: Int
    let onChunk: (@Sendable ([UInt8]) -> Bool)?
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    var overflowed = false
    var stopped = false

    init(limit: Int, onChunk: (@Sendable ([UInt8]) -> Bool)?) {
        self.limit = limit
        self.onChunk = onChunk
    }

    func take(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if body.count + bytes.count > limit {
            overflowed = true
            return false
        }
        let chunk = Array(bytes)
        body += chunk
        if let onChunk, !onChunk(chunk) {
            stopped = true
            return false
        }
        return true
    }

    /// One header line; a new status line (after a redirect or 100-continue) starts afresh.
    func header(_ line: String) {
        if line.hasPrefix("HTTP/") {
            headers = [:]
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].trimmingWhitespace.lowercased()
        let value = line[line.index(after: colon)...].trimmingWhitespace
        headers[name] = value
    }
}

private let writeBody: curl_write_callback = { data, size, count, context in
    guard let context else { return 0 }
    let receiver = Unmanaged<Receiver>.fromOpaque(context).takeUnretainedValue()
    let total = size * count
    guard let data, total > 0 else { return total }
    let ok = data.withMemoryRebound(to: UInt8.self, capacity: total) {
        receiver.take(UnsafeBufferPointer(start: $0, count: total))
    }
    return ok ? total : 0
}

private let writeHeader: curl_write_callback = { data, size, count, context in
    guard let context else { return 0 }
    let receiver = Unmanaged<Receiver>.fromOpaque(context).takeUnretainedValue()
    let total = size * count
    guard let data, total > 0 else { return total }
    let line = data.withMemoryRebound(to: UInt8.self, capacity: total) {
        String(decoding: UnsafeBufferPointer(start: $0, count: total), as: UTF8.self)
    }
    receiver.header(line)
    return total
}

/// Owns one libcurl easy handle and the header list of its request.
final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?

    init?() {
        guard let made = curl_easy_init() else { return nil }
        handle = made
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        curl_easy_cleanup(handle)
    }

    var status: Int { Int(uc_curl_status(handle)) }

    func perform(_ call: HTTPCall, receiver: Receiver) -> CURLcode {
        for (name, value) in call.headers {
            // A header with a line break could smuggle another header: drop it.
            guard !"\(name)\(value)".utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) else {
                continue
            }
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        headerList = curl_slist_append(headerList, "Expect:")
        let context = Unmanaged.passUnretained(receiver).toOpaque()
        var code = uc_curl_set_string(handle, CURLOPT_URL, call.url)
        for (option, value) in [
            (CURLOPT_NOSIGNAL, 1), (CURLOPT_TIMEOUT_MS, call.timeoutMs),
            (CURLOPT_CONNECTTIMEOUT_MS, call.connectTimeoutMs), (CURLOPT_FOLLOWLOCATION, 0),
        ] where code == CURLE_OK {
            code = uc_curl_set_long(handle, option, value)
        }
        guard code == CURLE_OK else { return code }
        _ = uc_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = uc_curl_set_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        _ = uc_curl_set_string(handle, CURLOPT_USERAGENT, "universal-chat/1")
        _ = uc_curl_set_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList))
        _ = uc_curl_set_write(handle, writeBody)
        _ = uc_curl_set_pointer(handle, CURLOPT_WRITEDATA, context)
        _ = uc_curl_set_header_fn(handle, writeHeader)
        _ = uc_curl_set_pointer(handle, CURLOPT_HEADERDATA, context)
        if call.method != "GET" && call.method != "POST" {
            _ = uc_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, call.method)
        }
        if call.method != "GET" {
            let rc = call.body.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) {
                    uc_curl_set_body(handle, $0.baseAddress, Int64($0.count))
                }
            }
            guard rc == CURLE_OK else { return rc }
        }
        return curl_easy_perform(handle)
    }
}
