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

    /// What the catalog says of an agent for the caller.
    enum Usability { case usable, gone, unknown }

    /// `usable` when the agent is visible to the caller, `gone` when it does not exist for
    /// them (deleted, made private, never there), `unknown` when the catalog did not answer.
    func usability(of agent: ObjectId, by command: Command) -> Usability {
        let deadline = min(
            command.deadline - AgentCheck.answerMarginMs,
            Timestamp.now().milliseconds + AgentCheck.timeoutMs)
        guard
            let reply = requester.request(
                "agents.get", to: "sessions", userId: command.userId, role: command.role,
                params: ["agentId": agent.hex], deadline: deadline)
        else { return .unknown }
        switch reply.status {
        case 200: return .usable
        case 404: return .gone
        default: return .unknown
        }
    }

    /// Nothing when the agent is visible to the caller; 400 naming `field` when it is not (or
    /// does not exist), 503 when the sessions service does not answer.
    func requireUsable(_ agent: ObjectId, by command: Command, field: String) throws(APIError) {
        switch usability(of: agent, by: command) {
        case .usable:
            return
        case .gone:
            throw APIError.invalid(field, "names no agent you can use")
        case .unknown:
            throw APIError.unavailable("the agent catalog could not check the agent")
        }
    }
}
