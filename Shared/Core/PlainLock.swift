import FoundationEssentials
import Glibc

/// A value behind a glibc mutex, for state that many threads touch for a moment at once.
///
/// Swift's `Mutex` spins a hundred rounds before it sleeps on a priority-inheritance futex. On
/// two cores shared by every process, the thread it waits for is often not running, so the
/// spin is lost time: eight service workers finishing a batch together spent 7% of the
/// service's CPU in `Mutex._lockSlow`. glibc's default mutex sleeps at once.
public final class PlainLock<State>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var state: State

    public init(_ initial: State) {
        state = initial
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, the lock held.
    public func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
