import Bus
import Core
import Foundation
import JSONKit
import MongoKit
import Synchronization
import Testing

@Suite("Quick actions over HTTP")
struct QuickActionsTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    static let defaultIds = [
        "explain", "summarize", "code", "translate", "brainstorm", "proofread",
    ]

    func create(_ user: TestUser, label: String = "Mine", category: String = "General") throws
        -> String
    {
        let body = json([
            "label": .string(label), "prompt": "Do this: ", "category": .string(category),
            "icon": "StarIcon",
        ])
        let result = try cluster.post("/api/chat/quick-actions", user, body)
        guard result.status == 201, let id = result["actionId"]?.stringValue else {
            throw ClusterError(description: "create quick action: \(result.status) \(result.text)")
        }
        return id
    }

    func listAll(_ user: TestUser, query: String = "") throws -> [Document] {
        var items: [Document] = []
        var cursor: String?
        repeat {
            var path = "/api/chat/quick-actions?limit=2\(query)"
            if let cursor { path += "&cursor=\(cursor)" }
            let page = try cluster.get(path, user)
            guard page.status == 200 else {
                throw ClusterError(description: "list: \(page.status) \(page.text)")
            }
            items += (page["items"]?.arrayValue ?? []).compactMap(\.documentValue)
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        return items
    }

    @Test func defaultsAreSeededAcrossTheSpecsCategories() throws {
        let user = cluster.newUser()
        let result = try cluster.get("/api/chat/quick-actions?limit=100", user)
        #expect(result.status == 200)
        let items = (result["items"]?.arrayValue ?? []).compactMap(\.documentValue)
        let defaults = items.filter { $0["isDefault"] == true }
        let ids = Set(defaults.compactMap { $0["actionId"]?.stringValue })
        #expect(ids.isSuperset(of: QuickActionsTests.defaultIds))
        let categories = Set(defaults.compactMap { $0["category"]?.stringValue })
        #expect(categories == ["Learning", "Creative", "Technical", "Utility", "General"])
        for item in defaults {
            #expect(item["label"]?.stringValue?.isEmpty == false)
            #expect(item["prompt"]?.stringValue?.isEmpty == false)
            #expect(item["icon"]?.stringValue?.isEmpty == false)
            #expect(item["usageCount"]?.intValue != nil)
            #expect(item["_id"] == nil)
        }
    }

    @Test func createdActionBelongsToTheCallerOnly() throws {
        let owner = cluster.newUser()
        let other = cluster.newUser()
        let result = try cluster.post(
            "/api/chat/quick-actions", owner,
            #"{"label":"Haiku","prompt":"Write a haiku about: ","category":"Creative","icon":"SparklesIcon"}"#
        )
        #expect(result.status == 201)
        let id = try #require(result["actionId"]?.stringValue)
        #expect(id.hasPrefix("qa-"))
        #expect(result["createdBy"]?.stringValue == owner.id.hex)
        #expect(result["isDefault"] == false && result["isActive"] == true)
        #expect(result["usageCount"] == .int64(0))
        #expect(try listAll(owner).contains { $0["actionId"]?.stringValue == id })
        #expect(try !listAll(other).contains { $0["actionId"]?.stringValue == id })
    }

    /// Another user's action answers 404 on every route, exactly as if it did not exist.
    @Test func anotherUsersActionIsNotFound() throws {
        let owner = cluster.newUser()
        let other = cluster.newUser()
        let id = try create(owner, label: "Private")
        let path = "/api/chat/quick-actions/\(id)"
        #expect(try cluster.put(path, other, #"{"label":"Taken"}"#).status == 404)
        #expect(try cluster.delete(path, other).status == 404)
        #expect(try cluster.post(path + "/use", other, "").status == 404)
        #expect(
            try cluster.put("/api/chat/quick-actions/qa-does-not-exist", other, "{}").status == 404)
        let mine = try listAll(owner).first { $0["actionId"]?.stringValue == id }
        #expect(mine?["label"]?.stringValue == "Private")
        #expect(mine?["usageCount"] == .int64(0))
    }

    /// Defaults are visible to everyone, so refusing a non-admin says 403.
    @Test func onlyAnAdminChangesDefaults() throws {
        let user = cluster.newUser()
        #expect(
            try cluster.put("/api/chat/quick-actions/explain", user, #"{"label":"Mine now"}"#)
                .status == 403)
        #expect(try cluster.delete("/api/chat/quick-actions/explain", user).status == 403)
        let admin = cluster.newUser(role: "admin")
        let same = try cluster.put(
            "/api/chat/quick-actions/explain", admin, #"{"icon":"AcademicCapIcon"}"#)
        #expect(same.status == 200)
        #expect(same["label"]?.stringValue == "Explain this")
        let users = try create(user, label: "Moderated")
        #expect(
            try cluster.put("/api/chat/quick-actions/\(users)", admin, #"{"label":"Edited"}"#)
                .status == 200)
        #expect(try cluster.delete("/api/chat/quick-actions/\(users)", admin).status == 200)
        #expect(try cluster.put("/api/chat/quick-actions/\(users)", user, "{}").status == 404)
    }

    /// Case C05: limits count code points, in raw UTF-8 and in escaped surrogate pairs.
    @Test func labelAndPromptLimitsCountCharacters() throws {
        let user = cluster.newUser()
        func body(label: String, prompt: String, ascii: Bool) -> String {
            let doc: Document = [
                "label": .string(label), "prompt": .string(prompt), "category": "General",
                "icon": "FaceSmileIcon",
            ]
            guard ascii else { return json(doc) }
            var out = ""
            for scalar in json(doc).unicodeScalars {
                if scalar.isASCII {
                    out.unicodeScalars.append(scalar)
                } else {
                    for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }
                }
            }
            return out
        }
        let fifty = String(repeating: "😀", count: 50)
        let prompt500 = String(repeating: "𠀋", count: 500)
        for ascii in [false, true] {
            let ok = try cluster.post(
                "/api/chat/quick-actions", user, body(label: fifty, prompt: prompt500, ascii: ascii)
            )
            #expect(ok.status == 201)
            #expect(ok["label"]?.stringValue == fifty)
            #expect(ok["prompt"]?.stringValue == prompt500)
            let longLabel = try cluster.post(
                "/api/chat/quick-actions", user, body(label: fifty + "😀", prompt: "p", ascii: ascii)
            )
            #expect(longLabel.status == 400)
            #expect(longLabel.errorFields == ["label"])
            let longPrompt = try cluster.post(
                "/api/chat/quick-actions", user,
                body(label: "l", prompt: prompt500 + "𠀋", ascii: ascii))
            #expect(longPrompt.status == 400)
            #expect(longPrompt.errorFields == ["prompt"])
        }
        let id = try create(user)
        let path = "/api/chat/quick-actions/\(id)"
        let updated = try cluster.put(path, user, json(["label": .string(fifty)]))
        #expect(updated.status == 200)
        #expect(updated["label"]?.stringValue == fifty)
        let tooLong = try cluster.put(path, user, json(["label": .string(fifty + "😀")]))
        #expect(tooLong.status == 400)
        #expect(tooLong.errorFields == ["label"])
        let stored = try listAll(user).first { $0["actionId"]?.stringValue == id }
        #expect(stored?["label"]?.stringValue == fifty)
    }

    @Test(arguments: [
        (#"{"label":"L","prompt":"P","category":"General"}"#, "icon"),
        (#"{"label":"L","prompt":"P","icon":"I"}"#, "category"),
        (#"{"label":"L","prompt":"P","category":"general","icon":"I"}"#, "category"),
        (#"{"label":"","prompt":"P","category":"General","icon":"I"}"#, "label"),
        (#"{"label":{"$gt":""},"prompt":"P","category":"General","icon":"I"}"#, "label"),
        (#"{"label":"L","prompt":12,"category":"General","icon":"I"}"#, "prompt"),
        (
            #"{"label":"L","prompt":"P","category":"General","icon":"I","isDefault":true}"#,
            "isDefault"
        ),
        (
            #"{"label":"L","prompt":"P","category":"General","icon":"I","actionId":"explain"}"#,
            "actionId"
        ),
        (
            #"{"label":"L","prompt":"P","category":"General","icon":"I","usageCount":9}"#,
            "usageCount"
        ),
    ])
    func createRulesNameTheField(body: String, field: String) throws {
        let result = try cluster.post("/api/chat/quick-actions", cluster.newUser(), body)
        #expect(result.status == 400)
        #expect(result.errorFields.contains(field))
    }

    @Test func updateIsPartialAndIsActiveHidesAndRestores() throws {
        let user = cluster.newUser()
        let id = try create(user, label: "Before", category: "Technical")
        let path = "/api/chat/quick-actions/\(id)"
        let renamed = try cluster.put(path, user, #"{"label":"After"}"#)
        #expect(renamed.status == 200)
        #expect(renamed["label"]?.stringValue == "After")
        #expect(renamed["prompt"]?.stringValue == "Do this: ")
        #expect(renamed["category"]?.stringValue == "Technical")
        for (body, field) in [
            (#"{"label":null}"#, "label"), (#"{"category":"Nope"}"#, "category"),
            (#"{"isActive":"no"}"#, "isActive"),
            (#"{"createdBy":"\#(ObjectId().hex)"}"#, "createdBy"),
        ] {
            let result = try cluster.put(path, user, body)
            #expect(result.status == 400, "\(body)")
            #expect(result.errorFields == [field], "\(body)")
        }
        #expect(try cluster.put(path, user, #"{"isActive":false}"#)["isActive"] == false)
        #expect(try !listAll(user).contains { $0["actionId"]?.stringValue == id })
        #expect(try cluster.post(path + "/use", user, "").status == 404)
        #expect(try cluster.put(path, user, #"{"isActive":true}"#)["isActive"] == true)
        #expect(try listAll(user).contains { $0["actionId"]?.stringValue == id })
    }

    @Test func deleteRemovesTheOwnersAction() throws {
        let user = cluster.newUser()
        let id = try create(user)
        let path = "/api/chat/quick-actions/\(id)"
        let deleted = try cluster.delete(path, user)
        #expect(deleted.status == 200)
        #expect(deleted["deleted"] == true)
        #expect(try cluster.delete(path, user).status == 404)
        #expect(try cluster.put(path, user, "{}").status == 404)
        #expect(try cluster.post(path + "/use", user, "").status == 404)
    }

    @Test func useCountsEveryCallExactlyOnce() throws {
        let user = cluster.newUser()
        let id = try create(user)
        let statuses = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 20) { _ in
            let result = try? cluster.post("/api/chat/quick-actions/\(id)/use", user, "")
            statuses.withLock { $0.append(result?.status ?? -1) }
        }
        #expect(statuses.withLock { $0 } == Array(repeating: 200, count: 20))
        let key = ["Idempotency-Key": "use-\(UUID().uuidString)"]
        let retried = try (0..<2).map { _ in
            try cluster.post("/api/chat/quick-actions/\(id)/use", user, "", headers: key)
        }
        #expect(retried.map(\.status) == [200, 200])
        #expect(retried[0]["usageCount"] == .int64(21))
        #expect(retried[1]["usageCount"] == .int64(21))
        let stored = try listAll(user).first { $0["actionId"]?.stringValue == id }
        #expect(stored?["usageCount"] == .int64(21))
    }

    @Test func listingSortsByLabelOrUsageAndPagesWithoutRepeats() throws {
        let user = cluster.newUser()
        let zeta = try create(user, label: "zeta")
        let alpha = try create(user, label: "alpha")
        for _ in 0..<3 {
            #expect(
                try cluster.post("/api/chat/quick-actions/\(alpha)/use", user, "").status == 200)
        }
        let byLabel = try listAll(user, query: "&sort=label")
        let labels = byLabel.compactMap { $0["label"]?.stringValue }
        #expect(
            labels
                == labels.sorted {
                    Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes(
                        $1.unicodeScalars.map(\.value))
                })
        let ids = byLabel.compactMap { $0["actionId"]?.stringValue }
        #expect(Set(ids).count == ids.count)
        #expect(Set(ids).isSuperset(of: QuickActionsTests.defaultIds + [zeta, alpha]))

        let byUsage = try cluster.get("/api/chat/quick-actions?limit=100", user)
        let order = (byUsage["items"]?.arrayValue ?? []).compactMap {
            $0.documentValue?["actionId"]?.stringValue
        }
        let counts = (byUsage["items"]?.arrayValue ?? []).compactMap {
            $0.documentValue?["usageCount"]?.intValue
        }
        #expect(counts == counts.sorted(by: >))
        let alphaIndex = try #require(order.firstIndex(of: alpha))
        let zetaIndex = try #require(order.firstIndex(of: zeta))
        #expect(alphaIndex < zetaIndex)

        let creative = try listAll(user, query: "&category=Creative")
        #expect(!creative.isEmpty)
        #expect(creative.allSatisfy { $0["category"]?.stringValue == "Creative" })
    }

    @Test func badListQueriesAre400() throws {
        let user = cluster.newUser()
        let page = try cluster.get("/api/chat/quick-actions?limit=1&sort=usage", user)
        let usageCursor = try #require(page["nextCursor"]?.stringValue)
        for (query, field) in [
            ("sort=popular", "sort"), ("limit=0", "limit"), ("limit=101", "limit"),
            ("category=Nope", "category"), ("cursor=garbage", "cursor"),
            ("sort=label&cursor=\(usageCursor)", "cursor"), ("createdBy=x", "createdBy"),
        ] {
            let result = try cluster.get("/api/chat/quick-actions?\(query)", user)
            #expect(result.status == 400, "\(query)")
            #expect(result.errorFields == [field], "\(query)")
        }
    }
}

/// Seeding at start with its own cluster, since it restarts the service and changes defaults.
@Suite("Quick action seeding")
struct QuickActionSeedingTests {
    @Test func seedingIsIdempotentAndKeepsAdminChanges() throws {
        let cluster = try Cluster(services: Routes.services, environment: ["BCRYPT_COST": "4"])
        defer { cluster.shutdown() }
        let admin = cluster.newUser(role: "admin")
        let user = cluster.newUser()
        #expect(try cluster.delete("/api/chat/quick-actions/proofread", admin).status == 200)
        #expect(try cluster.post("/api/chat/quick-actions/code/use", user, "").status == 200)
        #expect(
            try cluster.put("/api/chat/quick-actions/translate", admin, #"{"label":"Traduire"}"#)
                .status == 200)

        try cluster.stop("settings")
        try cluster.startService("settings")
        try cluster.waitUntilReady()

        let actions = try cluster.mongo().collection("chat_quick_actions")
        #expect(try actions.count(["isDefault": true]) == QuickActionsTests.defaultIds.count)
        let listed = try cluster.get("/api/chat/quick-actions?limit=100", user)
        let items = (listed["items"]?.arrayValue ?? []).compactMap(\.documentValue)
        let byId = Dictionary(
            uniqueKeysWithValues: items.compactMap { item in
                item["actionId"]?.stringValue.map { ($0, item) }
            })
        #expect(byId["proofread"] == nil)
        #expect(byId["code"]?["usageCount"] == .int64(1))
        #expect(byId["translate"]?["label"]?.stringValue == "Traduire")
        #expect(try cluster.post("/api/chat/quick-actions/proofread/use", user, "").status == 404)

        let restored = try cluster.put(
            "/api/chat/quick-actions/proofread", admin, #"{"isActive":true}"#)
        #expect(restored.status == 200)
        #expect(try cluster.post("/api/chat/quick-actions/proofread/use", user, "").status == 200)
    }
}
