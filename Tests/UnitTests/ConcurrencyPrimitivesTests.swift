import Bus
import Core
import Foundation
import Synchronization
import Testing

@Suite("Work queues, sharded metrics and the route table")
struct ConcurrencyPrimitivesTests {
    @Test func aQueueHandsOutItemsInOrderAndTimesOutWhenEmpty() {
        let queue = WorkQueue<Int>()
        queue.push([1, 2, 3])
        queue.push(4)
        #expect(queue.count == 4)
        #expect(queue.pop(timeoutMs: 10) == 1)
        #expect(queue.popAll(timeoutMs: 10) == [2, 3, 4])
        #expect(queue.count == 0)
        #expect(queue.pop(timeoutMs: 20) == nil)
        #expect(queue.popAll(timeoutMs: 0).isEmpty)
    }

    @Test func manyTakersGetEveryItemExactlyOnce() {
        let queue = WorkQueue<Int>()
        let taken = Mutex<[Int]>([])
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread {
                var idle = 0
                while idle < 5 {
                    if let item = queue.pop(timeoutMs: 20) {
                        taken.withLock { $0.append(item) }
                        idle = 0
                    } else {
                        idle += 1
                    }
                }
                group.leave()
            }.start()
        }
        for start in stride(from: 0, to: 10_000, by: 100) {
            queue.push(Array(start..<start + 100))
            if start % 1000 == 0 { usleep(1000) }
        }
        group.wait()
        #expect(taken.withLock { $0.sorted() } == Array(0..<10_000))
    }

    @Test func takersOfQuickItemsStillLeaveNothingBehind() {
        let queue = WorkQueue<Int>()
        let taken = Mutex<[Int]>([])
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread {
                var idle = 0
                while idle < 5 {
                    // Even items count as quick: their taker wakes nobody for the rest.
                    if let item = queue.pop(timeoutMs: 20, isQuick: { $0 % 2 == 0 }) {
                        taken.withLock { $0.append(item) }
                        if item % 2 == 1 { usleep(200) }
                        idle = 0
                    } else {
                        idle += 1
                    }
                }
                group.leave()
            }.start()
        }
        for start in stride(from: 0, to: 2_000, by: 50) {
            queue.push(Array(start..<start + 50))
        }
        group.wait()
        #expect(taken.withLock { $0.sorted() } == Array(0..<2_000))
        #expect(queue.pop(timeoutMs: 0) == nil)
    }

    @Test func workIsQuickOnlyOnceMeasuredAndWhileItsAverageStaysLow() {
        let durations = DurationAverages(quickBelowNanoseconds: 100_000)
        #expect(!durations.isQuick("ping"), "unmeasured work counts as slow")
        durations.record("ping", nanoseconds: 5_000)
        #expect(durations.isQuick("ping"))
        durations.record("create", nanoseconds: 2_000_000)
        #expect(!durations.isQuick("create"))
        durations.record("ping", nanoseconds: 10_000_000)
        #expect(!durations.isQuick("ping"), "one long stall moves the average past the limit")
        for _ in 0..<40 { durations.record("ping", nanoseconds: 5_000) }
        #expect(durations.isQuick("ping"), "and quick runs bring it back")
        #expect(!durations.isQuick("create"), "kinds are kept apart")
    }

    @Test func aWaitingTakerWakesForAnItemPushedLater() {
        let queue = WorkQueue<String>()
        let got = Mutex<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            got.withLock { $0 = queue.pop(timeoutMs: 5000) }
            done.signal()
        }.start()
        usleep(50_000)
        queue.push("late")
        done.wait()
        #expect(got.withLock { $0 } == "late")
    }

    @Test func metricsFromManyThreadsAddUp() {
        let metrics = Metrics()
        let group = DispatchGroup()
        for _ in 0..<6 {
            group.enter()
            Thread {
                for _ in 0..<1000 {
                    metrics.add("jobs_total", labels: [("kind", "a")])
                    metrics.observe("job_seconds", seconds: 0.003)
                }
                group.leave()
            }.start()
        }
        group.wait()
        metrics.set("queue_depth", 7)
        let text = metrics.render()
        #expect(text.contains("jobs_total{kind=\"a\"} 6000\n"))
        #expect(text.contains("job_seconds_count 6000\n"))
        #expect(text.contains("job_seconds_bucket{le=\"0.0025\"} 0\n"))
        #expect(text.contains("job_seconds_bucket{le=\"0.005\"} 6000\n"))
        #expect(text.contains("job_seconds_bucket{le=\"+Inf\"} 6000\n"))
        #expect(text.contains("queue_depth 7\n"))
    }

    @Test func seriesWithTheSameValuesUnderOtherNamesStaySeparate() {
        let metrics = Metrics()
        metrics.add("calls_total", labels: [("route", "a"), ("status", "200")])
        metrics.add("calls_total", labels: [("route", "a"), ("status", "200")])
        metrics.add("calls_total", labels: [("kind", "a"), ("code", "200")])
        metrics.add("calls_total", labels: [("route", "a\"b"), ("status", "500")])
        let text = metrics.render()
        #expect(text.contains("calls_total{route=\"a\",status=\"200\"} 2\n"))
        #expect(text.contains("calls_total{kind=\"a\",code=\"200\"} 1\n"))
        #expect(text.contains("calls_total{route=\"a\\\"b\",status=\"500\"} 1\n"))
    }

    @Test func hexOfEveryByteValueIsTwoLowerCaseDigits() {
        let bytes = (0...255).map { UInt8($0) }
        let expected = bytes.map { String(format: "%02x", $0) }.joined()
        #expect(Hex.encode(bytes) == expected)
        #expect(Hex.encode(bytes[250...]) == "fafbfcfdfeff")
        #expect(Hex.encode([UInt8]()) == "")
    }

    @Test func literalPathsAnswerLikeTheSegmentSearch() {
        for route in Routes.all {
            let path = "/" + route.segments.joined(separator: "/")
            guard case .found(let found, _) = Routes.lookup(method: route.method, path: path)
            else {
                Issue.record("\(route.method) \(path) not found")
                continue
            }
            #expect(found.method == route.method)
        }
        guard case .wrongMethod(let allowed) = Routes.lookup(method: "PATCH", path: "/api/ping")
        else {
            Issue.record("PATCH /api/ping should be a wrong method")
            return
        }
        #expect(allowed == ["GET"])
        if case .found = Routes.lookup(method: "GET", path: "/api/ping/") {
            Issue.record("a trailing slash names no route")
        }
        // A `/` with an accent after it still separates segments: no id can hold a `/`.
        if case .found(_, let params) = Routes.lookup(
            method: "GET", path: "/api/chat/sessions/x/\u{301}y")
        {
            Issue.record("a path parameter held a slash: \(params)")
        }
        guard
            case .found(_, let params) = Routes.lookup(
                method: "GET", path: "/api/chat/sessions/s\u{301}x")
        else {
            Issue.record("an accented id is still an id")
            return
        }
        #expect(params.values.contains("s\u{301}x"))
    }
}
