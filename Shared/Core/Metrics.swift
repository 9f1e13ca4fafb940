import FoundationEssentials
import Glibc
import Synchronization

/// Counters, gauges and latency histograms, rendered in Prometheus's text format.
///
/// Counters and histograms are kept in shards picked by the calling thread, so worker threads
/// recording at once do not wait on one lock; `render` adds the shards up.
public final class Metrics: Sendable {
    public static let latencyBuckets: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    struct Histogram {
        var counts: [Int]
        var sum: Double = 0
        var total = 0

        static var empty: Histogram {
            Histogram(counts: [Int](repeating: 0, count: Metrics.latencyBuckets.count))
        }
    }

    /// The labels of one series, kept as given: the text form is only built when rendered.
    struct LabelSet: Hashable {
        let pairs: [(String, String)]

        static func == (left: LabelSet, right: LabelSet) -> Bool {
            left.pairs.count == right.pairs.count
                && zip(left.pairs, right.pairs).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        }

        /// Values only: a metric's label names are the same on every call.
        func hash(into hasher: inout Hasher) {
            for (_, value) in pairs { hasher.combine(value) }
        }

        var text: String { Metrics.labelText(pairs) }
    }

    struct State {
        var counters: [String: [LabelSet: Double]] = [:]
        var histograms: [String: [LabelSet: Histogram]] = [:]
        var help: [String: (String, String)] = [:]
    }

    final class Shard: Sendable {
        let state = Mutex(State())
    }

    private static let shardCount = 16
    private let shards = (0..<Metrics.shardCount).map { _ in Shard() }
    /// Gauges are set, not added, so they live outside the shards.
    private let gauges = Mutex(State())

    public init() {}

    /// The calling thread's shard: its pthread id, mixed, picks one of `shardCount`.
    private var shard: Shard {
        let mixed =
            UInt64(UInt(bitPattern: Int(bitPattern: pthread_self()))) &* 0x9E37_79B9_7F4A_7C15
        return shards[Int(mixed >> 60) % Metrics.shardCount]
    }

    private static func labelText(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        let parts = labels.map { name, value -> String in
            "\(name)=\"\(escape(value))\""
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// Label values escaped as the text format wants; most need no change and are not copied.
    private static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else {
            return value
        }
        return value.escapingScalars { scalar in
            switch scalar {
            case "\\": return "\\\\"
            case "\"": return "\\\""
            case "\n": return "\\n"
            default: return nil
            }
        }
    }

    public func add(
        _ name: String, _ amount: Double = 1, labels: [(String, String)] = [], help: String = ""
    ) {
        let key = LabelSet(pairs: labels)
        shard.state.withLock { s in
            s.counters[name, default: [:]][key, default: 0] += amount
            if s.help[name] == nil { s.help[name] = (help, "counter") }
        }
    }

    public func set(
        _ name: String, _ value: Double, labels: [(String, String)] = [], help: String = ""
    ) {
        let key = LabelSet(pairs: labels)
        gauges.withLock { s in
            s.counters[name, default: [:]][key] = value
            s.help[name] = (help, "gauge")
        }
    }

    public func observe(
        _ name: String, seconds: Double, labels: [(String, String)] = [], help: String = ""
    ) {
        let key = LabelSet(pairs: labels)
        let firstBucket = Metrics.latencyBuckets.firstIndex { seconds <= $0 }
        shard.state.withLock { s in
            // Changed in place: a copy out and back would copy the bucket array every time.
            s.histograms[name, default: [:]][key, default: .empty].record(seconds, firstBucket)
            if s.help[name] == nil { s.help[name] = (help, "histogram") }
        }
    }

    /// Everything recorded, the shards added up.
    private func merged() -> State {
        var total = gauges.withLock { $0 }
        for shard in shards {
            shard.state.withLock { part in
                for (name, series) in part.counters {
                    for (labels, value) in series {
                        total.counters[name, default: [:]][labels, default: 0] += value
                    }
                }
                for (name, series) in part.histograms {
                    for (labels, histogram) in series {
                        total.histograms[name, default: [:]][labels, default: .empty].add(histogram)
                    }
                }
                total.help.merge(part.help) { kept, _ in kept }
            }
        }
        return total
    }

    /// The Prometheus text exposition of everything recorded.
    public func render() -> String {
        let s = merged()
        var out = ""
        for name in s.counters.keys.sorted() {
            let (help, type) = s.help[name] ?? ("", "counter")
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            let series = s.counters[name, default: [:]].map { ($0.key.text, $0.value) }
            for (labels, value) in series.sorted(by: { $0.0 < $1.0 }) {
                out += "\(name)\(labels) \(Metrics.number(value))\n"
            }
        }
        for name in s.histograms.keys.sorted() {
            let (help, _) = s.help[name] ?? ("", "histogram")
            out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
            let series = s.histograms[name, default: [:]].map { ($0.key.text, $0.value) }
            for (labels, histogram) in series.sorted(by: { $0.0 < $1.0 }) {
                let inner = labels.isEmpty ? "" : String(labels.dropFirst().dropLast()) + ","
                for (index, bound) in Metrics.latencyBuckets.enumerated() {
                    out +=
                        "\(name)_bucket{\(inner)le=\"\(bound)\"} \(histogram.counts[index])\n"
                }
                out += "\(name)_bucket{\(inner)le=\"+Inf\"} \(histogram.total)\n"
                out += "\(name)_sum\(labels) \(histogram.sum)\n"
                out += "\(name)_count\(labels) \(histogram.total)\n"
            }
        }
        return out
    }

    private static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

extension Metrics.Histogram {
    /// Counts one observation in every bucket from `firstBucket` (nil: above them all) up.
    mutating func record(_ seconds: Double, _ firstBucket: Int?) {
        if let firstBucket {
            for index in firstBucket..<counts.count { counts[index] += 1 }
        }
        sum += seconds
        total += 1
    }

    mutating func add(_ other: Metrics.Histogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        sum += other.sum
        total += other.total
    }
}
