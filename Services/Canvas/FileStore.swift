import Bus
import Core
import Crypt
import MongoKit
import Providers
import ServiceKit

/// Writes to `chat_canvas_files` that keep the project's `stats` right: every create, content
/// change and delete is one atomic file write plus one `$inc` on the project, never a
/// read-modify-write of the totals.
struct FileStore: Sendable {
    let projects: MongoCollection
    let files: MongoCollection
    let maxProjectFiles: Int

    /// The content's size in bytes and SHA-256, as the service stores them.
    static func measure(_ content: String) -> (size: Int64, checksum: String) {
        let bytes = Array(content.utf8)
        return (Int64(bytes.count), Crypto.sha256Hex(bytes))
    }

    /// Dates written by updates come from `$currentDate`: the MongoDB stand-in stores a date
    /// given to `$set` at a top-level or dotted path as a string, and ignores `$max` on dates.
    static let touch: Value = ["stats.lastModified": true, "updatedAt": true]

    /// Adds to the project's totals and moves `lastModified` and `updatedAt` to now.
    func bump(_ projectId: String, _ user: ObjectId, files count: Int64, bytes: Int64)
        throws(MongoError)
    {
        try projects.updateOne(
            ["projectId": .string(projectId), "userId": .objectId(user)],
            [
                "$inc": ["stats.filesGenerated": .int64(count), "stats.totalSize": .int64(bytes)],
                "$currentDate": FileStore.touch,
            ])
    }

    // TODO: a crash between a file write and its `$inc` leaves the totals off by that file
    // until the next change; a repair job could recompute them from the files.
    /// Inserts a new file document, counting it first so the per-project cap holds under
    /// concurrency; the count is given back when the insert fails.
    func insert(_ doc: Document, projectId: String, user: ObjectId, size: Int64) throws {
        if let path = doc["path"]?.stringValue {
            try requireNoFolderClash(path, projectId: projectId, user: user)
        }
        let reserved = try projects.updateOne(
            [
                "projectId": .string(projectId), "userId": .objectId(user),
                "stats.filesGenerated": ["$lt": .int64(Int64(maxProjectFiles))],
            ],
            [
                "$inc": ["stats.filesGenerated": 1, "stats.totalSize": .int64(size)],
                "$currentDate": FileStore.touch,
            ])
        guard reserved.matched > 0 else {
            let owner: Document = ["projectId": .string(projectId), "userId": .objectId(user)]
            guard try projects.findOne(owner, projection: ["_id": 1]) != nil else {
                throw APIError.notFound("project")
            }
            throw APIError.conflict(
                "the project already holds the maximum of \(maxProjectFiles) files")
        }
        do {
            try files.insertOne(doc)
        } catch {
            try? bump(projectId, user, files: -1, bytes: -size)
            throw error
        }
        // Checked again once stored: two writers of `/a` and `/a/b` at once both pass the
        // first check. Each then sees the other and takes its own file back (both 409).
        guard let path = doc["path"]?.stringValue, let fileId = doc["fileId"]?.stringValue
        else { return }
        do {
            try requireNoFolderClash(
                path, projectId: projectId, user: user, movingFileId: fileId)
        } catch {
            _ = try? delete(fileId: fileId, user: user)
            throw error
        }
    }

    /// A file must not stand where other files make a folder, nor inside another file: `/a`
    /// and `/a/b` cannot both be files, or an export could not be unpacked. 409 naming `path`.
    /// `fileId`: the file being moved, which may clash with its own old path.
    func requireNoFolderClash(
        _ path: String, projectId: String, user: ObjectId, movingFileId fileId: String? = nil
    ) throws {
        var scope: Document = ["projectId": .string(projectId), "userId": .objectId(user)]
        if let fileId { scope["fileId"] = ["$ne": .string(fileId)] }
        let folders = CanvasPath.folders(of: path).map { Value.string($0) }
        // Paths inside `path` as a folder: from "path/" up to "path0" ("0" follows "/").
        var below = scope
        below["path"] = ["$gte": .string(path + "/"), "$lt": .string(path + "0")]
        var checks = [(below, "is a folder holding the file")]
        if !folders.isEmpty {
            var above = scope
            above["path"] = ["$in": .array(folders)]
            checks.insert((above, "is inside the file"), at: 0)
        }
        for (filter, clash) in checks {
            guard let other = try files.findOne(filter, projection: ["path": 1]) else { continue }
            let otherPath = other["path"]?.stringValue ?? ""
            throw APIError(
                status: 409, code: "conflict", message: "\(path) \(clash) \(otherPath)",
                details: [FieldError("path", "\(clash) \(otherPath)")])
        }
    }

    /// Replaces fields of one file (`updatedAt` becomes now) and adjusts the totals by the size
    /// change; returns the file after the change, or nil when no file matched.
    func update(
        _ filter: Document, set: Document, newSize: Int64?, projectId: String, user: ObjectId
    )
        throws -> Document?
    {
        var change: Document = ["$currentDate": ["updatedAt": true]]
        if !set.isEmpty { change["$set"] = .document(set) }
        guard
            let before = try files.findOneAndUpdate(
                filter, change, returnNew: false, projection: ["size": 1, "fileId": 1])
        else { return nil }
        let delta = newSize.map { $0 - (before["size"]?.intValue ?? 0) } ?? 0
        try bump(projectId, user, files: 0, bytes: delta)
        guard let fileId = before["fileId"] else { return nil }
        return try files.findOne(["fileId": fileId], projection: CanvasRules.fileOutput)
    }

    /// Deletes one file and takes its size off the totals. The delete names the size it read,
    /// so a concurrent content change makes it read again rather than subtract a stale size.
    func delete(fileId: String, user: ObjectId) throws -> Document? {
        for _ in 0..<20 {
            guard
                let current = try files.findOne(
                    ["fileId": .string(fileId), "userId": .objectId(user)],
                    projection: ["fileId": 1, "projectId": 1, "size": 1, "path": 1])
            else { return nil }
            let size = current["size"]?.intValue ?? 0
            let removed = try files.deleteOne([
                "fileId": .string(fileId), "userId": .objectId(user), "size": .int64(size),
            ])
            guard removed > 0 else { continue }
            let projectId = current["projectId"]?.stringValue ?? ""
            try bump(projectId, user, files: -1, bytes: -size)
            return current
        }
        throw APIError.unavailable("the file is changing too fast; try again")
    }

    /// Writes a file by path: its content replaces an existing file's, or a new file is made
    /// with `newFileId`. Returns the stored size.
    @discardableResult
    func put(
        _ file: GeneratedFile, projectId: String, user: ObjectId, newFileId: String, now: Timestamp
    ) throws -> Int64 {
        let (size, checksum) = FileStore.measure(file.content)
        for _ in 0..<5 {
            let set: Document = [
                "name": .string(file.name), "type": .string(file.type),
                "content": .string(file.content),
                "size": .int64(size), "checksum": .string(checksum),
                "metadata": .document(file.metadata),
            ]
            let filter: Document = [
                "projectId": .string(projectId), "userId": .objectId(user),
                "path": .string(file.path),
            ]
            if try update(filter, set: set, newSize: size, projectId: projectId, user: user) != nil
            {
                return size
            }
            let doc: Document = [
                "_id": .objectId(ObjectId()), "fileId": .string(newFileId),
                "projectId": .string(projectId),
                "userId": .objectId(user), "name": .string(file.name), "path": .string(file.path),
                "type": .string(file.type), "content": .string(file.content), "size": .int64(size),
                "checksum": .string(checksum), "metadata": .document(file.metadata),
                "createdAt": .date(now), "updatedAt": .date(now),
            ]
            do {
                try insert(doc, projectId: projectId, user: user, size: size)
                return size
            } catch let error as MongoError where error.kind == .duplicateKey {
                // Another writer made this path (or this id) first: write over it instead.
                continue
            }
        }
        throw APIError.unavailable("the file \(file.path) is changing too fast; try again")
    }

    /// A file id that is the same whenever the same generation writes the same path.
    static func derivedId(seed: String, path: String) -> String {
        "file-" + Crypto.sha256Hex(Array("\(seed)\u{0}\(path)".utf8)).prefix(24)
    }
}
