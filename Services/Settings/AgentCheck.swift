import Bus
import Core
import JSONKit
import ServiceKit

/// Asks the sessions service, which owns the agent catalog, whether the caller may use an
/// agent: the same `agents.get` the HTTP route runs, sent over the bus.
struct AgentCheck: Sendable {
    let requester: BusRequester
    /// How long to wait for the answer, at most; the command's own deadline comes first.
    static let timeoutMs: Int64 = 2000
    /// Time kept back from the command's deadline to answer after the check.
    static let answerMarginMs: Int64 = 300

    /// Nothing when the agent is visible to the caller; 400 naming `field` when it is not (or
    /// does not exist), 503 when the sessions service does not answer.
    func requireUsable(_ agent: ObjectId, by command: Command, field: String) throws(APIError) {
        let deadline = min(
            command.deadline - AgentCheck.answerMarginMs,
            Timestamp.now().milliseconds + AgentCheck.timeoutMs)
        guard
            let reply = requester.request(
                "agents.get", to: "sessions", userId: command.userId, role: command.role,
                params: ["agentId": agent.hex], deadline: deadline)
        else { throw APIError.unavailable("the agent catalog did not answer in time") }
        switch reply.status {
        case 200:
            return
        case 404:
            throw APIError.invalid(field, "names no agent you can use")
        default:
            throw APIError.unavailable("the agent catalog could not check the agent")
        }
    }
}
