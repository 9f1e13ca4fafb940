import CMicroHTTPD
import Synchronization

/// A response body written while it is being sent (Server-Sent Events, for example).
///
/// libmicrohttpd sends it with chunked encoding and asks for bytes whenever the socket can
/// take them. When nothing is waiting, the reader suspends the connection and returns 0 (the
/// pattern `microhttpd.h` prescribes instead of a busy loop); the next `write` or `finish`
/// resumes it. So an open stream holds no thread, however long it stays open.
///
/// Writes from any thread. Once the client is gone (the connection closed) `write` answers
/// false; a suspended connection notices a departed client on the next write only.
public final class HTTPBodyStream: @unchecked Sendable {
    struct State {
        var pending: [UInt8] = []
        var sent = 0
        var finished = false
        var closed = false
        var suspended = false
        /// The connection's address (a pointer is not Sendable); 0 before it is queued or after.
        var connectionAddress: UInt = 0

        var connection: OpaquePointer? { OpaquePointer(bitPattern: connectionAddress) }
    }

    private let state = Mutex(State())
    /// Told after each resume, so that a server on an event loop runs it.
    private let resumedNotice = Mutex<(@Sendable () -> Void)?>(nil)

    public init() {}

    /// Queues bytes for the client; false when the stream is finished or the client is gone.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        let (accepted, toResume) = state.withLock { current -> (Bool, OpaquePointer?) in
            guard !current.closed, !current.finished else { return (false, nil) }
            current.pending.append(contentsOf: bytes)
            return (true, HTTPBodyStream.takeSuspended(&current))
        }
        if let toResume { resume(toResume) }
        return accepted
    }

    /// Ends the body once everything written so far is sent.
    public func finish() {
        let toResume = state.withLock { current -> OpaquePointer? in
            guard !current.finished else { return nil }
            current.finished = true
            return HTTPBodyStream.takeSuspended(&current)
        }
        if let toResume { resume(toResume) }
    }

    private func resume(_ connection: OpaquePointer) {
        MHD_resume_connection(connection)
        resumedNotice.withLock { $0 }?()
    }

    /// False once finished or once libmicrohttpd has let go of the connection.
    public var isOpen: Bool { state.withLock { !$0.closed && !$0.finished } }

    /// True once libmicrohttpd has let go of the response (sent in full, or the client left).
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Bytes handed to libmicrohttpd so far.
    public var bytesSent: Int { state.withLock { $0.sent } }

    /// The connection to resume, if it is suspended; the caller resumes it after unlocking,
    /// since the resumed thread takes the lock at once in `read`. A suspended connection is
    /// not released by libmicrohttpd, so it is still there then.
    private static func takeSuspended(_ current: inout State) -> OpaquePointer? {
        guard current.suspended, let connection = current.connection else { return nil }
        current.suspended = false
        return connection
    }

    fileprivate func attach(_ connection: OpaquePointer) {
        let address = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(connection)))
        state.withLock { $0.connectionAddress = address }
    }

    /// libmicrohttpd's content reader: the bytes waiting, the end of the stream, or 0 after
    /// suspending the connection until there is more.
    fileprivate func read(into buffer: UnsafeMutablePointer<CChar>, max: Int) -> Int {
        state.withLock { current -> Int in
            if !current.pending.isEmpty {
                let count = min(max, current.pending.count)
                current.pending.withUnsafeBytes { raw in
                    guard let base = raw.baseAddress else { return }
                    UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: count)
                }
                current.pending.removeFirst(count)
                current.sent += count
                return count
            }
            if current.finished { return -1 }  // MHD_CONTENT_READER_END_OF_STREAM
            guard let connection = current.connection else { return 0 }
            MHD_suspend_connection(connection)
            current.suspended = true
            return 0
        }
    }

    fileprivate func released() {
        state.withLock { current in
            current.closed = true
            current.suspended = false
            current.connectionAddress = 0
            current.pending = []
        }
    }

    /// A chunked libmicrohttpd response reading from `stream`; nil when MHD cannot make one.
    static func makeResponse(
        _ stream: HTTPBodyStream, connection: OpaquePointer,
        onResume: @escaping @Sendable () -> Void
    ) -> OpaquePointer? {
        stream.attach(connection)
        stream.resumedNotice.withLock { $0 = onResume }
        let context = Unmanaged.passRetained(stream).toOpaque()
        guard
            let response = MHD_create_response_from_callback(
                UInt64.max, 16 * 1024, streamReader, context, streamReleased)
        else {
            Unmanaged<HTTPBodyStream>.fromOpaque(context).release()
            return nil
        }
        return response
    }
}

private let streamReader: MHD_ContentReaderCallback = { context, _, buffer, max in
    guard let context, let buffer else { return -2 }  // MHD_CONTENT_READER_END_WITH_ERROR
    let stream = Unmanaged<HTTPBodyStream>.fromOpaque(context).takeUnretainedValue()
    return stream.read(into: buffer, max: max)
}

private let streamReleased: MHD_ContentReaderFreeCallback = { context in
    guard let context else { return }
    let stream = Unmanaged<HTTPBodyStream>.fromOpaque(context).takeRetainedValue()
    stream.released()
}
