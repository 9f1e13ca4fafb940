import Dispatch
import Foundation

/// SIGTERM and SIGINT for the whole process, set up once however many parts listen.
///
/// Each part used to ignore the signal and open its own dispatch source. A second
/// `signal(SIGTERM, SIG_IGN)` that ran after libdispatch had installed its handler replaced
/// that handler, and the process then ignored SIGTERM for good: the sessions service, which
/// runs two runners, kept running after `kill` in two of four starts.
public final class TerminationSignal: @unchecked Sendable {
    public static let shared = TerminationSignal()

    private let lock = NSLock()
    private var listeners: [@Sendable () -> Void] = []
    private var sources: [DispatchSourceSignal] = []

    private init() {}

    /// Calls `listener` on every SIGTERM or SIGINT from now on.
    public func onReceipt(_ listener: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        listeners.append(listener)
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
        let current = listeners
        lock.unlock()
        for listener in current { listener() }
    }
}
