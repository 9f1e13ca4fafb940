/// One problem with one field of a request.
public struct FieldError: Sendable, Equatable {
    public let field: String
    public let message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
}

/// An error the API answers with: an HTTP status, a stable code, a message and field details.
///
/// Rendered at the edge as `{"error": {"code", "message", "details"}}`.
public struct APIError: Error, Sendable, Equatable {
    public let status: Int
    public let code: String
    public let message: String
    public let details: [FieldError]

    public init(status: Int, code: String, message: String, details: [FieldError] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public static func validation(_ details: [FieldError]) -> APIError {
        var names: [String] = []
        for detail in details where !names.contains(detail.field) { names.append(detail.field) }
        let fields = names.joined(separator: ", ")
        return APIError(
            status: 400, code: "validation_failed",
            message: "invalid value for: \(fields)", details: details)
    }

    public static func invalid(_ field: String, _ message: String) -> APIError {
        validation([FieldError(field, message)])
    }

    public static func malformed(_ message: String) -> APIError {
        APIError(status: 400, code: "malformed_request", message: message)
    }

    public static func unauthorized(_ message: String = "missing or invalid bearer token")
        -> APIError
    {
        APIError(status: 401, code: "unauthorized", message: message)
    }

    public static func forbidden(_ message: String = "not allowed") -> APIError {
        APIError(status: 403, code: "forbidden", message: message)
    }

    public static func notFound(_ what: String = "resource") -> APIError {
        APIError(status: 404, code: "not_found", message: "\(what) not found")
    }

    public static func methodNotAllowed(_ allowed: [String]) -> APIError {
        APIError(
            status: 405, code: "method_not_allowed",
            message: "method not allowed; allowed: \(allowed.joined(separator: ", "))")
    }

    public static func conflict(_ message: String) -> APIError {
        APIError(status: 409, code: "conflict", message: message)
    }

    public static func tooLarge(_ limit: Int) -> APIError {
        APIError(
            status: 413, code: "payload_too_large",
            message: "request body is larger than the limit of \(limit) bytes")
    }

    public static func unsupportedMediaType() -> APIError {
        APIError(
            status: 415, code: "unsupported_media_type",
            message: "request body must be sent as Content-Type: application/json")
    }

    public static func unprocessable(_ message: String) -> APIError {
        APIError(status: 422, code: "unprocessable", message: message)
    }

    public static func tooManyRequests(_ message: String) -> APIError {
        APIError(status: 429, code: "rate_limited", message: message)
    }

    public static func internalError(_ message: String = "internal error") -> APIError {
        APIError(status: 500, code: "internal", message: message)
    }

    public static func unavailable(_ message: String) -> APIError {
        APIError(status: 503, code: "unavailable", message: message)
    }

    public static func timeout() -> APIError {
        APIError(
            status: 504, code: "timeout",
            message: "the service did not answer before the request deadline")
    }

    public var document: Document {
        let detailValues: [Value] = details.map {
            .document(["field": .string($0.field), "message": .string($0.message)])
        }
        return [
            "error": .document([
                "code": .string(code), "message": .string(message), "details": .array(detailValues),
            ])
        ]
    }

    public var body: [UInt8] { JSONWriter.bytes(.document(document)) }
}
