import Bus
import Core
import Crypt
import FoundationEssentials
import Glibc
import MongoKit
import ServiceKit

TerminationSignal.shared.install()
let environment = Environment()
let logger = Logger(service: "settings")
let config = SettingsConfig(environment)
let busConfig = BusConfig(service: "settings", environment: environment)
logger.info(
    "starting",
    [.config: "\(busConfig.summary) \(config.summary)"])
if config.usingDevelopmentSecret {
    logger.warning("JWT_SECRET is not set; using the fixed development secret")
}

let pool: MongoPool
do {
    pool = try MongoPool(uri: config.mongoURI, appName: "settings")
} catch {
    logger.error("bad MONGODB_URI", [.error: error.description])
    exit(1)
}

let ledger = CommandLedger(pool: pool, service: "settings")
let quickActions = QuickActionHandlers(actions: pool.collection("chat_quick_actions"))
var prepared = false
while !prepared {
    do {
        for spec in [
            Schema.users, Schema.settings, Schema.quickActions, Schema.refreshTokens, ledger.spec,
        ] {
            try pool.ensure(spec, logger: logger)
        }
        let seeded = try quickActions.seedDefaults()
        logger.info("default quick actions seeded", [.count: String(seeded)])
        prepared = true
    } catch {
        logger.warning("cannot prepare collections yet; retrying", [.error: error.description])
        sleep(1)
    }
}

guard let dummyHash = Crypto.bcryptHash(Crypto.randomHex(16), cost: config.bcryptCost) else {
    logger.error("bcrypt is unavailable in libxcrypt")
    exit(1)
}

let users = pool.collection("users")
let issuer = TokenIssuer(config: config, tokens: pool.collection("auth_refresh_tokens"))
let limiter = LoginLimiter(
    redis: RedisPool(address: busConfig.redis), windowSeconds: config.loginWindowSeconds,
    maxPerEmail: config.maxFailuresPerEmail, maxPerAddress: config.maxFailuresPerAddress)
let auth = AuthHandlers(
    users: users, issuer: issuer, limiter: limiter, bcryptCost: config.bcryptCost,
    dummyHash: dummyHash, logger: logger)
let requester = BusRequester(
    address: busConfig.redis, name: "settings-\(busConfig.consumer)", logger: logger)
let chatSettings = ChatSettingsHandlers(
    settings: pool.collection("chat_settings"), quickActions: quickActions,
    agents: AgentCheck(requester: requester))

let runner = ServiceRunner(
    service: "settings", config: busConfig, logger: logger, ledger: ledger,
    handlers: [
        "auth.register": Handler(mutating: false, auth.register),
        "auth.login": Handler(mutating: false, auth.login),
        "auth.refresh": Handler(mutating: false, auth.refresh),
        "auth.logout": Handler(mutating: false, auth.logout),
        "me.get": Handler(mutating: false, auth.me),
        "me.update": Handler(mutating: true, auth.updateMe),
        "settings.get": Handler(mutating: false, chatSettings.get),
        "settings.update": Handler(mutating: true, chatSettings.update),
        "quickActions.list": Handler(mutating: false, quickActions.list),
        "quickActions.create": Handler(mutating: true, quickActions.create),
        "quickActions.update": Handler(mutating: true, quickActions.update),
        "quickActions.delete": Handler(mutating: true, quickActions.delete),
        "quickActions.use": Handler(mutating: true, quickActions.use),
    ])
runner.run()
exit(0)
