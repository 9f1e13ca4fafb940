import CMongoc
import Core

/// Sends libmongoc's own log lines through the project's logger: warnings and worse as
/// warnings, the rest at debug, instead of libmongoc printing to standard error by itself.
enum DriverLog {
    static let logger = Logger(service: "libmongoc")

    static let install: Void = {
        mongoc_log_set_handler(forward, nil)
    }()
}

private func forward(
    _ level: mongoc_log_level_t, _ domain: UnsafePointer<CChar>?, _ message: UnsafePointer<CChar>?,
    _ context: UnsafeMutableRawPointer?
) {
    let text = message.map { String(cString: $0) } ?? ""
    let area = domain.map { String(cString: $0) } ?? ""
    if level.rawValue <= MONGOC_LOG_LEVEL_WARNING.rawValue {
        DriverLog.logger.warning(text, [.type: area])
    } else {
        DriverLog.logger.debug(text, [.type: area])
    }
}
