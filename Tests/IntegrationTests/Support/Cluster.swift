import Bus
import Core
import Crypt
import Foundation
import JSONKit
import RedisKit
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Why the cluster could not start; in CI this fails the test instead of skipping it.
struct ClusterError: Error, CustomStringConvertible {
    let description: String
}

/// Every child process any cluster started, killed when the test process exits.
private let children = Mutex<[Int32]>([])
/// Work directories of clusters still alive, removed when the test process exits.
private let workDirectories = Mutex<[String]>([])
private let installExitHook: Void = {
    atexit {
        for pid in children.withLock({ $0 }) { kill(pid, SIGKILL) }
        for path in workDirectories.withLock({ $0 }) {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}()

/// A real system on free loopback ports: redis-server, the MongoDB stand-in, the built
/// service executables and the gateway, driven over HTTP.
final class Cluster: @unchecked Sendable {
    static let secret = "integration-test-secret"
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/"
            && !FileManager.default.fileExists(
                atPath: url.appendingPathComponent("Package.swift").path)
        {
            url.deleteLastPathComponent()
        }
        return url
    }()

    static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["UC_BIN_DIR"] {
            return URL(fileURLWithPath: dir)
        }
        return root.appendingPathComponent(".build/debug")
    }

    /// The stand-in: `NX27017` if set, else `scripts/standin.py` run by the `.venv` Python.
    static var standInCommand: (String, [String]) {
        if let binary = ProcessInfo.processInfo.environment["NX27017"] { return (binary, []) }
        return (
            root.appendingPathComponent(".venv/bin/python").path,
            [root.appendingPathComponent("scripts/standin.py").path]
        )
    }

    let workDir: URL
    let redisPort: Int
    let mongoPort: Int
    let httpPort: Int
    let services: [String]
    let extraEnvironment: [String: String]
    private let processes = Mutex<[String: [Process]]>([:])
    let database: String

    var baseURL: String { "http://127.0.0.1:\(httpPort)" }
    var redisAddress: RedisAddress { RedisAddress(url: "redis://127.0.0.1:\(redisPort)") }
    var mongoURI: String { "mongodb://127.0.0.1:\(mongoPort)/\(database)" }

    /// One cluster shared by the tests that do not stop or kill anything.
    static let shared: Result<Cluster, ClusterError> = {
        do { return .success(try Cluster(services: Routes.services)) } catch let error
            as ClusterError
        {
            return .failure(error)
        } catch { return .failure(ClusterError(description: "\(error)")) }
    }()

    static func sharedCluster() throws -> Cluster { try shared.get() }

    let durableRedis: Bool

    init(
        services: [String], environment: [String: String] = [:], replicas: [String: Int] = [:],
        durableRedis: Bool = false
    ) throws {
        self.durableRedis = durableRedis
        _ = installExitHook
        workDir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "uc-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
        let path = workDir.path
        workDirectories.withLock { $0.append(path) }
        redisPort = try Cluster.freePort()
        mongoPort = try Cluster.freePort()
        httpPort = try Cluster.freePort()
        self.services = services
        self.extraEnvironment = environment
        database = "uc_test_\(UUID().uuidString.prefix(8).lowercased())"

        try startRedis()
        try startMongo()
        for service in services {
            for replica in 0..<(replicas[service] ?? 1) {
                try startService(service, replica: replica)
            }
        }
        try startService("gateway", replica: 0)
        try waitUntilReady()
    }

    deinit { shutdown() }

    func shutdown() {
        let all = processes.withLock { table -> [Process] in
            let list = table.values.flatMap { $0 }
            table.removeAll()
            return list
        }
        for process in all where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: workDir)
    }

    /// Ports handed out in this test process, never handed out twice.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A port nothing listens on, below the kernel's ephemeral range: a port from `bind(0)` is
    /// free only until the process that is to listen on it starts, and meanwhile any outgoing
    /// connection of the parallel tests may take it as its local port (the gateway then cannot
    /// listen and the cluster never becomes ready).
    static func freePort() throws -> Int {
        let rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"
        let range = (try? String(contentsOfFile: rangeFile, encoding: .utf8))?
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            .compactMap { Int($0) }
        let ephemeralLow = range?.first ?? 32_768
        let low = ephemeralLow > 12_000 ? 10_000 : 1_024
        for _ in 0..<1_000 {
            let port = Int.random(in: low..<max(low + 1_000, ephemeralLow))
            guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
            if canBind(port: port) { return port }
        }
        throw ClusterError(description: "no free port below \(ephemeralLow)")
    }

    private static func canBind(port: Int) -> Bool {
        withLoopbackSocket(port: port) { fd, address, length in bind(fd, address, length) == 0 }
    }

    /// Runs `body` with a new TCP socket and the address 127.0.0.1:`port`; false without one.
    private static func withLoopbackSocket(
        port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool
    ) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, length) }
        }
    }

    @discardableResult
    private func launch(
        _ name: String, _ path: String, _ arguments: [String], environment: [String: String] = [:]
    )
        throws -> Process
    {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ClusterError(
                description: "\(path) is missing: run `make test` (it builds and installs it)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let log = workDir.appendingPathComponent("\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        children.withLock { $0.append(process.processIdentifier) }
        processes.withLock { $0[name, default: []].append(process) }
        return process
    }

    private func startRedis() throws {
        try launch(
            "redis", "/usr/bin/redis-server",
            [
                "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", durableRedis ? "yes" : "no", "--appendfsync", "always", "--dir",
                workDir.path,
            ])
        try waitFor("redis-server") {
            (try? RedisConnection(address: self.redisAddress, timeoutMs: 500).run(["PING"])) != nil
        }
    }

    func restartRedis() throws {
        try stop("redis", signal: SIGKILL)
        try startRedis()
    }

    private func startMongo() throws {
        let dataDir = workDir.appendingPathComponent("mongo")
        try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        let (program, prefix) = Cluster.standInCommand
        try launch(
            "mongo", program,
            prefix + [
                "--host", "127.0.0.1", "-p", String(mongoPort), "--data-dir", dataDir.path,
                "--log-file", dataDir.appendingPathComponent("nx.log").path,
                "--pid-file", dataDir.appendingPathComponent("nx.pid").path,
            ])
        try waitFor("the MongoDB stand-in") { Cluster.canConnect(port: self.mongoPort) }
    }

    func serviceEnvironment(_ name: String, replica: Int) -> [String: String] {
        var env: [String: String] = [
            "REDIS_URL": "redis://127.0.0.1:\(redisPort)", "MONGODB_URI": mongoURI,
            "LOG_LEVEL": "warning",
            "JWT_SECRET": Cluster.secret, "PORT": String(httpPort), "HOST": "127.0.0.1",
            "CONSUMER_NAME": "\(name)-test-\(replica)", "REQUEST_TIMEOUT_MS": "3000",
            // Every test registers and logs in from 127.0.0.1; LimitsTests checks the limit.
            "RATE_LIMIT_ACCOUNTS": "0",
        ]
        for (key, value) in extraEnvironment { env[key] = value }
        return env
    }

    func startService(_ name: String, replica: Int = 0) throws {
        let path = Cluster.binDirectory.appendingPathComponent(name).path
        try launch(name, path, [], environment: serviceEnvironment(name, replica: replica))
    }

    func pids(_ name: String) -> [Int32] {
        processes.withLock { ($0[name] ?? []).filter(\.isRunning).map(\.processIdentifier) }
    }

    /// Signals every running process of a service; SIGKILL/SIGTERM also wait for the exit.
    func stop(_ name: String, signal: Int32 = SIGTERM) throws {
        let list = processes.withLock { $0[name] ?? [] }
        for process in list where process.isRunning {
            kill(process.processIdentifier, signal)
            if signal == SIGKILL || signal == SIGTERM { process.waitUntilExit() }
        }
        if signal == SIGKILL || signal == SIGTERM { processes.withLock { $0[name] = [] } }
    }

    /// Sends SIGTERM to every process of `name` and waits for them to exit; false, and each
    /// one left is killed, if any is still running after `seconds`.
    func terminate(_ name: String, within seconds: Double) -> Bool {
        let list = processes.withLock { $0[name] ?? [] }
        for process in list where process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let exited = eventually(seconds: seconds) { list.allSatisfy { !$0.isRunning } }
        for process in list where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        processes.withLock { $0[name] = [] }
        return exited
    }

    func send(_ name: String, signal: Int32) {
        for pid in pids(name) { kill(pid, signal) }
    }

    static func canConnect(port: Int) -> Bool {
        withLoopbackSocket(port: port) { fd, address, length in connect(fd, address, length) == 0 }
    }

    private func waitFor(_ what: String, seconds: Double = 20, _ check: () -> Bool) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if check() { return }
            usleep(50_000)
        }
        throw ClusterError(
            description: "\(what) did not start within \(Int(seconds)) s; \(logTails())")
    }

    /// Ready when `/readyz` says so, or when its only problems are services this cluster
    /// did not start (a cluster of `["sessions"]` while other services have routes too).
    func waitUntilReady(seconds: Double = 60) throws {
        let prefix = "no live consumer on "
        let started = Set(services.map { BusNames.commandStream($0) })
        try waitFor("the gateway", seconds: seconds) {
            guard let result = try? HTTPClient.send(self, "GET", "/readyz") else { return false }
            if result.status == 200 { return true }
            let problems = result.document?["problems"]?.arrayValue?.compactMap(\.stringValue) ?? []
            return !problems.isEmpty
                && problems.allSatisfy {
                    $0.hasPrefix(prefix) && !started.contains(String($0.dropFirst(prefix.count)))
                }
        }
    }

    /// The last lines of every process's log, for an error that has to say why.
    func logTails(lines: Int = 6) -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workDir.path)) ?? []
        return names.filter { $0.hasSuffix(".log") }.sorted().map { file in
            let path = workDir.appendingPathComponent(file).path
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let tail = text.split(separator: "\n").suffix(lines).joined(separator: "\n")
            return "\(file):\n\(tail)"
        }.joined(separator: "\n")
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: workDir.appendingPathComponent("\(name).log"), encoding: .utf8))
            ?? ""
    }

    /// A fresh user and a valid token for it.
    func newUser(role: String = "user") -> TestUser {
        let id = ObjectId()
        let token = JWT(secret: Cluster.secret).sign(
            TokenClaims(
                userId: id, role: role, expiresAt: Int64(Date().timeIntervalSince1970) + 3600))
        return TestUser(id: id, token: token)
    }

    func redis() -> RedisConnection { RedisConnection(address: redisAddress, timeoutMs: 3000) }
}

struct TestUser: Sendable {
    let id: ObjectId
    let token: String
}

/// What a request got back.
struct HTTPResult: Sendable {
    let status: Int
    let headers: [String: String]
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: Value? { try? JSONParser.parse(body) }
    var document: Document? { json?.documentValue }
    subscript(_ key: String) -> Value? { document?[key] }
    var errorCode: String? { document?.value(at: "error.code")?.stringValue }
    var errorFields: [String] {
        (document?.value(at: "error.details")?.arrayValue ?? []).compactMap {
            $0.documentValue?["field"]?.stringValue
        }
    }
}

/// A small blocking HTTP client over URLSession, for tests.
enum HTTPClient {
    static let session: URLSession = {
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = 30
        config.httpMaximumConnectionsPerHost = 64
        return URLSession(configuration: config)
    }()

    static func send(
        _ cluster: Cluster, _ method: String, _ path: String, token: String? = nil,
        body: String? = nil,
        rawBody: [UInt8]? = nil, headers: [String: String] = [:]
    ) throws -> HTTPResult {
        guard let url = URL(string: cluster.baseURL + path) else {
            throw ClusterError(description: "bad path \(path)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let rawBody { request.httpBody = Data(rawBody) }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let done = DispatchSemaphore(value: 0)
        let box = Mutex<Result<HTTPResult, Error>?>(nil)
        let task = session.dataTask(with: request) { data, response, error in
            if let error {
                box.withLock { $0 = .failure(error) }
            } else if let http = response as? HTTPURLResponse {
                var headers: [String: String] = [:]
                for (key, value) in http.allHeaderFields {
                    headers[String(describing: key).lowercased()] = String(describing: value)
                }
                box.withLock {
                    $0 = .success(
                        HTTPResult(
                            status: http.statusCode, headers: headers, body: Array(data ?? Data())))
                }
            } else {
                box.withLock { $0 = .failure(ClusterError(description: "no HTTP response")) }
            }
            done.signal()
        }
        task.resume()
        done.wait()
        guard let result = box.withLock({ $0 }) else {
            throw ClusterError(description: "no result")
        }
        return try result.get()
    }
}

extension Cluster {
    func get(_ path: String, _ user: TestUser?) throws -> HTTPResult {
        try HTTPClient.send(self, "GET", path, token: user?.token)
    }

    func post(_ path: String, _ user: TestUser?, _ body: String, headers: [String: String] = [:])
        throws
        -> HTTPResult
    {
        try HTTPClient.send(self, "POST", path, token: user?.token, body: body, headers: headers)
    }

    func put(_ path: String, _ user: TestUser?, _ body: String) throws -> HTTPResult {
        try HTTPClient.send(self, "PUT", path, token: user?.token, body: body)
    }

    func delete(_ path: String, _ user: TestUser?) throws -> HTTPResult {
        try HTTPClient.send(self, "DELETE", path, token: user?.token)
    }

    /// Creates a session and returns its id.
    func createSession(_ user: TestUser, name: String = "test session") throws -> String {
        let body = JSONWriter.string(["name": .string(name)] as Document)
        let result = try post("/api/chat/sessions", user, body)
        guard result.status == 201, let id = result["sessionId"]?.stringValue else {
            throw ClusterError(
                description: "create session failed: \(result.status) \(result.text)")
        }
        return id
    }
}

/// JSON text of a document, for request bodies.
func json(_ document: Document) -> String { JSONWriter.string(document) }

/// Runs `body(index)` on `count` threads at once and waits for all of them.
func parallel(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}
