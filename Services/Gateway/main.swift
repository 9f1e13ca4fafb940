import Core
import Dispatch
import FoundationEssentials
import Glibc
import HTTPKit

TerminationSignal.shared.install()
let config = GatewayConfig()
let logger = Logger(service: "gateway")
logger.info("starting", [.config: config.summary])
if config.usingDevelopmentSecret {
    logger.warning("JWT_SECRET is not set; using the fixed development secret")
}

var limit = rlimit()
if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

let gateway = Gateway(config: config, logger: logger)
var serverConfig = HTTPServerConfig(
    host: config.host, port: config.port, threads: config.loops,
    maxBodyBytes: config.maxBodyBytes, connectionTimeoutSeconds: config.connectionTimeoutSeconds,
    // Each loop's daemon takes its share of the limit, as libmicrohttpd's own pool did.
    connectionLimit: max(1, config.connectionLimit / config.loops),
    defaultHeaders: [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")])
serverConfig.connectionMemoryBytes = config.connectionMemoryBytes
serverConfig.bodyLimit = { method, path in gateway.bodyLimit(method: method, path: path) }
// Each loop thread reads requests, writes their commands, reads the replies and answers for
// the connections it accepted: a request passes between threads only where Redis takes it.
var lanes: [(loop: EventLoop, server: HTTPServer)] = []
let loopsEnded = DispatchGroup()
do {
    let listener = try HTTPServer.listeningSocket(host: config.host, port: config.port)
    defer { close(listener) }
    for (index, bus) in gateway.buses.enumerated() {
        let loop = try EventLoop()
        let server = HTTPServer(
            config: serverConfig,
            handler: { request, responder in gateway.handle(request, responder, via: bus) })
        try server.start(on: loop, sharing: listener)
        bus.start(on: loop)
        lanes.append((loop, server))
        loopsEnded.enter()
        startThread(named: "gateway-loop-\(index)") {
            loop.run()
            loopsEnded.leave()
        }
    }
} catch {
    logger.error("cannot start", [.error: error.message])
    exit(1)
}
logger.info("listening", [.port: String(config.port)])

let shutdown = DispatchSemaphore(value: 0)
TerminationSignal.shared.onReceipt { shutdown.signal() }
shutdown.wait()
logger.info("draining", [.count: String(gateway.inFlight)])
gateway.draining.turnOn()
for lane in lanes { lane.server.quiesce() }
var activeRequests: Int { lanes.reduce(0) { $0 + $1.server.activeRequests } }
// A keep-alive client's next request may still be on its way when the last one is answered:
// stop once no request has been active for a while (every answer now closes its connection).
// Active counts uploads, waits for the bus and answers still being sent or streamed.
let graceEnd = Date().addingTimeInterval(Double(config.requestTimeoutMs) / 1000 + 1)
var idleSince: Date?
while Date() < graceEnd {
    if activeRequests > 0 || gateway.inFlight > 0 {
        idleSince = nil
    } else if let since = idleSince, Date().timeIntervalSince(since) >= 0.3 {
        break
    } else if idleSince == nil {
        idleSince = Date()
    }
    usleep(20_000)
}
// A request that came in after the last look would wait for a bus that is stopping: it gets
// a 503 at once instead, and what was already waiting has a moment to finish.
for lane in lanes { lane.server.refuseWaiting() }
let refuseEnd = Date().addingTimeInterval(1)
while activeRequests > 0 && Date() < refuseEnd { usleep(20_000) }
for bus in gateway.buses { bus.stop() }
for lane in lanes { lane.loop.stop() }
loopsEnded.wait()
let unfinished = activeRequests
if unfinished == 0 {
    for lane in lanes { lane.server.stop() }
} else {
    // libmicrohttpd aborts when stopped with a connection suspended: leave them to the exit.
    logger.warning("exiting with requests unanswered", [.count: String(unfinished)])
}
logger.info("stopped")
// `_exit`: the loop threads may still be tearing themselves down, and `exit`'s clean-up raced
// them once ("double free" in a SIGTERM with Redis paused). The log is written unbuffered.
_exit(0)
