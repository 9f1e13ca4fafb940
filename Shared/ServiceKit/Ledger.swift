import Bus
import Core
import Crypt
import FoundationEssentials
import MongoKit

/// Where a write command stands in the service's ledger of applied commands.
public enum LedgerState: Sendable {
    /// Nobody applied it yet; this consumer owns it now.
    case fresh
    /// Applied before: answer with the stored reply.
    case done(Reply)
    /// Another delivery is applying it right now.
    case inProgress(ageMs: Int64)
    /// The same idempotency key came with another body.
    case conflict
}

/// Records each applied write command with its reply, keyed by command id, so a redelivered
/// command or a retried idempotency key answers the first reply and has no second effect.
public struct CommandLedger: Sendable {
    public static let retentionSeconds = 86_400
    let collection: MongoCollection

    public init(pool: MongoPool, service: String) {
        collection = pool.collection("bus_ledger_\(service)")
    }

    public var spec: CollectionSpec {
        CollectionSpec(
            collection.name,
            indexes: [
                IndexSpec(["createdAt": 1], expireAfterSeconds: CommandLedger.retentionSeconds)
            ])
    }

    static func fingerprint(_ command: Command) -> String {
        var input = Array(command.type.utf8)
        input.append(0)
        for key in command.params.keys.sorted() {
            input += Array("\(key)=\(command.params[key] ?? "")".utf8)
            input.append(0)
        }
        input += command.body
        return Crypto.sha256Hex(input)
    }

    public func begin(_ command: Command, consumer: String) throws(MongoError) -> LedgerState {
        let fingerprint = CommandLedger.fingerprint(command)
        let now = Timestamp.now()
        do {
            try collection.insertOne([
                "_id": .string(command.id), "type": .string(command.type),
                "owner": .string(consumer),
                "fingerprint": .string(fingerprint), "createdAt": .date(now),
            ])
            return .fresh
        } catch let error where error.kind == .duplicateKey {
            guard let entry = try collection.findOne(["_id": .string(command.id)]) else {
                return .fresh
            }
            if entry["fingerprint"]?.stringValue != fingerprint { return .conflict }
            if let status = entry["status"]?.intValue, let body = entry["body"]?.stringValue {
                return .done(Reply(status: Int(status), body: Array(body.utf8)))
            }
            let started = entry["createdAt"]?.dateValue ?? now
            return .inProgress(ageMs: now.milliseconds - started.milliseconds)
        }
    }

    public func finish(_ command: Command, reply: Reply) throws(MongoError) {
        try collection.updateOne(
            ["_id": .string(command.id)],
            [
                "$set": [
                    "status": .int64(Int64(reply.status)),
                    "body": .string(String(decoding: reply.body, as: UTF8.self)),
                ]
            ])
    }

    /// Forgets a command whose handler failed without effect, so a retry may apply it.
    public func abandon(_ command: Command) {
        _ = try? collection.deleteOne(["_id": .string(command.id), "status": ["$exists": false]])
    }
}
