import Core
import MongoKit

/// The rules of `chat_sessions` and `chatinteractions` from the spec, in one place.
enum SessionRules {
    static let nameMax = 100
    static let descriptionMax = 500
    static let tagsMax = 20
    static let tagMax = 50
    static let modes = ["professional", "balanced", "creative", "fast", "coding"]
    static let providers = [
        "openai", "anthropic", "gemini", "cohere", "mistral", "xai", "huggingface", "groq",
    ]
    static let roles = ["user", "assistant", "system"]
    static let attachmentsMax = 20
    static let tokensMax: Int64 = 10_000_000
    /// A bucket of messages closes at this many messages or bytes, far below MongoDB's 16 MB.
    static let bucketMessages = 100
    static let bucketBytes = 8 << 20

    static let defaultSettings: Document = [
        "temperature": .double(0.7), "maxTokens": .int64(2000), "mode": "balanced",
        "provider": "mistral",
    ]

    static let sessions = CollectionSpec(
        "chat_sessions",
        validator: [
            "bsonType": "object",
            "required": ["sessionId", "userId", "name"],
            "properties": [
                "sessionId": [
                    "bsonType": "string", "description": "must be a string and is required",
                ],
                "userId": [
                    "bsonType": "objectId", "description": "must be an ObjectId and is required",
                ],
                "name": [
                    "bsonType": "string", "maxLength": 100,
                    "description": "must be a string with max length 100",
                ],
            ],
        ],
        indexes: [
            IndexSpec(["sessionId": 1], unique: true),
            IndexSpec(["userId": 1, "updatedAt": -1]),
            IndexSpec(["agentId": 1, "createdAt": -1]),
            IndexSpec(["isActive": 1, "updatedAt": -1]),
            IndexSpec(["tags": 1]),
            IndexSpec(["settings.provider": 1]),
        ])

    static let interactions = CollectionSpec(
        "chatinteractions",
        validator: [
            "bsonType": "object",
            "required": ["conversationId", "messages"],
            "properties": [
                "conversationId": [
                    "bsonType": "string", "description": "must be a string and is required",
                ],
                "userId": [
                    "bsonType": "objectId", "description": "must be an ObjectId if present",
                ],
                "agentId": [
                    "bsonType": "objectId", "description": "must be an ObjectId if present",
                ],
                "messages": [
                    "bsonType": "array", "minItems": 1,
                    "description": "must be an array with at least one message",
                ],
            ],
        ],
        indexes: [
            // Partial: legacy conversations may hold documents without a bucket number.
            IndexSpec(
                ["conversationId": 1, "bucket": 1], unique: true,
                partial: ["bucket": ["$exists": true]]),
            IndexSpec(["conversationId": 1, "userId": 1]),
            IndexSpec(["userId": 1, "startedAt": -1]),
            IndexSpec(["agentId": 1, "startedAt": -1]),
            IndexSpec(["status": 1, "updatedAt": -1]),
            IndexSpec(["messages.createdAt": -1]),
            IndexSpec(["messages.content": "text", "conversationId": 1]),
        ])
}
