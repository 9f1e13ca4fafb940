import Core
import Crypt
import Foundation
import JSONKit
import MongoKit
import RedisKit
import Synchronization
import Testing

/// Canvas projects, files, generation with the default provider, versions and export, over
/// HTTP against the shared cluster.
@Suite("Canvas over HTTP")
struct CanvasTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    // MARK: projects

    @Test func createdProjectHasSpecDefaultsAndIsListed() throws {
        let user = cluster.newUser()
        let conversation = try cluster.createSession(user, name: "landing")
        let created = try cluster.post(
            "/api/chat/canvas/projects", user,
            #"{"name":"Modern SaaS Landing Page","#
                + #""description":"A responsive landing page for a SaaS product","#
                + #""template":"SaaS Landing","category":"Landing","#
                + #""conversationId":"\#(conversation)"}"#)
        #expect(created.status == 201)
        let doc = try #require(created.document)
        #expect(doc["projectId"]?.stringValue?.hasPrefix("canvas-") == true)
        #expect(doc["userId"]?.stringValue == user.id.hex)
        #expect(doc["status"]?.stringValue == "active")
        #expect(doc["settings"] == ["theme": "light", "responsive": true, "animations": true])
        #expect(doc.value(at: "stats.filesGenerated") == .int64(0))
        #expect(doc.value(at: "stats.totalSize") == .int64(0))
        #expect(doc["_id"] == nil && doc["lock"] == nil)
        #expect(Timestamp(iso8601: doc["createdAt"]?.stringValue ?? "") != nil)

        let list = try cluster.get("/api/chat/canvas/projects", user)
        #expect(list.status == 200)
        let ids = list["items"]?.arrayValue?.compactMap {
            $0.documentValue?["projectId"]?.stringValue
        }
        #expect(ids == [doc["projectId"]?.stringValue].compactMap { $0 })
        #expect(list["nextCursor"] == .null)
        let byConversation = try cluster.get(
            "/api/chat/canvas/projects?conversationId=\(conversation)", user)
        #expect(byConversation["items"]?.arrayValue?.count == 1)
        let linked = byConversation["items"]?.arrayValue?.first?.documentValue
        #expect(linked?["conversationId"]?.stringValue == conversation)
    }

    /// A project may only be linked to a conversation of the caller's: another user's, a
    /// deleted one or one that never was is a 400 naming `conversationId`, and nothing is
    /// stored.
    @Test func aProjectLinksOnlyToTheCallersOwnConversation() throws {
        let owner = cluster.newUser()
        let other = cluster.newUser()
        let owned = try cluster.createSession(owner, name: "mine")
        let deleted = try cluster.createSession(other, name: "gone")
        #expect(try cluster.delete("/api/chat/sessions/\(deleted)", other).status == 200)
        for conversation in [owned, deleted, "conv-never-was", ObjectId().hex] {
            let refused = try cluster.post(
                "/api/chat/canvas/projects", other,
                json([
                    "name": "Linked", "template": "SaaS Landing", "category": "Landing",
                    "conversationId": .string(conversation),
                ]))
            #expect(refused.status == 400, "\(conversation)")
            #expect(refused.errorFields == ["conversationId"], "\(conversation)")
        }
        #expect(try cluster.get("/api/chat/canvas/projects", other)["items"] == [])
        let own = try cluster.post(
            "/api/chat/canvas/projects", owner,
            json([
                "name": "Linked", "template": "SaaS Landing", "category": "Landing",
                "conversationId": .string(owned),
            ]))
        #expect(own.status == 201 && own["conversationId"]?.stringValue == owned)
    }

    @Test func projectValidationNamesEachBadField() throws {
        let user = cluster.newUser()
        let base = #""template":"Blog","category":"Blog""#
        let cases: [(String, String)] = [
            (#"{"template":"Blog","category":"Blog"}"#, "name"),
            (#"{"name":"x","category":"Blog"}"#, "template"),
            (#"{"name":"x","template":"Blog"}"#, "category"),
            ("{\"name\":\"\(String(repeating: "é", count: 101))\",\(base)}", "name"),
            (#"{"name":{"$gt":""},"# + base + "}", "name"),
            (#"{"name":12345,"# + base + "}", "name"),
            (#"{"name":"x","status":"gone","# + base + "}", "status"),
            (#"{"name":"x","settings":{"theme":"neon"},"# + base + "}", "settings.theme"),
            (#"{"name":"x","settings":{"responsive":"yes"},"# + base + "}", "settings.responsive"),
            (#"{"name":"x","settings":{"provider":"gpt"},"# + base + "}", "settings.provider"),
            (#"{"name":"x","projectId":"mine","# + base + "}", "projectId"),
            (#"{"name":"x","stats":{"totalSize":5},"# + base + "}", "stats"),
        ]
        for (body, field) in cases {
            let result = try cluster.post("/api/chat/canvas/projects", user, body)
            #expect(result.status == 400, "\(body)")
            #expect(result.errorFields.contains(field), "\(body): \(result.text)")
        }
        let hundred = try cluster.post(
            "/api/chat/canvas/projects", user,
            "{\"name\":\"\(String(repeating: "😀", count: 100))\",\(base)}")
        #expect(hundred.status == 201)
    }

    @Test func projectUpdateIsPartialAndMergesSettings() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user, settings: ["theme": "dark", "animations": false])
        let path = "/api/chat/canvas/projects/\(id)"
        let renamed = try cluster.put(
            path, user, #"{"name":"Renamed","description":"Now with words"}"#)
        #expect(renamed.status == 200)
        #expect(renamed["name"]?.stringValue == "Renamed")
        #expect(renamed["template"]?.stringValue == "SaaS Landing")
        #expect(renamed["settings"] == ["theme": "dark", "responsive": true, "animations": false])

        let merged = try cluster.put(path, user, #"{"settings":{"responsive":false}}"#)
        #expect(merged["settings"] == ["theme": "dark", "responsive": false, "animations": false])
        #expect(merged["description"]?.stringValue == "Now with words")
        #expect(try cluster.get(path, user)["settings"] == merged["settings"])

        #expect(try cluster.put(path, user, #"{"template":"Blog"}"#).errorFields == ["template"])
        #expect(try cluster.put(path, user, #"{"name":""}"#).errorFields == ["name"])
        #expect(try cluster.put(path, user, #"{"status":"paused"}"#).errorFields == ["status"])
    }

    @Test func archivedProjectIsReadOnlyUntilActiveAgain() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let file = try cluster.createFile(user, id, "a.txt", "a")
        let fileId = try #require(file["fileId"]?.stringValue)
        #expect(
            try cluster.put("/api/chat/canvas/projects/\(id)", user, #"{"status":"archived"}"#)
                .status == 200)

        let body = json(["projectId": .string(id), "path": "b.txt", "content": "b"])
        #expect(try cluster.post("/api/chat/canvas/files", user, body).status == 409)
        #expect(
            try cluster.put("/api/chat/canvas/files/\(fileId)", user, #"{"content":"x"}"#).status
                == 409)
        #expect(try cluster.delete("/api/chat/canvas/files/\(fileId)", user).status == 409)
        let generate = try cluster.post(
            "/api/chat/canvas/projects/\(id)/generate", user, #"{"prompt":"Hi"}"#)
        #expect(generate.status == 409)
        #expect(try cluster.get("/api/chat/canvas/files/\(fileId)", user).status == 200)

        let archived = try cluster.get("/api/chat/canvas/projects?status=archived", user)
        #expect(archived["items"]?.arrayValue?.count == 1)
        #expect(
            try cluster.put("/api/chat/canvas/projects/\(id)", user, #"{"status":"deleted"}"#)
                .status == 200)
        #expect(try cluster.get("/api/chat/canvas/projects", user)["items"]?.arrayValue?.count == 0)
        #expect(
            try cluster.put("/api/chat/canvas/projects/\(id)", user, #"{"status":"active"}"#).status
                == 200)
        #expect(try cluster.post("/api/chat/canvas/files", user, body).status == 201)
    }

    @Test func projectListPagesWithoutSkipsOrRepeats() throws {
        let user = cluster.newUser()
        var made: Set<String> = []
        for index in 0..<7 { made.insert(try cluster.createProject(user, name: "P\(index)")) }
        var seen: [String] = []
        var cursor: String?
        repeat {
            let query = cursor.map { "?limit=3&cursor=\($0)" } ?? "?limit=3"
            let page = try cluster.get("/api/chat/canvas/projects\(query)", user)
            #expect(page.status == 200)
            seen += (page["items"]?.arrayValue ?? []).compactMap {
                $0.documentValue?["projectId"]?.stringValue
            }
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        #expect(seen.count == 7 && Set(seen) == made)
        for bad in [
            "limit=0", "limit=101", "limit=x", "cursor=%%%", "status=gone", "userId=\(user.id.hex)",
        ] {
            #expect(
                try cluster.get("/api/chat/canvas/projects?\(bad)", user).status == 400, "\(bad)")
        }
    }

    // MARK: files

    @Test func filesGetSizeAndChecksumFromTheService() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let content = "<h1>Grüße 😀</h1>\n"
        let created = try cluster.post(
            "/api/chat/canvas/files", user,
            json([
                "projectId": .string(id), "path": "/pages/index.html", "content": .string(content),
                "metadata": [
                    "language": "html", "framework": "vanilla", "dependencies": ["alpine"],
                ],
            ]))
        #expect(created.status == 201)
        let file = try #require(created.document)
        #expect(file["size"] == .int64(Int64(content.utf8.count)))
        #expect(file["checksum"]?.stringValue == Crypto.sha256Hex(Array(content.utf8)))
        #expect(file["name"]?.stringValue == "index.html")
        #expect(file["type"]?.stringValue == "html")
        #expect(file.value(at: "metadata.dependencies") == ["alpine"])
        let fileId = try #require(file["fileId"]?.stringValue)

        let read = try cluster.get("/api/chat/canvas/files/\(fileId)", user)
        #expect(read["content"]?.stringValue == content)
        #expect(
            !read.text.contains("$numberLong") && !read.text.contains("$date")
                && !read.text.contains("_id"))
        let listed = try cluster.get("/api/chat/canvas/projects/\(id)/files", user)
        let item = try #require(listed["items"]?.arrayValue?.first?.documentValue)
        #expect(item["content"] == nil && item["size"] == file["size"])

        let upperChecksum = Crypto.sha256Hex(Array("abc".utf8)).uppercased()
        let right =
            #"{"projectId":"\#(id)","path":"ok.txt","content":"abc","size":3,"#
            + #""checksum":"\#(upperChecksum)"}"#
        #expect(try cluster.post("/api/chat/canvas/files", user, right).status == 201)
        let wrongSize = #"{"projectId":"\#(id)","path":"s.txt","content":"abc","size":4}"#
        #expect(try cluster.post("/api/chat/canvas/files", user, wrongSize).errorFields == ["size"])
        let wrongSum = #"{"projectId":"\#(id)","path":"c.txt","content":"abc","checksum":"00"}"#
        #expect(
            try cluster.post("/api/chat/canvas/files", user, wrongSum).errorFields == ["checksum"])
        let badType = #"{"projectId":"\#(id)","path":"t.txt","content":"abc","type":"pdf"}"#
        #expect(try cluster.post("/api/chat/canvas/files", user, badType).errorFields == ["type"])

        let updated = try cluster.put(
            "/api/chat/canvas/files/\(fileId)", user, #"{"content":"tiny"}"#)
        #expect(updated.status == 200)
        #expect(updated["size"] == .int64(4))
        #expect(updated["checksum"]?.stringValue == Crypto.sha256Hex(Array("tiny".utf8)))
        #expect(updated.document?.value(at: "metadata.framework")?.stringValue == "vanilla")
        #expect(
            try cluster.put("/api/chat/canvas/files/\(fileId)", user, #"{"size":4}"#).errorFields
                == ["size"])
    }

    @Test func filePathsAreNormalisedAndUniquePerProject() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let other = try cluster.createProject(user, name: "Other")
        let made = try cluster.createFile(user, id, "./css/./site.css", "body{}")
        #expect(made["path"]?.stringValue == "/css/site.css")
        #expect(made["name"]?.stringValue == "site.css")
        #expect(made["type"]?.stringValue == "css")

        let refused = [
            "../secret", "a/../../b", "/a//b", "a/", "//host/share", "", "C:\\\\x", "\\\\..\\\\x",
            "~/x",
            "a/\\u0000b", String(repeating: "a", count: 256),
        ]
        for path in refused {
            let result = try cluster.post(
                "/api/chat/canvas/files", user,
                #"{"projectId":"\#(id)","path":"\#(path)","content":""}"#)
            #expect(result.status == 400, "\(path)")
            #expect(result.errorFields == ["path"], "\(path): \(result.text)")
        }
        let duplicate = try cluster.post(
            "/api/chat/canvas/files", user,
            #"{"projectId":"\#(id)","path":"/css/site.css","content":"x"}"#)
        #expect(duplicate.status == 409 && duplicate.errorFields == ["path"])
        // The same name with its accent typed apart is the same path.
        _ = try cluster.createFile(user, id, "caf\u{00E9}.md", "x")
        let accented = try cluster.post(
            "/api/chat/canvas/files", user,
            #"{"projectId":"\#(id)","path":"cafe\u0301.md","content":"x"}"#)
        #expect(accented.status == 409 && accented.errorFields == ["path"], "\(accented.text)")
        #expect(
            try cluster.createFile(user, other, "css/site.css", "x")["path"]?.stringValue
                == "/css/site.css")
        let wrongName = try cluster.post(
            "/api/chat/canvas/files", user,
            #"{"projectId":"\#(id)","path":"a.js","name":"b.js","content":""}"#)
        #expect(wrongName.errorFields == ["name"])

        // Renaming follows the same rules; the name follows the path.
        let fileId = try #require(made["fileId"]?.stringValue)
        let second = try cluster.createFile(user, id, "main.js", "1")
        let renamed = try cluster.put(
            "/api/chat/canvas/files/\(fileId)", user, #"{"path":"styles/main.css"}"#)
        #expect(
            renamed["path"]?.stringValue == "/styles/main.css"
                && renamed["name"]?.stringValue == "main.css")
        let clash = try cluster.put(
            "/api/chat/canvas/files/\(second["fileId"]?.stringValue ?? "")", user,
            #"{"path":"styles/main.css"}"#)
        #expect(clash.status == 409)
        #expect(
            try cluster.put("/api/chat/canvas/files/\(fileId)", user, #"{"path":"../x"}"#).status
                == 400)
    }

    /// `/a` and `/a/b` cannot both be files, made or renamed in any order: an export of the
    /// project could not be unpacked (409 naming `path`, nothing stored).
    @Test func aFileAndAFolderOfFilesCannotShareAPath() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        _ = try cluster.createFile(user, id, "docs/guide/intro.md", "x")
        let plain = try cluster.createFile(user, id, "notes.md", "y")
        for path in ["docs", "docs/guide", "docs/guide/intro.md/more.md"] {
            let made = try cluster.post(
                "/api/chat/canvas/files", user,
                #"{"projectId":"\#(id)","path":"\#(path)","content":""}"#)
            #expect(made.status == 409 && made.errorFields == ["path"], "\(path): \(made.text)")
        }
        let moved = try cluster.put(
            "/api/chat/canvas/files/\(plain["fileId"]?.stringValue ?? "")", user,
            #"{"path":"docs/guide"}"#)
        #expect(moved.status == 409 && moved.errorFields == ["path"], "\(moved.text)")
        // Names that only start like a folder's are not inside it.
        let into = try cluster.createFile(user, id, "notes.md.d/x.md", "z")
        #expect(into["path"]?.stringValue == "/notes.md.d/x.md")
        _ = try cluster.createFile(user, id, "docs-old/a.md", "z")
        _ = try cluster.createFile(user, id, "docs0", "z")
        let listed = try cluster.get("/api/chat/canvas/projects/\(id)/files", user)
        #expect(listed["items"]?.arrayValue?.count == 5)
    }

    @Test func projectStatsFollowEveryFileChange() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let a = try cluster.createFile(user, id, "a.txt", String(repeating: "a", count: 100))
        _ = try cluster.createFile(user, id, "b.txt", "ß")
        let c = try cluster.createFile(user, id, "c.txt", "ccc")
        _ = try cluster.put(
            "/api/chat/canvas/files/\(a["fileId"]?.stringValue ?? "")", user, #"{"content":"aa"}"#)
        _ = try cluster.delete("/api/chat/canvas/files/\(c["fileId"]?.stringValue ?? "")", user)

        // Concurrent creates and updates: every change is one atomic $inc.
        let group = DispatchGroup()
        let failures = Atomic<Int>(0)
        for index in 0..<12 {
            DispatchQueue.global().async(group: group) {
                let created = try? cluster.post(
                    "/api/chat/canvas/files", user,
                    #"{"projectId":"\#(id)","path":"many/\#(index).txt","#
                        + #""content":"\#(String(repeating: "x", count: index))"}"#
                )
                if created?.status != 201 { failures.add(1, ordering: .relaxed) }
                let content = String(repeating: "y", count: index % 5)
                let updated = try? cluster.put(
                    "/api/chat/canvas/files/\(a["fileId"]?.stringValue ?? "")", user,
                    #"{"content":"\#(content)"}"#)
                if updated?.status != 200 { failures.add(1, ordering: .relaxed) }
            }
        }
        group.wait()
        #expect(failures.load(ordering: .relaxed) == 0)

        let files = try cluster.listFiles(user, id)
        let project = try cluster.get("/api/chat/canvas/projects/\(id)", user)
        #expect(project.document?.value(at: "stats.filesGenerated")?.intValue == Int64(files.count))
        let total = files.compactMap { $0["size"]?.intValue }.reduce(0, +)
        #expect(project.document?.value(at: "stats.totalSize")?.intValue == total)
        #expect(files.count == 14)
    }

    @Test func fileListPagesByPathWithoutContent() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let paths = ["e|pipe.txt", "b.txt", "a/z.txt", "d é.txt", "c.txt"]
        for path in paths { _ = try cluster.createFile(user, id, path, path) }
        var seen: [String] = []
        var cursor: String?
        repeat {
            let query = cursor.map { "?limit=2&cursor=\($0)" } ?? "?limit=2"
            let page = try cluster.get("/api/chat/canvas/projects/\(id)/files\(query)", user)
            #expect(page.status == 200)
            for item in page["items"]?.arrayValue ?? [] {
                #expect(item.documentValue?["content"] == nil)
                seen.append(item.documentValue?["path"]?.stringValue ?? "")
            }
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        #expect(seen == paths.map { "/\($0)" }.sorted())
        let onlyCSS = try cluster.get("/api/chat/canvas/projects/\(id)/files?type=css", user)
        #expect(onlyCSS["items"]?.arrayValue?.isEmpty == true)
        #expect(
            try cluster.get("/api/chat/canvas/projects/\(id)/files?type=pdf", user).status == 400)
        // Base64url that decodes to no path this API lists: nothing, a relative path, bytes.
        for cursor in ["!!", String(repeating: "A", count: 5000), "Li4vZXRj", "AAAA"] {
            #expect(
                try cluster.get("/api/chat/canvas/projects/\(id)/files?cursor=\(cursor)", user)
                    .status == 400, "\(cursor.prefix(10))")
        }
        // `/a`, a path: files after it.
        #expect(
            try cluster.get("/api/chat/canvas/projects/\(id)/files?cursor=L2E", user).status
                == 200)
    }

    @Test func fileOverTheLimitIsRefusedWith413WhileLargeFilesFit() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        // 1.5 MiB: above the gateway's 1 MiB default body limit, accepted on this route.
        let large = String(repeating: "a", count: 3 << 19)
        let accepted = try cluster.post(
            "/api/chat/canvas/files", user,
            #"{"projectId":"\#(id)","path":"big.txt","content":"\#(large)"}"#)
        #expect(accepted.status == 201)
        #expect(accepted["size"] == .int64(Int64(3 << 19)))
        let tooLarge = String(repeating: "é", count: 1 << 20 + 1)
        let refused = try cluster.post(
            "/api/chat/canvas/files", user,
            #"{"projectId":"\#(id)","path":"huge.txt","content":"\#(tooLarge)"}"#)
        #expect(refused.status == 413)
        #expect(refused.errorFields == ["content"])
        #expect(try cluster.listFiles(user, id).count == 1)
    }

    // MARK: ownership and ids

    @Test func otherUsersGetNotFoundOnEveryCanvasRoute() throws {
        let owner = cluster.newUser()
        let intruder = cluster.newUser()
        let id = try cluster.createProject(owner)
        let file = try cluster.createFile(owner, id, "index.html", "<h1>mine</h1>")
        let fileId = try #require(file["fileId"]?.stringValue)
        let historyId = try cluster.generate(owner, id, ["prompt": "Owner's page"])
        _ = try cluster.finishedHistory(owner, historyId)

        let calls: [(String, String, String?)] = [
            ("GET", "/api/chat/canvas/projects/\(id)", nil),
            ("PUT", "/api/chat/canvas/projects/\(id)", #"{"name":"mine now"}"#),
            ("DELETE", "/api/chat/canvas/projects/\(id)", nil),
            ("GET", "/api/chat/canvas/projects/\(id)/files", nil),
            ("GET", "/api/chat/canvas/projects/\(id)/export", nil),
            ("GET", "/api/chat/canvas/projects/\(id)/history", nil),
            ("POST", "/api/chat/canvas/projects/\(id)/generate", #"{"prompt":"x"}"#),
            ("POST", "/api/chat/canvas/projects/\(id)/rollback", #"{"historyId":"\#(historyId)"}"#),
            ("GET", "/api/chat/canvas/files/\(fileId)", nil),
            ("PUT", "/api/chat/canvas/files/\(fileId)", #"{"content":"x"}"#),
            ("DELETE", "/api/chat/canvas/files/\(fileId)", nil),
            (
                "POST", "/api/chat/canvas/files",
                #"{"projectId":"\#(id)","path":"x.html","content":"x"}"#
            ),
            ("GET", "/api/chat/canvas/history/\(historyId)", nil),
        ]
        for (method, path, body) in calls {
            let result = try HTTPClient.send(
                cluster, method, path, token: intruder.token, body: body)
            #expect(result.status == 404, "\(method) \(path): \(result.status)")
            #expect(result.errorCode == "not_found")
            let anonymous = try HTTPClient.send(cluster, method, path, body: body)
            #expect(anonymous.status == 401, "\(method) \(path)")
            let forged = try HTTPClient.send(
                cluster, method, path, token: owner.token + "x", body: body)
            #expect(forged.status == 401, "\(method) \(path)")
        }
        let project = try cluster.get("/api/chat/canvas/projects/\(id)", owner)
        #expect(project["name"]?.stringValue == "Modern SaaS Landing Page")
        #expect(try cluster.fileContent(owner, id, path: "/index.html")?.contains("Owner") == true)
        #expect(
            try cluster.get("/api/chat/canvas/projects/\(id)/history", owner)["items"]?.arrayValue?
                .count == 1)
    }

    @Test func malformedIdsGetNotFoundNeverServerErrors() throws {
        let user = cluster.newUser()
        let ids = [
            "abc", "1", "-1", "aaaaaaaaaaaa", "zzzzzzzzzzzzzzzzzzzzzzzz",
            String(repeating: "a", count: 23),
            String(repeating: "a", count: 25), "000000000000000000000000", "%00", "a%2Fb", "null",
            "undefined",
            "%24where", String(repeating: "x", count: 10_000),
        ]
        for id in ids {
            for (method, path) in [
                ("GET", "/api/chat/canvas/projects/\(id)"),
                ("DELETE", "/api/chat/canvas/projects/\(id)"),
                ("GET", "/api/chat/canvas/projects/\(id)/files"),
                ("GET", "/api/chat/canvas/files/\(id)"),
                ("GET", "/api/chat/canvas/history/\(id)"),
                ("GET", "/api/chat/canvas/projects/\(id)/export"),
            ] {
                let result = try HTTPClient.send(cluster, method, path, token: user.token)
                let allowed = id.count > 2000 ? [404, 414] : [404]
                #expect(
                    allowed.contains(result.status),
                    "\(method) \(path.prefix(60)): \(result.status)")
                #expect(result.document?["error"] != nil)
            }
        }
    }

    // MARK: generation

    @Test func generationAnswers202AndCompletesWithTheTemplateSite() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let accepted = try cluster.post(
            "/api/chat/canvas/projects/\(id)/generate", user,
            #"{"prompt":"Launch Orbit Analytics in minutes. Then grow."}"#)
        #expect(accepted.status == 202)
        #expect(accepted["status"]?.stringValue == "pending")
        #expect(accepted.document?.value(at: "metadata.provider")?.stringValue == "template")
        let historyId = try #require(accepted["historyId"]?.stringValue)

        let done = try cluster.finishedHistory(user, historyId)
        #expect(done["status"]?.stringValue == "completed")
        #expect(done["error"] == .null)
        #expect(done.value(at: "result.filesGenerated") == .int64(4))
        #expect(done.value(at: "metadata.tokens") == .int64(0))
        #expect(done.value(at: "metadata.tokensEstimated") == .bool(false))
        #expect((done.value(at: "result.duration")?.intValue ?? -1) >= 0)
        #expect(done["run"] == nil && done["runCount"] == nil)

        let files = try cluster.listFiles(user, id)
        #expect(
            Set(files.compactMap { $0["path"]?.stringValue })
                == ["/index.html", "/styles.css", "/app.js", "/README.md"])
        let total = files.compactMap { $0["size"]?.intValue }.reduce(0, +)
        #expect(done.value(at: "result.totalSize")?.intValue == total)
        let project = try cluster.get("/api/chat/canvas/projects/\(id)", user)
        #expect(project.document?.value(at: "stats.totalSize")?.intValue == total)
        #expect(project.document?.value(at: "stats.filesGenerated") == .int64(4))
        for file in files {
            let read = try cluster.get(
                "/api/chat/canvas/files/\(file["fileId"]?.stringValue ?? "")", user)
            let content = try #require(read["content"]?.stringValue)
            #expect(Crypto.sha256Hex(Array(content.utf8)) == file["checksum"]?.stringValue)
            #expect(Int64(content.utf8.count) == file["size"]?.intValue)
        }
        let html = try #require(try cluster.fileContent(user, id, path: "/index.html"))
        #expect(html.contains("<h1 id=\"headline\">Launch Orbit Analytics in minutes</h1>"))
        let history = try cluster.get("/api/chat/canvas/projects/\(id)/history", user)
        #expect(
            history["items"]?.arrayValue?.first?.documentValue?["historyId"]?.stringValue
                == historyId)
    }

    @Test func eachTemplateBuildsItsOwnLayoutFromTheSettings() throws {
        let user = cluster.newUser()
        let layouts: [(String, String, Document, [String])] = [
            ("SaaS Landing", "Landing", ["theme": "dark"], ["id=\"pricing\"", "data-demo-form"]),
            ("Portfolio", "Design", ["responsive": false], ["Selected work", "thumb-6"]),
            ("My blog", "Blog", ["animations": false], ["data-post", "post-search"]),
            ("Admin", "Dashboard", ["theme": "auto"], ["id=\"chart\"", "data-sortable"]),
        ]
        for (template, category, settings, marks) in layouts {
            let id = try cluster.createProject(
                user, template: template, category: category, settings: settings)
            let done = try cluster.finishedHistory(
                user, try cluster.generate(user, id, ["prompt": "Hello <world> & co"]))
            #expect(done["status"]?.stringValue == "completed")
            let html = try #require(try cluster.fileContent(user, id, path: "/index.html"))
            let css = try #require(try cluster.fileContent(user, id, path: "/styles.css"))
            for mark in marks { #expect(html.contains(mark), "\(template): \(mark)") }
            #expect(html.contains("Hello &lt;world&gt; &amp; co"))
            #expect(html.hasPrefix("<!DOCTYPE html>"))
            #expect(css.contains("--bg: #0f1117") == (settings["theme"] != nil))
            #expect(css.contains("prefers-color-scheme") == (settings["theme"] == "auto"))
            #expect(css.contains("@media (max-width") == (settings["responsive"] == nil))
            #expect(css.contains("@keyframes") == (settings["animations"] == nil))
            let readme = try #require(try cluster.fileContent(user, id, path: "/README.md"))
            #expect(readme.contains("> Hello <world> & co"))
        }
    }

    @Test func generatedIndexRendersInHeadlessChromium() throws {
        let chromium = "/usr/bin/chromium"
        try #require(
            FileManager.default.isExecutableFile(atPath: chromium),
            "chromium is missing: run scripts/install-deps.sh (Debian package chromium)")
        let user = cluster.newUser()
        for (template, category) in [("SaaS Landing", "Landing"), ("Dashboard", "Analytics")] {
            let id = try cluster.createProject(user, template: template, category: category)
            let prompt = "Ship \(template) pages with Orbit"
            _ = try cluster.finishedHistory(
                user, try cluster.generate(user, id, ["prompt": .string(prompt)]))
            let dir = try temporaryDirectory("uc-site")
            defer { try? FileManager.default.removeItem(at: dir) }
            for path in ["/index.html", "/styles.css", "/app.js"] {
                let content = try #require(try cluster.fileContent(user, id, path: path))
                try content.write(
                    to: dir.appendingPathComponent(String(path.dropFirst())), atomically: true,
                    encoding: .utf8)
            }
            let profile = try temporaryDirectory("uc-chromium")
            defer { try? FileManager.default.removeItem(at: profile) }
            let (status, dom) = try runProgram(
                chromium,
                [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--user-data-dir=\(profile.path)",
                    "--virtual-time-budget=2000", "--dump-dom",
                    dir.appendingPathComponent("index.html").absoluteString,
                ])
            #expect(status == 0)
            #expect(dom.contains("<h1 id=\"headline\">\(prompt)</h1>"), "\(dom.prefix(400))")
            // app.js ran: it marks the document and fills in the footer year or the chart.
            #expect(dom.contains("class=\"js\""))
            if template == "Dashboard" {
                #expect(dom.components(separatedBy: "class=\"bar\"").count == 7)
            }
        }
    }

    @Test func exportIsAZipOfTheProjectFiles() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user, name: "Export me: now!")
        _ = try cluster.finishedHistory(user, try cluster.generate(user, id, ["prompt": "Zip it"]))
        _ = try cluster.createFile(user, id, "assets/notes é.txt", "notes")
        let files = try cluster.listFiles(user, id)

        let export = try cluster.get("/api/chat/canvas/projects/\(id)/export", user)
        #expect(export.status == 200)
        #expect(export.headers["content-type"] == "application/zip")
        #expect(
            export.headers["content-disposition"] == "attachment; filename=\"Export-me-now.zip\"")
        #expect(export.body.starts(with: [0x50, 0x4B, 0x03, 0x04]))
        let dir = try temporaryDirectory("uc-zip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let zip = dir.appendingPathComponent("export.zip")
        try Data(export.body).write(to: zip)
        let script = """
            import hashlib, json, sys, zipfile
            z = zipfile.ZipFile(sys.argv[1])
            assert z.testzip() is None
            print(json.dumps({n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}))
            """
        let (status, output) = try runProgram("/usr/bin/python3", ["-c", script, zip.path])
        #expect(status == 0)
        let listing = try #require(try? JSONParser.parseObject(Array(output.utf8)))
        #expect(listing.count == files.count)
        for file in files {
            let name = String((file["path"]?.stringValue ?? "").dropFirst())
            #expect(listing[name]?.stringValue == file["checksum"]?.stringValue, "\(name)")
        }
        let empty = try cluster.get(
            "/api/chat/canvas/projects/\(try cluster.createProject(user))/export", user)
        #expect(empty.status == 200 && empty.body.count == 22)
    }

    @Test func rollbackRestoresTheFilesOfAnEarlierGeneration() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let first = try cluster.generate(user, id, ["prompt": "First headline"])
        _ = try cluster.finishedHistory(user, first)
        let afterFirst = try cluster.listFiles(user, id)
        _ = try cluster.createFile(user, id, "extra.txt", "added later")
        let second = try cluster.generate(user, id, ["prompt": "Second headline"])
        _ = try cluster.finishedHistory(user, second)
        #expect(
            try cluster.fileContent(user, id, path: "/index.html")?.contains("Second headline")
                == true)

        let rolled = try cluster.post(
            "/api/chat/canvas/projects/\(id)/rollback", user, #"{"historyId":"\#(first)"}"#)
        #expect(rolled.status == 200)
        #expect(rolled["filesRemoved"] == .int64(1))
        let restored = try cluster.listFiles(user, id)
        #expect(
            Set(restored.compactMap { $0["checksum"]?.stringValue })
                == Set(afterFirst.compactMap { $0["checksum"]?.stringValue }))
        #expect(
            try cluster.fileContent(user, id, path: "/index.html")?.contains("First headline")
                == true)
        let project = try cluster.get("/api/chat/canvas/projects/\(id)", user)
        #expect(project.document?.value(at: "stats.filesGenerated") == .int64(4))
        #expect(
            project.document?.value(at: "stats.totalSize")?.intValue
                == restored.compactMap { $0["size"]?.intValue }.reduce(0, +))
        #expect(rolled["stats"] == project["stats"])

        let forward = try cluster.post(
            "/api/chat/canvas/projects/\(id)/rollback", user, #"{"historyId":"\#(second)"}"#)
        #expect(forward.status == 200)
        #expect(try cluster.fileContent(user, id, path: "/extra.txt") == "added later")
        let before = try cluster.post(
            "/api/chat/canvas/projects/\(id)/rollback", user,
            #"{"historyId":"\#(first)","state":"before"}"#)
        #expect(before.status == 200)
        #expect(try cluster.listFiles(user, id).isEmpty)

        let unknown = try cluster.post(
            "/api/chat/canvas/projects/\(id)/rollback", user, #"{"historyId":"hist-x"}"#)
        #expect(unknown.status == 404)
        let otherProject = try cluster.createProject(user)
        let elsewhere = try cluster.post(
            "/api/chat/canvas/projects/\(otherProject)/rollback", user,
            #"{"historyId":"\#(first)"}"#)
        #expect(elsewhere.status == 404)
        #expect(
            try cluster.post("/api/chat/canvas/projects/\(id)/rollback", user, "{}").errorFields
                == ["historyId"])
    }

    /// `/x` and `/x/y` written at the same moment: at most one of them is kept, never both.
    @Test func aFileAndAFolderWrittenAtOnceAreNeverBothKept() throws {
        let user = cluster.newUser()
        for round in 0..<12 {
            let id = try cluster.createProject(user, name: "race \(round)")
            parallel(2) { index in
                _ = try? cluster.post(
                    "/api/chat/canvas/files", user,
                    #"{"projectId":"\#(id)","path":"\#(index == 0 ? "x" : "x/y")","content":""}"#)
            }
            let paths = try cluster.listFiles(user, id).compactMap { $0["path"]?.stringValue }
            #expect(!(paths.contains("/x") && paths.contains("/x/y")), "round \(round)")
            let project = try cluster.get("/api/chat/canvas/projects/\(id)", user)
            #expect(
                project.document?.value(at: "stats.filesGenerated")?.intValue
                    == Int64(paths.count), "round \(round)")
        }
    }

    /// A rollback takes out the files its version lacks before it writes its own, so a folder
    /// made since where the version has a file (`/index.html/x.md`) does not block it.
    @Test func rollbackRestoresAFileWhereAFolderWasMadeSince() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let first = try cluster.generate(user, id, ["prompt": "First headline"])
        _ = try cluster.finishedHistory(user, first)
        let index = try #require(
            try cluster.listFiles(user, id).first { $0["path"]?.stringValue == "/index.html" })
        let indexId = try #require(index["fileId"]?.stringValue)
        #expect(try cluster.delete("/api/chat/canvas/files/\(indexId)", user).status == 200)
        _ = try cluster.createFile(user, id, "index.html/x.md", "in the way")

        let rolled = try cluster.post(
            "/api/chat/canvas/projects/\(id)/rollback", user, #"{"historyId":"\#(first)"}"#)
        #expect(rolled.status == 200, "\(rolled.text)")
        let paths = try cluster.listFiles(user, id).compactMap { $0["path"]?.stringValue }
        #expect(paths.contains("/index.html") && !paths.contains("/index.html/x.md"))
    }

    @Test func generateValidatesThePromptAndTheProvider() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let path = "/api/chat/canvas/projects/\(id)/generate"
        #expect(try cluster.post(path, user, "{}").errorFields == ["prompt"])
        #expect(try cluster.post(path, user, #"{"prompt":"   "}"#).errorFields == ["prompt"])
        #expect(try cluster.post(path, user, #"{"prompt":7}"#).errorFields == ["prompt"])
        #expect(
            try cluster.post(path, user, #"{"prompt":"x","provider":"gpt"}"#).errorFields == [
                "provider"
            ])
        let unconfigured = try cluster.post(path, user, #"{"prompt":"x","provider":"anthropic"}"#)
        #expect(unconfigured.status == 400 && unconfigured.errorFields == ["provider"])
        #expect(unconfigured.text.contains("not configured"))
        #expect(
            try cluster.post(path, user, #"{"prompt":"x","temperature":1}"#).errorFields == [
                "temperature"
            ])
        let long = String(repeating: "p", count: 10_001)
        #expect(try cluster.post(path, user, #"{"prompt":"\#(long)"}"#).errorFields == ["prompt"])
        #expect(
            try cluster.get("/api/chat/canvas/projects/\(id)/history", user)["items"]?.arrayValue?
                .isEmpty == true)
    }

    @Test func retriedGenerateWithTheSameKeyRunsOnce() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let headers = ["Idempotency-Key": "gen-\(UUID().uuidString)"]
        let path = "/api/chat/canvas/projects/\(id)/generate"
        let first = try cluster.post(path, user, #"{"prompt":"Once"}"#, headers: headers)
        let again = try cluster.post(path, user, #"{"prompt":"Once"}"#, headers: headers)
        #expect(first.status == 202 && again.status == 202)
        #expect(first["historyId"] == again["historyId"])
        _ = try cluster.finishedHistory(user, first["historyId"]?.stringValue ?? "")
        #expect(
            try cluster.get("/api/chat/canvas/projects/\(id)/history", user)["items"]?.arrayValue?
                .count == 1)
    }

    @Test func aJobDeliveredAgainAfterItEndedDoesNotRunAgain() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let historyId = try cluster.generate(user, id, ["prompt": "Only once"])
        let done = try cluster.finishedHistory(user, historyId)
        let filesBefore = try cluster.listFiles(user, id)
        let redis = cluster.redis()
        let added = try redis.run([
            "XADD", "uc:jobs:canvas", "*", "historyId", RedisArgument(historyId), "projectId",
            RedisArgument(id),
            "user", RedisArgument(user.id.hex),
        ])
        let entryId = try #require(added.text)
        // The duplicate is read, found finished, acknowledged and removed from the stream.
        let end = Date().addingTimeInterval(5)
        var remaining = 1
        while Date() < end {
            let range = try redis.run([
                "XRANGE", "uc:jobs:canvas", RedisArgument(entryId), RedisArgument(entryId),
            ])
            remaining = range.array?.count ?? -1
            if remaining == 0 { break }
            usleep(50_000)
        }
        #expect(remaining == 0)
        #expect(
            try cluster.get("/api/chat/canvas/history/\(historyId)", user)["updatedAt"]
                == done["updatedAt"])
        let filesAfter = try cluster.listFiles(user, id)
        #expect(filesAfter.map { $0["updatedAt"] } == filesBefore.map { $0["updatedAt"] })
    }

    @Test func staleUnfinishedJobIsFailedAndFreesTheProject() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        // A job whose stream entry was lost: pending since an hour ago, holding the project.
        let pool = try MongoPool(uri: cluster.mongoURI, appName: "canvas-test")
        let historyId = "hist-lost-\(UUID().uuidString.prefix(8))"
        let hourAgo = Timestamp(milliseconds: Timestamp.now().milliseconds - 3_600_000)
        try pool.collection("chat_canvas_history").insertOne([
            "historyId": .string(historyId), "projectId": .string(id), "userId": .objectId(user.id),
            "prompt": "lost", "status": "pending", "result": .null, "error": .null,
            "metadata": ["provider": "template", "model": "static-site-v1"],
            "createdAt": .date(hourAgo),
            "updatedAt": .date(hourAgo),
        ])
        let until = Timestamp(milliseconds: Timestamp.now().milliseconds + 3_600_000)
        try pool.collection("chat_canvas_projects").updateOne(
            ["projectId": .string(id)],
            ["$set": ["lock": ["id": .string(historyId), "until": .date(until)]]])
        #expect(
            try cluster.post("/api/chat/canvas/projects/\(id)/generate", user, #"{"prompt":"x"}"#)
                .status == 409)

        let failed = try cluster.finishedHistory(user, historyId, seconds: 20)
        #expect(failed["status"]?.stringValue == "failed")
        #expect(failed["error"]?.stringValue?.contains("did not finish") == true)
        let next = try cluster.generate(user, id, ["prompt": "Works again"])
        #expect(try cluster.finishedHistory(user, next)["status"]?.stringValue == "completed")
    }

    @Test func deletingAProjectDeletesItsFilesAndHistory() throws {
        let user = cluster.newUser()
        let id = try cluster.createProject(user)
        let historyId = try cluster.generate(user, id, ["prompt": "Soon gone"])
        _ = try cluster.finishedHistory(user, historyId)
        let files = try cluster.listFiles(user, id)
        #expect(files.count == 4)
        let deleted = try cluster.delete("/api/chat/canvas/projects/\(id)", user)
        #expect(deleted.status == 200)
        #expect(deleted["filesDeleted"] == .int64(4) && deleted["historyDeleted"] == .int64(1))
        #expect(try cluster.get("/api/chat/canvas/projects/\(id)", user).status == 404)
        #expect(try cluster.get("/api/chat/canvas/history/\(historyId)", user).status == 404)
        for file in files {
            #expect(
                try cluster.get("/api/chat/canvas/files/\(file["fileId"]?.stringValue ?? "")", user)
                    .status == 404)
        }
        #expect(try cluster.get("/api/chat/canvas/projects/\(id)/files", user).status == 404)
        #expect(try cluster.delete("/api/chat/canvas/projects/\(id)", user).status == 404)
    }
}
