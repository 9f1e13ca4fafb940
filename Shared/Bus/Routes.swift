/// One HTTP route and the command it becomes.
public struct Route: Sendable {
    public let method: String
    public let segments: [String]
    public let service: String
    public let type: String
    public let authenticated: Bool
    /// Bodies up to the gateway's `MAX_UPLOAD_BYTES` instead of `MAX_BODY_BYTES` (file uploads).
    public let largeBody: Bool
    /// A long-running variant of the route, chosen by a flag in the body.
    public let longRunning: LongRunning?

    public init(
        _ method: String, _ path: String, _ service: String, _ type: String, auth: Bool = true,
        largeBody: Bool = false, longRunning: LongRunning? = nil
    ) {
        self.method = method
        self.segments = path.split(separator: "/").map(String.init)
        self.service = service
        self.type = type
        self.authenticated = auth
        self.largeBody = largeBody
        self.longRunning = longRunning
    }

    /// A request whose body has `"<flag>": true` goes as `type` to `service`'s own stream,
    /// with the gateway's long deadline (`RESPOND_TIMEOUT_MS`), and may be streamed as
    /// Server-Sent Events when the client accepts `text/event-stream`.
    public struct LongRunning: Sendable {
        public let flag: String
        public let service: String
        public let type: String

        public init(flag: String, service: String, type: String) {
            self.flag = flag
            self.service = service
            self.type = type
        }
    }

    /// The path parameters when the path fits this route's pattern.
    public func match(_ parts: [Substring]) -> [String: String]? {
        guard parts.count == segments.count else { return nil }
        var params: [String: String] = [:]
        for (pattern, part) in zip(segments, parts) {
            if pattern.hasPrefix(":") {
                params[String(pattern.dropFirst())] = String(part)
            } else if pattern != part {
                return nil
            }
        }
        return params
    }

    public var path: String { "/" + segments.joined(separator: "/") }
}

/// Every API route, by owning service.
public enum Routes {
    /// Each service's routes live in its own file beside this one.
    public static let all: [Route] = sessions + agents + settings + feedback + canvas

    static let sessions: [Route] = [
        Route("GET", "/api/ping", "sessions", "ping"),
        Route("GET", "/api/chat/sessions", "sessions", "sessions.list"),
        Route("POST", "/api/chat/sessions", "sessions", "sessions.create"),
        Route("GET", "/api/chat/sessions/:id", "sessions", "sessions.get"),
        Route("PUT", "/api/chat/sessions/:id", "sessions", "sessions.update"),
        Route("DELETE", "/api/chat/sessions/:id", "sessions", "sessions.delete"),
        Route("GET", "/api/chat/sessions/:id/messages", "sessions", "messages.list"),
        Route(
            "POST", "/api/chat/sessions/:id/messages", "sessions", "messages.append",
            longRunning: .init(
                flag: "respond", service: "sessions-respond", type: "messages.respond")),
    ]

    /// The services the gateway routes to.
    public static var services: [String] {
        var seen: [String] = []
        for route in all where !seen.contains(route.service) { seen.append(route.service) }
        return seen
    }

    /// Every consumer group the gateway sends commands to: the services and the streams of
    /// their long-running commands (such as `sessions-respond`).
    public static var consumerGroups: [String] {
        var seen = services
        for route in all {
            if let long = route.longRunning, !seen.contains(long.service) {
                seen.append(long.service)
            }
        }
        return seen
    }

    public enum Lookup {
        case found(Route, [String: String])
        case wrongMethod([String])
        case notFound
    }

    /// Routes by path for paths without parameters that no parameterised route also matches,
    /// so the common literal paths skip the segment-by-segment search.
    static let literalPaths: [String: [Route]] = {
        var table: [String: [Route]] = [:]
        for route in all where !route.segments.contains(where: { $0.hasPrefix(":") }) {
            let parts = route.segments.map { Substring($0) }
            let shadowed = all.contains { other in
                other.segments.contains(where: { $0.hasPrefix(":") }) && other.match(parts) != nil
            }
            if !shadowed { table[route.path, default: []].append(route) }
        }
        return table
    }()

    public static func lookup(method: String, path: String) -> Lookup {
        if let routes = literalPaths[path] {
            if let route = routes.first(where: { $0.method == method }) {
                return .found(route, [:])
            }
            return .wrongMethod(routes.map(\.method))
        }
        // By code point: `/` and an accent after it make one Character, yet the `/` still
        // ends a segment, so that no path parameter can hold one.
        let parts = path.unicodeScalars.split(separator: "/", omittingEmptySubsequences: false)
            .dropFirst()
        guard path.unicodeScalars.first == "/", !parts.contains(where: \.isEmpty) else {
            return .notFound
        }
        let partList = parts.map { Substring($0) }
        var allowed: [String] = []
        for route in all {
            guard let params = route.match(partList) else { continue }
            if route.method == method { return .found(route, params) }
            allowed.append(route.method)
        }
        return allowed.isEmpty ? .notFound : .wrongMethod(allowed)
    }
}
