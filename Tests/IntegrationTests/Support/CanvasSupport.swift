import Core
import Foundation
import JSONKit

extension Cluster {
    /// Creates a canvas project and returns its id.
    func createProject(
        _ user: TestUser, name: String = "Modern SaaS Landing Page",
        template: String = "SaaS Landing",
        category: String = "Landing", settings: Document? = nil
    ) throws -> String {
        var body: Document = [
            "name": .string(name), "template": .string(template), "category": .string(category),
        ]
        if let settings { body["settings"] = .document(settings) }
        let result = try post("/api/chat/canvas/projects", user, json(body))
        guard result.status == 201, let id = result["projectId"]?.stringValue else {
            throw ClusterError(
                description: "create project failed: \(result.status) \(result.text)")
        }
        return id
    }

    /// Creates a file and returns the stored document.
    func createFile(_ user: TestUser, _ projectId: String, _ path: String, _ content: String) throws
        -> Document
    {
        let body: Document = [
            "projectId": .string(projectId), "path": .string(path), "content": .string(content),
        ]
        let result = try post("/api/chat/canvas/files", user, json(body))
        guard result.status == 201, let doc = result.document else {
            throw ClusterError(description: "create file failed: \(result.status) \(result.text)")
        }
        return doc
    }

    /// Asks for a generation and returns its history id (after checking the 202).
    func generate(_ user: TestUser, _ projectId: String, _ body: Document) throws -> String {
        let result = try post("/api/chat/canvas/projects/\(projectId)/generate", user, json(body))
        guard result.status == 202, let id = result["historyId"]?.stringValue else {
            throw ClusterError(description: "generate failed: \(result.status) \(result.text)")
        }
        return id
    }

    /// Polls a history entry until it leaves `pending`.
    func finishedHistory(_ user: TestUser, _ historyId: String, seconds: Double = 15) throws
        -> Document
    {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            let result = try get("/api/chat/canvas/history/\(historyId)", user)
            if let doc = result.document, let status = doc["status"]?.stringValue,
                status != "pending"
            {
                return doc
            }
            usleep(50_000)
        }
        throw ClusterError(description: "history \(historyId) still pending after \(seconds) s")
    }

    /// Every file of a project (all pages), without content.
    func listFiles(_ user: TestUser, _ projectId: String) throws -> [Document] {
        var all: [Document] = []
        var cursor: String?
        repeat {
            let query = cursor.map { "?limit=100&cursor=\($0)" } ?? "?limit=100"
            let page = try get("/api/chat/canvas/projects/\(projectId)/files\(query)", user)
            guard page.status == 200 else {
                throw ClusterError(description: "list files: \(page.text)")
            }
            all += (page["items"]?.arrayValue ?? []).compactMap(\.documentValue)
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        return all
    }

    /// One file's content, by path.
    func fileContent(_ user: TestUser, _ projectId: String, path: String) throws -> String? {
        guard
            let file = try listFiles(user, projectId).first(where: {
                $0["path"]?.stringValue == path
            }),
            let id = file["fileId"]?.stringValue
        else { return nil }
        return try get("/api/chat/canvas/files/\(id)", user)["content"]?.stringValue
    }
}

/// Runs a program to its end (killed after `seconds`) and returns its status and output.
func runProgram(_ path: String, _ arguments: [String], seconds: Double = 60) throws -> (
    Int32, String
) {
    let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent(
        "out-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: outputURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: outputURL) }
    let output = try FileHandle(forWritingTo: outputURL)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    try output.close()
    let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
    return (process.terminationStatus, text)
}

/// A fresh temporary directory.
func temporaryDirectory(_ prefix: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "\(prefix)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
