import CMicroHTTPD
import Core
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// A request as the handler sees it, with the whole body read.
public struct HTTPRequest: Sendable {
    public let method: String
    public let path: String
    public let query: [(String, String)]
    /// The values of `readHeaders`, in their order (nil when absent).
    let headerValues: [String?]
    public let body: [UInt8]
    /// The peer's IP address: its family (`AF_INET`, `AF_INET6` or 0) and bytes, turned into
    /// text only when asked for.
    var clientIP: (family: Int32, bytes: [UInt8]) = (0, [])

    /// The peer's IP address as text (empty when unknown); no proxy header is trusted.
    public var clientAddress: String {
        guard clientIP.family != 0 else { return "" }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = clientIP.bytes.withUnsafeBytes {
            inet_ntop(clientIP.family, $0.baseAddress, &text, socklen_t(text.count))
        }
        guard written != nil else { return "" }
        let characters = text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        return String(decoding: characters, as: UTF8.self)
    }

    /// The method a route answers: HEAD is GET without the body, which libmicrohttpd leaves
    /// out by itself.
    public var routeMethod: String { method == "HEAD" ? "GET" : method }

    /// A header by its lower-case name; only the headers in `readHeaders` are read.
    public func header(_ name: String) -> String? {
        guard let index = HTTPRequest.readHeaders.firstIndex(of: name) else { return nil }
        return headerValues[index]
    }

    /// The request headers the server copies out for the handler (looked up case-insensitively);
    /// copying every header of every request costs more than the rest of the request.
    public static let readHeaders = [
        "authorization", "content-type", "idempotency-key", "origin", "accept", "last-event-id",
        "access-control-request-method", "access-control-request-headers",
    ]

    /// `readHeaders` as C strings, made once rather than for every lookup.
    static let readHeaderCNames = readHeaders.map { $0.utf8CString }
}

/// A response: status, headers and the body bytes (Content-Length counts these bytes).
public struct HTTPResponse: Sendable {
    public let status: Int
    public var headers: [(String, String)]
    public let body: [UInt8]
    /// When set, the body is this stream (chunked, written while it is sent) and `body` is unused.
    public var stream: HTTPBodyStream?

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response whose body is written later through `stream`.
    public static func streaming(
        _ status: Int, headers: [(String, String)], stream: HTTPBodyStream
    ) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers, body: [])
        response.stream = stream
        return response
    }

    public static func json(_ status: Int, _ body: [UInt8]) -> HTTPResponse {
        HTTPResponse(
            status: status, headers: [("Content-Type", "application/json; charset=utf-8")],
            body: body)
    }

    public static func error(_ error: APIError) -> HTTPResponse { .json(error.status, error.body) }
}

/// Hands the response of one request back to libmicrohttpd, from any thread, once.
public final class HTTPResponder: @unchecked Sendable {
    fileprivate let context: ConnectionContext

    fileprivate init(context: ConnectionContext) { self.context = context }

    public func respond(_ response: HTTPResponse) { context.deliver(response) }
}

/// Settings of the HTTP listener.
public struct HTTPServerConfig: Sendable {
    public let host: String
    public let port: Int
    public let threads: Int
    public let maxBodyBytes: Int
    public let connectionTimeoutSeconds: Int
    public let connectionLimit: Int
    /// libmicrohttpd's memory per connection, for the request line and headers. It is zeroed
    /// after every request, so each busy connection keeps all of it resident: 16 KB holds about
    /// 10 KB of headers (one header up to 15 KB) and 2,000 busy connections cost 32 MB.
    public var connectionMemoryBytes = 16 * 1024
    public let defaultHeaders: [(String, String)]
    /// The body limit for one request by method and path; `maxBodyBytes` when nil.
    public var bodyLimit: (@Sendable (_ method: String, _ path: String) -> Int)?

    public init(
        host: String, port: Int, threads: Int, maxBodyBytes: Int, connectionTimeoutSeconds: Int,
        connectionLimit: Int, defaultHeaders: [(String, String)]
    ) {
        self.host = host
        self.port = port
        self.threads = threads
        self.maxBodyBytes = maxBodyBytes
        self.connectionTimeoutSeconds = connectionTimeoutSeconds
        self.connectionLimit = connectionLimit
        self.defaultHeaders = defaultHeaders
    }
}

/// An HTTP/1.1 server on libmicrohttpd: epoll, a small thread pool, keep-alive, and requests
/// that wait for an answer suspended, so a waiting request holds no thread.
public final class HTTPServer: @unchecked Sendable {
    public typealias Handler = @Sendable (HTTPRequest, HTTPResponder) -> Void

    let config: HTTPServerConfig
    let handler: Handler
    let lingering = LingeringCloser.shared
    /// `config.defaultHeaders` as C strings, made once.
    private let defaultHeaderCStrings: [(ContiguousArray<CChar>, ContiguousArray<CChar>)]
    private var daemon: OpaquePointer?
    fileprivate let active = Atomic<Int>(0)
    fileprivate let refusing = Atomic<Bool>(false)
    /// Set when an answer resumed a connection: the loop gives libmicrohttpd a pass.
    fileprivate let resumed = Atomic<Bool>(false)
    /// The loop driving the server, when it runs on one; its thread alone calls libmicrohttpd.
    private var loop: EventLoop?
    /// libmicrohttpd's descriptor was ready in this turn of the loop.
    private var ready = false

    /// The answer to a request that would have to wait once `refuseWaiting` was called.
    static var stoppingAnswer: HTTPResponse {
        var response = HTTPResponse.error(.unavailable("the server is stopping; retry"))
        response.headers.append(("Connection", "close"))
        return response
    }

    /// From now on a request whose answer is not ready at once gets 503 instead of waiting,
    /// so no connection can be suspended when `stop` runs.
    public func refuseWaiting() { refusing.store(true, ordering: .releasing) }

    public init(config: HTTPServerConfig, handler: @escaping Handler) {
        self.config = config
        self.handler = handler
        defaultHeaderCStrings = config.defaultHeaders.map { ($0.utf8CString, $1.utf8CString) }
    }

    /// Starts the server on its own threads (`config.threads` of them).
    public func start() throws(APIError) {
        try startDaemon(onOwnThreads: true)
    }

    /// Starts the server driven by `loop`: libmicrohttpd reads, parses and answers on the loop's
    /// thread, so a handler and whatever answers on that thread meet no other thread. Call it
    /// before the loop runs or on its thread; answers may still come from any thread.
    /// `listener`: a socket from `listeningSocket` that several servers, each on its own loop,
    /// accept from; the server takes a duplicate. Nil: the server binds `config.port` itself.
    public func start(on loop: EventLoop, sharing listener: Int32? = nil) throws(APIError) {
        var own: Int32?
        if let listener {
            own = dup(listener)
            guard let own, own >= 0 else {
                throw APIError.internalError("cannot share the listening socket: errno \(errno)")
            }
        }
        do {
            try startDaemon(onOwnThreads: false, listener: own)
        } catch {
            if let own { close(own) }
            throw error
        }
        guard let daemon else { return }
        let descriptor = uc_mhd_epoll_fd(daemon)
        guard descriptor >= 0 else {
            stop()
            throw APIError.internalError("libmicrohttpd gave no epoll descriptor")
        }
        self.loop = loop
        loop.watch(descriptor) { [unowned self] _, _, _ in ready = true }
        loop.everyTurn { [unowned self] in runLibrary() }
    }

    /// One pass of libmicrohttpd when something is waiting for it: a ready socket, a resumed
    /// connection or a timeout due. Returns how long the loop may wait before the next pass.
    private func runLibrary() -> Int {
        guard let daemon else { return 1000 }
        let resumedSome = resumed.exchange(false, ordering: .acquiringAndReleasing)
        var due: UInt64 = 0
        let hasTimeout = MHD_get_timeout(daemon, &due) == .YES
        if ready || resumedSome || (hasTimeout && due == 0) {
            ready = false
            MHD_run(daemon)
            // A resume from another thread during the pass may have found its wake-up used up
            // by it: the flag it set calls for another pass at once.
            if resumed.load(ordering: .acquiring) { return 0 }
            guard MHD_get_timeout(daemon, &due) == .YES else { return 1000 }
        } else if !hasTimeout {
            return 1000
        }
        return Int(min(due, 1000))
    }

    /// Called after every `MHD_resume_connection`: on a loop, the next pass must run it, and a
    /// resume from another thread wakes the loop (libmicrohttpd's own wake-up can be consumed
    /// by a pass already under way).
    fileprivate func noteResume() {
        resumed.store(true, ordering: .releasing)
        if let loop, !loop.isCurrent { loop.wake() }
    }

    /// A non-blocking socket listening on `host:port`, for servers that share it.
    public static func listeningSocket(host: String, port: Int) throws(APIError) -> Int32 {
        var address = try socketAddress(host: host, port: port)
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw APIError.internalError("no socket: errno \(errno)") }
        var on: Int32 = 1
        _ = setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(socket, SOMAXCONN) == 0 else {
            close(socket)
            throw APIError.internalError("cannot listen on \(host):\(port)")
        }
        _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
        return socket
    }

    private static func socketAddress(host: String, port: Int) throws(APIError) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw APIError.internalError("HOST must be an IPv4 address, got \(host)")
        }
        return address
    }

    private func startDaemon(onOwnThreads: Bool, listener: Int32? = nil) throws(APIError) {
        var address = try HTTPServer.socketAddress(host: config.host, port: config.port)
        let flags =
            (onOwnThreads ? MHD_USE_INTERNAL_POLLING_THREAD.rawValue : 0) | MHD_USE_EPOLL.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ERROR_LOG.rawValue
        let me = Unmanaged.passUnretained(self).toOpaque()
        let started = withUnsafePointer(to: &address) { addressPointer -> OpaquePointer? in
            let bindTo: [CVarArg] =
                listener.map { [MHD_OPTION.LISTEN_SOCKET.rawValue, $0] }
                ?? [MHD_OPTION.SOCK_ADDR.rawValue, OpaquePointer(addressPointer)]
            let args: [CVarArg] =
                [
                    // First, or libmicrohttpd prints what it logs before it to standard error.
                    MHD_OPTION.EXTERNAL_LOGGER.rawValue,
                    unsafeBitCast(uc_mhd_log_callback(), to: OpaquePointer.self),
                    unsafeBitCast(forwardLibraryLog, to: OpaquePointer.self),
                    MHD_OPTION.NOTIFY_COMPLETED.rawValue,
                    unsafeBitCast(requestCompleted, to: OpaquePointer.self),
                    OpaquePointer(me),
                    MHD_OPTION.CONNECTION_TIMEOUT.rawValue, UInt32(config.connectionTimeoutSeconds),
                    MHD_OPTION.CONNECTION_LIMIT.rawValue, UInt32(config.connectionLimit),
                    MHD_OPTION.THREAD_POOL_SIZE.rawValue, UInt32(onOwnThreads ? config.threads : 0),
                    // TODO: a request line or headers past this get libmicrohttpd's HTML 414/431.
                    MHD_OPTION.CONNECTION_MEMORY_LIMIT.rawValue, config.connectionMemoryBytes,
                    MHD_OPTION.UNESCAPE_CALLBACK.rawValue,
                    unsafeBitCast(unescape, to: OpaquePointer.self),
                    OpaquePointer(me),
                ]
                + bindTo + [MHD_OPTION.END.rawValue]
            return withVaList(args) { list in
                MHD_start_daemon_va(flags, UInt16(config.port), nil, nil, accessHandler, me, list)
            }
        }
        guard let started else {
            throw APIError.internalError("cannot listen on \(config.host):\(config.port)")
        }
        daemon = started
    }

    /// Requests libmicrohttpd has started and not yet completed: uploading, waiting for their
    /// answer (suspended), or sending it.
    public var activeRequests: Int { active.load(ordering: .acquiring) }

    /// Stops the server. libmicrohttpd aborts the process if a connection is still suspended,
    /// so call it only once `activeRequests` is 0, and on a loop only once the loop has stopped.
    public func stop() {
        if let daemon { MHD_stop_daemon(daemon) }
        daemon = nil
    }

    /// Stops accepting new connections and closes the listening socket, so that new clients are
    /// refused at once; requests in flight still get their answers.
    public func quiesce() {
        if let loop, !loop.isCurrent {
            let done = DispatchSemaphore(value: 0)
            loop.post { [self] in
                quiesce()
                done.signal()
            }
            // A loop that has already stopped would never run it: the listener then stays
            // open until the daemon stops.
            _ = done.wait(timeout: .now() + 2)
            return
        }
        guard let daemon else { return }
        let listener = MHD_quiesce_daemon(daemon)
        if listener >= 0 { close(listener) }
    }

    /// Answers `error` and closes the connection; the rest of the request is never handled.
    /// `beforeTheBody`: the body is still unread, so the socket is drained after the answer.
    fileprivate func refuse(
        _ error: APIError, _ context: ConnectionContext, _ connection: OpaquePointer,
        beforeTheBody: Bool
    ) -> MHD_Result {
        context.rejected = true
        context.answeredEarly = beforeTheBody
        var response = HTTPResponse.error(error)
        response.headers.append(("Connection", "close"))
        return queue(response, on: connection)
    }

    fileprivate func queue(_ response: HTTPResponse, on connection: OpaquePointer) -> MHD_Result {
        let made: OpaquePointer?
        if let stream = response.stream {
            made = HTTPBodyStream.makeResponse(stream, connection: connection) {
                [unowned self] in noteResume()
            }
        } else {
            made = response.body.withUnsafeBytes { raw -> OpaquePointer? in
                MHD_create_response_from_buffer(
                    raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress),
                    .RESPMEM_MUST_COPY)
            }
        }
        guard let made else { return .NO }
        defer { MHD_destroy_response(made) }
        for (name, value) in defaultHeaderCStrings {
            name.withUnsafeBufferPointer { name in
                value.withUnsafeBufferPointer { value in
                    _ = MHD_add_response_header(made, name.baseAddress, value.baseAddress)
                }
            }
        }
        for (name, value) in response.headers {
            name.withCString { name in
                value.withCString { value in _ = MHD_add_response_header(made, name, value) }
            }
        }
        return MHD_queue_response(connection, UInt32(response.status), made)
    }
}

/// Per-request state between libmicrohttpd's calls: the body so far and the answer once ready.
final class ConnectionContext: @unchecked Sendable {
    enum Stage { case reading, dispatched, suspended, answered, completed }

    let connection: OpaquePointer
    unowned let server: HTTPServer
    var body: [UInt8] = []
    var rejected = false
    /// Answered before its body was read: the socket is drained after the answer is sent.
    var answeredEarly = false
    var limit = 0
    /// Bytes of a body without a declared length (chunked) that went past the limit.
    var overflow = 0
    private let state = Mutex<(Stage, HTTPResponse?)>((.reading, nil))

    init(connection: OpaquePointer, server: HTTPServer) {
        self.connection = connection
        self.server = server
    }

    var stage: Stage { state.withLock { $0.0 } }

    func markDispatched() { state.withLock { $0.0 = .dispatched } }

    /// libmicrohttpd is done with the connection: a late answer must not resume it.
    func markCompleted() { state.withLock { $0.0 = .completed } }

    /// Called by the access handler after dispatch: the response if it is already here,
    /// otherwise the connection is suspended until `deliver` resumes it.
    func responseOrSuspend(refusing: Bool) -> HTTPResponse? {
        state.withLock { current -> HTTPResponse? in
            if let response = current.1 { return response }
            if refusing {
                // Stopping: a suspended connection would make libmicrohttpd abort at stop.
                current.1 = HTTPServer.stoppingAnswer
                current.0 = .answered
                return current.1
            }
            MHD_suspend_connection(connection)
            current.0 = .suspended
            return nil
        }
    }

    func takeResponse() -> HTTPResponse? { state.withLock { $0.1 } }

    /// Resumes outside the lock: the resume wakes the connection's thread, which takes the lock
    /// at once to read the response. A suspended connection is left alone by libmicrohttpd
    /// until resumed, and only the first answer gets here, so nothing can change it meanwhile.
    func deliver(_ response: HTTPResponse) {
        let wasSuspended = state.withLock { current -> Bool in
            guard current.1 == nil, current.0 != .completed else { return false }
            current.1 = response
            defer { current.0 = .answered }
            return current.0 == .suspended
        }
        guard wasSuspended else { return }
        MHD_resume_connection(connection)
        server.noteResume()
    }
}

private func collectValue(
    _ cls: UnsafeMutableRawPointer?, _ kind: MHD_ValueKind, _ key: UnsafePointer<CChar>?,
    _ value: UnsafePointer<CChar>?
) -> MHD_Result {
    guard let cls, let key else { return .YES }
    let box = cls.assumingMemoryBound(to: [(String, String)].self)
    box.pointee.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
    return .YES
}

private func values(_ connection: OpaquePointer, _ kind: MHD_ValueKind) -> [(String, String)] {
    var collected: [(String, String)] = []
    withUnsafeMutablePointer(to: &collected) { pointer in
        _ = MHD_get_connection_values(connection, kind, collectValue, pointer)
    }
    return collected
}

private func clientIP(_ connection: OpaquePointer) -> (family: Int32, bytes: [UInt8]) {
    var bytes = [UInt8](repeating: 0, count: 16)
    let family = uc_mhd_client_ip(connection, &bytes)
    return (family, Array(bytes.prefix(family == AF_INET ? 4 : 16)))
}

private let accessHandler: MHD_AccessHandlerCallback = {
    cls, connection, url, method, _, uploadData, uploadDataSize, connectionState in
    guard let cls, let connection, let connectionState, let uploadDataSize else { return .NO }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()

    guard let existing = connectionState.pointee else {
        let context = ConnectionContext(connection: connection, server: server)
        connectionState.pointee = Unmanaged.passRetained(context).toOpaque()
        server.active.add(1, ordering: .relaxed)
        let limit =
            server.config.bodyLimit?(
                method.map { String(cString: $0) } ?? "GET", url.map { String(cString: $0) } ?? "/")
            ?? server.config.maxBodyBytes
        context.limit = limit
        if uc_mhd_ambiguous_framing(connection) != 0 {
            return server.refuse(
                .malformed("Content-Length and Transfer-Encoding: at most one, once"),
                context, connection, beforeTheBody: true)
        }
        let declared = MHD_lookup_connection_value(connection, .HEADER_KIND, "Content-Length")
            .flatMap { Int(String(cString: $0)) }
        if let declared, declared > limit {
            return server.refuse(.tooLarge(limit), context, connection, beforeTheBody: true)
        }
        return .YES
    }
    let context = Unmanaged<ConnectionContext>.fromOpaque(existing).takeUnretainedValue()
    if context.rejected { return .YES }
    let limit = context.limit

    if uploadDataSize.pointee > 0 {
        let count = uploadDataSize.pointee
        uploadDataSize.pointee = 0
        if context.overflow > 0 || context.body.count + count > limit {
            // Past the limit without a declared length (chunked): libmicrohttpd sends no
            // response queued mid-upload (the client saw an empty reply), so the rest is read
            // and dropped and the 413 goes out at the end; a sender still going at 4 x the limit
            // is cut off.
            context.body = []
            context.overflow += count
            return context.overflow > 4 * limit ? .NO : .YES
        }
        if let uploadData {
            uploadData.withMemoryRebound(to: UInt8.self, capacity: count) {
                context.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: count))
            }
        }
        return .YES
    }

    if context.overflow > 0 {
        return server.refuse(.tooLarge(limit), context, connection, beforeTheBody: false)
    }

    switch context.stage {
    case .reading:
        context.markDispatched()
        let headerValues = HTTPRequest.readHeaderCNames.map { name in
            name.withUnsafeBufferPointer {
                MHD_lookup_connection_value(connection, .HEADER_KIND, $0.baseAddress)
                    .map { String(cString: $0) }
            }
        }
        let request = HTTPRequest(
            method: method.map { String(cString: $0) } ?? "GET",
            path: url.map { String(cString: $0) } ?? "/",
            query: values(connection, .GET_ARGUMENT_KIND),
            headerValues: headerValues, body: context.body, clientIP: clientIP(connection))
        context.body = []
        server.handler(request, HTTPResponder(context: context))
        let refusing = server.refusing.load(ordering: .acquiring)
        guard let response = context.responseOrSuspend(refusing: refusing) else { return .YES }
        return server.queue(response, on: connection)
    case .dispatched, .suspended, .answered, .completed:
        guard let response = context.takeResponse() else { return .YES }
        return server.queue(response, on: connection)
    }
}

/// libmicrohttpd's own log lines (a client gone mid-answer, a socket error), through the
/// project's logger as warnings instead of plain text on standard error.
private let libraryLogger = Logger(service: "libmicrohttpd")

private let forwardLibraryLog: uc_mhd_log_sink = { line in
    guard let line else { return }
    libraryLogger.warning(String(cString: line).trimmingWhitespace)
}

/// libmicrohttpd's own percent-decoding, except for text holding `%00`: decoded, the NUL would
/// end the C string early and `/sessions/S%00/messages` would reach the route of `/sessions/S`.
/// Left encoded, such an id names nothing (404).
private typealias Unescaper =
    @convention(c) (
        UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutablePointer<CChar>?
    ) -> Int

private let unescape: Unescaper = { _, _, text in
    guard let text else { return 0 }
    if strstr(text, "%00") != nil { return strlen(text) }
    return MHD_http_unescape(text)
}

private let requestCompleted: MHD_RequestCompletedCallback = {
    cls, connection, connectionState, termination in
    guard let connectionState, let existing = connectionState.pointee, let cls else { return }
    let context = Unmanaged<ConnectionContext>.fromOpaque(existing)
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
    context.takeUnretainedValue().markCompleted()
    // The answer is out and the socket still open: libmicrohttpd closes it after this call,
    // having taken it out of its epoll set first (0.9.75), so a duplicate is safe to keep.
    let sent = termination.rawValue == 0  // MHD_REQUEST_TERMINATED_COMPLETED_OK
    if context.takeUnretainedValue().answeredEarly, sent, let connection {
        let socket = uc_mhd_connection_socket(connection)
        if socket >= 0 { server.lingering.adopt(duplicateOf: socket) }
    }
    server.active.subtract(1, ordering: .relaxed)
    context.release()
    connectionState.pointee = nil
}
