import Core
import Foundation
import RedisKit
import Synchronization
import Testing

@Suite("The event loop and commands in Redis's wire form")
struct EventLoopTests {
    /// Runs `loop` on a thread of its own until `stop`; returns a semaphore signalled at its end.
    private func running(_ loop: EventLoop) -> DispatchSemaphore {
        let ended = DispatchSemaphore(value: 0)
        Thread {
            loop.run()
            ended.signal()
        }.start()
        return ended
    }

    @Test func workPostedFromAnotherThreadRunsOnTheLoopThreadInOrder() throws {
        let loop = try EventLoop()
        let ended = running(loop)
        let seen = Mutex<[Int]>([])
        let onLoop = Mutex<[Bool]>([])
        let done = DispatchSemaphore(value: 0)
        for value in 1...50 {
            loop.post {
                seen.withLock { $0.append(value) }
                onLoop.withLock { $0.append(loop.isCurrent) }
                if value == 50 { done.signal() }
            }
        }
        #expect(done.wait(timeout: .now() + 5) == .success)
        #expect(seen.withLock { $0 } == Array(1...50))
        #expect(onLoop.withLock { $0 }.allSatisfy { $0 })
        #expect(!loop.isCurrent, "the test's own thread is not the loop's")
        loop.stop()
        #expect(ended.wait(timeout: .now() + 5) == .success)
    }

    @Test func aWatchedDescriptorIsReportedReadableUntilForgotten() throws {
        let loop = try EventLoop()
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer {
            close(ends[0])
            close(ends[1])
        }
        let reads = Atomic<Int>(0)
        let readable = DispatchSemaphore(value: 0)
        loop.watch(ends[0]) { isReadable, _, _ in
            guard isReadable else { return }
            var byte: UInt8 = 0
            _ = read(ends[0], &byte, 1)
            reads.add(1, ordering: .relaxed)
            readable.signal()
        }
        let ended = running(loop)
        var byte: UInt8 = 7
        _ = write(ends[1], &byte, 1)
        #expect(readable.wait(timeout: .now() + 5) == .success)
        let forgotten = DispatchSemaphore(value: 0)
        let readEnd = ends[0]
        loop.post {
            loop.forget(readEnd)
            forgotten.signal()
        }
        #expect(forgotten.wait(timeout: .now() + 5) == .success)
        _ = write(ends[1], &byte, 1)
        Thread.sleep(forTimeInterval: 0.1)
        #expect(reads.load(ordering: .relaxed) == 1, "no call once forgotten")
        loop.stop()
        #expect(ended.wait(timeout: .now() + 5) == .success)
    }

    @Test func aHookAskingForTheNextTurnAtOnceIsNotMadeToWait() throws {
        let loop = try EventLoop()
        let turns = Atomic<Int>(0)
        loop.everyTurn {
            if turns.add(1, ordering: .relaxed).newValue < 20 { loop.soon() }
            return 1000
        }
        let started = Date()
        let ended = running(loop)
        while turns.load(ordering: .relaxed) < 20 && Date().timeIntervalSince(started) < 5 {
            usleep(1000)
        }
        // Twenty turns at a 1 s wait each would take twenty seconds.
        #expect(Date().timeIntervalSince(started) < 3)
        loop.stop()
        #expect(ended.wait(timeout: .now() + 5) == .success)
    }

    @Test func aCommandIsEncodedAsRESPArgumentByArgument() {
        var command = RedisCommand("SET")
        command.append("key")
        command.append([0, 13, 10, 255])
        command.append("")
        command.append(Int64(-42))
        command.append(Int64(0))
        let expected =
            Array("*6\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\n".utf8) + [0, 13, 10, 255]
            + Array("\r\n$0\r\n\r\n$3\r\n-42\r\n$1\r\n0\r\n".utf8)
        #expect(command.count == 6)
        #expect(command.bytes == expected)
    }
}
