import Core
import Crypt
import Dispatch
import FoundationEssentials
import RedisKit
import Synchronization

/// Lets one service ask another a question over the bus and wait for the answer.
///
/// The question is an ordinary `Command` on the other service's command stream, so the
/// answering service needs nothing new: it replies to this requester's own reply key
/// (`uc:reply:<name>`), which that service expires after its reply TTL. A reply that arrives
/// after the deadline is dropped.
///
/// A service that leaves two questions in a row unanswered for a second or more is taken to be
/// down or stuck: for the next `quietMs` its questions fail at once (nil), and then one at a
/// time (the probe) goes through until one is answered. Otherwise every caller would wait its
/// whole deadline, and a few callers would hold all of this service's workers.
public final class BusRequester: Sendable {
    struct Health {
        /// Questions unanswered in a row (a second or more each).
        var misses = 0
        /// While silent, questions fail at once until this time (ms).
        var silentUntil: Int64 = 0
        var probing = false
    }

    let client: BusClient
    let logger: Logger
    let quietMs: Int64
    /// Services that left questions unanswered lately, by name.
    private let health = PlainLock<[String: Health]>([:])

    /// `name` must be unique per process: it names the reply key.
    public init(
        address: RedisAddress, name: String, logger: Logger, maxBacklog: Int = 100_000,
        quietMs: Int64 = 2000
    ) {
        client = BusClient(
            address: address, gatewayId: name, logger: logger, maxBacklog: maxBacklog)
        self.logger = logger
        self.quietMs = quietMs
        client.start()
    }

    public var replyKey: String { client.replyKey }

    /// Sends `type` to `service` on behalf of `userId` and blocks the calling thread until the
    /// reply or the deadline (epoch ms); nil means no answer in time (or, while the service is
    /// silent, no question sent).
    public func request(
        _ type: String, to service: String, userId: ObjectId?, role: String = "user",
        params: [String: String] = [:], body: [UInt8] = [], deadline: Int64
    ) -> Reply? {
        let sentAt = Timestamp.now().milliseconds
        guard let isProbe = admit(service, now: sentAt) else { return nil }
        let id = Crypto.randomHex(16)
        let command = Command(
            id: id, requestId: id, type: type, userId: userId, role: role, params: params,
            body: body, replyKey: client.replyKey, deadline: deadline)
        let done = DispatchSemaphore(value: 0)
        let answer = Mutex<Reply?>(nil)
        client.submit(command, to: service) { reply in
            answer.withLock { $0 = reply }
            done.signal()
        }
        done.wait()
        let reply = answer.withLock { $0 }
        record(service, answered: reply != nil, waitedMs: deadline - sentAt, probe: isProbe)
        return reply
    }

    /// Asks on behalf of the caller of `command` (its user and role), waiting at most
    /// `timeoutMs` and never past the command's own deadline less `marginMs`, the time kept
    /// to answer the command after the question.
    public func request(
        _ type: String, to service: String, for command: Command, params: [String: String],
        timeoutMs: Int64, marginMs: Int64
    ) -> Reply? {
        let deadline = min(
            command.deadline - marginMs, Timestamp.now().milliseconds + timeoutMs)
        return request(
            type, to: service, userId: command.userId, role: command.role, params: params,
            deadline: deadline)
    }

    /// Nil while `service` is silent. Otherwise whether this question is the probe: the one let
    /// through once the quiet time is over, while the others still fail at once.
    private func admit(_ service: String, now: Int64) -> Bool? {
        health.withLock { table -> Bool? in
            guard var state = table[service], state.silentUntil > 0 else { return false }
            if now < state.silentUntil || state.probing { return nil }
            state.probing = true
            table[service] = state
            return true
        }
    }

    /// An answer ends the misses and the silence. No answer to a question allowed a second or
    /// more is a miss (a shorter wait may just have been too short); the second miss in a row,
    /// or a probe's, makes the service silent for `quietMs`.
    private func record(_ service: String, answered: Bool, waitedMs: Int64, probe: Bool) {
        let now = Timestamp.now().milliseconds
        let silenced = health.withLock { table -> Bool in
            var state = table[service] ?? Health()
            defer { table[service] = state.misses == 0 && state.silentUntil == 0 ? nil : state }
            if probe { state.probing = false }
            if answered {
                state = Health()
                return false
            }
            guard waitedMs >= 1000 else { return false }
            state.misses += 1
            guard state.misses >= 2 || probe else { return false }
            let wasSilent = state.silentUntil > 0
            state.silentUntil = now + quietMs
            return !wasSilent
        }
        if silenced {
            logger.warning(
                "a service left questions unanswered; its questions fail at once for a while",
                [.stream: BusNames.commandStream(service)])
        }
    }

    public func stop() { client.stop() }
}
