import Bus
import Core
import FoundationEssentials
import Glibc
import MongoKit
import ServiceKit

TerminationSignal.shared.install()
let environment = Environment()
let logger = Logger(service: "sessions")
let busConfig = BusConfig(service: "sessions", environment: environment)
let mongoURI = environment.string("MONGODB_URI", "mongodb://127.0.0.1:27017/universal_chat")
logger.info("starting", [.config: busConfig.summary])

let pool: MongoPool
do {
    pool = try MongoPool(uri: mongoURI, appName: "sessions")
} catch {
    logger.error("bad MONGODB_URI", [.error: error.description])
    exit(1)
}

let ledger = CommandLedger(pool: pool, service: "sessions")
let agentModule = AgentModule(pool: pool, logger: logger)
var ensured = false
while !ensured {
    do {
        let specs =
            [SessionRules.sessions, SessionRules.interactions, ledger.spec] + AgentModule.specs
        for spec in specs {
            try pool.ensure(spec, logger: logger)
        }
        try agentModule.seed()
        ensured = true
    } catch {
        logger.warning("cannot prepare collections yet; retrying", [.error: error.description])
        sleep(1)
    }
}

let sessions = pool.collection("chat_sessions")
let interactions = pool.collection("chatinteractions")
let messages = MessageStore(sessions: sessions, interactions: interactions)
let handlers = SessionHandlers(
    sessions: sessions, interactions: interactions, messages: messages,
    agents: pool.collection("agents"))
let recount = StatsRecount(sessions: sessions, interactions: interactions)
let replyConfig = ReplyConfig(environment)
logger.info("replies", [.config: replyConfig.summary])
let responder = Responder(
    sessions: sessions, interactions: interactions, agents: pool.collection("agents"),
    messages: messages, config: replyConfig,
    chain: ProviderChain(config: replyConfig, logger: logger), logger: logger)

let runner = ServiceRunner(
    service: "sessions", config: busConfig, logger: logger, ledger: ledger,
    handlers: [
        "ping": Handler(mutating: false) { _ in Reply(status: 200, ["pong": true]) },
        "sessions.list": Handler(mutating: false, agentModule.activeView.routing(handlers.list)),
        "sessions.create": Handler(mutating: true, idempotent: true, handlers.create),
        "sessions.get": Handler(mutating: false, handlers.get),
        "sessions.update": Handler(mutating: true, idempotent: true, handlers.update),
        "sessions.delete": Handler(mutating: true, handlers.delete),
        "messages.list": Handler(mutating: false, messages.list),
        "messages.append": Handler(mutating: true, idempotent: true, responder.appendOrRespond),
        "sessions.recount": Handler(mutating: false, recount.recount),
    ].merging(agentModule.handlers) { current, _ in current })
agentModule.startEvents(config: busConfig)
let respondRunner = RespondRunner.start(
    responder: responder, config: replyConfig, bus: busConfig, environment: environment,
    ledger: ledger, logger: logger)
runner.run()
respondRunner.stop()
exit(0)
