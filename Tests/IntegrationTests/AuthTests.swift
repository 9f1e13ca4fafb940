import Bus
import Core
import Crypt
import Foundation
import JSONKit
import MongoKit
import Testing

@Suite("Accounts and login over HTTP")
struct AuthTests {
    let cluster: Cluster

    init() throws { cluster = try Cluster.sharedCluster() }

    @Test func registerAnswersTokensTheGatewayAcceptsAndNeverTheHash() throws {
        let email = Cluster.uniqueEmail("Reg")
        let result = try cluster.post(
            "/api/auth/register", nil,
            #"{"email":"\#(email)","name":"John Doe","password":"correct horse"}"#)
        #expect(result.status == 201)
        #expect(result["tokenType"]?.stringValue == "Bearer")
        #expect(result["expiresIn"]?.intValue == 900)
        #expect(result["refreshToken"]?.stringValue?.hasPrefix("rt_") == true)
        #expect(result.document?.value(at: "user.email")?.stringValue == email)
        #expect(result.document?.value(at: "user.avatar")?.stringValue == "JD")
        #expect(result.document?.value(at: "user.role")?.stringValue == "user")
        for leak in ["\"password\":", "$2b$", "emailLower", "registeredBy", "\"_id\""] {
            #expect(!result.text.contains(leak), "\(leak)")
        }

        let access = try #require(result["accessToken"]?.stringValue)
        let claims = try #require(jwtPayload(access))
        let now = Int64(Date().timeIntervalSince1970)
        let exp = try #require(claims["exp"]?.intValue)
        #expect(exp > now + 840 && exp <= now + 901)
        #expect(claims["role"]?.stringValue == "user")

        let me = try HTTPClient.send(cluster, "GET", "/api/me", token: access)
        #expect(me.status == 200)
        #expect(me["email"]?.stringValue == email)
        #expect(me["userId"]?.stringValue == claims["sub"]?.stringValue)
        #expect(!me.text.contains("\"password\":") && !me.text.contains("$2b$"))
    }

    @Test func duplicateEmailInAnyLetterCaseIsAConflict() throws {
        let base = "Mixed.Case-\(UUID().uuidString.prefix(8))@Example.com"
        _ = try cluster.register(email: base)
        for variant in [base.lowercased(), base.uppercased(), base] {
            let result = try cluster.post(
                "/api/auth/register", nil,
                json(["email": .string(variant), "name": "Other", "password": "another password"]))
            #expect(result.status == 409, "\(variant)")
            #expect(result.errorCode == "conflict")
        }
        let login = try cluster.login(base.uppercased(), "correct horse battery")
        #expect(login.status == 200)
    }

    @Test func wrongPasswordAndUnknownEmailGetTheSame401() throws {
        let account = try cluster.register()
        let wrong = try cluster.login(account.email, "not the password")
        let unknown = try cluster.login(Cluster.uniqueEmail("nobody"), "not the password")
        #expect(wrong.status == 401)
        #expect(unknown.status == 401)
        #expect(wrong.text == unknown.text)
        let right = try cluster.login(account.email, account.password)
        #expect(right.status == 200)
        #expect(right.document?.value(at: "user.lastLoginAt")?.stringValue != nil)
    }

    @Test(arguments: [
        (#"{"email":"a@b.co","name":"N","password":"short"}"#, "password"),
        (
            #"{"email":"a@b.co","name":"N","password":"\#(String(repeating: "é", count: 37))"}"#,
            "password"
        ),
        (#"{"email":"a@b.co","name":"N","password":12345678}"#, "password"),
        (#"{"email":"not-an-email","name":"N","password":"long enough"}"#, "email"),
        (#"{"email":{"$gt":""},"name":"N","password":"long enough"}"#, "email"),
        (#"{"email":"a@b.co","password":"long enough"}"#, "name"),
        (#"{"email":"a@b.co","name":"  ","password":"long enough"}"#, "name"),
        (#"{"email":"a@b.co","name":"N","password":"long enough","role":"admin"}"#, "role"),
    ])
    func registrationRulesNameTheField(body: String, field: String) throws {
        let result = try cluster.post("/api/auth/register", nil, body)
        #expect(result.status == 400)
        #expect(result.errorFields.contains(field))
    }

    @Test func operatorObjectsInLoginAreRefused() throws {
        let result = try cluster.post(
            "/api/auth/login", nil, #"{"email":{"$gt":""},"password":{"$gt":""}}"#)
        #expect(result.status == 400)
        #expect(Set(result.errorFields).isSuperset(of: ["email", "password"]))
    }

    @Test func expiredTamperedAndForeignTokensAre401() throws {
        let account = try cluster.register()
        let now = Int64(Date().timeIntervalSince1970)
        let expired = JWT(secret: Cluster.secret).sign(
            TokenClaims(userId: account.user.id, role: "user", expiresAt: now - 5))
        let foreign = JWT(secret: "some-other-secret").sign(
            TokenClaims(userId: account.user.id, role: "admin", expiresAt: now + 600))
        let parts = account.user.token.split(separator: ".").map(String.init)
        var claims = try #require(jwtPayload(account.user.token))
        claims["role"] = "admin"
        let forgedPayload = Base64URL.encode(JSONWriter.bytes(.document(claims)))
        let tampered = [parts[0], forgedPayload, parts[2]].joined(separator: ".")
        let header = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let unsigned = "\(header).\(parts[1])."

        for token in [expired, foreign, tampered, unsigned, account.user.token + "x"] {
            for path in ["/api/me", "/api/chat/settings", "/api/chat/quick-actions"] {
                let result = try HTTPClient.send(cluster, "GET", path, token: token)
                #expect(result.status == 401, "\(path)")
            }
        }
        #expect(try cluster.get("/api/me", account.user).status == 200)
    }

    @Test func refreshRotatesAndReuseRevokesTheFamily() throws {
        let account = try cluster.register()
        let otherDevice = try cluster.login(account.email, account.password)
        let otherRefresh = try #require(otherDevice["refreshToken"]?.stringValue)

        let first = try cluster.refresh(account.refreshToken)
        #expect(first.status == 200)
        let rotated = try #require(first["refreshToken"]?.stringValue)
        let access = try #require(first["accessToken"]?.stringValue)
        #expect(rotated != account.refreshToken)
        #expect(try HTTPClient.send(cluster, "GET", "/api/me", token: access).status == 200)

        let reused = try cluster.refresh(account.refreshToken)
        #expect(reused.status == 401)
        #expect(try cluster.refresh(rotated).status == 401)

        #expect(try cluster.refresh(otherRefresh).status == 200)
        #expect(try cluster.refresh("rt_made-up").status == 401)
        let missing = try cluster.post("/api/auth/refresh", nil, "{}")
        #expect(missing.status == 400)
        #expect(missing.errorFields == ["refreshToken"])
    }

    @Test func logoutRevokesTheRefreshToken() throws {
        let account = try cluster.register()
        let body = json(["refreshToken": .string(account.refreshToken)])
        #expect(try cluster.post("/api/auth/logout", nil, body).status == 200)
        #expect(try cluster.refresh(account.refreshToken).status == 401)
        #expect(try cluster.post("/api/auth/logout", nil, body).status == 200)
        let unknown = json(["refreshToken": "rt_unknown"])
        #expect(try cluster.post("/api/auth/logout", nil, unknown).status == 200)
    }

    /// Access tokens are not checked against the database: a deactivated user's token works
    /// until it expires (at most ACCESS_TOKEN_TTL_S, 15 minutes), but no new one is issued.
    @Test func deactivatedUserCannotLogInOrRefresh() throws {
        let account = try cluster.register()
        let users = try cluster.mongo().collection("users")
        try users.updateOne(["_id": .objectId(account.user.id)], ["$set": ["isActive": false]])

        let login = try cluster.login(account.email, account.password)
        #expect(login.status == 403)
        #expect(login.errorCode == "account_inactive")
        #expect(try cluster.refresh(account.refreshToken).status == 401)
        let exp = jwtPayload(account.user.token)?["exp"]?.intValue ?? .max
        #expect(exp <= Int64(Date().timeIntervalSince1970) + 900)
    }

    @Test func failedLoginsAreRateLimitedPerEmail() throws {
        let account = try cluster.register()
        for attempt in 1...5 {
            #expect(try cluster.login(account.email, "wrong password").status == 401, "\(attempt)")
        }
        let limited = try cluster.login(account.email.uppercased(), "wrong password")
        #expect(limited.status == 429)
        #expect(limited.errorCode == "rate_limited")
        let retryAfter = Int(limited.headers["retry-after"] ?? "") ?? -1
        #expect(retryAfter >= 1 && retryAfter <= 900)
        #expect(try cluster.login(account.email, account.password).status == 429)

        let other = try cluster.register()
        #expect(try cluster.login(other.email, other.password).status == 200)
    }

    @Test func successfulLoginClearsTheEmailsFailures() throws {
        let account = try cluster.register()
        for _ in 1...4 { _ = try cluster.login(account.email, "wrong password") }
        #expect(try cluster.login(account.email, account.password).status == 200)
        for _ in 1...4 {
            #expect(try cluster.login(account.email, "wrong password").status == 401)
        }
    }

    @Test func clientAddressCannotBeSetByTheQuery() throws {
        let result = try cluster.post(
            "/api/auth/login?clientAddress=10.9.8.7", nil,
            json(["email": "a@b.co", "password": "whatever"]))
        #expect(result.status == 400)
        #expect(result.errorFields == ["clientAddress"])
    }

    @Test func registerRetriedWithTheSameIdempotencyKeyGivesTheSameAccount() throws {
        let body = json([
            "email": .string(Cluster.uniqueEmail("idem")), "name": "Idem",
            "password": "long enough",
        ])
        let key = ["Idempotency-Key": "register-\(UUID().uuidString)"]
        let first = try cluster.post("/api/auth/register", nil, body, headers: key)
        let second = try cluster.post("/api/auth/register", nil, body, headers: key)
        #expect(first.status == 201)
        #expect(second.status == 201)
        #expect(
            first.document?.value(at: "user.userId") == second.document?.value(at: "user.userId"))
        #expect(first["refreshToken"] == second["refreshToken"])
        let third = try cluster.post("/api/auth/register", nil, body)
        #expect(third.status == 409)
    }

    @Test func profileUpdateIsPartialAndKeepsTheRest() throws {
        let account = try cluster.register(name: "Ada Lovelace")
        let first = try cluster.put(
            "/api/me", account.user,
            #"{"bio":"Analyst","socialLinks":{"github":"ada"},"preferences":{"notifications":{"sms":true}}}"#
        )
        #expect(first.status == 200)
        let second = try cluster.put(
            "/api/me", account.user,
            #"{"preferences":{"theme":"dark"},"socialLinks":{"twitter":"@ada"}}"#)
        #expect(second.status == 200)
        let me = try cluster.get("/api/me", account.user)
        #expect(me["name"]?.stringValue == "Ada Lovelace")
        #expect(me["bio"]?.stringValue == "Analyst")
        #expect(me.document?.value(at: "socialLinks.github")?.stringValue == "ada")
        #expect(me.document?.value(at: "socialLinks.twitter")?.stringValue == "@ada")
        #expect(me.document?.value(at: "preferences.notifications.sms") == true)
        #expect(me.document?.value(at: "preferences.notifications.email") == true)
        #expect(me.document?.value(at: "preferences.theme")?.stringValue == "dark")
        #expect(me["updatedAt"]?.stringValue?.hasSuffix("Z") == true)
        #expect(!me.text.contains("$2b$"))

        for (body, field) in [
            (#"{"email":"new@b.co"}"#, "email"), (#"{"role":"admin"}"#, "role"),
            (#"{"isActive":false}"#, "isActive"), (#"{"password":"new password"}"#, "password"),
            (#"{"name":""}"#, "name"), (#"{"name":null}"#, "name"),
            (#"{"preferences":{"theme":"blue"}}"#, "preferences.theme"),
            (#"{"preferences":{"privacy":{"showEmail":"no"}}}"#, "preferences.privacy.showEmail"),
        ] {
            let result = try cluster.put("/api/me", account.user, body)
            #expect(result.status == 400, "\(body)")
            #expect(result.errorFields.contains(field), "\(body)")
        }
        #expect(try cluster.get("/api/me", account.user)["name"]?.stringValue == "Ada Lovelace")
    }

    @Test func profileOfATokenWithoutAnAccountIs404() throws {
        let stranger = cluster.newUser()
        #expect(try cluster.get("/api/me", stranger).status == 404)
        #expect(try cluster.put("/api/me", stranger, #"{"bio":"x"}"#).status == 404)
    }
}

/// Tests with their own cluster: a small per-address limit and a short window.
@Suite("Login rate limit per client address")
struct AddressRateLimitTests {
    @Test func failedLoginsAreLimitedPerClientAddressUntilTheWindowEnds() throws {
        let cluster = try Cluster(
            services: Routes.services,
            environment: [
                "BCRYPT_COST": "4", "LOGIN_MAX_FAILURES_PER_ADDRESS": "3",
                "LOGIN_MAX_FAILURES_PER_EMAIL": "100", "LOGIN_WINDOW_S": "2",
            ])
        defer { cluster.shutdown() }
        let account = try cluster.register()
        for _ in 1...3 {
            #expect(try cluster.login(Cluster.uniqueEmail("probe"), "guess guess").status == 401)
        }
        let limited = try cluster.login(account.email, account.password)
        #expect(limited.status == 429)
        let retryAfter = Int(limited.headers["retry-after"] ?? "") ?? -1
        #expect(retryAfter >= 1 && retryAfter <= 2)

        Thread.sleep(forTimeInterval: 2.2)
        #expect(try cluster.login(account.email, account.password).status == 200)
    }
}
