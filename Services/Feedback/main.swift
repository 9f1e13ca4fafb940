import Bus
import Core
import FoundationEssentials
import Glibc
import MongoKit
import ServiceKit

TerminationSignal.shared.install()
let environment = Environment()
let logger = Logger(service: "feedback")
let busConfig = BusConfig(service: "feedback", environment: environment)
let mongoURI = environment.string("MONGODB_URI", "mongodb://127.0.0.1:27017/universal_chat")
logger.info("starting", [.config: busConfig.summary])

let pool: MongoPool
do {
    pool = try MongoPool(uri: mongoURI, appName: "feedback")
} catch {
    logger.error("bad MONGODB_URI", [.error: error.description])
    exit(1)
}

let ledger = CommandLedger(pool: pool, service: "feedback")
var ensured = false
while !ensured {
    do {
        for spec in [FeedbackRules.spec, ledger.spec] {
            try pool.ensure(spec, logger: logger)
        }
        ensured = true
    } catch {
        logger.warning("cannot prepare collections yet; retrying", [.error: error.description])
        sleep(1)
    }
}

let feedback = pool.collection("chat_feedback")
let requester = BusRequester(
    address: busConfig.redis, name: "feedback-\(busConfig.consumer)", logger: logger)
let outbox = FeedbackOutbox(
    feedback: feedback, publisher: EventPublisher(address: busConfig.redis), logger: logger)
outbox.startSweeper()
let handlers = FeedbackHandlers(feedback: feedback, requester: requester, outbox: outbox)
let report = RatingsReport(feedback: feedback, requester: requester)

let runner = ServiceRunner(
    service: "feedback", config: busConfig, logger: logger, ledger: ledger,
    handlers: [
        "feedback.create": Handler(mutating: true, handlers.create),
        "feedback.list": Handler(mutating: false, handlers.list),
        "feedback.ratings": Handler(mutating: false, report.ratings),
    ])
runner.run()
exit(0)
