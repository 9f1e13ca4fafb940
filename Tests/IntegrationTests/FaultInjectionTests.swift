import Core
import Foundation
import MongoKit
import Synchronization
import Testing

/// Issue 6's proof: a steady load while replicas die, stall, Redis and MongoDB go away and
/// everything is told to stop; then every acknowledged request must have exactly one effect.
@Suite("Fault injection under load", .serialized)
struct FaultInjectionTests {
    struct Outcome: Sendable {
        let name: String
        let status: Int
    }

    final class Load: @unchecked Sendable {
        let cluster: Cluster
        let user: TestUser
        let running = Atomic<Bool>(true)
        let outcomes = Mutex<[Outcome]>([])
        let sequence = Atomic<Int>(0)
        var threads: [Thread] = []
        let done = DispatchGroup()

        init(cluster: Cluster, user: TestUser) {
            self.cluster = cluster
            self.user = user
        }

        func start(clients: Int) {
            for _ in 0..<clients {
                done.enter()
                let thread = Thread { [self] in
                    while running.load(ordering: .relaxed) {
                        let number = sequence.wrappingAdd(1, ordering: .relaxed).newValue
                        let name = "load-\(number)"
                        let result = try? cluster.post(
                            "/api/chat/sessions", user, json(["name": .string(name)]))
                        outcomes.withLock {
                            $0.append(Outcome(name: name, status: result?.status ?? 0))
                        }
                        if number % 5 == 0 {
                            _ = try? cluster.get("/api/chat/sessions?limit=5", user)
                        }
                        usleep(20_000)
                    }
                    done.leave()
                }
                thread.start()
                threads.append(thread)
            }
        }

        func stop() {
            running.store(false, ordering: .relaxed)
            done.wait()
        }
    }

    @Test func everyAcknowledgedRequestHasExactlyOneEffect() throws {
        let cluster = try Cluster(
            services: ["sessions"],
            environment: [
                "CLAIM_IDLE_MS": "1500", "REQUEST_TIMEOUT_MS": "6000", "WORKERS": "4",
                "RATE_LIMIT_WRITES": "0",
            ],
            replicas: ["sessions": 2], durableRedis: true)
        defer { cluster.shutdown() }
        let user = cluster.newUser()
        let load = Load(cluster: cluster, user: user)
        load.start(clients: 4)
        var report: [(String, Int, Int)] = []
        func phase(_ name: String, _ action: () throws -> Void) rethrows {
            let before = load.outcomes.withLock { $0.count }
            try action()
            Thread.sleep(forTimeInterval: 1.5)
            let outcomes = load.outcomes.withLock { Array($0[before...]) }
            report.append(
                (
                    name, outcomes.filter { (200..<300).contains($0.status) }.count,
                    outcomes.filter { !(200..<300).contains($0.status) }.count
                ))
        }

        Thread.sleep(forTimeInterval: 1)
        for round in 1...2 {
            try phase("SIGKILL a sessions replica (\(round))") {
                let pid = try #require(cluster.pids("sessions").first)
                kill(pid, SIGKILL)
                Thread.sleep(forTimeInterval: 0.5)
                try cluster.startService("sessions", replica: 0)
            }
        }
        try phase("SIGSTOP a replica past the claim idle time") {
            let pid = try #require(cluster.pids("sessions").last)
            kill(pid, SIGSTOP)
            Thread.sleep(forTimeInterval: 3)
            kill(pid, SIGCONT)
        }
        try phase("restart redis-server") {
            try cluster.restartRedis()
            Thread.sleep(forTimeInterval: 2)
        }
        phase("stop the MongoDB stand-in for 2 s") {
            cluster.send("mongo", signal: SIGSTOP)
            Thread.sleep(forTimeInterval: 2)
            cluster.send("mongo", signal: SIGCONT)
        }
        Thread.sleep(forTimeInterval: 2)
        load.stop()

        var pendingDrained = false
        for _ in 0..<40 where !pendingDrained {
            let summary = try? cluster.redis().run(["XPENDING", "uc:cmd:sessions", "sessions"])
            pendingDrained = summary?.array?.first?.integer == 0
            if !pendingDrained { Thread.sleep(forTimeInterval: 0.5) }
        }
        #expect(pendingDrained)

        try cluster.stop("sessions", signal: SIGTERM)
        try cluster.stop("gateway", signal: SIGTERM)

        let pool = try MongoPool(uri: cluster.mongoURI, appName: "fault-test")
        let stored = try pool.collection("chat_sessions").find(
            ["userId": .objectId(user.id)], projection: ["name": 1])
        var effects: [String: Int] = [:]
        for doc in stored { effects[doc["name"]?.stringValue ?? "", default: 0] += 1 }
        let outcomes = load.outcomes.withLock { $0 }
        let acknowledged = outcomes.filter { (200..<300).contains($0.status) }
        let failed = outcomes.filter { !(200..<300).contains($0.status) }
        let lost = acknowledged.filter { effects[$0.name] != 1 }
        let doubled = effects.filter { $0.value > 1 }
        let failedButApplied = failed.filter { effects[$0.name] == 1 }

        var table = "\nphase                                         2xx   other\n"
        for (name, ok, other) in report {
            table +=
                name.padding(toLength: 44, withPad: " ", startingAt: 0)
                + String(format: "%5d %7d\n", ok, other)
        }
        table +=
            "requests sent \(outcomes.count), 2xx \(acknowledged.count), other \(failed.count), "
        table +=
            "effects found \(effects.values.reduce(0, +)), lost \(lost.count), doubled \(doubled.count), "
        table += "failed but applied once \(failedButApplied.count)\n"
        FileHandle.standardError.write(Data(table.utf8))

        #expect(acknowledged.count > 20)
        #expect(lost.isEmpty, "acknowledged but missing: \(lost.map(\.name))")
        #expect(doubled.isEmpty, "applied twice: \(doubled.keys.sorted())")
    }
}
