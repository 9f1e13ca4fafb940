import Core
import MongoKit

/// The rules of `chat_feedback` (spec section 5), in one place.
///
/// Besides the spec's fields each document keeps, for the service only: `targetKey` (what
/// was rated: one document per user and target), `agentRef` (the agent's id as hex text, for
/// aggregations: the stand-in cannot `$match` ObjectIds in a pipeline), `version` (for
/// compare-and-set updates) and the outbox of its rating event (`lastEvent`, `eventState`).
enum FeedbackRules {
    static let types = ["message", "conversation", "agent"]
    static let categories = ["accuracy", "helpfulness", "speed", "tone", "creativity", "technical"]
    static let commentMax = 1000
    static let tagsMax = 20
    static let tagMax = 50
    static let idMax = 128
    static let metadataKeysMax = 20
    static let metadataBytesMax = 4096

    static let internalFields: Set<String> = [
        "_id", "targetKey", "agentRef", "version", "lastEvent", "eventState",
    ]

    /// What a user rates: the message, the conversation, or the agent itself.
    static func targetKey(type: String, conversation: String, message: String?, agent: String?)
        -> String
    {
        switch type {
        case "message": return "message|\(conversation)|\(message ?? "")"
        case "agent": return "agent|\(agent ?? "")"
        default: return "conversation|\(conversation)"
        }
    }

    /// An agent's 24-hex id or its slug (lowercase letters, digits, dashes).
    static func isAgentKey(_ text: String) -> Bool {
        if ObjectId(hex: text) != nil { return true }
        let scalars = Array(text.unicodeScalars)
        guard scalars.count >= 2, scalars.count <= 64, let first = scalars.first,
            ("a"..."z").contains(first)
        else { return false }
        return scalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
        }
    }

    static let spec = CollectionSpec(
        "chat_feedback",
        validator: [
            "bsonType": "object",
            "required": ["conversationId", "userId", "feedbackType", "rating"],
            "properties": [
                "conversationId": [
                    "bsonType": "string", "description": "must be a string and is required",
                ],
                "messageId": ["bsonType": "string"],
                "userId": [
                    "bsonType": "objectId", "description": "must be an ObjectId and is required",
                ],
                "agentId": ["bsonType": "objectId"],
                "feedbackType": ["enum": ["message", "conversation", "agent"]],
                "rating": ["bsonType": ["int", "long"], "minimum": 1, "maximum": 5],
                "comment": ["bsonType": "string", "maxLength": 1000],
                "category": [
                    "enum": ["accuracy", "helpfulness", "speed", "tone", "creativity", "technical"]
                ],
                "tags": ["bsonType": "array", "items": ["bsonType": "string"]],
            ],
        ],
        indexes: [
            IndexSpec(["conversationId": 1, "createdAt": -1]),
            IndexSpec(["userId": 1, "createdAt": -1]),
            IndexSpec(["agentId": 1, "rating": -1]),
            IndexSpec(["feedbackType": 1, "createdAt": -1]),
            IndexSpec(["userId": 1, "targetKey": 1], unique: true),
            IndexSpec(["agentRef": 1, "feedbackType": 1]),
            IndexSpec(["eventState": 1, "updatedAt": 1]),
        ])
}
