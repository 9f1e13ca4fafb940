import CMongoc
import Core

/// Converts between `Document` and libbson's `bson_t`. Only this file and `Mongo.swift` touch
/// libbson/libmongoc pointers.
enum BSONBridge {
    /// A new `bson_t` holding the document; the caller frees it with `uc_bson_free`.
    static func make(_ document: Document) -> OpaquePointer {
        let bson = uc_bson_alloc()!
        append(document, to: bson)
        return bson
    }

    static func append(_ document: Document, to bson: OpaquePointer) {
        for pair in document.pairs { append(pair.key, pair.value, to: bson) }
    }

    private static func append(_ key: String, _ value: Value, to bson: OpaquePointer) {
        let keyLength = Int32(key.utf8.count)
        switch value {
        case .null:
            bson_append_null(bson, key, keyLength)
        case .bool(let b):
            bson_append_bool(bson, key, keyLength, b)
        case .int32(let v):
            bson_append_int32(bson, key, keyLength, v)
        case .int64(let v):
            bson_append_int64(bson, key, keyLength, v)
        case .double(let v):
            bson_append_double(bson, key, keyLength, v)
        case .string(let s):
            var copy = s
            copy.withUTF8 { utf8 in
                utf8.baseAddress!.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                    _ = bson_append_utf8(bson, key, keyLength, $0, Int32(utf8.count))
                }
            }
        case .objectId(let id):
            var oid = bson_oid_t()
            withUnsafeMutableBytes(of: &oid.bytes) { raw in
                for i in 0..<12 { raw[i] = id.bytes[i] }
            }
            bson_append_oid(bson, key, keyLength, &oid)
        case .date(let t):
            bson_append_date_time(bson, key, keyLength, t.milliseconds)
        case .binary(let bytes):
            bytes.withUnsafeBufferPointer {
                _ = bson_append_binary(
                    bson, key, keyLength, BSON_SUBTYPE_BINARY, $0.baseAddress, UInt32($0.count))
            }
        case .array(let items):
            let child = uc_bson_alloc()!
            defer { uc_bson_free(child) }
            for (i, item) in items.enumerated() { append(String(i), item, to: child) }
            bson_append_array(bson, key, keyLength, child)
        case .document(let doc):
            let child = uc_bson_alloc()!
            defer { uc_bson_free(child) }
            append(doc, to: child)
            bson_append_document(bson, key, keyLength, child)
        }
    }

    /// Reads a whole `bson_t` into a `Document`.
    static func read(_ bson: OpaquePointer) -> Document {
        guard let iterator = uc_iter_new() else { return Document() }
        defer { uc_iter_free(iterator) }
        guard bson_iter_init(iterator, bson) else { return Document() }
        return readDocument(iterator)
    }

    private static func readDocument(_ iterator: OpaquePointer) -> Document {
        var doc = Document()
        while bson_iter_next(iterator) {
            let key = String(cString: bson_iter_key(iterator))
            doc.append(key, readValue(iterator))
        }
        return doc
    }

    private static func readValue(_ iterator: OpaquePointer) -> Value {
        switch bson_iter_type(iterator) {
        case BSON_TYPE_UTF8:
            var length: UInt32 = 0
            guard let text = bson_iter_utf8(iterator, &length) else { return .string("") }
            return text.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
                .string(
                    String(
                        decoding: UnsafeBufferPointer(start: $0, count: Int(length)), as: UTF8.self)
                )
            }
        case BSON_TYPE_INT32:
            return .int32(bson_iter_int32(iterator))
        case BSON_TYPE_INT64:
            return .int64(bson_iter_int64(iterator))
        case BSON_TYPE_DOUBLE:
            return .double(bson_iter_double(iterator))
        case BSON_TYPE_BOOL:
            return .bool(bson_iter_bool(iterator))
        case BSON_TYPE_DATE_TIME:
            return .date(Timestamp(milliseconds: bson_iter_date_time(iterator)))
        case BSON_TYPE_OID:
            guard let oid = bson_iter_oid(iterator) else { return .null }
            let bytes = withUnsafeBytes(of: oid.pointee.bytes) { Array($0) }
            return ObjectId(bytes: bytes).map { .objectId($0) } ?? .null
        case BSON_TYPE_BINARY:
            var subtype = BSON_SUBTYPE_BINARY
            var length: UInt32 = 0
            var data: UnsafePointer<UInt8>?
            bson_iter_binary(iterator, &subtype, &length, &data)
            guard let data else { return .binary([]) }
            return .binary(Array(UnsafeBufferPointer(start: data, count: Int(length))))
        case BSON_TYPE_DOCUMENT, BSON_TYPE_ARRAY:
            let isArray = bson_iter_type(iterator) == BSON_TYPE_ARRAY
            guard let child = uc_iter_new() else { return .null }
            defer { uc_iter_free(child) }
            guard bson_iter_recurse(iterator, child) else { return .null }
            let doc = readDocument(child)
            return isArray ? .array(doc.pairs.map(\.value)) : .document(doc)
        case BSON_TYPE_DECIMAL128:
            var decimal = bson_decimal128_t()
            guard bson_iter_decimal128(iterator, &decimal) else { return .null }
            var buffer = [CChar](repeating: 0, count: Int(BSON_DECIMAL128_STRING))
            bson_decimal128_to_string(&decimal, &buffer)
            return Double(String(cString: buffer)).map { .double($0) } ?? .null
        default:
            return .null
        }
    }
}
