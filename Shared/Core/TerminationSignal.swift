import Dispatch
import Foundation

/// SIGTERM and SIGINT for the whole process, set up once however many parts listen.
///
/// Each part used to ignore the signal and open its own dispatch source. A second
/// `signal(SIGTERM, SIG_IGN)` that ran after libdispatch had installed its handler replaced
/// that handler, and the process then ignored SIGTERM for good: the sessions service, which
/// runs two runners, kept running after `kill` in two of four starts.
public final class TerminationSignal: @unchecked Sendable {
    /// The process's one instance.
    public static let shared = TerminationSignal()

    private let lock = NSLock()
    private var listeners: [@Sendable () -> Void] = []
    private var sources: [DispatchSourceSignal] = []
    private var received = false

    private init() {}

    /// Calls `listener` on every SIGTERM or SIGINT from now on, and at once if one came
    /// already (a part that starts listening late must still stop).
    public func onReceipt(_ listener: @escaping @Sendable () -> Void) {
        lock.lock()
        listeners.append(listener)
        if received {
            lock.unlock()
            return listener()
        }
        defer { lock.unlock() }
        guard sources.isEmpty else { return }
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [unowned self] in self.notifyListeners() }
            source.resume()
            return source
        }
    }

    private func notifyListeners() {
        lock.lock()
        received = true
        let current = listeners
        lock.unlock()
        for listener in current { listener() }
    }
}
