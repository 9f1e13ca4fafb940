import Synchronization

/// How long each kind of work has recently taken, as a moving average, so that a thread can tell
/// quick work (which it takes in turn) from slow work (which other threads should share).
public final class DurationAverages: Sendable {
    /// Work that averages under this is quick.
    public let quickBelowNanoseconds: UInt64
    private let averages = Mutex<[String: UInt64]>([:])

    public init(quickBelowNanoseconds: UInt64 = 100_000) {
        self.quickBelowNanoseconds = quickBelowNanoseconds
    }

    /// Adds one measurement; the average moves an eighth of the way towards it.
    public func record(_ kind: String, nanoseconds: UInt64) {
        averages.withLock { table in
            // One lookup: a first measurement is stored, then moved towards itself.
            DurationAverages.move(&table[kind, default: nanoseconds], towards: nanoseconds)
        }
    }

    private static func move(_ average: inout UInt64, towards nanoseconds: UInt64) {
        average = average - average / 8 + nanoseconds / 8
    }

    /// True once `kind` has been measured and averages under `quickBelowNanoseconds`.
    public func isQuick(_ kind: String) -> Bool {
        averages.withLock { table in
            guard let average = table[kind] else { return false }
            return average < quickBelowNanoseconds
        }
    }
}
