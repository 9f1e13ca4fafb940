import Core
import Foundation
import JSONKit

/// The fake model provider from `Fixtures/fake_model_server.py`, on a free loopback port.
/// See the script for the behaviours a request's model name selects.
final class FakeModelServer: @unchecked Sendable {
    static let key = "test-key"
    let port: Int
    private let process: Process

    init() throws {
        port = try Cluster.freePort()
        let script = Cluster.root.appendingPathComponent(
            "Tests/IntegrationTests/Fixtures/fake_model_server.py")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script.path, "--port", String(port), "--key", FakeModelServer.key]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let end = Date().addingTimeInterval(10)
        while !Cluster.canConnect(port: port) {
            guard Date() < end else {
                stop()
                throw ClusterError(
                    description: "the fake model server did not start on port \(port)")
            }
            usleep(50_000)
        }
    }

    deinit { stop() }

    var pid: Int32 { process.processIdentifier }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The base URL for `CANVAS_BASE_URL` (OpenAI style, with `/v1`).
    var openAIBaseURL: String { "http://127.0.0.1:\(port)/v1" }
    /// The base URL for `CANVAS_ANTHROPIC_BASE_URL`.
    var anthropicBaseURL: String { "http://127.0.0.1:\(port)" }

    /// How many requests named this model.
    func count(_ model: String) -> Int {
        let query = model.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? model
        guard let url = URL(string: "http://127.0.0.1:\(port)/_count?key=\(query)"),
            let data = try? Data(contentsOf: url),
            let doc = try? JSONParser.parseObject(Array(data))
        else { return -1 }
        return Int(doc["count"]?.intValue ?? -1)
    }

    /// The request bodies and auth headers received for this model.
    func requests(_ model: String) -> [Document] {
        let query = model.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? model
        guard let url = URL(string: "http://127.0.0.1:\(port)/_requests?key=\(query)"),
            let data = try? Data(contentsOf: url),
            let doc = try? JSONParser.parseObject(Array(data))
        else { return [] }
        return (doc["requests"]?.arrayValue ?? []).compactMap(\.documentValue)
    }
}
