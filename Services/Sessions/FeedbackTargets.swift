import Bus
import Core
import MongoKit
import ServiceKit

/// Questions other services ask the sessions service over the bus about data it owns. They
/// have no HTTP route: only a command on `uc:cmd:sessions` reaches them, and the asking
/// service passes the caller's user id and role along.
struct FeedbackTargets: Sendable {
    let sessions: MongoCollection
    let interactions: MongoCollection
    let agents: AgentHandlers

    /// `feedback.check-target` (and `conversations.check`, canvas's name for the same question
    /// with only a `conversationId`): does `conversationId` belong to the caller, is
    /// `messageId` (if given) a message of it, and does `agentId` (slug or 24-hex, if given)
    /// name an agent the caller may see? 404 naming the first that fails; otherwise the
    /// ObjectIds feedback keeps.
    func check(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        guard let conversation = command.params["conversationId"], !conversation.isEmpty else {
            throw APIError.invalid("conversationId", "is required")
        }
        guard
            let session = try sessions.findOne(
                ["sessionId": .string(conversation), "userId": .objectId(user)],
                projection: ["agentId": 1, "sessionId": 1])
        else { throw APIError.notFound("conversation") }
        if let message = command.params["messageId"] {
            let found = try interactions.find(
                [
                    "conversationId": .string(conversation), "userId": .objectId(user),
                    "messages.messageId": .string(message),
                ], limit: 1, projection: ["_id": 1])
            guard !found.isEmpty else { throw APIError.notFound("message") }
        }
        var reply: Document = [
            "conversationId": .string(conversation),
            "sessionAgentId": session["agentId"]?.objectIdValue.map { .string($0.hex) } ?? .null,
        ]
        if let key = command.params["agentId"] {
            guard let agent = try agents.find(key, role: command.role),
                let id = agent["_id"]?.objectIdValue
            else { throw APIError.notFound("agent") }
            reply["agentId"] = .string(id.hex)
            reply["agentSlug"] = agent["agentId"] ?? .null
        }
        return Reply(status: 200, reply)
    }

    /// `agents.resolve`: the ObjectId and slug of an agent the caller may see, or 404.
    func resolve(_ command: Command) throws -> Reply {
        _ = try command.requireUser()
        let agent = try agents.visible(command)
        guard let id = agent["_id"]?.objectIdValue else { throw APIError.notFound("agent") }
        return Reply(
            status: 200, ["agentId": .string(id.hex), "agentSlug": agent["agentId"] ?? .null])
    }
}
