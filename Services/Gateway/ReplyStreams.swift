import Bus
import Core
import Dispatch
import FoundationEssentials
import Glibc
import HTTPKit
import JSONKit
import RedisKit
import Synchronization

/// A request that takes the route's long-running variant (`"respond": true`).
struct LongRunningRequest {
    let type: String
    let service: String
    /// The client accepts `text/event-stream`: the reply is relayed while it is generated.
    let streamed: Bool
}

extension Gateway {
    func longRunning(_ route: Route, _ request: HTTPRequest, _ body: [UInt8]) -> LongRunningRequest?
    {
        guard let long = route.longRunning, long.isAsked(by: body) else { return nil }
        let accept = request.header("accept")?.lowercased() ?? ""
        return LongRunningRequest(
            type: long.type, service: long.service,
            streamed: accept.contains("text/event-stream"))
    }

    /// Sends a command whose reply is streamed: its chunks are relayed as Server-Sent Events,
    /// and the bus reply settles what the chunks did not (errors before the stream began, a
    /// reply from the ledger, the deadline).
    func streamReply(
        _ command: Command, to service: String, limit: BusClient.RateLimit?,
        _ responder: CountingResponder, via bus: BusClient
    ) {
        let stream = ReplyStream(key: command.chunkKey ?? "", responder: responder)
        relay.watch(stream)
        let relay = self.relay
        let logger = self.logger
        bus.submit(command, to: service, limit: limit) { reply in
            if reply == nil {
                logger.info(
                    "streamed request timed out", [.command: command.id, .route: command.type])
            }
            stream.arrived(reply, pass: relay.currentPass)
        }
    }

    /// The HTTP answer to a bus reply: JSON unless the service named another type.
    static func httpResponse(_ reply: Reply) -> HTTPResponse {
        let typed = reply.headers.contains { $0.0.lowercased() == "content-type" }
        let json = [("Content-Type", "application/json; charset=utf-8")]
        return HTTPResponse(
            status: reply.status, headers: (typed ? [] : json) + reply.headers, body: reply.body)
    }
}

/// One streamed request: waits for its first event, then answers `200 text/event-stream` and
/// writes `event: <name>\ndata: <json>\n\n` for each chunk until `done` or `error`.
final class ReplyStream: @unchecked Sendable {
    enum Phase {
        case waiting
        case streaming(HTTPBodyStream)
        case finished
    }

    struct State {
        var phase = Phase.waiting
        /// The bus reply, kept until the relay has read everything published before it.
        var reply: Reply?
        var replyPass = 0
        var lastWriteMs: Int64 = 0
    }

    static let headers = [
        ("Content-Type", "text/event-stream; charset=utf-8"), ("X-Accel-Buffering", "no"),
    ]

    let key: String
    private let responder: CountingResponder
    private let state = Mutex(State())

    init(key: String, responder: CountingResponder) {
        self.key = key
        self.responder = responder
    }

    var isFinished: Bool {
        state.withLock { current in
            if case .finished = current.phase { return true }
            if case .streaming(let body) = current.phase, body.isClosed {
                current.phase = .finished
                return true
            }
            return false
        }
    }

    /// Events read from the chunk stream, in order.
    func deliver(_ events: [(event: String, data: [UInt8])]) {
        guard !events.isEmpty else { return }
        state.withLock { current in
            for (event, data) in events {
                guard write(event, data, &current) else { return }
                if ReplyChunks.terminal.contains(event) {
                    finish(&current)
                    return
                }
            }
        }
    }

    /// The bus reply (nil: the deadline passed). An error before anything was streamed is an
    /// ordinary JSON answer with its status; anything else waits for the relay to settle it.
    func arrived(_ reply: Reply?, pass: Int) {
        state.withLock { current in
            if case .finished = current.phase { return }
            guard let reply else {
                if case .waiting = current.phase {
                    responder.respond(.error(.timeout()))
                    current.phase = .finished
                } else {
                    var event = APIError.timeout().document
                    event["status"] = 504
                    _ = write("error", JSONWriter.bytes(.document(event)), &current)
                    finish(&current)
                }
                return
            }
            if case .waiting = current.phase, reply.status >= 400 {
                responder.respond(Gateway.httpResponse(reply))
                current.phase = .finished
                return
            }
            current.reply = reply
            current.replyPass = pass
        }
    }

    /// Called after each read of the chunk stream: when that read began after the bus reply
    /// arrived and came back with everything (`drained`), no final event is coming, so the
    /// reply itself ends the stream.
    func settle(afterPass pass: Int, drained: Bool) {
        state.withLock { current in
            if case .finished = current.phase { return }
            guard drained, let reply = current.reply, current.replyPass < pass else { return }
            if reply.status < 400 {
                // Nothing was published: the ledger answered a repeated request with what the
                // first one stored. Its stream still starts with the user's message.
                if case .waiting = current.phase,
                    let message = (try? JSONParser.parseObject(reply.body))?["message"]
                {
                    _ = write("message", JSONWriter.bytes(message), &current)
                }
                _ = write("done", reply.body, &current)
            } else {
                var event = (try? JSONParser.parseObject(reply.body)) ?? Document()
                event["status"] = .int64(Int64(reply.status))
                _ = write("error", JSONWriter.bytes(.document(event)), &current)
            }
            finish(&current)
        }
    }

    /// A comment line on a quiet stream keeps proxies and clients from giving up.
    func heartbeat(nowMs: Int64, everyMs: Int) {
        state.withLock { current in
            guard case .streaming(let body) = current.phase,
                nowMs - current.lastWriteMs >= Int64(everyMs)
            else { return }
            if body.write(Array(": keep-alive\n\n".utf8)) {
                current.lastWriteMs = nowMs
            } else {
                current.phase = .finished
            }
        }
    }

    private func write(_ event: String, _ data: [UInt8], _ current: inout State) -> Bool {
        let body: HTTPBodyStream
        switch current.phase {
        case .finished:
            return false
        case .waiting:
            body = HTTPBodyStream()
            responder.respond(.streaming(200, headers: ReplyStream.headers, stream: body))
            current.phase = .streaming(body)
        case .streaming(let open):
            body = open
        }
        var bytes = Array("event: \(event)\ndata: ".utf8)
        bytes += data
        bytes += [0x0A, 0x0A]
        guard body.write(bytes) else {
            current.phase = .finished
            return false
        }
        current.lastWriteMs = Timestamp.now().milliseconds
        return true
    }

    private func finish(_ current: inout State) {
        if case .streaming(let body) = current.phase { body.finish() }
        current.phase = .finished
    }
}

/// Reads the chunk streams of every streamed request of this gateway with one `XREAD` on one
/// connection and one thread, and hands the entries to their requests. The thread starts with
/// the first streamed request and sleeps while there is none.
// TODO: one XREAD names every open stream; thousands per gateway would want several relays.
// TODO: at shutdown the gateway waits REQUEST_TIMEOUT_MS, not RESPOND_TIMEOUT_MS, for replies.
final class ReplyStreamRelay: @unchecked Sendable {
    static let readCount = 256
    static let blockMs = 50

    private let address: RedisAddress
    private let logger: Logger
    private let heartbeatMs: Int
    private let watched = Mutex<[String: ReplyStream]>([:])
    private let wake = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)
    private let passes = Atomic<Int>(0)

    init(address: RedisAddress, logger: Logger, heartbeatMs: Int) {
        self.address = address
        self.logger = logger
        self.heartbeatMs = heartbeatMs
    }

    /// The number of the read now under way (or the last one).
    var currentPass: Int { passes.load(ordering: .sequentiallyConsistent) }

    var count: Int { watched.withLock { $0.count } }

    func watch(_ stream: ReplyStream) {
        watched.withLock { $0[stream.key] = stream }
        if !started.exchange(true, ordering: .sequentiallyConsistent) {
            startThread(named: "reply-relay") { [self] in loop() }
        }
        wake.signal()
    }

    private func loop() {
        let redis = RedisConnection(address: address, timeoutMs: ReplyStreamRelay.blockMs + 3000)
        var cursors: [String: String] = [:]
        var backoffMs = 100
        while true {
            let streams = watched.withLock { $0 }
            if streams.isEmpty {
                cursors = [:]
                _ = wake.wait(timeout: .now() + .seconds(1))
                continue
            }
            let keys = streams.keys.sorted()
            let pass = passes.add(1, ordering: .sequentiallyConsistent).newValue
            var read: [RedisArgument] = [
                "XREAD", "COUNT", RedisArgument(ReplyStreamRelay.readCount), "BLOCK",
                RedisArgument(ReplyStreamRelay.blockMs), "STREAMS",
            ]
            read += keys.map { RedisArgument($0) }
            read += keys.map { RedisArgument(cursors[$0] ?? "0-0") }
            let reply: RedisReply
            do {
                reply = try redis.run(read)
                backoffMs = 100
            } catch {
                logger.warning("cannot read reply chunks; retrying", [.error: "\(error)"])
                usleep(UInt32(backoffMs * 1000))
                backoffMs = min(backoffMs * 2, 2000)
                continue
            }
            var counts: [String: Int] = [:]
            for item in reply.array ?? [] {
                guard let pair = item.array, pair.count == 2, let key = pair[0].text,
                    let entries = pair[1].array
                else { continue }
                var events: [(event: String, data: [UInt8])] = []
                for entry in entries {
                    guard let parts = entry.array, parts.count == 2, let id = parts[0].text,
                        let fields = parts[1].array
                    else { continue }
                    cursors[key] = id
                    if let decoded = ReplyChunks.decode(fields) { events.append(decoded) }
                }
                counts[key] = entries.count
                streams[key]?.deliver(events)
            }
            let now = Timestamp.now().milliseconds
            var finished: [String] = []
            for (key, stream) in streams {
                stream.settle(
                    afterPass: pass, drained: (counts[key] ?? 0) < ReplyStreamRelay.readCount)
                stream.heartbeat(nowMs: now, everyMs: heartbeatMs)
                if stream.isFinished { finished.append(key) }
            }
            guard !finished.isEmpty else { continue }
            watched.withLock { table in
                for key in finished { table.removeValue(forKey: key) }
            }
            for key in finished { cursors.removeValue(forKey: key) }
            _ = try? redis.send(["UNLINK"] + finished.map { RedisArgument($0) })
        }
    }
}
