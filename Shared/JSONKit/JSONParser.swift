import CJansson
import Core

/// Strict JSON parsing through jansson: duplicate keys, NaN, overflowing numbers, invalid
/// UTF-8, lone surrogates, trailing data and nesting deeper than jansson's limit are refused.
public enum JSONParser {
    /// Parses any JSON text. NUL is allowed inside string values, not in keys.
    public static func parse(_ bytes: [UInt8]) throws(APIError) -> Value {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw APIError.malformed("request body must not start with a byte-order mark")
        }
        var error = json_error_t()
        let flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL
        let root = bytes.withUnsafeBufferPointer { buffer -> UnsafeMutablePointer<json_t>? in
            buffer.baseAddress?.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                json_loadb($0, buffer.count, Int(flags), &error)
            }
        }
        guard let root else {
            let reason = withUnsafeBytes(of: &error.text) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            let detail = bytes.isEmpty ? "request body is empty" : reason
            throw APIError.malformed("malformed JSON: \(detail)")
        }
        defer { json_decref(root) }
        return convert(root)
    }

    /// Parses a body that must be a JSON object.
    public static func parseObject(_ bytes: [UInt8]) throws(APIError) -> Document {
        guard case .document(let doc) = try parse(bytes) else {
            throw APIError.malformed("request body must be a JSON object")
        }
        return doc
    }

    public static func parse(_ text: String) throws(APIError) -> Value {
        try parse(Array(text.utf8))
    }

    private static func convert(_ node: UnsafeMutablePointer<json_t>) -> Value {
        switch uc_json_typeof(node) {
        case JSON_OBJECT:
            var doc = Document()
            var iterator = json_object_iter(node)
            while let current = iterator {
                let key = String(cString: json_object_iter_key(current))
                if let child = json_object_iter_value(current) {
                    doc.append(key, convert(child))
                }
                iterator = json_object_iter_next(node, current)
            }
            return .document(doc)
        case JSON_ARRAY:
            let count = json_array_size(node)
            var items: [Value] = []
            items.reserveCapacity(count)
            for i in 0..<count {
                if let child = json_array_get(node, i) { items.append(convert(child)) }
            }
            return .array(items)
        case JSON_STRING:
            let length = json_string_length(node)
            guard let start = json_string_value(node) else { return .string("") }
            let text = start.withMemoryRebound(to: UInt8.self, capacity: length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
            }
            return .string(text)
        case JSON_INTEGER:
            return .int64(json_integer_value(node))
        case JSON_REAL:
            return .double(json_real_value(node))
        case JSON_TRUE:
            return .bool(true)
        case JSON_FALSE:
            return .bool(false)
        default:
            return .null
        }
    }
}
