import Core
import Foundation
import JSONKit
import MongoKit
import Synchronization
import Testing

@Suite("Chat settings over HTTP")
struct SettingsTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    static func defaults(for user: TestUser) -> Document {
        [
            "userId": .string(user.id.hex), "theme": "auto", "fontSize": "medium",
            "notifications": [
                "messageReceived": true, "agentResponses": true, "systemUpdates": false,
            ],
            "autoSave": true, "defaultAgent": nil,
            "quickActions": ["enabled": true, "favorites": []],
            "privacy": ["saveHistory": true, "allowAnalytics": true, "shareConversations": false],
            "accessibility": [
                "highContrast": false, "reducedMotion": false, "screenReader": false,
            ],
            "temperature": 0.7, "maxTokens": 2000, "mode": "balanced", "provider": "mistral",
            "model": nil, "createdAt": nil, "updatedAt": nil,
        ]
    }

    /// Counted with `find`: the stand-in's `count` fails on any ObjectId in its filter.
    func storedCount(_ user: TestUser) throws -> Int {
        try cluster.mongo().collection("chat_settings").find(["userId": .objectId(user.id)]).count
    }

    @Test func newUserGetsTheDefaultsAndNothingIsStored() throws {
        let user = cluster.newUser()
        let result = try cluster.get("/api/chat/settings", user)
        #expect(result.status == 200)
        #expect(result.document == SettingsTests.defaults(for: user))
        #expect(try storedCount(user) == 0)
        let unknownQuery = try cluster.get("/api/chat/settings?userId=\(ObjectId().hex)", user)
        #expect(unknownQuery.status == 400)
    }

    /// Case C03 step 4: PUT merges; fields left out keep their values.
    @Test func partialUpdateKeepsUntouchedFields() throws {
        let user = cluster.newUser()
        let first = try cluster.put(
            "/api/chat/settings", user,
            #"{"temperature":1.2,"maxTokens":900,"mode":"coding","provider":"groq","theme":"dark"}"#
        )
        #expect(first.status == 200)
        let second = try cluster.put("/api/chat/settings", user, #"{"temperature":0.5}"#)
        #expect(second.status == 200)
        for result in [second, try cluster.get("/api/chat/settings", user)] {
            #expect(result["temperature"] == .double(0.5))
            #expect(result["maxTokens"] == .int64(900))
            #expect(result["mode"]?.stringValue == "coding")
            #expect(result["provider"]?.stringValue == "groq")
            #expect(result["theme"]?.stringValue == "dark")
            #expect(result["fontSize"]?.stringValue == "medium")
        }
        #expect(try storedCount(user) == 1)
    }

    @Test func nestedObjectsMergeKeyByKey() throws {
        let user = cluster.newUser()
        for body in [
            #"{"notifications":{"systemUpdates":true},"privacy":{"shareConversations":true}}"#,
            #"{"notifications":{"messageReceived":false},"accessibility":{"reducedMotion":true}}"#,
            #"{"quickActions":{"enabled":false}}"#,
            #"{"quickActions":{"favorites":["explain","code","explain"]}}"#,
        ] {
            #expect(try cluster.put("/api/chat/settings", user, body).status == 200, "\(body)")
        }
        let result = try cluster.get("/api/chat/settings", user)
        let doc = try #require(result.document)
        #expect(
            doc["notifications"] == [
                "messageReceived": false, "agentResponses": true, "systemUpdates": true,
            ])
        #expect(
            doc["privacy"] == [
                "saveHistory": true, "allowAnalytics": true, "shareConversations": true,
            ])
        #expect(
            doc["accessibility"] == [
                "highContrast": false, "reducedMotion": true, "screenReader": false,
            ])
        #expect(doc["quickActions"] == ["enabled": false, "favorites": ["explain", "code"]])
        #expect(doc["createdAt"]?.stringValue?.hasSuffix("Z") == true)
        #expect(doc["updatedAt"]?.stringValue?.hasSuffix("Z") == true)
    }

    /// Case C04 step 3 (a brand-new user, so a first save would insert) plus wrong types and
    /// operator objects (C08): 400 naming the field, and nothing is stored.
    @Test func invalidValuesAreRefusedOnTheFirstSaveAndStoreNothing() throws {
        let user = cluster.newUser()
        let cases: [(String, String)] = [
            (#"{"temperature":2.5}"#, "temperature"), (#"{"temperature":-0.1}"#, "temperature"),
            (#"{"maxTokens":0}"#, "maxTokens"), (#"{"maxTokens":4001}"#, "maxTokens"),
            (#"{"mode":"turbo"}"#, "mode"), (#"{"provider":"OpenAI"}"#, "provider"),
            (#"{"provider":"azure"}"#, "provider"), (#"{"temperature":"0.5"}"#, "temperature"),
            (#"{"maxTokens":100.5}"#, "maxTokens"), (#"{"temperature":{"$gt":0}}"#, "temperature"),
            (#"{"theme":"blue"}"#, "theme"), (#"{"theme":null}"#, "theme"),
            (#"{"fontSize":1}"#, "fontSize"), (#"{"autoSave":"true"}"#, "autoSave"),
            (#"{"defaultAgent":"not-an-id"}"#, "defaultAgent"),
            (#"{"defaultAgent":{"$oid":"507f1f77bcf86cd799439013"}}"#, "defaultAgent"),
            (#"{"notifications":{"push":true}}"#, "notifications.push"),
            (#"{"notifications":{"messageReceived":"yes"}}"#, "notifications.messageReceived"),
            (#"{"notifications":true}"#, "notifications"),
            (#"{"quickActions":{"favorites":"explain"}}"#, "quickActions.favorites"),
            (#"{"quickActions":{"favorites":["no-such-action"]}}"#, "quickActions.favorites"),
            (#"{"userId":"\#(ObjectId().hex)"}"#, "userId"), (#"{"createdAt":"x"}"#, "createdAt"),
            (#"{"model":"\#(String(repeating: "m", count: 101))"}"#, "model"),
            (#"{"theme":"dark","temperature":3}"#, "temperature"),
        ]
        for (body, field) in cases {
            let result = try cluster.put("/api/chat/settings", user, body)
            #expect(result.status == 400, "\(body)")
            #expect(result.errorFields.contains(field), "\(body): \(result.errorFields)")
        }
        let after = try cluster.get("/api/chat/settings", user)
        #expect(after.document == SettingsTests.defaults(for: user))
        #expect(try storedCount(user) == 0)
    }

    /// Case C04 step 4: the boundaries are valid and are stored exactly, not as defaults.
    @Test func boundaryValuesAreStoredExactly() throws {
        let user = cluster.newUser()
        #expect(
            try cluster.put("/api/chat/settings", user, #"{"temperature":0,"maxTokens":1}"#).status
                == 200)
        var result = try cluster.get("/api/chat/settings", user)
        #expect(result["temperature"]?.doubleValue == 0)
        #expect(result["maxTokens"] == .int64(1))
        #expect(
            try cluster.put("/api/chat/settings", user, #"{"temperature":2,"maxTokens":4000}"#)
                .status == 200)
        result = try cluster.get("/api/chat/settings", user)
        #expect(result["temperature"]?.doubleValue == 2)
        #expect(result["maxTokens"] == .int64(4000))
        #expect(try cluster.put("/api/chat/settings", user, #"{"maxTokens":3999.0}"#).status == 200)
        #expect(try cluster.get("/api/chat/settings", user)["maxTokens"] == .int64(3999))
    }

    /// Case C21: numbers come back as plain JSON, without driver wrappers.
    @Test func settingsNumbersArePlainJSON() throws {
        let user = cluster.newUser()
        #expect(
            try cluster.put("/api/chat/settings", user, #"{"temperature":0.7,"maxTokens":4000}"#)
                .status == 200)
        let result = try cluster.get("/api/chat/settings", user)
        #expect(result.text.contains(#""temperature":0.7,"#))
        #expect(result.text.contains(#""maxTokens":4000,"#))
        #expect(result["temperature"] == .double(0.7))
        #expect(result["maxTokens"] == .int64(4000))
        #expect(result["userId"] == .string(user.id.hex))
        for wrapper in [
            "$oid", "$date", "$numberInt", "$numberLong", "$numberDouble", "0.700000", "_id", "__v",
        ] {
            #expect(!result.text.contains(wrapper), "\(wrapper)")
        }
    }

    @Test func defaultAgentMustNameAnAgentTheUserCanUseAndNullClearsIt() throws {
        let user = cluster.newUser()
        for unknown in [ObjectId().hex, "000000000000000000000000"] {
            let refused = try cluster.put(
                "/api/chat/settings", user, #"{"defaultAgent":"\#(unknown)"}"#)
            #expect(refused.status == 400)
            #expect(refused.errorFields == ["defaultAgent"])
        }
        #expect(try cluster.get("/api/chat/settings", user)["defaultAgent"] == .null)

        let catalog = try cluster.get("/api/agents", user)
        let agent = try #require(
            catalog["items"]?.arrayValue?.first?.documentValue?["id"]?.stringValue)
        let set = try cluster.put(
            "/api/chat/settings", user, #"{"defaultAgent":"\#(agent)","model":"mistral-large"}"#)
        #expect(set["defaultAgent"]?.stringValue == agent)
        #expect(set["model"]?.stringValue == "mistral-large")
        let cleared = try cluster.put(
            "/api/chat/settings", user, #"{"defaultAgent":null,"model":null}"#)
        #expect(cleared.status == 200)
        #expect(cleared["defaultAgent"] == .null)
        #expect(cleared["model"] == .null)
    }

    @Test func aDefaultAgentDeletedOrHiddenLaterIsNoLongerShown() throws {
        let admin = cluster.admin()
        let user = cluster.newUser()
        let hidden = try cluster.createAgent(admin)
        let deleted = try cluster.createAgent(admin)
        func choose(_ agent: String, as chooser: TestUser) throws {
            let chosen = try cluster.put(
                "/api/chat/settings", chooser, #"{"defaultAgent":"\#(agent)"}"#)
            #expect(chosen.status == 200 && chosen["defaultAgent"]?.stringValue == agent)
        }

        try choose(hidden.id, as: user)
        let made = try cluster.put("/api/agents/\(hidden.slug)", admin, #"{"isPublic":false}"#)
        #expect(made.status == 200)
        #expect(try cluster.get("/api/chat/settings", user)["defaultAgent"] == .null)
        // The admin still sees the hidden agent, so it can stay their default.
        try choose(hidden.id, as: admin)
        let adminView = try cluster.get("/api/chat/settings", admin)
        #expect(adminView["defaultAgent"]?.stringValue == hidden.id)

        try choose(deleted.id, as: user)
        #expect(try cluster.delete("/api/agents/\(deleted.slug)", admin).status == 200)
        let after = try cluster.get("/api/chat/settings", user)
        #expect(after.status == 200 && after["defaultAgent"] == .null)
        // A PUT of another field answers the same way.
        let changed = try cluster.put("/api/chat/settings", user, #"{"theme":"dark"}"#)
        #expect(changed["theme"]?.stringValue == "dark" && changed["defaultAgent"] == .null)
    }

    /// With the agent catalog gone, reading settings shows the stored default agent and
    /// does not wait the whole check time on every read (which held every settings worker).
    @Test func settingsStillReadWellWhenTheAgentCatalogIsDown() throws {
        let own = try Cluster(services: ["sessions", "settings"])
        defer { own.shutdown() }
        let user = own.newUser()
        let agent = try firstCatalogAgent(own, user)
        let chosen = try own.put("/api/chat/settings", user, #"{"defaultAgent":"\#(agent)"}"#)
        #expect(chosen["defaultAgent"]?.stringValue == agent)

        try own.stop("sessions", signal: SIGKILL)
        let started = Date()
        for _ in 0..<10 {
            let read = try own.get("/api/chat/settings", user)
            #expect(read.status == 200 && read["defaultAgent"]?.stringValue == agent)
        }
        // Ten waits of the 2 s a change may spend on the check would be 20 s.
        let took = Date().timeIntervalSince(started)
        #expect(took < 8, "ten reads took \(took) s")
    }

    /// With the agent catalog hung, a change of the default agent answers 503 without each one
    /// waiting for it: after two checks went unanswered the next fail at once, so a few clients
    /// cannot hold every settings worker (logins queued behind them). Once the catalog is
    /// back, one check goes through and changes work again.
    @Test func changesFailFastWhileTheAgentCatalogIsHungAndRecoverAfter() throws {
        let own = try Cluster(services: ["sessions", "settings"])
        defer { own.shutdown() }
        let user = own.newUser()
        let agent = try firstCatalogAgent(own, user)
        let change = #"{"defaultAgent":"\#(agent)"}"#

        own.send("sessions", signal: SIGSTOP)
        defer { own.send("sessions", signal: SIGCONT) }
        #expect(try own.put("/api/chat/settings", user, change).status == 503)
        let started = Date()
        for _ in 0..<10 {
            #expect(try own.put("/api/chat/settings", user, change).status == 503)
        }
        // Ten waits of the 2 s a check may take would be 20 s.
        let took = Date().timeIntervalSince(started)
        #expect(took < 8, "ten changes took \(took) s")
        #expect(try own.get("/api/chat/quick-actions", user).status == 200)

        own.send("sessions", signal: SIGCONT)
        #expect(
            eventually(seconds: 15) {
                (try? own.put("/api/chat/settings", user, change).status) == 200
            })
    }

    /// The id of the first agent of the catalog `user` sees.
    private func firstCatalogAgent(_ cluster: Cluster, _ user: TestUser) throws -> String {
        try #require(
            try cluster.get("/api/agents", user)["items"]?.arrayValue?.first?
                .documentValue?["id"]?.stringValue)
    }

    /// A custom quick action of `user`; its id.
    private func createAction(_ user: TestUser, label: String) throws -> String {
        let created = try cluster.post(
            "/api/chat/quick-actions", user,
            json([
                "label": .string(label), "prompt": "Do: ", "category": "General",
                "icon": "StarIcon",
            ]))
        return try #require(created["actionId"]?.stringValue)
    }

    @Test func favoritesMayOnlyNameActionsTheUserCanUse() throws {
        let owner = cluster.newUser()
        let other = cluster.newUser()
        let mine = try createAction(owner, label: "Mine")
        let own = try cluster.put(
            "/api/chat/settings", owner, #"{"quickActions":{"favorites":["summarize","\#(mine)"]}}"#
        )
        #expect(own.status == 200)
        #expect(own.document?.value(at: "quickActions.favorites") == ["summarize", .string(mine)])
        let foreign = try cluster.put(
            "/api/chat/settings", other, #"{"quickActions":{"favorites":["summarize","\#(mine)"]}}"#
        )
        #expect(foreign.status == 400)
        #expect(foreign.errorFields == ["quickActions.favorites"])
        #expect(try storedCount(other) == 0)
    }

    @Test func aDeletedFavoriteIsNoLongerListed() throws {
        let user = cluster.newUser()
        let gone = try createAction(user, label: "Gone")
        let saved = try cluster.put(
            "/api/chat/settings", user,
            #"{"quickActions":{"favorites":["\#(gone)","summarize"]}}"#)
        let listed = saved.document?.value(at: "quickActions.favorites")
        #expect(listed == [.string(gone), "summarize"])

        #expect(try cluster.delete("/api/chat/quick-actions/\(gone)", user).status == 200)
        let read = try cluster.get("/api/chat/settings", user)
        #expect(read.document?.value(at: "quickActions.favorites") == ["summarize"])
        let other = try cluster.put("/api/chat/settings", user, #"{"theme":"dark"}"#)
        #expect(other.document?.value(at: "quickActions.favorites") == ["summarize"])
        #expect(other["theme"] == "dark")
    }

    @Test func concurrentFirstSavesGiveOneDocument() throws {
        let user = cluster.newUser()
        let bodies = [
            #"{"theme":"dark"}"#, #"{"fontSize":"large"}"#, #"{"autoSave":false}"#,
            #"{"temperature":1.5}"#, #"{"maxTokens":1234}"#, #"{"mode":"fast"}"#,
            #"{"provider":"xai"}"#, #"{"model":"grok"}"#,
            #"{"notifications":{"systemUpdates":true}}"#, #"{"privacy":{"allowAnalytics":false}}"#,
            #"{"accessibility":{"screenReader":true}}"#, #"{"quickActions":{"enabled":false}}"#,
        ]
        let statuses = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: bodies.count) { index in
            let status = (try? cluster.put("/api/chat/settings", user, bodies[index]))?.status ?? -1
            statuses.withLock { $0.append(status) }
        }
        #expect(statuses.withLock { $0 } == Array(repeating: 200, count: bodies.count))
        #expect(try storedCount(user) == 1)
        let doc = try #require(try cluster.get("/api/chat/settings", user).document)
        #expect(doc["theme"] == "dark" && doc["fontSize"] == "large" && doc["autoSave"] == false)
        #expect(doc["temperature"] == .double(1.5) && doc["maxTokens"] == .int64(1234))
        #expect(doc["mode"] == "fast" && doc["provider"] == "xai" && doc["model"] == "grok")
        #expect(doc.value(at: "notifications.systemUpdates") == true)
        #expect(doc.value(at: "privacy.allowAnalytics") == false)
        #expect(doc.value(at: "accessibility.screenReader") == true)
        #expect(doc.value(at: "quickActions.enabled") == false)
    }

    /// Case C20, the settings part: under concurrent reads and writes every caller sees only
    /// their own marker (temperature k/10, maxTokens 100k), and nothing answers 5xx.
    @Test func concurrentCallersOnlyEverSeeTheirOwnSettings() throws {
        let users = (1...10).map { _ in cluster.newUser() }
        @Sendable func marker(_ k: Int) -> String {
            json(["temperature": .double(Double(k) / 10), "maxTokens": .int64(Int64(100 * k))])
        }
        for (k, user) in zip(1..., users) {
            #expect(try cluster.put("/api/chat/settings", user, marker(k)).status == 200)
        }
        let problems = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 50) { worker in
            for step in 0..<8 {
                let k = (worker * 7 + step * 3) % users.count + 1
                let user = users[k - 1]
                do {
                    let result =
                        step % 2 == 0
                        ? try cluster.get("/api/chat/settings", user)
                        : try cluster.put("/api/chat/settings", user, marker(k))
                    let ok =
                        result.status == 200
                        && result["temperature"]?.doubleValue == Double(k) / 10
                        && result["maxTokens"] == .int64(Int64(100 * k))
                        && result["userId"] == .string(user.id.hex)
                    if !ok {
                        problems.withLock { $0.append("\(k): \(result.status) \(result.text)") }
                    }
                } catch {
                    problems.withLock { $0.append("\(k): \(error)") }
                }
            }
        }
        #expect(problems.withLock { $0 }.isEmpty)
    }
}
