import Bus
import Core
import Dispatch
import FoundationEssentials
import Glibc
import MongoKit
import ServiceKit

/// Publishes rating events on `uc:events:feedback` without losing one.
///
/// A change writes its event into the feedback document itself (`lastEvent`, with
/// `eventState: "pending"`) in the same atomic update as the rating, then publishes it and
/// marks it `"sent"`. If the publish fails (Redis away, a crash), the sweeper publishes it
/// later; before a newer change overwrites a pending event, that event is published first.
/// An event may therefore go out twice, never zero times: the consumer deduplicates on `id`.
///
/// Fields: `id`, `type` (`feedback.rated`), `feedbackType`, `agentId` (hex or empty),
/// `userId`, `targetKey`, `oldRating` (empty for a first rating), `newRating`, `at` (ms).
struct FeedbackOutbox: Sendable {
    let feedback: MongoCollection
    let publisher: EventPublisher
    let logger: Logger
    static var stream: String { BusNames.eventStream("feedback") }
    static let sweepAfterMs: Int64 = 3000

    static func event(id: String, old: Int64?, new: Int64) -> Document {
        [
            "id": .string(id), "oldRating": old.map { .int64($0) } ?? .null,
            "newRating": .int64(new),
            "at": .int64(Timestamp.now().milliseconds),
        ]
    }

    /// Publishes the document's event if it is still pending; true when nothing is left to do.
    @discardableResult
    func send(_ doc: Document) -> Bool {
        guard doc["eventState"]?.stringValue == "pending",
            let event = doc["lastEvent"]?.documentValue,
            let id = event["id"]?.stringValue, let key = doc["_id"]
        else { return true }
        let fields: [(String, String)] = [
            ("id", id), ("type", "feedback.rated"),
            ("feedbackType", doc["feedbackType"]?.stringValue ?? ""),
            ("agentId", doc["agentId"]?.objectIdValue?.hex ?? ""),
            ("userId", doc["userId"]?.objectIdValue?.hex ?? ""),
            ("targetKey", doc["targetKey"]?.stringValue ?? ""),
            ("oldRating", event["oldRating"]?.intValue.map { String($0) } ?? ""),
            ("newRating", event["newRating"]?.intValue.map { String($0) } ?? ""),
            ("at", event["at"]?.intValue.map { String($0) } ?? ""),
        ]
        do {
            try publisher.publish(FeedbackOutbox.stream, fields)
        } catch {
            logger.warning(
                "cannot publish a rating event; the sweeper will retry", [.error: "\(error)"])
            return false
        }
        do {
            try feedback.updateOne(
                ["_id": key, "lastEvent.id": .string(id), "eventState": "pending"],
                ["$set": ["eventState": "sent"]])
        } catch {
            // Published but still marked pending: the sweeper publishes it again, harmlessly.
            logger.warning("cannot mark a rating event sent", [.error: error.description])
        }
        return true
    }

    /// Publishes events left pending for a while (a failed publish, a crash in between).
    func sweepOnce() {
        let before = Timestamp(
            milliseconds: Timestamp.now().milliseconds - FeedbackOutbox.sweepAfterMs)
        do {
            let stuck = try feedback.find(
                ["eventState": "pending", "updatedAt": ["$lt": .date(before)]],
                sort: ["updatedAt": 1],
                limit: 100)
            for doc in stuck where !send(doc) { break }
        } catch {
            logger.debug("outbox sweep failed", [.error: error.description])
        }
    }

    func startSweeper(everyMs: Int = 1000) {
        startThread(named: "feedback-outbox") {
            while true {
                usleep(UInt32(everyMs * 1000))
                sweepOnce()
            }
        }
    }
}
