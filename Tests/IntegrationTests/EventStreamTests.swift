import Bus
import Foundation
import RedisKit
import Testing

@Suite("Events streams")
struct EventStreamTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    /// An events stream is trimmed only past what every consumer group has read and
    /// acknowledged: a group whose service is stopped finds every event when it comes back.
    /// (It used to be capped at 100,000 entries, whatever the groups had read.)
    @Test func eventsAreKeptUntilEveryGroupHasAcknowledgedThem() throws {
        let stream = "uc:events:test-\(UUID().uuidString.prefix(8))"
        let redis = cluster.redis()
        for group in ["reader", "stopped"] {
            try redis.run([
                "XGROUP", "CREATE", RedisArgument(stream), RedisArgument(group), "0",
                "MKSTREAM",
            ])
        }
        let publisher = EventPublisher(address: cluster.redisAddress, trimEveryMs: 0)
        for index in 0..<40 { try publisher.publish(stream, [("n", String(index))]) }

        // `reader` reads and acknowledges 30; `stopped` reads nothing.
        let ids = try readIds(redis, stream, group: "reader", count: 30)
        #expect(ids.count == 30)
        try redis.run(["XACK", RedisArgument(stream), "reader"] + ids.map { RedisArgument($0) })
        try publisher.publish(stream, [("n", "40")])
        #expect(try redis.run(["XLEN", RedisArgument(stream)]).integer == 41)

        // Once `stopped` has read 35 and acknowledged 20, the first 20 can go.
        let lateIds = try readIds(redis, stream, group: "stopped", count: 35)
        #expect(lateIds.count == 35)
        try redis.run(
            ["XACK", RedisArgument(stream), "stopped"]
                + lateIds.prefix(20).map {
                    RedisArgument($0)
                })
        try publisher.publish(stream, [("n", "41")])
        #expect(try redis.run(["XLEN", RedisArgument(stream)]).integer == 22)
        let first = try redis.run(["XRANGE", RedisArgument(stream), "-", "+", "COUNT", "1"])
        #expect(first.array?.first?.array?.first?.text == lateIds[20])
        try redis.run(["DEL", RedisArgument(stream)])
    }

    /// A command stream fed 25,000 entries between two trims, all read and acknowledged, is
    /// cut to less than one node in one approximate trim. Redis removes at most 10,000 entries
    /// per `MINID ~` call unless told otherwise, so a service under more than 10,000 commands
    /// a second (trimming once a second) used to leave its stream growing without end.
    @Test func oneApproximateTrimTakesEverythingAcknowledged() throws {
        let stream = "uc:cmd:test-\(UUID().uuidString.prefix(8))"
        let redis = cluster.redis()
        for start in stride(from: 0, to: 25_000, by: 1000) {
            _ = try redis.pipeline(
                (start..<start + 1000).map { index in
                    ["XADD", RedisArgument(stream), "*", "n", RedisArgument(index)]
                })
        }
        // Created at the end: every entry counts as read, none as pending.
        try redis.run(["XGROUP", "CREATE", RedisArgument(stream), "service", "$"])

        try StreamTrim.belowEveryGroup(stream, on: redis, approximate: true)
        let left = try #require(try redis.run(["XLEN", RedisArgument(stream)]).integer)
        #expect(left < 200, "\(left) entries left")
        try redis.run(["DEL", RedisArgument(stream)])
    }

    /// The ids of the next `count` entries delivered to `group`.
    private func readIds(
        _ redis: RedisConnection, _ stream: String, group: String, count: Int
    ) throws -> [String] {
        let read = try redis.run([
            "XREADGROUP", "GROUP", RedisArgument(group), "consumer", "COUNT", RedisArgument(count),
            "STREAMS", RedisArgument(stream), ">",
        ])
        return try #require(read.array?.first?.array?[1].array).compactMap {
            $0.array?.first?.text
        }
    }
}
