import Core
import Foundation
import MongoKit
import Testing

/// Defects a newcomer found by hand, kept fixed.
@Suite("Newcomer findings")
struct NewcomerFindingsTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    @Test func anEscapedNulInThePathNamesNothing() throws {
        let user = cluster.newUser()
        let session = try cluster.createSession(user, name: "keep me")
        let attempts = [
            try HTTPClient.send(
                cluster, "DELETE", "/api/chat/sessions/\(session)%00/messages", token: user.token),
            try HTTPClient.send(
                cluster, "GET", "/api/chat/sessions/\(session)%00garbage", token: user.token),
            try HTTPClient.send(
                cluster, "GET", "/api/chat/sessions%00/whatever/x/y", token: user.token),
        ]
        for result in attempts {
            #expect([404, 405].contains(result.status), "\(result.status) \(result.text)")
        }
        #expect(
            try cluster.get("/api/chat/sessions/\(session)", user)["name"]?.stringValue == "keep me"
        )
    }

    @Test func forgedCursorsAreRefusedNotServerErrors() throws {
        let user = cluster.newUser()
        for parts in [["9223372036854775807", "a"], ["-62135596800001", "a"], ["x", "y"]] {
            let cursor = PageCursorForTests.encode(parts)
            for path in [
                "/api/chat/sessions", "/api/chat/sessions?view=active", "/api/chat/canvas/projects",
            ] {
                let separator = path.contains("?") ? "&" : "?"
                let result = try cluster.get("\(path)\(separator)cursor=\(cursor)", user)
                #expect(result.status == 400, "\(path) \(parts) -> \(result.status) \(result.text)")
            }
        }
    }

    @Test func invisibleOnlyNamesAreEmpty() throws {
        let user = cluster.newUser()
        for name in ["\u{0}", "\u{200B}", "\u{200B}\u{FEFF}", "\t\n"] {
            let result = try cluster.post("/api/chat/sessions", user, json(["name": .string(name)]))
            #expect(result.status == 400)
            #expect(result.errorFields == ["name"])
        }
    }

    @Test func headAnswersLikeGetWithoutABody() throws {
        let user = cluster.newUser()
        let result = try HTTPClient.send(cluster, "HEAD", "/api/chat/sessions", token: user.token)
        #expect(result.status == 200)
        #expect(result.body.isEmpty)
    }

    @Test func privateAgentsCannotBeUsedBySessions() throws {
        let admin = cluster.newUser(role: "admin")
        let user = cluster.newUser()
        let created = try cluster.post(
            "/api/agents", admin,
            #"{"agentId":"private-agent-x","name":"Hidden","description":"d","category":"general","prompt":"p","isPublic":false}"#
        )
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created["id"]?.stringValue)
        let session = try cluster.post(
            "/api/chat/sessions", user, json(["name": "x", "agentId": .string(id)]))
        #expect(session.status == 400)
        #expect(session.errorFields == ["agentId"])
    }
}

enum PageCursorForTests {
    /// The cursor format: base64url of a JSON array of strings.
    static func encode(_ parts: [String]) -> String {
        JSONWriter.string(.array(parts.map { .string($0) })).data(using: .utf8)!
            .base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

@Suite("MongoKit filters on the stand-in")
struct StandInFilterTests {
    @Test func orBesideAnotherFieldNeverMatchesOtherDocuments() throws {
        let cluster = try Cluster.sharedCluster()
        let pool = try MongoPool(uri: cluster.mongoURI, appName: "filter-test")
        let collection = pool.collection("filter_probe_\(ObjectId().hex)")
        let expired = Value.date(Timestamp(milliseconds: 1000))
        try collection.insertOne(["k": "a", "run": ["lease": .date(Timestamp.now())]])
        try collection.insertOne(["k": "b", "run": ["lease": expired]])
        let filter: Document = [
            "k": "a",
            "$or": [["run": ["$exists": false]], ["run.lease": ["$lt": .date(Timestamp.now())]]],
        ]
        #expect(try collection.find(filter).isEmpty)
        let changed = try collection.findOneAndUpdate(filter, ["$set": ["taken": true]])
        #expect(changed == nil)
        #expect(try collection.find(["taken": true]).isEmpty)
    }
}
