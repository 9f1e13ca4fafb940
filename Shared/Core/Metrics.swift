import Synchronization

/// Counters, gauges and latency histograms, rendered in Prometheus's text format.
public final class Metrics: Sendable {
    public static let latencyBuckets: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    struct Histogram {
        var counts: [Int]
        var sum: Double = 0
        var total = 0
    }

    struct State {
        var counters: [String: [String: Double]] = [:]
        var histograms: [String: [String: Histogram]] = [:]
        var help: [String: (String, String)] = [:]
    }

    private let state = Mutex(State())

    public init() {}

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
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    public func add(
        _ name: String, _ amount: Double = 1, labels: [(String, String)] = [], help: String = ""
    ) {
        let key = Metrics.labelText(labels)
        state.withLock { s in
            s.counters[name, default: [:]][key, default: 0] += amount
            if s.help[name] == nil { s.help[name] = (help, "counter") }
        }
    }

    public func set(
        _ name: String, _ value: Double, labels: [(String, String)] = [], help: String = ""
    ) {
        let key = Metrics.labelText(labels)
        state.withLock { s in
            s.counters[name, default: [:]][key] = value
            s.help[name] = (help, "gauge")
        }
    }

    public func observe(
        _ name: String, seconds: Double, labels: [(String, String)] = [], help: String = ""
    ) {
        let key = Metrics.labelText(labels)
        state.withLock { s in
            var histogram =
                s.histograms[name]?[key]
                ?? Histogram(counts: [Int](repeating: 0, count: Metrics.latencyBuckets.count))
            for (index, bound) in Metrics.latencyBuckets.enumerated() where seconds <= bound {
                histogram.counts[index] += 1
            }
            histogram.sum += seconds
            histogram.total += 1
            s.histograms[name, default: [:]][key] = histogram
            if s.help[name] == nil { s.help[name] = (help, "histogram") }
        }
    }

    /// The Prometheus text exposition of everything recorded.
    public func render() -> String {
        state.withLock { s in
            var out = ""
            for name in s.counters.keys.sorted() {
                let (help, type) = s.help[name] ?? ("", "counter")
                out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
                for (labels, value) in s.counters[name, default: [:]].sorted(by: { $0.key < $1.key }
                ) {
                    out += "\(name)\(labels) \(Metrics.number(value))\n"
                }
            }
            for name in s.histograms.keys.sorted() {
                let (help, _) = s.help[name] ?? ("", "histogram")
                out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
                for (labels, histogram) in s.histograms[name, default: [:]].sorted(by: {
                    $0.key < $1.key
                }) {
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
    }

    private static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
