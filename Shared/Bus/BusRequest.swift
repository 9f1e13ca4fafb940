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
public final class BusRequester: Sendable {
    let client: BusClient

    /// `name` must be unique per process: it names the reply key.
    public init(address: RedisAddress, name: String, logger: Logger, maxBacklog: Int = 100_000) {
        client = BusClient(
            address: address, gatewayId: name, logger: logger, maxBacklog: maxBacklog)
        client.start()
    }

    public var replyKey: String { client.replyKey }

    /// Sends `type` to `service` on behalf of `userId` and blocks the calling thread until the
    /// reply or the deadline (epoch ms); nil means no answer in time.
    public func request(
        _ type: String, to service: String, userId: ObjectId?, role: String = "user",
        params: [String: String] = [:], body: [UInt8] = [], deadline: Int64
    ) -> Reply? {
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
        return answer.withLock { $0 }
    }

    public func stop() { client.stop() }
}
