import Bus
import Core
import MongoKit
import ServiceKit

/// Keeps `agents.stats.totalRatings` and `averageRating` in step with the feedback service's
/// rating events (`uc:events:feedback`), consumed in the sessions service's own group.
///
/// Exactly once per change: the event's effect and its id land in the same single-document
/// update of the agent, guarded by "this id is not among the agent's applied ids", so a
/// second delivery matches nothing. Each agent remembers its last
/// `AgentRules.appliedEventsKept` event ids; redeliveries come from the pending list and are
/// far more recent than that.
///
/// Only `feedbackType == "agent"` counts, as in the spec's "Get Agent Average Rating"
/// aggregation; message and conversation feedback carry the session's agent but are not
/// ratings of the agent.
struct RatingEvents: Sendable {
    let agents: MongoCollection
    let logger: Logger

    static let group = "sessions"
    static var stream: String { BusNames.eventStream("feedback") }

    /// Applies one event; throws (leaving it pending) only when MongoDB failed.
    func apply(_ event: BusEvent) throws {
        guard event["type"] == "feedback.rated", event["feedbackType"] == "agent",
            let agent = event["agentId"].flatMap({ ObjectId(hex: $0) }),
            let newRating = event["newRating"].flatMap({ Int64($0) }), (1...5).contains(newRating)
        else {
            logger.debug("ignored feedback event", [.command: event.id])
            return
        }
        let oldRating = event["oldRating"].flatMap { Int64($0) }
        let countDelta: Int64 = oldRating == nil ? 1 : 0
        let sumDelta = newRating - (oldRating ?? 0)
        guard countDelta != 0 || sumDelta != 0 else { return }
        let applied: Document = [
            "$inc": ["stats.totalRatings": .int64(countDelta), "ratingSum": .int64(sumDelta)],
            "$push": [
                "ratingEvents": [
                    "$each": [.string(event.id)],
                    "$slice": .int64(-Int64(AgentRules.appliedEventsKept)),
                ]
            ],
        ]
        guard
            let updated = try agents.findOneAndUpdate(
                ["_id": .objectId(agent), "ratingEvents": ["$nin": [.string(event.id)]]], applied,
                projection: ["stats": 1, "ratingSum": 1])
        else {
            logger.debug("rating event already applied or agent gone", [.command: event.id])
            return
        }
        try storeAverage(agent, updated)
    }

    /// Writes `averageRating` from the sum and count just read, only while they are still
    /// the stored ones: a concurrent change then writes its own (newer) average instead.
    private func storeAverage(_ agent: ObjectId, _ doc: Document) throws(MongoError) {
        guard let count = doc.value(at: "stats.totalRatings")?.intValue,
            let sum = doc["ratingSum"]?.intValue
        else { return }
        let average = count > 0 ? Ratings.round2(Double(sum) / Double(count)) : 0
        try agents.updateOne(
            [
                "_id": .objectId(agent), "stats.totalRatings": .int64(count),
                "ratingSum": .int64(sum),
            ],
            ["$set": ["stats.averageRating": .double(average)]])
    }
}
