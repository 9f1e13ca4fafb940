import Bus
import Core
import Crypt
import MongoKit
import ServiceKit

/// Register, login, refresh and logout (no token needed), and the caller's profile.
///
/// The auth commands do not go through the command ledger: it would store their replies,
/// tokens included. Each is idempotent on its own instead: register remembers the command
/// that created the account, and refresh tokens are derived from the command id.
// TODO: no API changes a password, verifies an email, or sets `role`/`isActive` yet.
struct AuthHandlers: Sendable {
    let users: MongoCollection
    let issuer: TokenIssuer
    let limiter: LoginLimiter
    let bcryptCost: Int
    /// Checked when the email is unknown, so that case takes as long as a wrong password.
    let dummyHash: String
    let logger: Logger

    /// What is never read back from `users`.
    static let hidden: Document = ["password": 0, "registeredBy": 0]

    static func invalidRefresh() -> APIError {
        .unauthorized("the refresh token is invalid, expired or revoked")
    }

    func register(_ command: Command) throws -> Reply {
        let body = try command.jsonBody()
        var check = Validator(body, allowed: ["email", "name", "password"])
        let email = AccountRules.email(&check)
        let name = check.string("name", required: true, maxLength: AccountRules.nameMax)
        let password = AccountRules.newPassword(&check)
        try check.check()
        guard let email, let name, let password else { throw APIError.internalError() }
        guard let hash = Crypto.bcryptHash(password, cost: bcryptCost) else {
            throw APIError.internalError("cannot hash the password")
        }
        let emailLower = AccountRules.normalized(email)
        let now = Value.date(Timestamp.now())
        var user: Document = [
            "_id": .objectId(ObjectId()), "email": .string(email),
            "emailLower": .string(emailLower), "name": .string(name), "password": .string(hash),
            "authMethod": "password", "avatar": .string(AccountRules.initials(name)),
            "preferences": .document(AccountRules.preferenceDefaults),
            "role": "user", "isActive": true, "registeredBy": .string(command.id),
            "createdAt": now, "updatedAt": now, "lastLoginAt": now,
        ]
        do {
            try users.insertOne(user)
        } catch {
            guard error.kind == .duplicateKey else { throw error }
            // A redelivered or retried register answers like the first delivery did.
            guard let existing = try users.findOne(["emailLower": .string(emailLower)]),
                existing["registeredBy"]?.stringValue == command.id,
                let stored = existing["password"]?.stringValue,
                Crypto.bcryptVerify(password, hash: stored)
            else { throw APIError.conflict("an account with this email exists") }
            user = existing
        }
        return Reply(status: 201, try session(for: user, command: command))
    }

    func login(_ command: Command) throws -> Reply {
        let body = try command.jsonBody()
        var check = Validator(body, allowed: ["email", "password"])
        let email = check.string("email", required: true, maxLength: AccountRules.emailMax)
        let password = check.string("password", required: true, maxLength: 1024, allowEmpty: true)
        try check.check()
        guard let email, let password else { throw APIError.internalError() }
        let emailLower = AccountRules.normalized(email)
        let address = command.params["clientAddress"] ?? ""
        if let wait = try limiter.blocked(email: emailLower, address: address) {
            return LoginLimiter.tooManyAttempts(retryAfter: wait)
        }
        let user = try users.findOne(["emailLower": .string(emailLower)])
        let hash = user?["password"]?.stringValue ?? dummyHash
        let acceptable =
            password.utf8.count <= AccountRules.passwordMaxBytes && !password.utf8.contains(0)
        let verified = Crypto.bcryptVerify(password, hash: hash)
        guard let user, acceptable, verified else {
            try limiter.recordFailure(email: emailLower, address: address)
            throw APIError.unauthorized("the email or password is wrong")
        }
        guard user["isActive"]?.boolValue == true else {
            throw APIError(
                status: 403, code: "account_inactive", message: "this account is deactivated")
        }
        try limiter.reset(email: emailLower)
        let now = Timestamp.now()
        try users.updateOne(["_id": user["_id"] ?? .null], ["$set": ["lastLoginAt": .date(now)]])
        var current = user
        current["lastLoginAt"] = .date(now)
        return Reply(status: 200, try session(for: current, command: command))
    }

    /// Tokens of a new family, plus the public user.
    private func session(for user: Document, command: Command) throws -> Document {
        guard let userId = user["_id"]?.objectIdValue else { throw APIError.internalError() }
        let role = user["role"]?.stringValue == "admin" ? "admin" : "user"
        var answer = try issuer.issue(
            user: userId, role: role,
            familyId: TokenIssuer.familyId(commandId: command.id, user: userId),
            commandId: command.id, context: userId.hex)
        answer["user"] = .document(AccountRules.render(user))
        return answer
    }

    /// Rotates a refresh token: the presented one is marked used in one atomic update and a
    /// new one of the same family is issued. A token presented again after use, or after it
    /// was revoked, revokes the whole family (someone else may hold a copy). Inactive users
    /// cannot refresh.
    func refresh(_ command: Command) throws -> Reply {
        let token = try refreshTokenField(command)
        let hash = TokenIssuer.hash(token)
        let now = Value.date(Timestamp.now())
        var record = try issuer.tokens.findOneAndUpdate(
            [
                "_id": .string(hash), "usedAt": ["$exists": false],
                "revokedAt": ["$exists": false], "expiresAt": ["$gt": now],
            ],
            ["$set": ["usedAt": now, "usedBy": .string(command.id)]])
        if record == nil {
            guard let existing = try issuer.tokens.findOne(["_id": .string(hash)]) else {
                throw AuthHandlers.invalidRefresh()
            }
            let redelivered =
                existing["usedBy"]?.stringValue == command.id && existing["revokedAt"] == nil
            if redelivered {
                record = existing
            } else {
                if existing["usedAt"] != nil || existing["revokedAt"] != nil,
                    let family = existing["familyId"]?.stringValue
                {
                    try issuer.revokeFamily(family)
                    logger.warning(
                        "refresh token presented again; its family is revoked",
                        [.command: command.id])
                }
                throw AuthHandlers.invalidRefresh()
            }
        }
        guard let record, let userId = record["userId"]?.objectIdValue,
            let family = record["familyId"]?.stringValue
        else { throw AuthHandlers.invalidRefresh() }
        guard
            let user = try users.findOne(
                ["_id": .objectId(userId)], projection: AuthHandlers.hidden),
            user["isActive"]?.boolValue == true
        else {
            try issuer.revokeFamily(family)
            throw AuthHandlers.invalidRefresh()
        }
        let role = user["role"]?.stringValue == "admin" ? "admin" : "user"
        let answer = try issuer.issue(
            user: userId, role: role, familyId: family, commandId: command.id, context: hash)
        return Reply(status: 200, answer)
    }

    /// Revokes the token's whole family; answers the same whether or not it was known.
    func logout(_ command: Command) throws -> Reply {
        let token = try refreshTokenField(command)
        let record = try issuer.tokens.findOne(["_id": .string(TokenIssuer.hash(token))])
        if let family = record?["familyId"]?.stringValue { try issuer.revokeFamily(family) }
        return Reply(status: 200, ["loggedOut": true])
    }

    private func refreshTokenField(_ command: Command) throws -> String {
        var check = Validator(try command.jsonBody(), allowed: ["refreshToken"])
        let token = check.string("refreshToken", required: true, maxLength: 200)
        try check.check()
        return token ?? ""
    }

    func me(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        _ = try QueryReader(command, pathParams: [], allowed: [])
        guard let doc = try users.findOne(["_id": .objectId(user)], projection: AuthHandlers.hidden)
        else { throw APIError.notFound("user") }
        return Reply(status: 200, AccountRules.render(doc))
    }

    /// A partial update of the profile (see `AccountRules.profileChange`).
    func updateMe(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        _ = try QueryReader(command, pathParams: [], allowed: [])
        var set = try AccountRules.profileChange(try command.jsonBody())
        set["updatedAt"] = .date(Timestamp.now())
        guard
            let doc = try users.findOneAndUpdate(
                ["_id": .objectId(user)], ["$set": .document(set)],
                projection: AuthHandlers.hidden)
        else { throw APIError.notFound("user") }
        return Reply(status: 200, AccountRules.render(doc))
    }
}
