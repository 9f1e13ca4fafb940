import Core
import Crypt
import Foundation
import RedisKit
import Synchronization

/// Lets one service ask another a question over the bus and wait for the answer.
///
/// The question is an ordinary `Command` on the other service's command stream, so the
/// answering service needs nothing new: it replies to this requester's own reply key
/// (`uc:reply:<name>`), which that service expires after its reply TTL. A reply that arrives
/// after the deadline is dropped.
///
/// A service that leaves a question unanswered for a second or more is taken to be down or
/// stuck: for the next `quietMs` its questions fail at once (nil), and then one at a time goes
/// through until one is answered. Otherwise every caller would wait its whole deadline, and a
/// few callers would hold all of this service's workers.
public final class BusRequester: Sendable {
    struct Silence {
        var until: Int64
        var probing: Bool
    }

    let client: BusClient
    let logger: Logger
    let quietMs: Int64
    /// Services whose last question went unanswered, by name.
    private let silent = PlainLock<[String: Silence]>([:])

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
        guard admit(service, now: sentAt) else { return nil }
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
        record(service, answered: reply != nil, waitedMs: deadline - sentAt)
        return reply
    }

    /// False while `service` is silent; once its quiet time is over, true for one caller at a
    /// time (the probe).
    private func admit(_ service: String, now: Int64) -> Bool {
        silent.withLock { table in
            guard var silence = table[service] else { return true }
            if now < silence.until || silence.probing { return false }
            silence.probing = true
            table[service] = silence
            return true
        }
    }

    /// An answer ends the silence. No answer to a question allowed a second or more starts it
    /// (a shorter wait may just have been too short).
    private func record(_ service: String, answered: Bool, waitedMs: Int64) {
        let now = Timestamp.now().milliseconds
        let started = silent.withLock { table -> Bool in
            if answered {
                table[service] = nil
                return false
            }
            if waitedMs < 1000 {
                table[service]?.probing = false
                return false
            }
            let wasSilent = table[service] != nil
            table[service] = Silence(until: now + quietMs, probing: false)
            return !wasSilent
        }
        if started {
            logger.warning(
                "no answer from a service; its questions fail at once for a while",
                [.stream: BusNames.commandStream(service), .count: String(quietMs)])
        }
    }

    public func stop() { client.stop() }
}
