import CZip
import Core
import FoundationEssentials
import Glibc

/// Builds zip archives in memory with libzip (the only file that imports CZip).
enum ZipArchive {
    struct Entry {
        let name: String
        let data: [UInt8]
        let modified: Timestamp
    }

    struct Failure: Error {
        let message: String
    }

    /// The end-of-central-directory record alone: what an archive with no files is.
    static let empty: [UInt8] = [0x50, 0x4B, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)

    /// The archive's bytes; entries are deflated, names stored as UTF-8.
    static func make(_ entries: [Entry]) throws(Failure) -> [UInt8] {
        guard !entries.isEmpty else { return empty }
        var error = zip_error_t()
        zip_error_init(&error)
        defer { zip_error_fini(&error) }
        guard let source = zip_source_buffer_create(nil, 0, 0, &error) else {
            throw Failure(message: message(&error))
        }
        guard let archive = zip_open_from_source(source, ZIP_TRUNCATE, &error) else {
            zip_source_free(source)
            throw Failure(message: message(&error))
        }
        // The archive releases the source on close; keep it to read the result afterwards.
        zip_source_keep(source)
        defer { zip_source_free(source) }
        for entry in entries {
            do {
                try add(entry, to: archive)
            } catch {
                zip_discard(archive)
                throw error
            }
        }
        guard zip_close(archive) == 0 else {
            let text = String(cString: zip_strerror(archive))
            zip_discard(archive)
            throw Failure(message: text)
        }
        return try read(source)
    }

    private static func add(_ entry: Entry, to archive: OpaquePointer) throws(Failure) {
        // libzip frees this copy (freep = 1) when it is done with it.
        guard let copy = malloc(max(1, entry.data.count)) else {
            throw Failure(message: "out of memory")
        }
        entry.data.withUnsafeBytes { raw in
            if let base = raw.baseAddress { memcpy(copy, base, raw.count) }
        }
        guard let data = zip_source_buffer(archive, copy, zip_uint64_t(entry.data.count), 1) else {
            free(copy)
            throw Failure(message: String(cString: zip_strerror(archive)))
        }
        let index = zip_file_add(
            archive, entry.name, data, zip_flags_t(ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE))
        guard index >= 0 else {
            zip_source_free(data)
            throw Failure(message: "\(entry.name): \(String(cString: zip_strerror(archive)))")
        }
        _ = zip_set_file_compression(archive, zip_uint64_t(index), ZIP_CM_DEFLATE, 0)
        _ = zip_file_set_mtime(
            archive, zip_uint64_t(index), time_t(entry.modified.milliseconds / 1000), 0)
    }

    private static func read(_ source: OpaquePointer) throws(Failure) -> [UInt8] {
        guard zip_source_open(source) == 0 else {
            throw Failure(message: "cannot open the finished archive")
        }
        defer { zip_source_close(source) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { raw in
                zip_source_read(source, raw.baseAddress, zip_uint64_t(raw.count))
            }
            if count < 0 { throw Failure(message: "cannot read the finished archive") }
            if count == 0 { break }
            bytes += chunk[0..<Int(count)]
        }
        return bytes
    }

    private static func message(_ error: inout zip_error_t) -> String {
        String(cString: zip_error_strerror(&error))
    }
}
