import Core
import Foundation
import JSONKit
import MongoKit

/// `uc-admin migrate [--dry-run] [--batch-size N]`: builds `chat_sessions` from the existing
/// `chatinteractions`, as the spec's migration intends, without its flaws.
///
/// - It never replaces or deletes a session: each one is an upsert that only inserts
///   (`$setOnInsert`), keyed by `sessionId` = the conversation id (the spec's `$out` would
///   replace the whole collection).
/// - A second run changes nothing: existing sessions are left as they are.
/// - Conversations without a `userId` (and ones whose documents name several users) are
///   skipped and listed, since a session must have exactly one owner.
/// - `--dry-run` prints what it would do and writes nothing.
/// - Memory is bounded by the batch: conversation ids are read in order with a keyset
///   (`conversationId > last`), `--batch-size` at a time (default 500), and only those
///   conversations' numbers are loaded; message counts come from `$size` on the server.
///
/// Legacy documents of a conversation about to get a session are also given the `bucket`
/// numbers (0, 1, ... in `startedAt` order) that the sessions service reads messages by, so
/// the migrated conversation's messages show in the API. A document that has one keeps it.
///
/// Output: one line per decision (`create`, `would-create`, `skip`), then a JSON summary.
struct Migration {
    let interactions: MongoCollection
    let sessions: MongoCollection
    let dryRun: Bool
    let batchSize: Int
    let output: (String) -> Void

    struct Summary {
        var conversations = 0
        var created = 0
        var existing = 0
        var skippedNoUser = 0
        var skippedSeveralUsers = 0
        var batches = 0
        var bucketsNumbered = 0

        func json(dryRun: Bool) -> String {
            JSONWriter.string(
                [
                    "summary": .document([
                        "dryRun": .bool(dryRun), "conversations": .int64(Int64(conversations)),
                        dryRun ? "wouldCreate" : "created": .int64(Int64(created)),
                        "existing": .int64(Int64(existing)),
                        "skippedNoUser": .int64(Int64(skippedNoUser)),
                        "skippedSeveralUsers": .int64(Int64(skippedSeveralUsers)),
                        "bucketsNumbered": .int64(Int64(bucketsNumbered)),
                        "batches": .int64(Int64(batches)),
                    ])
                ] as Document)
        }
    }

    /// One conversation's numbers, folded from its documents.
    struct Conversation {
        let id: String
        var users: [ObjectId] = []
        var agents: [ObjectId] = []
        var documents = 0
        var messages: Int64 = 0
        var tokens: Int64 = 0
        var durationMs: Int64 = 0
        var startedAt: Timestamp?
        var updatedAt: Timestamp?
        var latest: (Timestamp, String)?
        var tags: [String] = []
        var unnumbered: [(Timestamp, ObjectId)] = []
        var highestBucket: Int64 = -1
    }

    static let defaultSettings: Document = [
        "temperature": .double(0.7), "maxTokens": .int64(2000), "mode": "balanced",
        "provider": "mistral",
    ]

    func run() throws(MongoError) -> Summary {
        var summary = Summary()
        var last: String?
        while true {
            let ids = try nextConversationIds(after: last)
            guard let lastId = ids.last else { break }
            summary.batches += 1
            try migrate(ids, into: &summary)
            last = lastId
        }
        output(summary.json(dryRun: dryRun))
        return summary
    }

    /// Up to `batchSize` distinct conversation ids after `last`, in order.
    private func nextConversationIds(after last: String?) throws(MongoError) -> [String] {
        var ids: [String] = []
        var cursor = last
        while ids.count < batchSize {
            let filter: Document = [
                "conversationId": cursor.map { ["$gt": .string($0)] } ?? ["$gte": ""]
            ]
            let page = try interactions.find(
                filter, sort: ["conversationId": 1], limit: batchSize,
                projection: ["conversationId": 1])
            guard !page.isEmpty else { break }
            for doc in page {
                guard let id = doc["conversationId"]?.stringValue, id != ids.last,
                    ids.count < batchSize
                else { continue }
                ids.append(id)
            }
            cursor = page.last?["conversationId"]?.stringValue
            if page.count < batchSize { break }
        }
        return ids
    }

    private func migrate(_ ids: [String], into summary: inout Summary) throws(MongoError) {
        let list = Value.array(ids.map { .string($0) })
        let docs = try interactions.find(
            ["conversationId": ["$in": list]], sort: ["conversationId": 1, "_id": 1],
            projection: [
                "conversationId": 1, "userId": 1, "agentId": 1, "startedAt": 1, "createdAt": 1,
                "updatedAt": 1, "status": 1, "bucket": 1, "metrics": 1, "metadata": 1,
            ])
        let sizes = try interactions.aggregate([
            ["$match": ["conversationId": ["$in": list]]],
            ["$project": ["n": ["$size": ["$ifNull": ["$messages", []]]]]],
        ])
        var counts: [ObjectId: Int64] = [:]
        for row in sizes {
            if let id = row["_id"]?.objectIdValue { counts[id] = row["n"]?.intValue ?? 0 }
        }
        var byId: [String: Conversation] = [:]
        for doc in docs {
            guard let id = doc["conversationId"]?.stringValue else { continue }
            var conversation = byId[id] ?? Conversation(id: id)
            Migration.fold(doc, counts: counts, into: &conversation)
            byId[id] = conversation
        }
        let existing = try sessions.find(
            ["sessionId": ["$in": list]], limit: ids.count, projection: ["sessionId": 1])
        let existingIds = Set(existing.compactMap { $0["sessionId"]?.stringValue })

        for id in ids {
            guard let conversation = byId[id] else { continue }
            summary.conversations += 1
            if existingIds.contains(id) {
                summary.existing += 1
                continue
            }
            guard let user = conversation.users.first else {
                summary.skippedNoUser += 1
                output("skip \(id): no userId (\(conversation.documents) documents)")
                continue
            }
            guard conversation.users.count == 1 else {
                summary.skippedSeveralUsers += 1
                let users = conversation.users.map(\.hex).joined(separator: ",")
                output("skip \(id): several userIds (\(users))")
                continue
            }
            if dryRun {
                summary.created += 1
                output(
                    "would-create \(id) for user \(user.hex) (\(conversation.messages) messages)")
                continue
            }
            summary.bucketsNumbered += try number(conversation)
            let result = try sessions.updateOne(
                ["sessionId": .string(id)],
                ["$setOnInsert": .document(session(conversation, user: user))],
                upsert: true)
            if result.upsertedId != nil {
                summary.created += 1
                output("create \(id) for user \(user.hex) (\(conversation.messages) messages)")
            } else {
                summary.existing += 1
            }
        }
    }

    static func fold(_ doc: Document, counts: [ObjectId: Int64], into c: inout Conversation) {
        c.documents += 1
        if let user = doc["userId"]?.objectIdValue, !c.users.contains(user) { c.users.append(user) }
        if let agent = doc["agentId"]?.objectIdValue, !c.agents.contains(agent) {
            c.agents.append(agent)
        }
        let id = doc["_id"]?.objectIdValue
        if let id { c.messages += counts[id] ?? 0 }
        c.tokens += doc.value(at: "metrics.totalTokens")?.intValue ?? 0
        c.durationMs += doc.value(at: "metrics.durationMs")?.intValue ?? 0
        let started =
            doc["startedAt"]?.lenientDate ?? doc["createdAt"]?.lenientDate ?? id.map(Migration.time)
            ?? Timestamp.now()
        let updated = doc["updatedAt"]?.lenientDate ?? started
        if c.startedAt.map({ started < $0 }) ?? true { c.startedAt = started }
        if c.updatedAt.map({ updated > $0 }) ?? true { c.updatedAt = updated }
        if let status = doc["status"]?.stringValue, c.latest.map({ updated >= $0.0 }) ?? true {
            c.latest = (updated, status)
        }
        for tag in doc.value(at: "metadata.tags")?.arrayValue ?? [] {
            if let text = tag.stringValue, !text.isEmpty, text.unicodeScalars.count <= 50,
                !c.tags.contains(text), c.tags.count < 20
            {
                c.tags.append(text)
            }
        }
        if let bucket = doc["bucket"]?.intValue {
            c.highestBucket = max(c.highestBucket, bucket)
        } else if let id {
            c.unnumbered.append((started, id))
        }
    }

    /// The creation time inside an ObjectId, for documents without dates.
    static func time(_ id: ObjectId) -> Timestamp {
        let seconds = id.bytes.prefix(4).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        return Timestamp(milliseconds: seconds * 1000)
    }

    /// Gives the conversation's legacy documents bucket numbers after any existing ones, in
    /// `startedAt` order; each update only touches a document that still has none.
    private func number(_ c: Conversation) throws(MongoError) -> Int {
        let ordered = c.unnumbered.sorted {
            $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.hex < $1.1.hex
        }
        var next = c.highestBucket + 1
        var numbered = 0
        for (_, id) in ordered {
            let result = try interactions.updateOne(
                ["_id": .objectId(id), "bucket": ["$exists": false]],
                ["$set": ["bucket": .int64(next)]])
            if result.matched > 0 {
                numbered += 1
                next += 1
            }
        }
        return numbered
    }

    private func session(_ c: Conversation, user: ObjectId) -> Document {
        let started = c.startedAt ?? Timestamp.now()
        let updated = c.updatedAt ?? started
        let status = c.latest?.1 ?? "active"
        var doc: Document = [
            "_id": .objectId(ObjectId()), "sessionId": .string(c.id), "userId": .objectId(user),
        ]
        if let agent = c.agents.first { doc["agentId"] = .objectId(agent) }
        doc["name"] = .string("Conversation from \(started.iso8601.prefix(10))")
        doc["description"] = "Migrated from chatinteractions"
        doc["isActive"] = .bool(status == "active")
        doc["isArchived"] = .bool(status == "archived")
        doc["tags"] = .array(c.tags.map { .string($0) })
        doc["settings"] = .document(Migration.defaultSettings)
        doc["stats"] = [
            "messageCount": .int64(c.messages), "totalTokens": .int64(c.tokens),
            "durationMs": .int64(c.durationMs), "lastMessageAt": .date(updated),
        ]
        doc["createdAt"] = .date(started)
        doc["updatedAt"] = .date(updated)
        if status == "archived" { doc["archivedAt"] = .date(updated) }
        doc["migratedAt"] = .date(Timestamp.now())
        return doc
    }
}
