import Core
import MongoKit

/// The collections this service owns, with the spec's validators and indexes (sections 3, 4
/// and 10), plus `auth_refresh_tokens`, which the spec leaves to the implementation.
enum Schema {
    static let settings = CollectionSpec(
        "chat_settings",
        validator: [
            "bsonType": "object",
            "required": ["userId"],
            "properties": [
                "userId": [
                    "bsonType": "objectId", "description": "must be an ObjectId and is required",
                ]
            ],
        ],
        indexes: [
            IndexSpec(["userId": 1], unique: true),
            IndexSpec(["defaultAgent": 1]),
        ])

    static let quickActions = CollectionSpec(
        "chat_quick_actions",
        validator: [
            "bsonType": "object",
            "required": ["actionId", "label", "prompt", "category", "icon"],
            "properties": [
                "actionId": ["bsonType": "string"],
                "label": ["bsonType": "string", "maxLength": 50],
                "prompt": ["bsonType": "string", "maxLength": 500],
                "category": [
                    "enum": .array(QuickActionRules.categories.map { .string($0) })
                ],
                "icon": ["bsonType": "string"],
            ],
        ],
        indexes: [
            IndexSpec(["actionId": 1], unique: true),
            IndexSpec(["category": 1, "isActive": 1]),
            IndexSpec(["usageCount": -1]),
            IndexSpec(["isDefault": 1]),
            IndexSpec(["createdBy": 1]),
        ])

    /// The spec's `users` document has no written validator; this one holds what the
    /// service relies on. `emailLower` makes the email unique in any letter case.
    static let users = CollectionSpec(
        "users",
        validator: [
            "bsonType": "object",
            "required": ["email", "emailLower", "name", "password", "role", "isActive"],
            "properties": [
                "email": ["bsonType": "string", "maxLength": 254],
                "emailLower": ["bsonType": "string", "maxLength": 254],
                "name": ["bsonType": "string", "maxLength": 100],
                "password": ["bsonType": "string", "description": "a bcrypt hash"],
                "role": ["enum": ["user", "admin"]],
                "isActive": ["bsonType": "bool"],
            ],
        ],
        indexes: [
            IndexSpec(["emailLower": 1], unique: true),
            IndexSpec(["role": 1]),
        ])

    /// One document per refresh token: `_id` is the SHA-256 of the token (the token itself
    /// is never stored); rotation marks it used, and a family shares one `familyId`.
    static let refreshTokens = CollectionSpec(
        "auth_refresh_tokens",
        validator: [
            "bsonType": "object",
            "required": ["userId", "familyId", "expiresAt"],
            "properties": [
                "userId": ["bsonType": "objectId"],
                "familyId": ["bsonType": "string"],
                "expiresAt": ["bsonType": "date"],
            ],
        ],
        indexes: [
            IndexSpec(["familyId": 1]),
            IndexSpec(["userId": 1]),
            IndexSpec(["expiresAt": 1], expireAfterSeconds: 0),
        ])
}

extension Value {
    /// Matches a stored `true` on MongoDB and the stand-in's `1` for one.
    static let storedTrue: Value = ["$in": [true, 1]]
    /// Matches neither a stored `true` nor the stand-in's `1`.
    static let notStoredTrue: Value = ["$nin": [true, 1]]
}
