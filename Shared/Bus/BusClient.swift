import Core
import Dispatch
import FoundationEssentials
import RedisKit
import Synchronization

/// The gateway's side of the bus: writes commands to service streams and hands each reply
/// to the request waiting for it.
///
/// It runs on an event loop: the gateway's, so that a request read, its `XADD`, its reply and
/// its answer all happen on one thread, or a loop thread of its own (`start()`). Two Redis
/// connections in all, however many requests wait: one carries the commands (pipelined, their
/// replies read as they come), the other waits in `BLMPOP` on this process's reply key.
public final class BusClient: @unchecked Sendable {
    public typealias Completion = @Sendable (Reply?) -> Void

    struct Outgoing {
        let stream: String
        let command: Command
        let limit: RateLimit?
    }

    /// A budget of `limit` commands per `windowMs` for one key (a user's writes).
    public struct RateLimit: Sendable {
        public let key: String
        public let limit: Int
        public let windowMs: Int

        public init(key: String, limit: Int, windowMs: Int) {
            self.key = key
            self.limit = limit
            self.windowMs = windowMs
        }
    }

    /// Counts against the budget and adds the command in one atomic step, or refuses with
    /// `RATELIMIT <ms until the window ends>`.
    static let limitedAdd: StaticString = """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        if n > tonumber(ARGV[1]) then
          return redis.error_reply('RATELIMIT ' .. redis.call('PTTL', KEYS[1]))
        end
        return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
        """

    struct Waiting {
        let deadline: Int64
        let completion: Completion
    }

    /// What a reply on the command connection answers, in the order the commands went out.
    enum Sent {
        case command(Outgoing, resent: Bool)
        case backlogCheck(stream: String)
        /// `MULTI`, or a command queued in it: its reply (`OK`, `QUEUED` or an error) settles
        /// nothing by itself.
        case transactionStep
        /// The `EXEC` of a batch: its replies settle the batch's commands in order.
        case transaction([Outgoing], resent: Bool)
    }

    public let replyKey: String
    let address: RedisAddress
    let logger: Logger
    let maxBacklog: Int
    private let backlog = PlainLock<[String: Int64]>([:])
    private let outgoing = PlainLock<[Outgoing]>([])
    private let waiting = PlainLock<[String: Waiting]>([:])
    private let stopping = Atomic<Bool>(false)

    // The rest belongs to the loop's thread.
    private var loop: EventLoop?
    private var ownsLoop = false
    private var commands: RedisPipe?
    /// Commands written and not yet answered by Redis, oldest first, with when each was sent.
    private var sent: [(what: Sent, at: Int64)] = []
    private var sentHead = 0
    private var commandsRetryAt: Int64 = 0
    /// A connect is under way on another thread (it may block): commands wait for it.
    private var commandsConnecting = false
    /// Commands of a connection that failed outright, to send once more on the next one.
    private var resending: [Outgoing] = []
    private var replies: RedisPipe?
    /// When the outstanding `BLMPOP` was sent; nil when none is.
    private var repliesAskedAt: Int64?
    private var repliesRetryAt: Int64 = 0
    private var repliesConnecting = false
    private var repliesBackoffMs: Int64 = 100
    private var lastSweep: Int64 = 0
    private var lastBacklogCheck: Int64 = 0
    private var streamsSinceCheck: Set<String> = []
    /// The loop's turn in which submitted commands were last sent.
    private var turnSent: UInt64 = .max

    /// No answer from Redis for this long on a connection with commands outstanding: the
    /// connection is taken for dead and its commands answered 503.
    static let stallMs: Int64 = 2000
    /// How long a connect (on a thread of its own) may take.
    static let connectTimeoutMs = 500

    /// `maxBacklog`: a stream longer than this sheds new commands with 503 instead of growing;
    /// services trim acknowledged entries, so it only fills when they fall behind.
    public init(address: RedisAddress, gatewayId: String, logger: Logger, maxBacklog: Int) {
        self.address = address
        self.replyKey = BusNames.replyKey(gatewayId)
        self.logger = logger
        self.maxBacklog = maxBacklog
    }

    /// Runs on a loop thread of its own (`bus-loop`).
    public func start() {
        do {
            let own = try EventLoop()
            start(on: own)
            ownsLoop = true
            // The thread keeps the client alive while the loop runs: the loop's hooks do not.
            startThread(named: "bus-loop") { [self] in withExtendedLifetime(self) { own.run() } }
        } catch {
            logger.error("cannot start the bus", [.error: error.message])
        }
    }

    /// Runs on `loop`, whose owner runs it; call before the loop runs or on its thread.
    public func start(on loop: EventLoop) {
        self.loop = loop
        loop.everyTurn { [unowned self] in turn() }
    }

    /// Commands of a stream not yet answered: undelivered (`lag`) plus delivered and
    /// unacknowledged (`pending`) for the stream's service group. Acknowledged entries waiting
    /// for the next trim do not count.
    static func backlog(of reply: RedisReply, stream: String) -> Int64 {
        let service = String(stream.dropFirst(BusNames.commandStream("").count))
        for group in reply.array ?? [] {
            let fields = group.fieldMap
            guard fields["name"]?.text == service else { continue }
            return (fields["lag"]?.integer ?? 0) + (fields["pending"]?.integer ?? 0)
        }
        return 0
    }

    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        if ownsLoop { loop?.stop() }
    }

    public var inFlight: Int { waiting.withLock { $0.count } }

    /// Sends a command; `completion` runs once, with the reply or nil at the deadline, on the
    /// loop's thread unless the command is refused at once.
    public func submit(
        _ command: Command, to service: String, limit: RateLimit? = nil,
        completion: @escaping Completion
    ) {
        let stream = BusNames.commandStream(service)
        if let length = backlog.withLock({ $0[stream] }), length > Int64(maxBacklog) {
            return completion(
                Reply(APIError.unavailable("the \(service) service is overloaded; retry later")))
        }
        waiting.withLock {
            $0[command.requestId] = Waiting(deadline: command.deadline, completion: completion)
        }
        outgoing.withLock { $0.append(Outgoing(stream: stream, command: command, limit: limit)) }
        guard let loop else { return }
        guard loop.isCurrent else { return loop.wake() }
        // Submitted after this turn's send (from a hook that runs after it): the next turn
        // sends it without waiting.
        if turnSent == loop.turns { loop.soon() }
    }

    private func complete(_ id: String, with reply: Reply?) {
        guard let entry = waiting.withLock({ $0.removeValue(forKey: id) }) else { return }
        entry.completion(reply)
    }

    /// Once a turn: sends what was submitted, keeps a `BLMPOP` waiting, gives up on a stalled
    /// connection and answers requests past their deadline. Returns the longest wait allowed.
    private func turn() -> Int {
        guard !stopping.load(ordering: .relaxed) else { return 1000 }
        let now = Timestamp.now().milliseconds
        turnSent = loop?.turns ?? 0
        sendSubmitted(now)
        askForReplies(now)
        if let oldest = sent.dropFirst(sentHead).first, now - oldest.at > BusClient.stallMs {
            dropCommandConnection("no answer from redis in \(BusClient.stallMs) ms", resend: false)
        }
        if let asked = repliesAskedAt, now - asked > 4000 {
            dropReplyConnection("no answer to BLMPOP in 4 s", now: now)
        }
        if now - lastSweep >= 20 {
            lastSweep = now
            sweep(now)
        }
        return inFlight > 0 ? 20 : 1000
    }

    // MARK: commands

    private func sendSubmitted(_ now: Int64) {
        guard let pipe = commands else {
            // Submitted commands wait while a connect is under way, and fail while Redis is
            // known to be out of reach.
            if commandsConnecting { return }
            if now >= commandsRetryAt, loop != nil {
                connectCommands()
            } else {
                refuseWaitingForConnection()
            }
            return
        }
        let batch = outgoing.withLock { queued -> [Outgoing] in
            defer { queued.removeAll(keepingCapacity: true) }
            return queued
        }
        for item in batch { streamsSinceCheck.insert(item.stream) }
        let checkBacklog =
            now - lastBacklogCheck > 200
            && !(streamsSinceCheck.isEmpty && sheddingStreams().isEmpty)
        guard !batch.isEmpty || !resending.isEmpty || checkBacklog else { return }
        var queued = BusClient.steps(for: resending, resent: true)
        queued += BusClient.steps(for: batch, resent: false)
        resending = []
        if checkBacklog {
            lastBacklogCheck = now
            // A stream being shed gets no commands, so it is checked without any: otherwise
            // the gateway would refuse its service's requests for good.
            for stream in streamsSinceCheck.union(sheddingStreams()) {
                var check = RedisCommand("XINFO")
                check.append("GROUPS")
                check.append(stream)
                queued.append((.backlogCheck(stream: stream), check))
            }
            streamsSinceCheck.removeAll(keepingCapacity: true)
        }
        send(queued, on: pipe, now: now)
    }

    private func refuseWaitingForConnection() {
        let unsent = outgoing.withLock { queued -> [Outgoing] in
            defer { queued.removeAll(keepingCapacity: true) }
            return queued
        }
        for item in resending { refuse(item, BusClient.outcomeUnknown) }
        resending = []
        for item in unsent { refuse(item, "the message bus is unavailable") }
    }

    /// The 503 of a command that was written but never answered by Redis: Redis may still have
    /// taken it (a paused Redis runs what was in its socket once it resumes).
    static let outcomeUnknown =
        "the message bus did not answer; the request may still be applied, so retry it with "
        + "an Idempotency-Key"

    /// A batch of two or more goes in one `MULTI`/`EXEC`: Redis then hands the service the
    /// whole batch in one read, where a blocked `XREADGROUP` is otherwise served at the first
    /// `XADD` and reads the rest in a second round.
    private static func steps(for batch: [Outgoing], resent: Bool) -> [(Sent, RedisCommand)] {
        guard batch.count > 1 else {
            return batch.map { (.command($0, resent: resent), BusClient.encode($0)) }
        }
        var steps: [(Sent, RedisCommand)] = [(.transactionStep, RedisCommand("MULTI"))]
        for item in batch { steps.append((.transactionStep, BusClient.encode(item))) }
        steps.append((.transaction(batch, resent: resent), RedisCommand("EXEC")))
        return steps
    }

    private static func encode(_ item: Outgoing) -> RedisCommand {
        guard let limit = item.limit else {
            var add = RedisCommand("XADD")
            add.append(item.stream)
            add.append("*")
            item.command.appendFields(to: &add)
            return add
        }
        var limited = RedisCommand("EVAL")
        limited.append(BusClient.limitedAdd)
        limited.append("2")
        limited.append(limit.key)
        limited.append(item.stream)
        limited.append(Int64(limit.limit))
        limited.append(Int64(limit.windowMs))
        item.command.appendFields(to: &limited)
        return limited
    }

    private func send(_ queued: [(Sent, RedisCommand)], on pipe: RedisPipe, now: Int64) {
        var added = 0
        do {
            for (what, arguments) in queued {
                try pipe.queue(arguments)
                sent.append((what, now))
                added += 1
            }
            if try !pipe.write() { loop?.update(pipe.descriptor, reading: true, writing: true) }
        } catch {
            // Those not queued yet are settled with the ones already sent.
            for (what, _) in queued.dropFirst(added) { sent.append((what, now)) }
            dropCommandConnection(error.description, resend: true)
        }
    }

    /// Opens the command connection on another thread, so that a slow connect (a name to
    /// look up, a host that does not answer) never holds the loop; the loop takes it over.
    private func connectCommands() {
        commandsConnecting = true
        openPipe { [self] opened in commandsOpened(opened) }
    }

    /// Connects on a thread of its own, then hands the result to `opened` on the loop.
    private func openPipe(_ opened: @escaping @Sendable (Result<RedisPipe, RedisError>) -> Void) {
        guard let loop else { return }
        let address = address
        DispatchQueue.global().async {
            let result = Result { () throws(RedisError) -> RedisPipe in
                try RedisPipe(address: address, timeoutMs: BusClient.connectTimeoutMs)
            }
            loop.post { opened(result) }
        }
    }

    private func commandsOpened(_ opened: Result<RedisPipe, RedisError>) {
        commandsConnecting = false
        switch opened {
        case .success(let pipe):
            guard let loop, !stopping.load(ordering: .relaxed) else { return pipe.close() }
            loop.watch(pipe.descriptor) { [unowned self] readable, writable, failed in
                commandsReady(readable: readable, writable: writable, failed: failed)
            }
            commands = pipe
            sendSubmitted(Timestamp.now().milliseconds)
        case .failure(let error):
            commandsRetryAt = Timestamp.now().milliseconds + 200
            logger.warning("redis unavailable for XADD", [.error: error.description])
            refuseWaitingForConnection()
        }
    }

    private func commandsReady(readable: Bool, writable: Bool, failed: Bool) {
        guard let pipe = commands else { return }
        do {
            if writable, try pipe.write() {
                loop?.update(pipe.descriptor, reading: true, writing: false)
            }
            guard readable || failed else { return }
            for reply in try pipe.read() { settle(reply) }
        } catch {
            dropCommandConnection(error.description, resend: true)
        }
    }

    /// Redis's answer to the oldest command outstanding.
    private func settle(_ reply: RedisReply) {
        guard sentHead < sent.count else { return }
        let (what, _) = sent[sentHead]
        sentHead += 1
        if sentHead == sent.count {
            sent.removeAll(keepingCapacity: true)
            sentHead = 0
        } else if sentHead >= 1024 && sentHead * 2 >= sent.count {
            // Under steady load something is always outstanding: drop the answered part.
            sent.removeFirst(sentHead)
            sentHead = 0
        }
        switch what {
        case .backlogCheck(let stream):
            let length = BusClient.backlog(of: reply, stream: stream)
            backlog.withLock { $0[stream] = length }
        case .transactionStep:
            return
        case .transaction(let items, _):
            guard let results = reply.array, results.count == items.count else {
                // EXECABORT: a command was refused as it was queued (out of memory, say).
                logger.error("XADD batch refused", [.error: reply.errorMessage ?? "no reply"])
                for item in items { refuse(item, "the message bus refused the request") }
                return
            }
            for (item, result) in zip(items, results) { settle(item, result) }
        case .command(let item, _):
            settle(item, reply)
        }
    }

    /// Redis's answer to one command: only an error answers its request at once.
    private func settle(_ item: Outgoing, _ reply: RedisReply) {
        guard let message = reply.errorMessage else { return }
        guard message.hasPrefix("RATELIMIT") else {
            logger.error("XADD refused", [.stream: item.stream, .error: message])
            return refuse(item, "the message bus refused the request")
        }
        let waitMs = Int(message.split(separator: " ").last ?? "") ?? 1000
        let seconds = String(max(1, (waitMs + 999) / 1000))
        let refusal = APIError.tooManyRequests("too many requests; retry after \(seconds) s")
        complete(
            item.command.requestId,
            with: Reply(status: 429, body: refusal.body, headers: [("Retry-After", seconds)]))
    }

    /// Closes the command connection. Its unanswered commands are sent once more on a new
    /// connection when `resend` (it failed outright, perhaps closed by Redis while idle, and a
    /// command sent twice is harmless: services deduplicate by command id), else answered 503.
    private func dropCommandConnection(_ reason: String, resend: Bool) {
        let unanswered = sent.dropFirst(sentHead).map(\.what)
        sent.removeAll(keepingCapacity: true)
        sentHead = 0
        release(&commands)
        logger.warning("redis connection for commands lost", [.error: reason])
        for what in unanswered {
            let items: [Outgoing]
            let resent: Bool
            switch what {
            case .command(let item, let wasResent): (items, resent) = ([item], wasResent)
            case .transaction(let batch, let wasResent): (items, resent) = (batch, wasResent)
            case .backlogCheck, .transactionStep: continue
            }
            if resend && !resent {
                resending += items
            } else {
                for item in items { refuse(item, BusClient.outcomeUnknown) }
            }
        }
        // The next turn connects again at once and sends `resending` first.
        commandsRetryAt = 0
        loop?.soon()
    }

    /// Stops watching a connection and closes it.
    private func release(_ pipe: inout RedisPipe?) {
        guard let open = pipe else { return }
        loop?.forget(open.descriptor)
        open.close()
        pipe = nil
    }

    /// Answers a command's request with 503.
    private func refuse(_ item: Outgoing, _ message: String) {
        complete(item.command.requestId, with: Reply(APIError.unavailable(message)))
    }

    /// Streams whose last known backlog is over the limit.
    private func sheddingStreams() -> [String] {
        backlog.withLock { table in
            table.filter { $0.value > Int64(maxBacklog) }.map(\.key)
        }
    }

    // MARK: replies

    /// Keeps one `BLMPOP` waiting on the reply key (reconnecting after a backoff, on another
    /// thread, as the command connection does).
    private func askForReplies(_ now: Int64) {
        guard repliesAskedAt == nil, loop != nil, !repliesConnecting else { return }
        guard let pipe = replies else {
            guard now >= repliesRetryAt else { return }
            repliesConnecting = true
            openPipe { [self] opened in repliesOpened(opened) }
            return
        }
        do {
            var pop = RedisCommand("BLMPOP")
            for argument in ["1", "1", replyKey, "LEFT", "COUNT", "256"] { pop.append(argument) }
            try pipe.queue(pop)
            // A few dozen bytes on an idle socket: written whole or failed.
            _ = try pipe.write()
            repliesAskedAt = now
        } catch {
            dropReplyConnection(error.description, now: now)
        }
    }

    private func repliesOpened(_ opened: Result<RedisPipe, RedisError>) {
        repliesConnecting = false
        let now = Timestamp.now().milliseconds
        switch opened {
        case .success(let pipe):
            guard let loop, !stopping.load(ordering: .relaxed) else { return pipe.close() }
            loop.watch(pipe.descriptor) { [unowned self] _, _, _ in repliesReady() }
            replies = pipe
            askForReplies(now)
        case .failure(let error):
            dropReplyConnection(error.description, now: now)
        }
    }

    private func repliesReady() {
        guard let pipe = replies else { return }
        do {
            for reply in try pipe.read() {
                repliesAskedAt = nil
                repliesBackoffMs = 100
                guard let parts = reply.array, parts.count == 2, let frames = parts[1].array
                else { continue }
                for frame in frames {
                    guard let bytes = frame.bytes, let (id, reply) = Reply.parse(frame: bytes)
                    else { continue }
                    complete(id, with: reply)
                }
            }
        } catch {
            dropReplyConnection(error.description, now: Timestamp.now().milliseconds)
            return
        }
        askForReplies(Timestamp.now().milliseconds)
    }

    private func dropReplyConnection(_ reason: String, now: Int64) {
        release(&replies)
        repliesAskedAt = nil
        repliesRetryAt = now + repliesBackoffMs
        repliesBackoffMs = min(repliesBackoffMs * 2, 1000)
        if !stopping.load(ordering: .relaxed) {
            logger.warning("reply reader lost redis; reconnecting", [.error: reason])
        }
    }

    private func sweep(_ now: Int64) {
        let expired = waiting.withLock { table -> [Waiting] in
            let ids = table.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { table.removeValue(forKey: $0) }
        }
        for entry in expired { entry.completion(nil) }
    }
}
