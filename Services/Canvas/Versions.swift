import Bus
import Core
import MongoKit
import Providers
import ServiceKit

/// Versions of a project's files: each generation records the files before and after it as
/// manifests (path, type, size, checksum, metadata) in `chat_canvas_versions`; contents are
/// stored once per project and checksum in `chat_canvas_blobs`.
struct Versions: Sendable {
    let files: MongoCollection
    let versions: MongoCollection
    let blobs: MongoCollection

    static func blobId(_ projectId: String, _ checksum: String) -> String {
        "\(projectId):\(checksum)"
    }

    /// The project's files now, as a manifest; every content is kept as a blob.
    func capture(_ projectId: String, user: ObjectId) throws -> [Value] {
        let current = try files.find(
            ["projectId": .string(projectId), "userId": .objectId(user)], sort: ["path": 1],
            projection: [
                "_id": 0, "path": 1, "type": 1, "size": 1, "checksum": 1, "metadata": 1,
                "content": 1,
            ])
        let ids = current.compactMap { $0["checksum"]?.stringValue }.map {
            Value.string(Versions.blobId(projectId, $0))
        }
        var stored: Set<String> = []
        if !ids.isEmpty {
            let existing = try blobs.find(["_id": ["$in": .array(ids)]], projection: ["_id": 1])
            stored = Set(existing.compactMap { $0["_id"]?.stringValue })
        }
        var missing: [Document] = []
        var manifest: [Value] = []
        let now = Timestamp.now()
        for file in current {
            let checksum = file["checksum"]?.stringValue ?? ""
            let id = Versions.blobId(projectId, checksum)
            if !stored.contains(id) {
                stored.insert(id)
                missing.append([
                    "_id": .string(id), "projectId": .string(projectId), "userId": .objectId(user),
                    "checksum": .string(checksum), "size": file["size"] ?? 0,
                    "content": file["content"] ?? "", "createdAt": .date(now),
                ])
            }
            manifest.append([
                "path": file["path"] ?? "", "type": file["type"] ?? "other",
                "size": file["size"] ?? 0,
                "checksum": .string(checksum), "metadata": file["metadata"] ?? ["dependencies": []],
            ])
        }
        try blobs.insertMany(missing, ordered: false)
        return manifest
    }

    /// Records the manifests of one generation (again, harmlessly, when a job is re-run).
    func save(historyId: String, projectId: String, user: ObjectId, before: [Value], after: [Value])
        throws
    {
        try versions.updateOne(
            ["historyId": .string(historyId)],
            [
                "$set": [
                    "projectId": .string(projectId), "userId": .objectId(user),
                    "before": .array(before),
                    "after": .array(after),
                ],
                "$currentDate": ["updatedAt": true],
            ], upsert: true)
    }

    func manifest(historyId: String, user: ObjectId, state: String) throws -> [Value]? {
        guard
            let version = try versions.findOne(
                ["historyId": .string(historyId), "userId": .objectId(user)], projection: [state: 1]
            )
        else { return nil }
        return version[state]?.arrayValue
    }

    struct Restored {
        var written = 0
        var removed = 0
        var unchanged = 0
    }

    /// Makes the project's files equal to a manifest: changed or missing files are written
    /// from their blobs, files the manifest does not hold are deleted.
    func restore(
        _ manifest: [Value], projectId: String, user: ObjectId, store: FileStore, seed: String
    )
        throws -> Restored
    {
        let current = try files.find(
            ["projectId": .string(projectId), "userId": .objectId(user)],
            projection: ["fileId": 1, "path": 1, "checksum": 1, "type": 1])
        var byPath: [String: Document] = [:]
        for file in current { if let path = file["path"]?.stringValue { byPath[path] = file } }
        var result = Restored()
        let kept = Set(manifest.compactMap { $0.documentValue?["path"]?.stringValue })
        // Files the version does not have go first: one of them may be where the version
        // has a folder of files, or inside a file of the version (`/a` and `/a/b`).
        for file in current {
            guard let path = file["path"]?.stringValue, !kept.contains(path),
                let fileId = file["fileId"]?.stringValue
            else { continue }
            if try store.delete(fileId: fileId, user: user) != nil { result.removed += 1 }
        }
        let now = Timestamp.now()
        for entry in manifest.compactMap(\.documentValue) {
            guard let path = entry["path"]?.stringValue,
                let checksum = entry["checksum"]?.stringValue
            else {
                continue
            }
            let type = entry["type"]?.stringValue ?? "other"
            if let existing = byPath[path], existing["checksum"]?.stringValue == checksum,
                existing["type"]?.stringValue == type
            {
                result.unchanged += 1
                continue
            }
            guard
                let blob = try blobs.findOne(
                    ["_id": .string(Versions.blobId(projectId, checksum))],
                    projection: ["content": 1])
            else { throw APIError.unprocessable("the stored version of \(path) is missing") }
            let file = GeneratedFile(
                path: path, type: type, content: blob["content"]?.stringValue ?? "",
                metadata: entry["metadata"]?.documentValue ?? ["dependencies": []])
            try store.put(
                file, projectId: projectId, user: user,
                newFileId: FileStore.derivedId(seed: seed, path: path),
                now: now)
            result.written += 1
        }
        return result
    }

    // TODO: blobs no version or file refers to any more are kept until the project is deleted.
    func deleteProject(_ projectId: String, user: ObjectId) throws {
        try versions.deleteMany(["projectId": .string(projectId), "userId": .objectId(user)])
        try blobs.deleteMany(["projectId": .string(projectId), "userId": .objectId(user)])
    }
}
