import Core
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// Reads and drops what a client still sends after it was answered before its body was read
/// (a 413 for a declared length over the limit), then closes the socket.
///
/// libmicrohttpd sends the answer, shuts down its side and closes the socket at once. Closing a
/// socket with unread bytes makes the kernel send a reset, and a client still uploading gets
/// "broken pipe" or "connection reset" instead of the 413 (case C23). Holding a duplicate of
/// the descriptor keeps the socket open while this thread drains it: until the client closes,
/// falls quiet for `quietLimit`, or `timeLimit` has passed since the answer.
final class LingeringCloser: @unchecked Sendable {
    /// One for the process: its thread starts with the first socket and then stays.
    static let shared = LingeringCloser()
    /// Sockets drained at once; past this a socket is closed at once, as without lingering.
    /// They are not counted in `HTTP_CONNECTION_LIMIT`, so the open-file limit needs room.
    static let capacity = 256
    static let timeLimit: UInt64 = 30_000_000_000
    static let quietLimit: UInt64 = 5_000_000_000

    private struct Lingering {
        let descriptor: Int32
        let giveUpAt: UInt64
        var quietUntil: UInt64
    }

    private let arrivals = Mutex<(descriptors: [Int32], started: Bool, count: Int)>(
        ([], false, 0))
    private let wakeRead: Int32
    private let wakeWrite: Int32

    private init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFL, O_NONBLOCK)
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            }
        } else {
            ends = [-1, -1]
        }
        wakeRead = ends[0]
        wakeWrite = ends[1]
    }

    /// Takes over a duplicate of `descriptor`, the socket of a connection that was answered
    /// early; the caller's own descriptor may be closed right after.
    func adopt(duplicateOf descriptor: Int32) {
        guard wakeWrite >= 0 else { return }
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return }
        let startNow = arrivals.withLock { state -> Bool? in
            guard state.count < Self.capacity else { return nil }
            state.descriptors.append(copy)
            state.count += 1
            defer { state.started = true }
            return !state.started
        }
        guard let startNow else {
            close(copy)
            return
        }
        if startNow { startThread(named: "http-linger") { self.run() } }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func run() {
        var lingering: [Lingering] = []
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            let arrived = arrivals.withLock { state -> [Int32] in
                defer { state.descriptors.removeAll() }
                return state.descriptors
            }
            for descriptor in arrived {
                lingering.append(
                    Lingering(
                        descriptor: descriptor, giveUpAt: now + Self.timeLimit,
                        quietUntil: now + Self.quietLimit))
            }

            var polled = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            polled += lingering.map {
                pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0)
            }
            let nextDeadline = lingering.map { min($0.giveUpAt, $0.quietUntil) }.min()
            let timeoutMs =
                nextDeadline.map { Int32(min(($0 &- min($0, now)) / 1_000_000 + 1, 60_000)) }
                ?? -1
            _ = poll(&polled, nfds_t(polled.count), timeoutMs)
            if polled[0].revents != 0 { drainWakeUps() }

            let after = DispatchTime.now().uptimeNanoseconds
            var kept: [Lingering] = []
            for (index, var socket) in lingering.enumerated() {
                let events = polled[index + 1].revents
                var finished = after >= socket.giveUpAt || after >= socket.quietUntil
                if events != 0 {
                    finished = finished || !discardWaiting(socket.descriptor, into: &scratch)
                    socket.quietUntil = after + Self.quietLimit
                }
                if finished {
                    close(socket.descriptor)
                } else {
                    kept.append(socket)
                }
            }
            let closed = lingering.count - kept.count
            if closed > 0 { arrivals.withLock { $0.count -= closed } }
            lingering = kept
        }
    }

    /// Reads what is waiting (at most 1 MB per turn, so one fast sender cannot hold the
    /// thread); false once the client closed or the socket failed.
    private func discardWaiting(_ descriptor: Int32, into scratch: inout [UInt8]) -> Bool {
        for _ in 0..<16 {
            let count = scratch.withUnsafeMutableBytes {
                recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
            }
            if count > 0 { continue }
            return count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        }
        return true
    }

    private func drainWakeUps() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &bytes, bytes.count) > 0 {}
    }
}
