import Core
import Foundation
import Synchronization
import Testing

@Suite("Sessions over HTTP")
struct SessionsTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    @Test func createdSessionHasSpecDefaultsAndIsListed() throws {
        let user = cluster.newUser()
        let created = try cluster.post(
            "/api/chat/sessions", user, #"{"name":"Welcome Conversation","tags":["welcome"]}"#)
        #expect(created.status == 201)
        #expect(created["name"]?.stringValue == "Welcome Conversation")
        #expect(created.document?.value(at: "settings.provider")?.stringValue == "mistral")
        #expect(created.document?.value(at: "settings.temperature")?.doubleValue == 0.7)
        #expect(created.document?.value(at: "settings.maxTokens")?.intValue == 2000)
        #expect(created["userId"]?.stringValue == user.id.hex)
        #expect(created["_id"] == nil)

        let list = try cluster.get("/api/chat/sessions", user)
        #expect(list.status == 200)
        let ids = list["items"]?.arrayValue?.compactMap {
            $0.documentValue?["sessionId"]?.stringValue
        }
        #expect(ids == [created["sessionId"]?.stringValue].compactMap { $0 })
        #expect(list["nextCursor"] == .null)
    }

    @Test(arguments: [
        (#"{}"#, "name"),
        (#"{"name":""}"#, "name"),
        (#"{"name":"   "}"#, "name"),
        (#"{"name":null}"#, "name"),
        (#"{"name":12345}"#, "name"),
        (#"{"name":true}"#, "name"),
        (#"{"name":["a"]}"#, "name"),
        (#"{"name":{"$gt":""}}"#, "name"),
        (#"{"name":"ok","description":5}"#, "description"),
        (#"{"name":"ok","settings":{"temperature":2.5}}"#, "settings.temperature"),
        (#"{"name":"ok","settings":{"temperature":-0.1}}"#, "settings.temperature"),
        (#"{"name":"ok","settings":{"maxTokens":0}}"#, "settings.maxTokens"),
        (#"{"name":"ok","settings":{"maxTokens":4001}}"#, "settings.maxTokens"),
        (#"{"name":"ok","settings":{"maxTokens":4.5}}"#, "settings.maxTokens"),
        (#"{"name":"ok","settings":{"mode":"turbo"}}"#, "settings.mode"),
        (#"{"name":"ok","settings":{"provider":"OpenAI"}}"#, "settings.provider"),
        (#"{"name":"ok","settings":{"provider":"azure"}}"#, "settings.provider"),
        (#"{"name":"ok","agentId":"abc"}"#, "agentId"),
        (#"{"name":"ok","id":"m-dup-1"}"#, "id"),
        (#"{"name":"ok","userId":"507f1f77bcf86cd799439012"}"#, "userId"),
        (#"{"name":"ok","tags":"x"}"#, "tags"),
    ])
    func invalidCreateIsRefusedNamingTheField(body: String, field: String) throws {
        let user = cluster.newUser()
        let result = try cluster.post("/api/chat/sessions", user, body)
        #expect(result.status == 400, "\(body) -> \(result.text)")
        #expect(result.errorFields.contains(field), "\(body) -> \(result.text)")
        let list = try cluster.get("/api/chat/sessions", user)
        #expect(list["items"]?.arrayValue?.isEmpty == true)
    }

    @Test func nameLimitsCountCodePointsOnCreateAndUpdate() throws {
        let user = cluster.newUser()
        let emoji = "\u{1F600}"
        let cases: [(String, Int)] = [
            (String(repeating: "a", count: 100), 201), (String(repeating: "a", count: 101), 400),
            (String(repeating: emoji, count: 100), 201),
            (String(repeating: emoji, count: 101), 400),
            (String(repeating: "日", count: 100), 201),
        ]
        for (name, expected) in cases {
            let raw = try cluster.post("/api/chat/sessions", user, json(["name": .string(name)]))
            #expect(raw.status == expected)
            let escaped = try cluster.post("/api/chat/sessions", user, asciiJSON(["name": name]))
            #expect(escaped.status == expected)
            if expected == 201 { #expect(raw["name"]?.stringValue == name) }
        }
        let wide = String(repeating: "\u{2000B}", count: 500)
        let ok = try cluster.post(
            "/api/chat/sessions", user, json(["name": "d", "description": .string(wide)]))
        #expect(ok.status == 201)
        let tooWide = try cluster.post(
            "/api/chat/sessions", user,
            json(["name": "d", "description": .string(wide + "\u{2000B}")]))
        #expect(tooWide.status == 400)

        let id = try cluster.createSession(user, name: "keep")
        for body in [
            json(["name": .string(String(repeating: emoji, count: 101))]),
            json(["description": .string(String(repeating: "d", count: 501))]),
            #"{"name":""}"#, #"{"name":null}"#,
        ] {
            #expect(try cluster.put("/api/chat/sessions/\(id)", user, body).status == 400)
        }
        let renamed = try cluster.put(
            "/api/chat/sessions/\(id)", user,
            json(["name": .string(String(repeating: emoji, count: 100))]))
        #expect(renamed.status == 200)
        #expect(renamed["name"]?.stringValue == String(repeating: emoji, count: 100))
    }

    @Test func partialUpdateKeepsFieldsItWasNotGiven() throws {
        let user = cluster.newUser()
        let created = try cluster.post(
            "/api/chat/sessions", user,
            #"{"name":"Project Alpha","description":"keep me","#
                + #""settings":{"temperature":1.2,"mode":"coding"}}"#
        )
        let id = try #require(created["sessionId"]?.stringValue)
        #expect(
            try cluster.post(
                "/api/chat/sessions/\(id)/messages", user, #"{"role":"assistant","content":"hi"}"#
            ).status == 201)
        let afterMessage = try cluster.get("/api/chat/sessions/\(id)", user)
        #expect(afterMessage["name"]?.stringValue == "Project Alpha")
        #expect(afterMessage["description"]?.stringValue == "keep me")

        let updated = try cluster.put(
            "/api/chat/sessions/\(id)", user,
            #"{"description":"changed","settings":{"maxTokens":900}}"#)
        #expect(updated.status == 200)
        #expect(updated["name"]?.stringValue == "Project Alpha")
        #expect(updated["description"]?.stringValue == "changed")
        #expect(updated.document?.value(at: "settings.temperature")?.doubleValue == 1.2)
        #expect(updated.document?.value(at: "settings.mode")?.stringValue == "coding")
        #expect(updated.document?.value(at: "settings.maxTokens")?.intValue == 900)
        #expect(updated.document?.value(at: "stats.messageCount")?.intValue == 1)
    }

    @Test func anotherUsersSessionIsNotFoundAndUnchanged() throws {
        let owner = cluster.newUser()
        let other = cluster.newUser()
        let id = try cluster.createSession(owner, name: "private")
        #expect(
            try cluster.post(
                "/api/chat/sessions/\(id)/messages", owner, #"{"role":"user","content":"mine"}"#
            ).status == 201)

        let attempts: [HTTPResult] = [
            try cluster.get("/api/chat/sessions/\(id)", other),
            try cluster.put("/api/chat/sessions/\(id)", other, #"{"name":"stolen"}"#),
            try cluster.delete("/api/chat/sessions/\(id)", other),
            try cluster.post(
                "/api/chat/sessions/\(id)/messages", other, #"{"role":"user","content":"x"}"#),
            try cluster.get("/api/chat/sessions/\(id)/messages", other),
        ]
        let missing = try cluster.get("/api/chat/sessions/session-000000000000000000000000", other)
        for result in attempts {
            #expect(result.status == 404)
            #expect(result.body == missing.body)
        }
        #expect(try cluster.get("/api/chat/sessions", other)["items"]?.arrayValue?.isEmpty == true)

        let mine = try cluster.get("/api/chat/sessions/\(id)", owner)
        #expect(mine["name"]?.stringValue == "private")
        #expect(mine.document?.value(at: "stats.messageCount")?.intValue == 1)
        #expect(mine["messages"]?.arrayValue?.count == 1)
    }

    @Test func requestsWithoutAValidTokenAreUnauthorized() throws {
        let user = cluster.newUser()
        let id = try cluster.createSession(user)
        let tampered = String(user.token.dropLast(2)) + (user.token.hasSuffix("AA") ? "BB" : "AA")
        let expired = JWTFactory.expired(user.id)
        for headers in [
            [:], ["Authorization": "Bearer"], ["Authorization": "Bearer \(tampered)"],
            ["Authorization": "Bearer \(expired)"], ["Authorization": "Basic abc"],
        ] {
            for path in ["/api/chat/sessions", "/api/chat/sessions/\(id)"] {
                let result = try HTTPClient.send(cluster, "GET", path, headers: headers)
                #expect(result.status == 401)
                #expect(result.errorCode == "unauthorized")
            }
        }
        #expect(try cluster.get("/api/chat/sessions/\(id)", user).status == 200)
        // The scheme is case-insensitive, and spaces may follow it; each spelling is checked
        // in full, twice (the second time past the verified-token cache).
        for _ in 1...2 {
            for scheme in ["bearer ", "BEARER ", "BeArEr ", "Bearer   ", "Bearer "] {
                let result = try HTTPClient.send(
                    cluster, "GET", "/api/chat/sessions/\(id)",
                    headers: ["Authorization": "\(scheme)\(user.token)"])
                #expect(result.status == 200, "\(scheme)")
            }
            let forged = String(user.token.dropLast(2)) + (user.token.hasSuffix("AA") ? "BB" : "AA")
            let result = try HTTPClient.send(
                cluster, "GET", "/api/chat/sessions/\(id)",
                headers: ["Authorization": "Bearer \(forged)"])
            #expect(result.status == 401, "a token whose signature differs at the end")
        }
    }

    @Test func concurrentAppendsLoseNothing() throws {
        let user = cluster.newUser()
        let id = try cluster.createSession(user)
        let statuses = Mutex<[Int]>([])
        parallel(40) { index in
            let result = try? cluster.post(
                "/api/chat/sessions/\(id)/messages", user,
                #"{"role":"user","content":"m\#(index)","tokens":2}"#)
            statuses.withLock { $0.append(result?.status ?? -1) }
        }
        #expect(statuses.withLock { $0 }.allSatisfy { $0 == 201 })
        let session = try cluster.get("/api/chat/sessions/\(id)", user)
        #expect(session.document?.value(at: "stats.messageCount")?.intValue == 40)
        #expect(session.document?.value(at: "stats.totalTokens")?.intValue == 80)

        var contents: [String] = []
        var cursor: String?
        repeat {
            let page = try cluster.get(
                "/api/chat/sessions/\(id)/messages?limit=7"
                    + (cursor.map { "&cursor=\($0)" } ?? ""), user)
            #expect(page.status == 200)
            contents += (page["items"]?.arrayValue ?? []).compactMap {
                $0.documentValue?["content"]?.stringValue
            }
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        #expect(contents.count == 40)
        #expect(Set(contents) == Set((0..<40).map { "m\($0)" }))
    }

    @Test func messagesSpanBucketsInOrder() throws {
        let user = cluster.newUser()
        let id = try cluster.createSession(user)
        for index in 0..<105 {
            let result = try cluster.post(
                "/api/chat/sessions/\(id)/messages", user,
                #"{"role":"user","content":"n\#(index)"}"#)
            #expect(result.status == 201)
        }
        var contents: [String] = []
        var cursor: String?
        repeat {
            let page = try cluster.get(
                "/api/chat/sessions/\(id)/messages?limit=50"
                    + (cursor.map { "&cursor=\($0)" } ?? ""), user)
            contents += (page["items"]?.arrayValue ?? []).compactMap {
                $0.documentValue?["content"]?.stringValue
            }
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        #expect(contents == (0..<105).map { "n\($0)" })
        let detail = try cluster.get("/api/chat/sessions/\(id)", user)
        let newest = detail["messages"]?.arrayValue?.compactMap {
            $0.documentValue?["content"]?.stringValue
        }
        #expect(newest == (55..<105).map { "n\($0)" })
    }

    /// Case C12: a walk of 25 sessions, a session moved mid-walk, 15 created at once.
    @Test func pagingNeitherSkipsNorRepeats() throws {
        let user = cluster.newUser()
        var created: [String] = []
        for index in 1...25 {
            created.append(try cluster.createSession(user, name: String(format: "s%02d", index)))
        }
        let firstWalk = try walk(user, limit: 10)
        #expect(firstWalk == created.reversed())

        let pageOne = try cluster.get("/api/chat/sessions?limit=10", user)
        let cursor = try #require(pageOne["nextCursor"]?.stringValue)
        let touched = created[2]
        #expect(
            try cluster.post(
                "/api/chat/sessions/\(touched)/messages", user, #"{"role":"user","content":"x"}"#
            ).status == 201)
        var rest = try walk(user, limit: 10, from: cursor)
        rest += ids(pageOne)
        #expect(Set(rest).count == rest.count)
        #expect(Set(created).subtracting([touched]).isSubset(of: Set(rest)))

        let burst = cluster.newUser()
        parallel(15) { index in
            _ = try? cluster.createSession(burst, name: "b\(index)")
        }
        let all = try walk(burst, limit: 4)
        #expect(all.count == 15)
        #expect(Set(all).count == 15)
    }

    /// Case C12: limits out of range are refused, never widened or narrowed.
    @Test(arguments: ["0", "-1", "1000000", "abc", "1.5", ""])
    func outOfRangeLimitsAreRefused(limit: String) throws {
        let user = cluster.newUser()
        let result = try cluster.get("/api/chat/sessions?limit=\(limit)", user)
        #expect(result.status == 400)
    }

    @Test func queryOperatorsAreRefusedAndNeverWidenTheList() throws {
        let a = cluster.newUser()
        let b = cluster.newUser()
        _ = try cluster.createSession(b, name: "b's")
        for query in ["name[$ne]=x", "userId[$ne]=x", "id[$gt]=", "limit=5&limit=6"] {
            let result = try cluster.get("/api/chat/sessions?\(query)", a)
            #expect(result.status == 400)
        }
        #expect(try cluster.get("/api/chat/sessions", a)["items"]?.arrayValue?.isEmpty == true)
    }

    @Test func deletedSessionIsGoneWithItsMessagesForItsOwnerOnly() throws {
        let user = cluster.newUser()
        let keep = try cluster.createSession(user, name: "keep")
        let drop = try cluster.createSession(user, name: "drop")
        #expect(
            try cluster.post(
                "/api/chat/sessions/\(drop)/messages", user, #"{"role":"user","content":"x"}"#
            ).status == 201)
        #expect(try cluster.delete("/api/chat/sessions/\(drop)", user).status == 200)
        #expect(try cluster.get("/api/chat/sessions/\(drop)", user).status == 404)
        #expect(try cluster.get("/api/chat/sessions/\(drop)/messages", user).status == 404)
        #expect(try cluster.delete("/api/chat/sessions/\(drop)", user).status == 404)
        #expect(ids(try cluster.get("/api/chat/sessions", user)) == [keep])
    }

    private func ids(_ page: HTTPResult) -> [String] {
        (page["items"]?.arrayValue ?? []).compactMap { $0.documentValue?["sessionId"]?.stringValue }
    }

    private func walk(_ user: TestUser, limit: Int, from start: String? = nil) throws -> [String] {
        var all: [String] = []
        var cursor = start
        var first = start == nil
        while first || cursor != nil {
            first = false
            let page = try cluster.get(
                "/api/chat/sessions?limit=\(limit)" + (cursor.map { "&cursor=\($0)" } ?? ""), user)
            #expect(page.status == 200)
            all += ids(page)
            cursor = page["nextCursor"]?.stringValue
        }
        return all
    }
}

/// JSON with every non-ASCII character escaped as `\uXXXX` (surrogate pairs for emoji).
func asciiJSON(_ fields: [String: String]) -> String {
    let parts = fields.sorted { $0.key < $1.key }.map { key, value -> String in
        let escaped = value.utf16.map { unit -> String in
            unit < 0x80 && unit >= 0x20 && unit != 0x22 && unit != 0x5C
                ? String(UnicodeScalar(UInt8(unit))) : String(format: "\\u%04x", unit)
        }.joined()
        return "\"\(key)\":\"\(escaped)\""
    }
    return "{" + parts.joined(separator: ",") + "}"
}
