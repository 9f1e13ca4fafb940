import FoundationEssentials
import Glibc

/// A first-in, first-out queue that threads wait on.
///
/// `push` wakes one waiting taker, and a taker that leaves work behind wakes the next, normally
/// with one wake-up in flight, unless the item it took is quick: then it will be back for the
/// next one sooner than a woken thread could start. A burst of cheap items is thus taken by the
/// thread already running, while slow items still spread over all of them. Waits are timed on
/// the monotonic clock, so a wall clock set back cannot stretch them.
public final class WorkQueue<Element>: @unchecked Sendable {
    private let condition = MonotonicCondition()
    private var items: [Element] = []
    private var head = 0
    private var waiting = 0
    private var wakeInFlight = false

    public init() {}

    /// Items queued and not yet taken.
    public var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count - head
    }

    public func push(_ newItems: [Element]) {
        guard !newItems.isEmpty else { return }
        condition.lock()
        items += newItems
        wakeOneIfIdle()
        condition.unlock()
    }

    public func push(_ item: Element) {
        condition.lock()
        items.append(item)
        wakeOneIfIdle()
        condition.unlock()
    }

    /// The oldest item, waiting up to `timeoutMs` for one; nil if none came. When items are left
    /// and the one taken is not `isQuick`, another taker is woken for them.
    public func pop(timeoutMs: Int, isQuick: (Element) -> Bool = { _ in false }) -> Element? {
        condition.lock()
        defer { condition.unlock() }
        guard waitForItems(timeoutMs: timeoutMs) else { return nil }
        let item = items[head]
        head += 1
        compact()
        if head < items.count, !isQuick(item) { wakeOneIfIdle() }
        return item
    }

    /// Everything queued, waiting up to `timeoutMs` for the first item; empty if none came.
    public func popAll(timeoutMs: Int) -> [Element] {
        condition.lock()
        defer { condition.unlock() }
        guard waitForItems(timeoutMs: timeoutMs) else { return [] }
        let taken = Array(items[head...])
        items.removeAll(keepingCapacity: true)
        head = 0
        return taken
    }

    /// Called with the lock held: true when an item is there, within the timeout.
    private func waitForItems(timeoutMs: Int) -> Bool {
        guard head == items.count else { return true }
        guard timeoutMs > 0 else { return false }
        let deadline = MonotonicCondition.deadline(afterMs: timeoutMs)
        waiting += 1
        while head == items.count {
            let signalled = condition.wait(until: deadline)
            wakeInFlight = false
            if !signalled { break }
        }
        waiting -= 1
        return head < items.count
    }

    private func wakeOneIfIdle() {
        guard waiting > 0, !wakeInFlight else { return }
        wakeInFlight = true
        condition.signal()
    }

    private func compact() {
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}

/// A pthread mutex with a condition variable whose timed waits use `CLOCK_MONOTONIC`.
final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    static func deadline(afterMs milliseconds: Int) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nanoseconds = Int(now.tv_nsec) + (milliseconds % 1000) * 1_000_000
        now.tv_sec += milliseconds / 1000 + nanoseconds / 1_000_000_000
        now.tv_nsec = nanoseconds % 1_000_000_000
        return now
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func signal() { pthread_cond_signal(cond) }

    /// Waits for a signal until `deadline`; false when the deadline passed.
    func wait(until deadline: timespec) -> Bool {
        var deadline = deadline
        return pthread_cond_timedwait(cond, mutex, &deadline) != ETIMEDOUT
    }
}
