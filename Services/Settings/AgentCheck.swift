import Bus
import Core
import JSONKit
import ServiceKit
import Synchronization

/// Asks the sessions service, which owns the agent catalog, whether the caller may use an
/// agent: the same `agents.get` the HTTP route runs, sent over the bus.
struct AgentCheck: Sendable {
    let requester: BusRequester
    /// How long a change waits for the answer, at most; the command's own deadline comes first.
    static let timeoutMs: Int64 = 2000
    /// How long a read of the settings waits: it shows the stored agent if no answer comes.
    static let readTimeoutMs: Int64 = 300
    /// After a read got no answer, reads skip the check this long, so that a catalog that is
    /// down does not hold every settings worker for `readTimeoutMs` per read.
    static let readPauseMs: Int64 = 5000
    private let readsPausedUntil = PauseClock()

    init(requester: BusRequester) { self.requester = requester }
    /// Time kept back from the command's deadline to answer after the check.
    static let answerMarginMs: Int64 = 300

    /// What the catalog says of an agent for the caller.
    enum Usability { case usable, gone, unknown }

    /// `usable` when the agent is visible to the caller, `gone` when it does not exist for
    /// them (deleted, made private, never there), `unknown` when the catalog did not answer.
    func usability(
        of agent: ObjectId, by command: Command, timeoutMs: Int64 = AgentCheck.timeoutMs
    ) -> Usability {
        guard
            let reply = requester.request(
                "agents.get", to: "sessions", for: command, params: ["agentId": agent.hex],
                timeoutMs: timeoutMs, marginMs: AgentCheck.answerMarginMs)
        else { return .unknown }
        switch reply.status {
        case 200: return .usable
        case 404: return .gone
        default: return .unknown
        }
    }

    /// For a read: `usability` with a short wait, and `unknown` without asking while reads are
    /// paused after one that got no answer.
    func usabilityForRead(of agent: ObjectId, by command: Command) -> Usability {
        let now = Timestamp.now().milliseconds
        guard now >= readsPausedUntil.value else { return .unknown }
        let verdict = usability(of: agent, by: command, timeoutMs: AgentCheck.readTimeoutMs)
        if verdict == .unknown { readsPausedUntil.value = now + AgentCheck.readPauseMs }
        return verdict
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
            throw APIError.unavailable("the agent catalog could not check the agent; retry shortly")
        }
    }
}

/// A time in milliseconds shared by every copy of the check.
private final class PauseClock: Sendable {
    private let stored = Atomic<Int64>(0)

    var value: Int64 {
        get { stored.load(ordering: .relaxed) }
        set { stored.store(newValue, ordering: .relaxed) }
    }
}
