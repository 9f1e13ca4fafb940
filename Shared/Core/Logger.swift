import FoundationEssentials
import Glibc
import Synchronization

/// How loud a log line is; lines below `LOG_LEVEL` are dropped.
public enum LogLevel: Int, Sendable, Comparable {
    case trace, debug, info, warning, error

    public init(name: String) {
        switch name.lowercased() {
        case "trace": self = .trace
        case "debug": self = .debug
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: self = .info
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    var name: String {
        switch self {
        case .trace: return "trace"
        case .debug: return "debug"
        case .info: return "info"
        case .warning: return "warning"
        case .error: return "error"
        }
    }
}

/// The fixed field keys every log line may carry.
public enum LogField: String, Sendable {
    case stream, command, request, type, consumer, error, status, route, user, count, port, url
    case config
}

/// The one logger: a JSON object per line on standard error, with the service name on each.
public struct Logger: Sendable {
    public let service: String
    public let level: LogLevel
    private static let lock = Mutex(())

    public init(service: String, level: LogLevel? = nil) {
        self.service = service
        self.level =
            level ?? LogLevel(name: ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info")
    }

    public func trace(_ message: String, _ fields: [LogField: String] = [:]) {
        log(.trace, message, fields)
    }

    public func debug(_ message: String, _ fields: [LogField: String] = [:]) {
        log(.debug, message, fields)
    }

    public func info(_ message: String, _ fields: [LogField: String] = [:]) {
        log(.info, message, fields)
    }

    public func warning(_ message: String, _ fields: [LogField: String] = [:]) {
        log(.warning, message, fields)
    }

    public func error(_ message: String, _ fields: [LogField: String] = [:]) {
        log(.error, message, fields)
    }

    public func log(_ lineLevel: LogLevel, _ message: String, _ fields: [LogField: String]) {
        guard lineLevel >= level else { return }
        var doc: Document = [
            "ts": .string(Timestamp.now().iso8601), "level": .string(lineLevel.name),
            "service": .string(service), "msg": .string(message),
        ]
        for (key, value) in fields.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            doc[key.rawValue] = .string(value)
        }
        var line = JSONWriter.bytes(.document(doc))
        line.append(0x0A)
        Logger.lock.withLock { _ in
            line.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(2, raw.baseAddress! + offset, raw.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
        }
    }
}
