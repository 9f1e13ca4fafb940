import Core
import Foundation
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
        #expect(created["userId"]?.stringValue == user.id.hex)
        #expect(created["_id"] == nil)

        let list = try cluster.get("/api/chat/sessions", user)
        #expect(list.status == 200)
        let ids = list["items"]?.arrayValue?.compactMap { $0.documentValue?["sessionId"]?.stringValue }
        #expect(ids == [created["sessionId"]?.stringValue].compactMap { $0 })
        #expect(list["nextCursor"] == .null)
    }
}
