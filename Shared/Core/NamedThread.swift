import Foundation

/// Starts a thread whose name the kernel also knows (`top -H`, `perf --sort comm`,
/// `/proc/<pid>/task/*/comm`), cut to Linux's 15 characters.
public func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        nameThisThread(name)
        body()
    }
    thread.name = name
    thread.start()
}

/// Glibc's `pthread_setname_np` is not exported to Swift; the kernel takes the name here too.
private func nameThisThread(_ name: String) {
    let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
}
