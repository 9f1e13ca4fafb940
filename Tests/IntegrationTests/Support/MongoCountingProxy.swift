import Foundation
import Synchronization

/// A TCP proxy in front of a MongoDB server that counts the commands passing through by name
/// (the first key of each OP_MSG body), so a test can tell how many queries a request cost.
final class MongoCountingProxy: @unchecked Sendable {
    let port: Int
    let upstreamPort: Int
    private let listener: Int32
    private let counts = Mutex<[String: Int]>([:])
    private let stopped = Mutex(false)
    /// Connection monitoring and session bookkeeping, not queries.
    static let housekeeping: Set<String> = [
        "hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo", "endSessions",
        "getLastError", "saslStart", "saslContinue",
    ]

    init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        port = try Cluster.freePort()
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = MongoCountingProxy.loopback(port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 128) == 0 else {
            close(listener)
            throw ClusterError(description: "the counting proxy cannot listen on \(port)")
        }
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    deinit { stop() }

    func stop() {
        let already = stopped.withLock { value -> Bool in
            defer { value = true }
            return value
        }
        if !already {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    /// Commands counted so far, housekeeping left out.
    var queries: Int {
        counts.withLock { table in
            table.filter { !MongoCountingProxy.housekeeping.contains($0.key) }.values.reduce(0, +)
        }
    }

    var byName: [String: Int] { counts.withLock { $0 } }

    static func loopback(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while !stopped.withLock({ $0 }) {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = MongoCountingProxy.loopback(upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            Thread { [self] in pump(from: client, to: server, counting: true) }.start()
            Thread { [self] in pump(from: server, to: client, counting: false) }.start()
        }
    }

    private func pump(from source: Int32, to target: Int32, counting: Bool) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        var pending: [UInt8] = []
        defer {
            shutdown(target, Int32(SHUT_RDWR))
            close(source)
        }
        while true {
            let n = recv(source, &chunk, chunk.count, 0)
            if n <= 0 { return }
            var offset = 0
            while offset < n {
                let sent = chunk[offset..<n].withUnsafeBytes {
                    send(target, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                if sent <= 0 { return }
                offset += sent
            }
            if counting {
                pending += chunk[0..<n]
                count(&pending)
            }
        }
    }

    /// Takes whole messages off the front of `buffer` and counts each OP_MSG's command.
    private func count(_ buffer: inout [UInt8]) {
        func int32(_ at: Int) -> Int {
            Int(
                UInt32(buffer[at]) | UInt32(buffer[at + 1]) << 8 | UInt32(buffer[at + 2]) << 16
                    | UInt32(buffer[at + 3]) << 24)
        }
        while buffer.count >= 16 {
            let length = int32(0)
            guard length >= 16 else {
                buffer.removeAll()
                return
            }
            guard buffer.count >= length else { return }
            if int32(12) == 2013, length > 26, buffer[20] == 0 {
                // flags (4) at 16, section kind 0 at 20, BSON length at 21, first type at 25.
                var end = 26
                while end < length && buffer[end] != 0 { end += 1 }
                let name = String(decoding: buffer[26..<end], as: UTF8.self)
                counts.withLock { $0[name, default: 0] += 1 }
            }
            buffer.removeFirst(length)
        }
    }
}
