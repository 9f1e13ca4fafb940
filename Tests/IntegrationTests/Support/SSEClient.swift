import Foundation

/// A raw HTTP/1.1 client for streamed answers: sends one request, reads the status and the
/// headers, then the body (chunked or not) one Server-Sent Event at a time, and can hang up
/// whenever the test wants.
final class SSEClient {
    struct Event: Equatable {
        let name: String
        let data: String
    }

    private let connection: RawConnection
    private var raw: [UInt8] = []
    private var body: [UInt8] = []
    private var chunked = false
    private var bodyEnded = false
    private(set) var status = 0
    private(set) var headers: [String: String] = [:]

    init(
        port: Int, path: String, token: String, body: String, accept: String = "text/event-stream",
        headers: [String: String] = [:]
    ) throws {
        connection = try RawConnection(port: port, timeoutSeconds: 30)
        let extra = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
        connection.write(
            "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nAccept: \(accept)\r\n\(extra)"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        try readHead()
    }

    /// Closes the socket at once (a client that goes away mid-stream).
    func hangUp() {
        shutdown(connection.fd, Int32(SHUT_RDWR))
    }

    private func receive() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = recv(connection.fd, &chunk, chunk.count, 0)
        guard count > 0 else { return false }
        raw += chunk[0..<count]
        return true
    }

    private func readHead() throws {
        while true {
            if let end = SSEClient.find(raw, [13, 10, 13, 10]) {
                let head = String(decoding: raw[..<end], as: UTF8.self)
                raw.removeFirst(end + 4)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                status = statusLine.count >= 2 ? Int(statusLine[1]) ?? 0 : 0
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
                        .trimmingCharacters(in: .whitespaces)
                }
                chunked = headers["transfer-encoding"]?.lowercased() == "chunked"
                return
            }
            guard receive() else { throw ClusterError(description: "no response head") }
        }
    }

    /// Moves decoded body bytes from `raw` to `body`; false when more input is needed.
    private func decode() -> Bool {
        guard chunked else {
            body += raw
            raw = []
            return false
        }
        if bodyEnded { return false }
        var progressed = false
        while let lineEnd = SSEClient.find(raw, [13, 10]) {
            let sizeText = String(decoding: raw[..<lineEnd], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else {
                bodyEnded = true
                return progressed
            }
            if size == 0 {
                bodyEnded = true
                return true
            }
            guard raw.count >= lineEnd + 2 + size + 2 else { return progressed }
            body += raw[(lineEnd + 2)..<(lineEnd + 2 + size)]
            raw.removeFirst(lineEnd + 2 + size + 2)
            progressed = true
        }
        return progressed
    }

    /// The next event, or nil when the body ended (or the socket closed) first.
    func next() -> Event? {
        while true {
            if let end = SSEClient.find(body, [10, 10]) {
                let text = String(decoding: body[..<end], as: UTF8.self)
                body.removeFirst(end + 2)
                var name = "message"
                var data: [String] = []
                for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                    if line.hasPrefix(":") { continue }
                    if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
                }
                if data.isEmpty { continue }
                return Event(name: name, data: data.joined(separator: "\n"))
            }
            if decode() { continue }
            if bodyEnded { return nil }
            guard receive() else { return nil }
        }
    }

    /// Every event up to the end of the body.
    func all() -> [Event] {
        var events: [Event] = []
        while let event = next() { events.append(event) }
        return events
    }

    /// The whole body as text, for answers that are not streamed.
    func rest() -> String {
        if !chunked, let length = headers["content-length"].flatMap({ Int($0) }) {
            _ = decode()
            while body.count < length, receive() { _ = decode() }
            return String(decoding: body.prefix(length), as: UTF8.self)
        }
        while decode() || (!bodyEnded && receive()) {}
        return String(decoding: body, as: UTF8.self)
    }

    static func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count)
        where haystack[index..<(index + needle.count)].elementsEqual(needle) {
            return index
        }
        return nil
    }
}
