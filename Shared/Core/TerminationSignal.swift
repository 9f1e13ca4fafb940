import CSignal
import FoundationEssentials
import Glibc

/// SIGTERM, SIGINT and SIGHUP (a closed terminal) for the whole process, set up once however
/// many parts listen: each stops the process as SIGTERM does. SIGPIPE is ignored, so a write
/// to a socket whose peer is gone fails with `EPIPE` instead of killing the process.
///
/// A C handler writes each signal to a pipe and a `signals` thread reads it. This replaced
/// libdispatch signal sources, which need the signal ignored first: one that came before
/// libdispatch had installed its handler, in a service's first 20-40 ms, was dropped, and the
/// service kept running after `kill`. Installing the handler is one `sigaction` call: before
/// it the default action ends the process, after it the signal is forwarded.
public final class TerminationSignal: @unchecked Sendable {
    /// The process's one instance.
    public static let shared = TerminationSignal()

    private struct State {
        var listeners: [@Sendable () -> Void] = []
        var installed = false
        var received = false
    }

    private let state = PlainLock(State())

    private init() {}

    /// Sets the handlers up; call it first thing in `main`. Later calls do nothing.
    /// Until a listener registers, the signals still end the process at once.
    public func install() {
        let first = state.withLock { current in
            defer { current.installed = true }
            return !current.installed
        }
        guard first else { return }
        uc_ignore_sigpipe()
        // Without a pipe the default actions stay: the signals still end the process.
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return }
        let (reader, writer) = (ends[0], ends[1])
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        // A full pipe drops the byte rather than block the thread the signal interrupted.
        _ = fcntl(writer, F_SETFL, fcntl(writer, F_GETFL) | O_NONBLOCK)
        _ = uc_forward_termination_signals(writer)
        startThread(named: "signals") { [unowned self] in self.readSignals(from: reader) }
    }

    /// Calls `listener` on every SIGTERM, SIGINT or SIGHUP from now on, and at once if one came
    /// already (a part that starts listening late must still stop).
    public func onReceipt(_ listener: @escaping @Sendable () -> Void) {
        install()
        let alreadyReceived = state.withLock { current in
            current.listeners.append(listener)
            return current.received
        }
        if alreadyReceived { listener() }
    }

    private func readSignals(from reader: Int32) {
        var byte: UInt8 = 0
        while true {
            let count = read(reader, &byte, 1)
            if count == 1 {
                notifyListeners(of: Int32(byte))
            } else if count < 0, errno == EINTR {
                continue
            } else {
                // Nobody would read the pipe any more: let the signals end the process.
                uc_default_termination_signals()
                return
            }
        }
    }

    /// With nobody listening yet (a service still starting up, waiting for MongoDB), the
    /// signal does what it would have done without a handler: it ends the process.
    private func notifyListeners(of number: Int32) {
        let current = state.withLock { current in
            current.received = true
            return current.listeners
        }
        guard !current.isEmpty else {
            signal(number, SIG_DFL)
            kill(getpid(), number)
            return
        }
        for listener in current { listener() }
    }
}
