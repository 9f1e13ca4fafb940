import FoundationEssentials

/// Reads configuration from environment variables with local defaults.
public struct Environment: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    public func string(_ name: String, _ fallback: String) -> String {
        guard let value = values[name], !value.isEmpty else { return fallback }
        return value
    }

    public func int(_ name: String, _ fallback: Int) -> Int {
        guard let text = values[name], let value = Int(text) else { return fallback }
        return value
    }

    public func bool(_ name: String, _ fallback: Bool) -> Bool {
        guard let text = values[name]?.lowercased() else { return fallback }
        return ["1", "true", "yes", "on"].contains(text)
    }
}

/// `host` and `port` of a `redis://host:port` URL.
public struct RedisAddress: Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(url: String) {
        let trimmed = url.hasPrefix("redis://") ? String(url.dropFirst(8)) : url
        let hostPort = trimmed.split(separator: "/").first.map(String.init) ?? "127.0.0.1:6379"
        let authless = hostPort.split(separator: "@").last.map(String.init) ?? hostPort
        let parts = authless.split(separator: ":")
        host = parts.first.map(String.init) ?? "127.0.0.1"
        port = parts.count > 1 ? Int(parts[1]) ?? 6379 : 6379
    }

    public var description: String { "redis://\(host):\(port)" }
}
