import FoundationEssentials
import Glibc

/// Starts a thread whose name the kernel also knows (`top -H`, `perf --sort comm`,
/// `/proc/<pid>/task/*/comm`), cut to Linux's 15 characters.
/// The thread is detached: it ends when `body` returns. A process that cannot start one (out of
/// threads or memory) cannot do its work: it logs why and ends with status 70, to be restarted;
/// its unacknowledged commands stay pending for another consumer.
public func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    let task = Unmanaged.passRetained(ThreadTask(name: name, body: body))
    var thread = pthread_t()
    let status = pthread_create(
        &thread, nil,
        { context in
            guard let context else { return nil }
            let task = Unmanaged<ThreadTask>.fromOpaque(context).takeRetainedValue()
            nameThisThread(task.name)
            task.body()
            return nil
        }, task.toOpaque())
    guard status == 0 else {
        task.release()
        Logger(service: "process").error(
            "cannot start a thread; ending the process",
            [.error: "\(name): pthread_create \(status)"])
        _exit(70)
    }
    pthread_detach(thread)
}

private final class ThreadTask {
    let name: String
    let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// Glibc's `pthread_setname_np` is not exported to Swift; the kernel takes the name here too.
private func nameThisThread(_ name: String) {
    let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
}
