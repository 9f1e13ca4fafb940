import Bus
import Core
import Foundation
import MongoKit
import Testing

@Suite("Agents catalog and the active-sessions view")
struct AgentsTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    @Test func defaultCatalogHasTheSpecExampleAgentWithEveryField() throws {
        let user = cluster.newUser()
        let result = try cluster.get("/api/agents/einstein", user)
        #expect(result.status == 200)
        let agent = try #require(result.document)
        #expect(agent["id"]?.stringValue.flatMap { ObjectId(hex: $0) } != nil)
        #expect(agent["_id"] == nil)
        #expect(agent["ratingEvents"] == nil && agent["ratingSum"] == nil)
        #expect(agent["agentId"]?.stringValue == "einstein")
        #expect(agent["name"]?.stringValue == "Albert Einstein")
        #expect(agent["avatar"]?.stringValue == "🧠")
        #expect(agent["temperature"]?.doubleValue == 0.4)
        #expect(agent["maxTokens"]?.intValue == 2000)
        #expect(agent["isActive"] == .bool(true) && agent["isPublic"] == .bool(true))
        #expect(agent["isPremium"] == .bool(false))
        #expect(agent.value(at: "pricing.monthly")?.doubleValue == 75)
        #expect(agent["features"]?.arrayValue?.count == 3)
        #expect(agent["capabilities"]?.arrayValue?.count == 2)
        #expect(
            agent["limitations"]?.arrayValue?.first?.stringValue == "modern technology references")
        #expect(
            agent["examples"]?.arrayValue?.first?.documentValue?["input"]?.stringValue
                == "Explain relativity")
        #expect(agent.value(at: "config.tone")?.stringValue == "wise and patient")
        #expect(agent.value(at: "providerConfig.primaryProvider")?.stringValue == "openai")
        let fallback = agent.value(at: "providerConfig.fallbackProviders")?.arrayValue?.first?
            .documentValue
        #expect(fallback?["provider"]?.stringValue == "anthropic")
        #expect(fallback?["priority"]?.intValue == 1)
        #expect(agent.value(at: "providerConfig.personalityMatch.technical")?.intValue == 10)
        #expect(
            agent.value(at: "providerConfig.systemPrompt")?.stringValue
                == "You are Albert Einstein...")
        for key in ["totalInteractions", "totalUsers", "averageRating", "totalRatings"] {
            #expect(agent.value(at: "stats.\(key)") != nil)
        }
        #expect(
            agent["creator"]?.stringValue == "system" && agent["version"]?.stringValue == "1.0.0")
        #expect(agent["createdAt"]?.stringValue?.hasSuffix("Z") == true)

        let byId = try cluster.get("/api/agents/\(agent["id"]?.stringValue ?? "")", user)
        #expect(byId.status == 200 && byId["agentId"]?.stringValue == "einstein")
    }

    @Test func seedingAgainOnRestartKeepsOneAgentPerSlugAndAdminEdits() throws {
        let own = try Cluster(services: Routes.services)
        defer { own.shutdown() }
        let admin = own.admin()
        let edited = try own.put("/api/agents/einstein", admin, #"{"name":"Einstein (edited)"}"#)
        #expect(edited.status == 200)
        try own.stop("sessions")
        try own.startService("sessions")
        try own.waitUntilReady()
        let after = try own.get("/api/agents/einstein", admin)
        #expect(after["name"]?.stringValue == "Einstein (edited)")
        let agents = try own.mongo().collection("agents")
        #expect(try agents.find(["agentId": "einstein"]).count == 1)
        #expect(try agents.find([:]).count == AgentCatalogSize.defaults)
    }

    @Test func listShowsActivePublicAgentsFilteredByCategoryAndTagInPages() throws {
        let admin = cluster.admin()
        let user = cluster.newUser()
        let category = uniqueWord("cat")
        let tag = uniqueWord("tag")
        var visible: [String] = []
        for name in ["Alpha", "Bravo", "Charlie"] {
            let extra: Document = ["category": .string(category), "tags": [.string(tag)]]
            visible.append(try cluster.createAgent(admin, name: name, extra: extra).slug)
        }
        _ = try cluster.createAgent(
            admin, name: "Delta", extra: ["category": .string(category), "isActive": false])
        _ = try cluster.createAgent(
            admin, name: "Echo", extra: ["category": .string(category), "isPublic": false])
        _ = try cluster.createAgent(admin, name: "Foxtrot", extra: ["tags": [.string(tag)]])

        var seen: [String] = []
        var cursor: String?
        repeat {
            let path =
                "/api/agents?category=\(category)&limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
            let page = try cluster.get(path, user)
            #expect(page.status == 200)
            #expect(page.items.count <= 2)
            seen += page.items.compactMap { $0["agentId"]?.stringValue }
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        #expect(seen == visible)

        let tagged = try cluster.get("/api/agents?tag=\(tag)", user)
        #expect(tagged.items.count == 4)
        #expect(try cluster.get("/api/agents?limit=0", user).status == 400)
        #expect(try cluster.get("/api/agents?limit=101", user).status == 400)
        #expect(try cluster.get("/api/agents?color=red", user).status == 400)
        #expect(try cluster.get("/api/agents", nil).status == 401)
    }

    @Test func inactiveAndPrivateAgentsAreHiddenFromUsersButNotAdmins() throws {
        let admin = cluster.admin()
        let user = cluster.newUser()
        let hidden = try cluster.createAgent(admin, extra: ["isPublic": false])
        #expect(try cluster.get("/api/agents/\(hidden.slug)", user).status == 404)
        #expect(try cluster.get("/api/agents/\(hidden.slug)", admin).status == 200)
        #expect(try cluster.get("/api/agents/no-such-agent", user).status == 404)
        #expect(try cluster.get("/api/agents/\(ObjectId().hex)", user).status == 404)
        #expect(try cluster.get("/api/agents/%24gt", user).status == 404)
    }

    @Test func onlyAdminsMayCreateChangeOrDeleteAgents() throws {
        let user = cluster.newUser()
        let body = #"{"agentId":"not-allowed","name":"Nope"}"#
        let created = try cluster.post("/api/agents", user, body)
        #expect(created.status == 403)
        #expect(created.errorCode == "forbidden")
        #expect(try cluster.put("/api/agents/einstein", user, #"{"name":"Hacked"}"#).status == 403)
        #expect(try cluster.delete("/api/agents/einstein", user).status == 403)
        #expect(try cluster.post("/api/agents", nil, body).status == 401)
        #expect(try cluster.get("/api/agents/einstein", user)["name"]?.stringValue != "Hacked")
        #expect(try cluster.get("/api/agents/not-allowed", cluster.admin()).status == 404)
    }

    @Test func agentFieldRulesApplyOnCreateAndUpdate() throws {
        let admin = cluster.admin()
        let (slug, _) = try cluster.createAgent(admin)
        let bad: [(String, String)] = [
            (#"{"temperature":"0.5"}"#, "temperature"),
            (#"{"temperature":2.5}"#, "temperature"),
            (#"{"maxTokens":4001}"#, "maxTokens"),
            (#"{"maxTokens":1.5}"#, "maxTokens"),
            (#"{"isActive":"yes"}"#, "isActive"),
            (#"{"name":{"$gt":""}}"#, "name"),
            (#"{"name":12345}"#, "name"),
            (#"{"tags":"science"}"#, "tags"),
            (#"{"pricing":{"daily":-1}}"#, "pricing.daily"),
            (#"{"config":{"mood":"x"}}"#, "config.mood"),
            (#"{"providerConfig":{"primaryProvider":"nope"}}"#, "providerConfig.primaryProvider"),
            (
                #"{"providerConfig":{"personalityMatch":{"humor":11}}}"#,
                "providerConfig.personalityMatch.humor"
            ),
            (
                #"{"providerConfig":{"fallbackProviders":[{"provider":"openai","priority":1}]}}"#,
                "providerConfig.fallbackProviders[0].model"
            ),
            (#"{"examples":[{"input":"x"}]}"#, "examples[0].output"),
            (#"{"stats":{"totalRatings":5}}"#, "stats"),
            (#"{"color":"red"}"#, "color"),
        ]
        for (body, field) in bad {
            let update = try cluster.put("/api/agents/\(slug)", admin, body)
            #expect(update.status == 400, "PUT \(body)")
            #expect(update.errorFields.contains(field), "PUT \(body): \(update.errorFields)")
            var created = try #require(try? parseObject(body))
            created["agentId"] = .string("x-\(UUID().uuidString.prefix(8).lowercased())")
            if created["name"] == nil { created["name"] = "Some name" }
            let create = try cluster.post("/api/agents", admin, json(created))
            #expect(create.status == 400, "POST \(body)")
            #expect(create.errorFields.contains(field), "POST \(body): \(create.errorFields)")
        }
        for slugText in ["Einstein", "a", "x y", "507f1f77bcf86cd799439011", "-dash"] {
            let result = try cluster.post(
                "/api/agents", admin, json(["agentId": .string(slugText), "name": "N"]))
            #expect(result.status == 400 && result.errorFields == ["agentId"], "slug \(slugText)")
        }
        #expect(
            try cluster.post("/api/agents", admin, #"{"agentId":"no-name-agent"}"#).errorFields == [
                "name"
            ])
        #expect(
            try cluster.put("/api/agents/\(slug)", admin, #"{"agentId":"other"}"#).errorFields == [
                "agentId"
            ])

        let hundred = String(repeating: "😀", count: 100)
        #expect(
            try cluster.put("/api/agents/\(slug)", admin, json(["name": .string(hundred)])).status
                == 200)
        #expect(try cluster.get("/api/agents/\(slug)", admin)["name"]?.stringValue == hundred)
        let tooLong = try cluster.put(
            "/api/agents/\(slug)", admin, json(["name": .string(hundred + "😀")]))
        #expect(tooLong.status == 400)
        #expect(
            try cluster.put("/api/agents/\(slug)", admin, #"{"maxTokens":4000.0}"#).status == 200)
    }

    @Test func updateMergesNestedObjectsKeyByKeyAndReplacesArrays() throws {
        let admin = cluster.admin()
        let extra: Document = [
            "config": ["personality": "calm", "tone": "warm"],
            "providerConfig": [
                "primaryProvider": "openai", "personalityMatch": ["humor": 3, "technical": 9],
                "fallbackProviders": [["provider": "groq", "model": "llama", "priority": 2]],
            ],
            "pricing": ["daily": 1, "weekly": 5],
            "tags": ["one", "two"],
        ]
        let (slug, id) = try cluster.createAgent(admin, extra: extra)
        let result = try cluster.put(
            "/api/agents/\(id)", admin,
            #"{"config":{"tone":"dry"},"providerConfig":{"personalityMatch":{"humor":8}},"#
                + #""tags":["three"]}"#
        )
        #expect(result.status == 200)
        #expect(result["updatedAt"]?.stringValue.flatMap { Timestamp(iso8601: $0) } != nil)
        let agent = try #require(try cluster.get("/api/agents/\(slug)", admin).document)
        #expect(agent.value(at: "config.tone")?.stringValue == "dry")
        #expect(agent.value(at: "config.personality")?.stringValue == "calm")
        #expect(agent.value(at: "providerConfig.personalityMatch.humor")?.intValue == 8)
        #expect(agent.value(at: "providerConfig.personalityMatch.technical")?.intValue == 9)
        #expect(agent.value(at: "providerConfig.primaryProvider")?.stringValue == "openai")
        #expect(agent.value(at: "providerConfig.fallbackProviders")?.arrayValue?.count == 1)
        #expect(agent.value(at: "pricing.weekly")?.doubleValue == 5)
        #expect(agent["tags"] == ["three"])
        #expect(agent["agentId"]?.stringValue == slug)
    }

    @Test func deletedAgentIsHiddenAndKeepsItsSlug() throws {
        let admin = cluster.admin()
        let user = cluster.newUser()
        let (slug, id) = try cluster.createAgent(admin)
        let deleted = try cluster.delete("/api/agents/\(slug)", admin)
        #expect(deleted.status == 200 && deleted["deleted"] == .bool(true))
        #expect(try cluster.get("/api/agents/\(slug)", user).status == 404)
        #expect(try cluster.get("/api/agents/\(id)", admin).status == 404)
        #expect(try cluster.put("/api/agents/\(slug)", admin, #"{"name":"Back"}"#).status == 404)
        #expect(try cluster.delete("/api/agents/\(slug)", admin).status == 404)
        let again = try cluster.post(
            "/api/agents", admin, json(["agentId": .string(slug), "name": "Again"]))
        #expect(again.status == 409)
    }

    @Test func retriedCreateWithTheSameIdempotencyKeyAnswersTheFirstReply() throws {
        let admin = cluster.admin()
        let slug = uniqueWord("idem")
        let body = json(["agentId": .string(slug), "name": "Once"])
        let key = ["Idempotency-Key": UUID().uuidString]
        let first = try cluster.post("/api/agents", admin, body, headers: key)
        let second = try cluster.post("/api/agents", admin, body, headers: key)
        #expect(first.status == 201 && second.status == 201)
        #expect(first["id"] == second["id"])
        let agents = try cluster.mongo().collection("agents")
        #expect(try agents.find(["agentId": .string(slug)]).count == 1)
    }

    @Test func activeViewIsTheSpecProjectionWithAgentNamesJoined() throws {
        let user = cluster.newUser()
        let other = cluster.newUser()
        let einstein = try #require(
            try cluster.get("/api/agents/einstein", user)["id"]?.stringValue)
        let idle = try cluster.createSession(user, agentId: einstein)
        let plain = try cluster.createSession(user, agentId: nil)
        let withAgent = try cluster.createSession(user, agentId: einstein)
        #expect(
            try cluster.put("/api/chat/sessions/\(idle)", user, #"{"isActive":false}"#).status
                == 200)
        _ = try cluster.createSession(other, agentId: einstein)
        _ = try cluster.appendMessage(user, withAgent, "hello", tokens: 7)

        let view = try cluster.get("/api/chat/sessions?view=active", user)
        #expect(view.status == 200)
        let items = view.items
        #expect(items.compactMap { $0["sessionId"]?.stringValue } == [withAgent, plain])
        #expect(items.first?.keys == ["sessionId", "name", "agentName", "stats", "updatedAt"])
        #expect(items.first?["agentName"]?.stringValue == "Albert Einstein")
        #expect(items.first?.value(at: "stats.messageCount")?.intValue == 1)
        #expect(items.last?["agentName"] == .null)

        let first = try cluster.get("/api/chat/sessions?view=active&limit=1", user)
        let cursor = try #require(first["nextCursor"]?.stringValue)
        let second = try cluster.get(
            "/api/chat/sessions?view=active&limit=1&cursor=\(cursor)", user)
        #expect(second.items.compactMap { $0["sessionId"]?.stringValue } == [plain])
        #expect(first.items.compactMap { $0["sessionId"]?.stringValue } == [withAgent])
        #expect(second["nextCursor"] == .null)

        #expect(try cluster.get("/api/chat/sessions?view=everything", user).status == 400)
        #expect(try cluster.get("/api/chat/sessions?view=active&tag=x", user).status == 400)
        #expect(try cluster.get("/api/chat/sessions", user).items.count == 3)
    }
}

/// How many agents the default catalog seeds.
enum AgentCatalogSize {
    static let defaults = 3
}

/// Parses a JSON object for a test body.
func parseObject(_ text: String) throws -> Document {
    guard let doc = HTTPResult(status: 0, headers: [:], body: Array(text.utf8)).document else {
        throw ClusterError(description: "not a JSON object: \(text)")
    }
    return doc
}
