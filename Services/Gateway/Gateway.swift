import Bus
import Core
import Crypt
import Dispatch
import FoundationEssentials
import Glibc
import HTTPKit
import RedisKit
import Synchronization

/// Adds fixed headers (CORS) to whatever answer goes out.
final class HeaderAddingResponder: @unchecked Sendable {
    private let inner: HTTPResponder
    private let headers: [(String, String)]
    private let draining: DrainState

    init(_ inner: HTTPResponder, headers: [(String, String)], draining: DrainState) {
        self.inner = inner
        self.headers = headers
        self.draining = draining
    }

    func respond(_ response: HTTPResponse) {
        var copy = response
        copy.headers += headers
        if draining.isOn { copy.headers.append(("Connection", "close")) }
        inner.respond(copy)
    }
}

/// Set once the gateway is shutting down: from then on every answer closes its connection, so
/// a keep-alive client sends nothing more here and the requests in flight run out.
final class DrainState: Sendable {
    private let flag = Atomic<Bool>(false)

    var isOn: Bool { flag.load(ordering: .acquiring) }

    func turnOn() { flag.store(true, ordering: .releasing) }
}

/// Answers once and records the status and the time taken.
final class CountingResponder: @unchecked Sendable {
    private let inner: HeaderAddingResponder
    private let record: @Sendable (Int, String) -> Void
    var route = "unrouted"

    init(_ inner: HeaderAddingResponder, record: @escaping @Sendable (Int, String) -> Void) {
        self.inner = inner
        self.record = record
    }

    func respond(_ response: HTTPResponse) {
        record(response.status, route)
        inner.respond(response)
    }
}

/// An `Authorization` header as the key of the verified-token cache, compared byte for byte.
/// Hashing a whole token (200 bytes or so) on every request cost more than the rest of the
/// lookup: the hash takes its last 32 bytes, from the token's signature. Only headers in the
/// one form clients send (`Bearer <token>`) are cached, so that spellings of one token (more
/// spaces, other letter cases) cannot fill the cache with keys of one hash.
struct AuthorizationHeader: Hashable {
    let bytes: [UInt8]

    init(text: String) { bytes = Array(text.utf8) }

    static func == (left: AuthorizationHeader, right: AuthorizationHeader) -> Bool {
        guard left.bytes.count == right.bytes.count else { return false }
        return left.bytes.withUnsafeBytes { one in
            right.bytes.withUnsafeBytes { other in
                one.isEmpty || memcmp(one.baseAddress!, other.baseAddress!, one.count) == 0
            }
        }
    }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { raw in
            hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: raw.suffix(32)))
        }
    }

    /// `Bearer `, one space, then a token with no space in it.
    var isCanonical: Bool {
        bytes.starts(with: "Bearer ".utf8) && !bytes.dropFirst(7).contains(UInt8(ascii: " "))
    }
}

/// Turns each HTTP request into a command on its service's stream and answers with the reply.
final class Gateway: @unchecked Sendable {
    let config: GatewayConfig
    let logger: Logger
    /// One bus client per loop, each with its own reply key (`<gateway id>-<loop>`): a request
    /// is written, answered and replied to on the loop that read it.
    let buses: [BusClient]
    let jwt: JWT
    let metrics = Metrics()
    let draining = DrainState()
    /// Routes without a token whose every call costs the settings service a bcrypt hash:
    /// limited per client address (`RATE_LIMIT_ACCOUNTS`), or one address could starve it.
    static let passwordHashingRoutes: Set<String> = ["auth.register", "auth.login"]
    /// Tokens verified recently, so a client's next request skips the HMAC and JSON work.
    private let verified = PlainLock<[AuthorizationHeader: TokenClaims]>([:])
    private let probe: Mutex<RedisConnection>
    /// Readiness probes: the last answer and when it was found (ms), and the probes waiting for
    /// the look under way.
    private let readinessState = PlainLock<ReadinessState>(ReadinessState())

    struct ReadinessState {
        var last: (at: Int64, answer: HTTPResponse)?
        var waiting: [HeaderAddingResponder] = []
        var looking = false
    }
    /// Relays streamed replies from Redis to their clients (`ReplyStreams.swift`).
    let relay: ReplyStreamRelay

    init(config: GatewayConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        let address = RedisAddress(url: config.redisURL)
        buses = (0..<config.loops).map { index in
            BusClient(
                address: address, gatewayId: "\(config.gatewayId)-\(index)", logger: logger,
                maxBacklog: config.streamMaxBacklog)
        }
        jwt = JWT(secret: config.jwtSecret)
        probe = Mutex(RedisConnection(address: address, timeoutMs: 1000))
        relay = ReplyStreamRelay(
            address: address, logger: logger, heartbeatMs: config.sseHeartbeatMs)
    }

    /// CORS headers for an allowed `Origin` (CORS is off unless `CORS_ORIGINS` lists origins).
    func corsHeaders(_ request: HTTPRequest) -> [(String, String)] {
        guard let origin = request.header("origin"),
            config.corsOrigins.contains(origin) || config.corsOrigins.contains("*")
        else { return [] }
        return [
            ("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
            ("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"),
            (
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type, Idempotency-Key, Accept"
            ),
            ("Access-Control-Max-Age", "600"),
        ]
    }

    /// Requests waiting for a reply, on every loop.
    var inFlight: Int { buses.reduce(0) { $0 + $1.inFlight } }

    /// Answers `request`; `bus` is the bus client of the loop that read it.
    func handle(_ request: HTTPRequest, _ plain: HTTPResponder, via bus: BusClient) {
        let cors = corsHeaders(request)
        let responder = HeaderAddingResponder(plain, headers: cors, draining: draining)
        if request.method == "OPTIONS" {
            return responder.respond(optionsAnswer(request.path, cors: cors))
        }
        let method = request.routeMethod
        switch (method, request.path) {
        case ("GET", "/healthz"):
            return responder.respond(.json(200, JSONWriter.bytes(["status": "ok"])))
        case ("GET", "/readyz"):
            // It asks Redis and waits for the answer: not on the loop's thread, and on one
            // queue, so that a flood of probes holds one thread, not one each.
            return answerReadiness(responder)
        case ("GET", "/openapi.json"):
            return responder.respond(.json(200, OpenAPIDocument.bytes))
        case ("GET", "/metrics"):
            metrics.set(
                "uc_gateway_in_flight", Double(inFlight), help: "requests waiting for a reply")
            return responder.respond(
                HTTPResponse(
                    status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")],
                    body: Array(metrics.render().utf8)))
        default:
            break
        }
        let started = Timestamp.now()
        let metrics = self.metrics
        let counted = CountingResponder(responder) { status, route in
            let seconds = Double(Timestamp.now().milliseconds - started.milliseconds) / 1000
            metrics.add(
                "uc_http_requests_total", labels: [("route", route), ("status", String(status))],
                help: "HTTP requests answered, by route and status")
            metrics.observe(
                "uc_http_request_seconds", seconds: seconds, labels: [("route", route)],
                help: "time from request to answer")
        }
        do {
            try dispatch(request, counted, via: bus)
        } catch {
            counted.respond(.error(error))
        }
    }

    /// A CORS preflight from an allowed origin gets 204; any other `OPTIONS` the same JSON
    /// error as another method the route does not take (405 naming the methods, or 404).
    private func optionsAnswer(_ path: String, cors: [(String, String)]) -> HTTPResponse {
        guard cors.isEmpty else { return HTTPResponse(status: 204, body: []) }
        guard case .wrongMethod(let allowed) = Routes.lookup(method: "OPTIONS", path: path) else {
            return .error(.notFound("route"))
        }
        var response = HTTPResponse.error(.methodNotAllowed(allowed))
        response.headers.append(("Allow", allowed.joined(separator: ", ")))
        return response
    }

    /// `MAX_UPLOAD_BYTES` for routes that take files, `MAX_BODY_BYTES` for the rest.
    func bodyLimit(method: String, path: String) -> Int {
        guard case .found(let route, _) = Routes.lookup(method: method, path: path), route.largeBody
        else { return config.maxBodyBytes }
        return config.maxUploadBytes
    }

    private func dispatch(
        _ request: HTTPRequest, _ responder: CountingResponder, via bus: BusClient
    ) throws(APIError) {
        guard request.path.utf8.count <= 2048 else {
            throw APIError(
                status: 414, code: "uri_too_long", message: "the request path is too long")
        }
        let route: Route
        var params: [String: String]
        let method = request.routeMethod
        switch Routes.lookup(method: method, path: request.path) {
        case .notFound:
            throw APIError.notFound("route")
        case .wrongMethod(let allowed):
            var response = HTTPResponse.error(.methodNotAllowed(allowed))
            response.headers.append(("Allow", allowed.joined(separator: ", ")))
            return responder.respond(response)
        case .found(let found, let pathParams):
            route = found
            params = pathParams
            responder.route = found.type
        }

        var claims: TokenClaims?
        if route.authenticated {
            claims = try authenticate(request)
        }

        if !route.authenticated {
            // The login rate limit counts by address; a query parameter of this name clashes.
            // TODO: behind a reverse proxy, read the address from a trusted X-Forwarded-For.
            params["clientAddress"] = request.clientAddress
        }
        for (name, value) in request.query {
            guard params[name] == nil else {
                throw APIError.invalid(name, "query parameter is repeated or clashes with the path")
            }
            params[name] = value
        }

        var body: [UInt8] = []
        if request.method == "POST" || request.method == "PUT" || request.method == "PATCH" {
            body = request.body
            let contentType = request.header("content-type")?.lowercased() ?? ""
            let mediaType = contentType.split(separator: ";").first.map {
                String(
                    $0.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
            }
            if !body.isEmpty && mediaType != "application/json" {
                throw APIError.unsupportedMediaType()
            }
        }

        // A keyed request's retries share its command id, so each attempt gets a request id
        // of its own to be answered on; any other request's one id serves for both.
        let keyed = request.header("idempotency-key") != nil && method != "GET"
        let commandId = try commandId(for: request, user: claims?.userId)
        let now = Timestamp.now().milliseconds
        let long = longRunning(route, request, body)
        var command = Command(
            id: commandId, requestId: keyed ? Crypto.fastRandomHex(12) : commandId,
            type: long?.type ?? route.type,
            userId: claims?.userId, role: claims?.role ?? "user",
            params: params, body: body, replyKey: bus.replyKey,
            deadline: now + Int64(long == nil ? config.requestTimeoutMs : config.respondTimeoutMs))
        command.keyed = keyed
        let logger = self.logger
        var limit: BusClient.RateLimit?
        if let user = claims?.userId, method != "GET", config.writeLimit > 0 {
            limit = BusClient.RateLimit(
                key: "uc:rate:writes:\(user.hex)", limit: config.writeLimit,
                windowMs: config.writeWindowMs)
        }
        if Gateway.passwordHashingRoutes.contains(route.type), config.accountLimit > 0 {
            limit = BusClient.RateLimit(
                key: "uc:rate:accounts:\(request.clientAddress)", limit: config.accountLimit,
                windowMs: config.accountWindowMs)
        }
        if let long, long.streamed {
            command.chunkKey = ReplyChunks.key(command.requestId)
            return streamReply(command, to: long.service, limit: limit, responder, via: bus)
        }
        bus.submit(command, to: long?.service ?? route.service, limit: limit) { reply in
            guard let reply else {
                logger.info("request timed out", [.command: commandId, .route: route.type])
                return responder.respond(.error(.timeout()))
            }
            // A service may answer with another media type (a zip export) by naming it.
            let typed = reply.headers.contains { $0.0.lowercased() == "content-type" }
            let json = [("Content-Type", "application/json; charset=utf-8")]
            let headers = (typed ? [] : json) + reply.headers
            responder.respond(
                HTTPResponse(status: reply.status, headers: headers, body: reply.body))
        }
    }

    private func authenticate(_ request: HTTPRequest) throws(APIError) -> TokenClaims {
        guard let header = request.header("authorization") else { throw .unauthorized() }
        let now = Int64(Date().timeIntervalSince1970)
        // Kept by the whole header, as a client sends it on every request: no parsing then.
        let key = AuthorizationHeader(text: header)
        if let claims = verified.withLock({ $0[key] }) {
            if claims.expiresAt > now { return claims }
        }
        guard let token = Gateway.bearerToken(header) else { throw .unauthorized() }
        guard let claims = jwt.verify(token, now: now) else {
            throw APIError.unauthorized("the bearer token is invalid or expired")
        }
        guard key.isCanonical else { return claims }
        verified.withLock { cache in
            if cache.count >= 10_000 { cache.removeAll(keepingCapacity: true) }
            cache[key] = claims
        }
        return claims
    }

    /// The token of an `Authorization: Bearer <token>` header; the scheme's name is
    /// case-insensitive (RFC 9110): `bearer` is `Bearer`.
    static func bearerToken(_ header: String) -> String? {
        let bytes = Array(header.utf8)
        let scheme = Array("bearer ".utf8)
        guard bytes.count > scheme.count,
            zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 })
        else { return nil }
        let token = bytes.dropFirst(scheme.count).drop(while: { $0 == 32 })
            .prefix(while: { $0 != 32 })
        return String(decoding: token, as: UTF8.self)
    }

    /// A retry with the same `Idempotency-Key` from the same user maps to the same command id.
    private func commandId(for request: HTTPRequest, user: ObjectId?) throws(APIError) -> String {
        guard let key = request.header("idempotency-key"), request.routeMethod != "GET" else {
            return Crypto.fastRandomHex(16)
        }
        guard !key.isEmpty, key.utf8.count <= 200 else {
            throw APIError.invalid("Idempotency-Key", "must be 1 to 200 characters")
        }
        let input = Array("idem\u{0}\(user?.hex ?? "-")\u{0}\(key)".utf8)
        return String(Crypto.sha256Hex(input).prefix(32))
    }

    /// Answers with a readiness found in the last 250 ms, or with the next one: one look at a
    /// time, on a thread of its own (it waits for Redis), answers every probe that came
    /// meanwhile, so a burst of probes, even with Redis stalled, waits for one look.
    private func answerReadiness(_ responder: HeaderAddingResponder) {
        let now = Timestamp.now().milliseconds
        let (recent, startLook) = readinessState.withLock { state -> (HTTPResponse?, Bool) in
            if let last = state.last, now - last.at < 250 { return (last.answer, false) }
            state.waiting.append(responder)
            defer { state.looking = true }
            return (nil, !state.looking)
        }
        if let recent { return responder.respond(recent) }
        guard startLook else { return }
        DispatchQueue.global().async { [self] in
            let answer = readiness()
            let found = Timestamp.now().milliseconds
            let waiting = readinessState.withLock { state -> [HeaderAddingResponder] in
                state.last = (found, answer)
                state.looking = false
                defer { state.waiting = [] }
                return state.waiting
            }
            for waiter in waiting { waiter.respond(answer) }
        }
    }

    /// Ready when Redis answers and every routed stream has a consumer seen recently.
    private func readiness() -> HTTPResponse {
        var problems: [Value] = []
        probe.withLock { redis in
            for service in Routes.consumerGroups {
                let stream = BusNames.commandStream(service)
                let since = Timestamp.now().milliseconds - 5000
                do {
                    let live = try redis.retryingStaleConnection {
                        (connection) throws(RedisError) in
                        try connection.run([
                            "ZCOUNT", RedisArgument(BusNames.heartbeats(service)),
                            RedisArgument(since), "+inf",
                        ])
                    }
                    if (live.integer ?? 0) == 0 {
                        problems.append(.string("no live consumer on \(stream)"))
                    }
                } catch {
                    problems.append(.string("redis: \(error)"))
                    break
                }
            }
        }
        let ready = problems.isEmpty
        let body: Document = [
            "status": .string(ready ? "ready" : "not ready"), "problems": .array(problems),
        ]
        return .json(ready ? 200 : 503, JSONWriter.bytes(.document(body)))
    }
}
