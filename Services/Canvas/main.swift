import Bus
import Core
import FoundationEssentials
import Glibc
import MongoKit
import ServiceKit

TerminationSignal.shared.install()
let environment = Environment()
let logger = Logger(service: "canvas")
let busConfig = BusConfig(service: "canvas", environment: environment)
let config = CanvasConfig(environment)
logger.info(
    "starting", [.config: "\(busConfig.summary) \(config.summary)"]
)

let pool: MongoPool
do {
    pool = try MongoPool(uri: config.mongoURI, appName: "canvas")
} catch {
    logger.error("bad MONGODB_URI", [.error: error.description])
    exit(1)
}

let ledger = CommandLedger(pool: pool, service: "canvas")
var ensured = false
while !ensured {
    do {
        let specs = [
            CanvasRules.projects, CanvasRules.files, CanvasRules.history, CanvasRules.versions,
            CanvasRules.blobs, ledger.spec,
        ]
        for spec in specs { try pool.ensure(spec, logger: logger) }
        ensured = true
    } catch {
        logger.warning("cannot prepare collections yet; retrying", [.error: error.description])
        sleep(1)
    }
}

let projects = pool.collection("chat_canvas_projects")
let files = pool.collection("chat_canvas_files")
let history = pool.collection("chat_canvas_history")
let store = FileStore(projects: projects, files: files, maxProjectFiles: config.maxProjectFiles)
let versions = Versions(
    files: files, versions: pool.collection("chat_canvas_versions"),
    blobs: pool.collection("chat_canvas_blobs"))
let lock = ProjectLock(projects: projects)
let requester = BusRequester(
    address: busConfig.redis, name: "canvas-\(busConfig.consumer)", logger: logger)
let projectHandlers = ProjectHandlers(
    projects: projects, files: files, history: history, versions: versions, config: config,
    conversations: ConversationCheck(requester: requester))
let fileHandlers = FileHandlers(projects: projects, files: files, store: store, config: config)
let generation = GenerationHandlers(
    projects: projects, history: history, versions: versions, store: store, lock: lock,
    queue: JobQueue(address: busConfig.redis, stream: config.jobStream), config: config)

let jobs = JobWorker(
    config: config, redis: busConfig.redis, consumer: busConfig.consumer, logger: logger,
    projects: projects, history: history, store: store, versions: versions, lock: lock)
jobs.start()

let runner = ServiceRunner(
    service: "canvas", config: busConfig, logger: logger, ledger: ledger,
    handlers: [
        "canvas.projects.list": Handler(mutating: false, projectHandlers.list),
        "canvas.projects.create": Handler(mutating: true, projectHandlers.create),
        "canvas.projects.get": Handler(mutating: false, projectHandlers.get),
        "canvas.projects.update": Handler(mutating: true, projectHandlers.update),
        "canvas.projects.delete": Handler(mutating: true, projectHandlers.delete),
        "canvas.projects.export": Handler(mutating: false, projectHandlers.export),
        "canvas.files.list": Handler(mutating: false, fileHandlers.list),
        "canvas.files.create": Handler(mutating: true, fileHandlers.create),
        "canvas.files.get": Handler(mutating: false, fileHandlers.get),
        "canvas.files.update": Handler(mutating: true, fileHandlers.update),
        "canvas.files.delete": Handler(mutating: true, fileHandlers.delete),
        "canvas.generate": Handler(mutating: true, generation.generate),
        "canvas.rollback": Handler(mutating: true, generation.rollback),
        "canvas.history.get": Handler(mutating: false, generation.get),
        "canvas.history.list": Handler(mutating: false, generation.list),
    ])
runner.run()
jobs.stop(graceMs: 10_000)
exit(0)
