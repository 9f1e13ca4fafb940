import CEpoll
import FoundationEssentials
import Glibc
import Synchronization

/// One thread that waits on many file descriptors at once (epoll) and runs what they are ready
/// for, so that work passed between them needs no wake-up of another thread.
///
/// Descriptors, handlers and turn hooks belong to the loop's thread: set them up before `run`
/// or from work handed over with `post`. `post`, `wake` and `stop` may be called from any thread.
public final class EventLoop: @unchecked Sendable {
    /// Called with what the descriptor is ready for; `failed` means an error or a hang-up.
    public typealias Ready = (_ readable: Bool, _ writable: Bool, _ failed: Bool) -> Void
    /// Runs once a turn, after the ready descriptors; returns the longest wait (ms) it allows
    /// before the next turn.
    public typealias TurnHook = () -> Int

    private let poll: Int32
    private let wakeup: Int32
    private var handlers: [Int32: Ready] = [:]
    private var hooks: [TurnHook] = []
    private let posted = PlainLock<[@Sendable () -> Void]>([])
    private let stopping = Atomic<Bool>(false)
    private let ownerThread = Atomic<UInt>(0)
    private var again = false
    /// Turns begun so far; a hook can tell whether it has already run in the current one.
    public private(set) var turns: UInt64 = 0

    public init() throws(APIError) {
        poll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeup = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard poll >= 0, wakeup >= 0 else {
            throw APIError.internalError("cannot make an event loop: errno \(errno)")
        }
        handlers[wakeup] = { [unowned self] _, _, _ in drainWakeups() }
        control(EPOLL_CTL_ADD, wakeup, reading: true, writing: false)
    }

    deinit {
        close(poll)
        close(wakeup)
    }

    /// True on the thread running the loop.
    public var isCurrent: Bool {
        ownerThread.load(ordering: .acquiring) == UInt(bitPattern: Int(bitPattern: pthread_self()))
    }

    /// Starts calling `ready` for `descriptor`, level-triggered.
    public func watch(
        _ descriptor: Int32, reading: Bool = true, writing: Bool = false, _ ready: @escaping Ready
    ) {
        handlers[descriptor] = ready
        control(EPOLL_CTL_ADD, descriptor, reading: reading, writing: writing)
    }

    /// Changes what `descriptor` is watched for.
    public func update(_ descriptor: Int32, reading: Bool, writing: Bool) {
        control(EPOLL_CTL_MOD, descriptor, reading: reading, writing: writing)
    }

    /// Stops watching `descriptor`; call it before closing the descriptor.
    public func forget(_ descriptor: Int32) {
        guard handlers.removeValue(forKey: descriptor) != nil else { return }
        var unused = epoll_event()
        _ = epoll_ctl(poll, Int32(EPOLL_CTL_DEL), descriptor, &unused)
    }

    /// Adds a hook run at the end of every turn, in the order added.
    public func everyTurn(_ hook: @escaping TurnHook) { hooks.append(hook) }

    /// Runs `work` on the loop's thread during its next turn.
    public func post(_ work: @escaping @Sendable () -> Void) {
        posted.withLock { $0.append(work) }
        wake()
    }

    /// From the loop's thread: the next turn follows without waiting (work was queued for a
    /// hook that has already run in this turn).
    public func soon() { again = true }

    /// Ends the current or next wait at once.
    public func wake() {
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }

    /// Makes `run` return after the turn under way.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
    }

    /// Runs turns on the calling thread until `stop`.
    public func run() {
        ownerThread.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .releasing)
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var waitMs = 0
        while !stopping.load(ordering: .acquiring) {
            let count = epoll_wait(poll, &events, Int32(events.count), Int32(waitMs))
            turns &+= 1
            for index in 0..<Int(max(count, 0)) {
                let flags = events[index].events
                let descriptor = events[index].data.fd
                let failed = flags & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
                handlers[descriptor]?(
                    flags & EPOLLIN.rawValue != 0, flags & EPOLLOUT.rawValue != 0, failed)
            }
            runPosted()
            waitMs = 1000
            for hook in hooks { waitMs = min(waitMs, max(0, hook())) }
            if again {
                again = false
                waitMs = 0
            }
        }
        runPosted()
    }

    private func runPosted() {
        let work = posted.withLock { queued -> [@Sendable () -> Void] in
            defer { queued.removeAll(keepingCapacity: true) }
            return queued
        }
        for item in work { item() }
    }

    private func drainWakeups() {
        var count: UInt64 = 0
        _ = read(wakeup, &count, 8)
    }

    private func control(_ operation: Int32, _ descriptor: Int32, reading: Bool, writing: Bool) {
        var event = epoll_event()
        event.events = (reading ? EPOLLIN.rawValue : 0) | (writing ? EPOLLOUT.rawValue : 0)
        event.data.fd = descriptor
        _ = epoll_ctl(poll, operation, descriptor, &event)
    }
}
