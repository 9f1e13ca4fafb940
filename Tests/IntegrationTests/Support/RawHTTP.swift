import Foundation

/// A plain TCP client for what URLSession cannot do: stalled uploads, chunked bodies,
/// oversized headers and reuse of one connection.
final class RawConnection {
    let fd: Int32

    /// A request line and `Host`, and `Authorization` when a token is given, each ending in
    /// CRLF: the start of a request whose other headers the caller adds.
    static func head(_ method: String, _ path: String, token: String? = nil) -> String {
        let authorization = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        return "\(method) \(path) HTTP/1.1\r\nHost: x\r\n" + authorization
    }

    init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError(description: "socket failed") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw ClusterError(description: "connect failed")
        }
    }

    deinit { close(fd) }

    func write(_ text: String) { write(Array(text.utf8)) }

    func write(_ bytes: [UInt8]) { _ = send(bytes) }

    /// Sends all of `bytes`; the errno of the send that failed (EPIPE, ECONNRESET), else 0.
    func send(_ bytes: [UInt8]) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent <= 0 { return sent < 0 ? errno : EPIPE }
            offset += sent
        }
        return 0
    }

    /// Reads one response (headers and a Content-Length body); nil when the peer closed first.
    func readResponse() -> (status: Int, headers: [String: String], body: [UInt8])? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = find(buffer, [13, 10, 13, 10]) {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
                var headers: [String: String] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
                        .trimmingCharacters(in: .whitespaces)
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                var body = Array(buffer[(end + 4)...])
                while body.count < length {
                    let n = recv(fd, &chunk, chunk.count, 0)
                    if n <= 0 { break }
                    body += chunk[0..<n]
                }
                return (status, headers, Array(body.prefix(length)))
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return nil }
            buffer += chunk[0..<n]
        }
    }

    /// True when the server closed the connection (EOF) within the socket timeout.
    func isClosedByPeer() -> Bool {
        var byte = [UInt8](repeating: 0, count: 1)
        return recv(fd, &byte, 1, 0) == 0
    }

    private func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count)
        where Array(haystack[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }
}
