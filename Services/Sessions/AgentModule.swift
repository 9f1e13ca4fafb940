import Bus
import Core
import MongoKit
import ServiceKit

/// What issue 4 adds to the sessions service (agents, the active-sessions view, analytics,
/// search, the feedback service's questions and the rating events), built in one place so
/// that `main.swift` wires it with a few lines.
struct AgentModule: Sendable {
    let agents: AgentHandlers
    let activeView: ActiveSessionsView
    let analytics: Analytics
    let search: MessageSearch
    let targets: FeedbackTargets
    let ratings: RatingEvents
    let logger: Logger

    static let specs = [AgentRules.spec]

    init(pool: MongoPool, logger: Logger) {
        let agentsCollection = pool.collection("agents")
        let sessions = pool.collection("chat_sessions")
        let interactions = pool.collection("chatinteractions")
        agents = AgentHandlers(agents: agentsCollection)
        activeView = ActiveSessionsView(sessions: sessions, agents: agentsCollection)
        analytics = Analytics(interactions: interactions, agents: agents)
        search = MessageSearch(
            interactions: interactions, sessions: sessions, agents: agentsCollection)
        targets = FeedbackTargets(sessions: sessions, interactions: interactions, agents: agents)
        ratings = RatingEvents(agents: agentsCollection, logger: logger)
        self.logger = logger
    }

    /// Makes sure the default catalog exists; safe on every start.
    func seed() throws(MongoError) {
        try AgentCatalog.seed(agents.agents, logger: logger)
    }

    var handlers: [String: Handler] {
        [
            "agents.list": Handler(mutating: false, agents.list),
            "agents.get": Handler(mutating: false, agents.get),
            "agents.create": Handler(mutating: true, agents.create),
            "agents.update": Handler(mutating: true, agents.update),
            "agents.delete": Handler(mutating: true, agents.delete),
            "agents.metrics": Handler(mutating: false, analytics.metrics),
            "agents.resolve": Handler(mutating: false, targets.resolve),
            "chat.stats": Handler(mutating: false, analytics.stats),
            "chat.search": Handler(mutating: false, search.search),
            "feedback.check-target": Handler(mutating: false, targets.check),
            "conversations.check": Handler(mutating: false, targets.check),
        ]
    }

    /// Starts consuming the feedback service's rating events in the `sessions` group.
    @discardableResult
    func startEvents(config: BusConfig) -> EventConsumer {
        let ratings = self.ratings
        let consumer = EventConsumer(
            stream: RatingEvents.stream, group: RatingEvents.group, consumer: config.consumer,
            address: config.redis, logger: logger, blockMs: config.blockMs,
            claimIdleMs: config.claimIdleMs
        ) { event in try ratings.apply(event) }
        consumer.start()
        return consumer
    }
}
