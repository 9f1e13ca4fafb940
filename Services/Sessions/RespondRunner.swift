import Bus
import Core
import Dispatch
import FoundationEssentials
import ServiceKit

/// The consumer of `uc:cmd:sessions-respond`: respond commands, applied by `RESPOND_WORKERS`
/// threads of their own with a read-ahead of one per worker, claimed from a dead consumer
/// only after `ReplyConfig.claimIdleMs` (a reply may take that long), in the same process as
/// the rest of the sessions service and with the same ledger.
final class RespondRunner: @unchecked Sendable {
    static let service = "sessions-respond"
    let runner: ServiceRunner
    private let finished = DispatchSemaphore(value: 0)

    private init(runner: ServiceRunner) { self.runner = runner }

    static func start(
        responder: Responder, config: ReplyConfig, bus: BusConfig, environment: Environment,
        ledger: CommandLedger, logger: Logger
    ) -> RespondRunner {
        var values = environment.values
        values["WORKERS"] = String(config.respondWorkers)
        values["CLAIM_IDLE_MS"] = String(max(bus.claimIdleMs, config.claimIdleMs))
        values["METRICS_PORT"] = "0"
        values["CONSUMER_NAME"] = "\(bus.consumer)-respond"
        var respondBus = BusConfig(service: service, environment: Environment(values))
        respondBus.queuePerWorker = 1
        let runner = ServiceRunner(
            service: service, config: respondBus, logger: logger, ledger: ledger,
            handlers: [
                "messages.respond": Handler(mutating: true, idempotent: true, responder.respond)
            ])
        let made = RespondRunner(runner: runner)
        startThread(named: "respond") {
            runner.run()
            made.finished.signal()
        }
        return made
    }

    /// Drains: the replies being generated are finished (up to `RESPOND_TIMEOUT_MS`).
    func stop(timeoutMs: Int = 60_000) {
        runner.stop()
        _ = finished.wait(timeout: .now() + .milliseconds(timeoutMs))
    }
}
