import Core

/// The rules of `users` (spec section 10): what registration accepts, what `PUT /api/me`
/// may change, and what a user document looks like in an answer (never the hash).
enum AccountRules {
    static let emailMax = 254
    static let nameMax = 100
    /// Passwords count code points for the minimum; bcrypt reads at most 72 bytes, so a
    /// longer one is refused rather than silently cut.
    static let passwordMin = 8
    static let passwordMaxBytes = 72
    static let roles = ["user", "admin"]
    static let themes = ["light", "dark", "auto", "neural"]
    static let visibilities = ["public", "private"]

    /// Optional profile strings and their limits; `""` clears one.
    static let profileStrings: [(String, Int)] = [
        ("image", 2048), ("avatar", 200), ("bio", 500), ("phoneNumber", 30), ("location", 100),
        ("timezone", 64), ("profession", 100), ("company", 100),
    ]
    static let socialLinks = ["twitter", "linkedin", "github", "website"]
    static let socialLinkMax = 200
    static let languageMax = 35

    static let preferenceDefaults: Document = [
        "language": "en",
        "theme": "auto",
        "notifications": ["email": true, "push": true, "sms": false],
        "privacy": ["profileVisibility": "public", "showEmail": false, "showPhone": false],
    ]

    /// The key the unique index compares: the email in lower case.
    static func normalized(_ email: String) -> String { email.lowercased() }

    /// A plausible address: one `@`, a non-empty local part of at most 64 bytes, a domain
    /// with an inner dot, no spaces or control characters. Delivery is not checked.
    static func isPlausibleEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64 else { return false }
        let domain = parts[1]
        guard domain.contains("."), !domain.hasPrefix("."), !domain.hasSuffix("."),
            !domain.contains("..")
        else { return false }
        return !text.unicodeScalars.contains {
            $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F
        }
    }

    static func email(_ check: inout Validator) -> String? {
        guard let email = check.string("email", required: true, maxLength: emailMax) else {
            return nil
        }
        guard isPlausibleEmail(email) else {
            check.fail("email", "must be an email address")
            return nil
        }
        return email
    }

    /// A new password: a string of at least 8 characters, at most 72 bytes, without NUL.
    static func newPassword(_ check: inout Validator) -> String? {
        guard let password = check.string("password", required: true, allowEmpty: true) else {
            return nil
        }
        if password.unicodeScalars.count < passwordMin {
            check.fail("password", "must be at least \(passwordMin) characters")
            return nil
        }
        if password.utf8.count > passwordMaxBytes || password.utf8.contains(0) {
            check.fail("password", "must be at most \(passwordMaxBytes) bytes and contain no NUL")
            return nil
        }
        return password
    }

    /// Up to two initials, the spec's `avatar` ("John Doe" gives "JD").
    static func initials(_ name: String) -> String {
        let words = name.split(whereSeparator: { $0.isWhitespace })
        return String(words.prefix(2).compactMap(\.first)).uppercased()
    }

    /// Checks a `PUT /api/me` body and turns it into dotted `$set` paths: a partial update
    /// in which `socialLinks`, `preferences` and its nested objects merge key by key. The
    /// email, password, role and active flag are not changed here.
    static func profileChange(_ body: Document) throws -> Document {
        var allowed: Set<String> = ["name", "socialLinks", "preferences"]
        for (key, _) in profileStrings { allowed.insert(key) }
        var check = Validator(body, allowed: allowed)
        var set = Document()
        if let name = check.string("name", maxLength: nameMax) { set["name"] = .string(name) }
        for (key, limit) in profileStrings {
            if let text = check.string(key, maxLength: limit, allowEmpty: true) {
                set[key] = .string(text)
            }
        }
        if let links = check.document("socialLinks") {
            var nested = Validator(links, allowed: Set(socialLinks), prefix: "socialLinks")
            for key in socialLinks {
                if let text = nested.string(key, maxLength: socialLinkMax, allowEmpty: true) {
                    set["socialLinks.\(key)"] = .string(text)
                }
            }
            check.merge(nested)
        }
        if let preferences = check.document("preferences") {
            check.merge(preferenceChange(preferences, into: &set))
        }
        try check.check()
        return set
    }

    private static func preferenceChange(_ body: Document, into set: inout Document) -> Validator {
        let prefix = "preferences"
        var check = Validator(
            body, allowed: ["language", "theme", "notifications", "privacy"], prefix: prefix)
        if let language = check.string("language", maxLength: languageMax) {
            set["\(prefix).language"] = .string(language)
        }
        if let theme = check.oneOf("theme", themes) { set["\(prefix).theme"] = .string(theme) }
        if let notifications = check.document("notifications") {
            let keys = ["email", "push", "sms"]
            var nested = Validator(
                notifications, allowed: Set(keys), prefix: "\(prefix).notifications")
            for key in keys {
                if let flag = nested.bool(key) {
                    set["\(prefix).notifications.\(key)"] = .bool(flag)
                }
            }
            check.merge(nested)
        }
        if let privacy = check.document("privacy") {
            var nested = Validator(
                privacy, allowed: ["profileVisibility", "showEmail", "showPhone"],
                prefix: "\(prefix).privacy")
            if let visibility = nested.oneOf("profileVisibility", visibilities) {
                set["\(prefix).privacy.profileVisibility"] = .string(visibility)
            }
            for key in ["showEmail", "showPhone"] {
                if let flag = nested.bool(key) { set["\(prefix).privacy.\(key)"] = .bool(flag) }
            }
            check.merge(nested)
        }
        return check
    }

    /// The public form of a user document: a whitelist, so the password hash and internal
    /// fields (`emailLower`, `registeredBy`) can never leak; `_id` becomes `userId`.
    static func render(_ user: Document) -> Document {
        var out: Document = ["userId": user["_id"]?.objectIdValue.map { .objectId($0) } ?? .null]
        out["email"] = .string(user["email"]?.stringValue ?? "")
        out["name"] = .string(user["name"]?.stringValue ?? "")
        out["authMethod"] = .string(user["authMethod"]?.stringValue ?? "password")
        out["emailVerified"] = Stored.date(user["emailVerified"])
        for (key, _) in profileStrings {
            if let text = user[key]?.stringValue { out[key] = .string(text) }
        }
        var links = Document()
        for key in socialLinks {
            if let text = user.value(at: "socialLinks.\(key)")?.stringValue {
                links[key] = .string(text)
            }
        }
        out["socialLinks"] = .document(links)
        out["preferences"] = ChatSettingsRules.coerce(
            user["preferences"], like: .document(preferenceDefaults))
        let role = user["role"]?.stringValue ?? "user"
        out["role"] = .string(roles.contains(role) ? role : "user")
        out["isActive"] = .bool(user["isActive"]?.boolValue ?? false)
        for key in ["createdAt", "updatedAt", "lastLoginAt"] {
            out[key] = Stored.date(user[key])
        }
        return out
    }
}
