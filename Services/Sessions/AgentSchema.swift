import Core
import MongoKit

/// The rules of the `agents` collection (spec section 9), in one place.
///
/// Ids: an agent has a slug, `agentId` (`"einstein"`), used in paths, and MongoDB's `_id`,
/// an ObjectId shown as `id` (24 hex digits). Sessions, interactions and feedback refer to an
/// agent by that ObjectId (the spec types their `agentId` as ObjectId), so a client reads
/// `id` from the catalog and sends it as a session's `agentId`. Paths accept either form; a
/// slug can never look like an ObjectId.
enum AgentRules {
    static let slugMin = 2
    static let slugMax = 64
    static let nameMax = 100
    static let descriptionMax = 500
    static let categoryMax = 50
    static let avatarMax = 200
    static let promptMax = 20_000
    static let modelMax = 100
    static let listItems = 50
    static let listItemMax = 200
    static let tagsMax = 20
    static let tagMax = 50
    static let examplesMax = 20
    static let exampleMax = 4000
    static let fallbackMax = 10
    static let textMax = 200
    static let versionMax = 20
    static let priceMax = 1_000_000.0
    static let traits = ["creativity", "empathy", "technical", "humor", "formality"]
    /// How many applied rating event ids each agent remembers to refuse a second delivery.
    static let appliedEventsKept = 1000

    /// Fields MongoDB keeps for the service only; never in a response.
    static let internalFields: Set<String> = [
        "_id", "ratingSum", "ratingEvents", "deletedAt", "createdByCommand",
    ]

    /// A lowercase slug of letters, digits and dashes that starts with a letter and is not
    /// 24 hex digits (which would read as an ObjectId).
    static func isSlug(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count >= slugMin, scalars.count <= slugMax, let first = scalars.first,
            ("a"..."z").contains(first), ObjectId(hex: text) == nil
        else { return false }
        return scalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
        }
    }

    static let spec = CollectionSpec(
        "agents",
        validator: [
            "bsonType": "object",
            "required": ["agentId", "name", "isActive", "isPublic"],
            "properties": [
                "agentId": [
                    "bsonType": "string", "maxLength": 64, "description": "slug, required",
                ],
                "name": ["bsonType": "string", "maxLength": 100, "description": "required"],
                "description": ["bsonType": "string", "maxLength": 500],
                "temperature": [
                    "bsonType": ["double", "int", "long"], "minimum": 0, "maximum": 2,
                ],
                "maxTokens": ["bsonType": ["int", "long"], "minimum": 1, "maximum": 4000],
                "isActive": ["bsonType": "bool"],
                "isPublic": ["bsonType": "bool"],
                "isPremium": ["bsonType": "bool"],
                "stats": [
                    "bsonType": "object",
                    "properties": [
                        "totalRatings": ["bsonType": ["int", "long"], "minimum": 0],
                        "averageRating": [
                            "bsonType": ["double", "int", "long"], "minimum": 0, "maximum": 5,
                        ],
                    ],
                ],
            ],
        ],
        indexes: [
            IndexSpec(["agentId": 1], unique: true),
            IndexSpec(["isActive": 1, "isPublic": 1, "name": 1]),
            IndexSpec(["category": 1, "name": 1]),
            IndexSpec(["tags": 1]),
        ])

    static let zeroStats: Document = [
        "totalInteractions": .int64(0), "totalUsers": .int64(0), "averageRating": .double(0),
        "totalRatings": .int64(0),
    ]
}

/// The default catalog the sessions service makes sure exists on every start.
enum AgentCatalog {
    /// The spec's example agent, field for field. Its `stats` start at zero: they are derived
    /// (ratings from `chat_feedback`), and the spec's figures describe data we do not have.
    static let einstein: Document = [
        "agentId": "einstein",
        "name": "Albert Einstein",
        "description": "Theoretical physicist and genius scientist",
        "category": "specialist",
        "avatar": "🧠",
        "prompt": "You are Albert Einstein...",
        "aiModel": "gpt-4o",
        "temperature": .double(0.4),
        "maxTokens": .int64(2000),
        "isActive": true,
        "isPublic": true,
        "isPremium": false,
        "pricing": ["daily": .double(5), "weekly": .double(25), "monthly": .double(75)],
        "features": ["physics", "science", "explanations"],
        "tags": ["science", "physics", "education"],
        "capabilities": ["explain complex concepts", "scientific reasoning"],
        "limitations": ["modern technology references"],
        "examples": [
            ["input": "Explain relativity", "output": "Ah, relativity! Let me explain..."]
        ],
        "config": [
            "systemPrompt": "You are Albert Einstein...",
            "personality": "genius scientist",
            "tone": "wise and patient",
        ],
        "providerConfig": [
            "primaryProvider": "openai",
            "primaryModel": "gpt-4o",
            "fallbackProviders": [
                ["provider": "anthropic", "model": "claude-3-5-sonnet", "priority": 1]
            ],
            "personalityMatch": [
                "creativity": 8, "empathy": 7, "technical": 10, "humor": 3, "formality": 6,
            ],
            "temperature": .double(0.4),
            "maxTokens": .int64(2000),
            "systemPrompt": "You are Albert Einstein...",
        ],
        "creator": "system",
        "version": "1.0.0",
    ]

    static let assistant: Document = [
        "agentId": "assistant",
        "name": "General Assistant",
        "description": "A helpful, balanced assistant for everyday questions",
        "category": "general",
        "avatar": "🤖",
        "prompt": "You are a helpful assistant.",
        "aiModel": "mistral-large",
        "temperature": .double(0.7),
        "maxTokens": .int64(2000),
        "isActive": true,
        "isPublic": true,
        "isPremium": false,
        "pricing": ["daily": .double(0), "weekly": .double(0), "monthly": .double(0)],
        "features": ["questions", "writing", "summaries"],
        "tags": ["general", "writing"],
        "capabilities": ["answer questions", "draft and edit text"],
        "limitations": ["no internet access"],
        "examples": [
            ["input": "Summarise this paragraph", "output": "Here is a short summary..."]
        ],
        "config": [
            "systemPrompt": "You are a helpful assistant.",
            "personality": "friendly helper",
            "tone": "clear and warm",
        ],
        "providerConfig": [
            "primaryProvider": "mistral",
            "primaryModel": "mistral-large",
            "fallbackProviders": [["provider": "openai", "model": "gpt-4o-mini", "priority": 1]],
            "personalityMatch": [
                "creativity": 6, "empathy": 8, "technical": 6, "humor": 5, "formality": 5,
            ],
            "temperature": .double(0.7),
            "maxTokens": .int64(2000),
            "systemPrompt": "You are a helpful assistant.",
        ],
        "creator": "system",
        "version": "1.0.0",
    ]

    static let coder: Document = [
        "agentId": "code-reviewer",
        "name": "Code Reviewer",
        "description": "Reviews code for bugs, clarity and performance",
        "category": "developer",
        "avatar": "🛠️",
        "prompt": "You are a meticulous senior engineer reviewing code.",
        "aiModel": "claude-3-5-sonnet",
        "temperature": .double(0.2),
        "maxTokens": .int64(4000),
        "isActive": true,
        "isPublic": true,
        "isPremium": true,
        "pricing": ["daily": .double(3), "weekly": .double(15), "monthly": .double(45)],
        "features": ["code review", "refactoring", "testing advice"],
        "tags": ["coding", "review"],
        "capabilities": ["find bugs", "suggest refactorings"],
        "limitations": ["cannot run code"],
        "examples": [["input": "Review this function", "output": "Three things stand out..."]],
        "config": [
            "systemPrompt": "You are a meticulous senior engineer reviewing code.",
            "personality": "precise reviewer",
            "tone": "direct and constructive",
        ],
        "providerConfig": [
            "primaryProvider": "anthropic",
            "primaryModel": "claude-3-5-sonnet",
            "fallbackProviders": [["provider": "openai", "model": "gpt-4o", "priority": 1]],
            "personalityMatch": [
                "creativity": 4, "empathy": 5, "technical": 10, "humor": 2, "formality": 7,
            ],
            "temperature": .double(0.2),
            "maxTokens": .int64(4000),
            "systemPrompt": "You are a meticulous senior engineer reviewing code.",
        ],
        "creator": "system",
        "version": "1.0.0",
    ]

    static let defaults = [einstein, assistant, coder]

    /// Inserts each default agent whose slug is not stored yet; never changes a stored one (an
    /// admin's edits, its stats and a soft delete all survive a restart). Safe when replicas
    /// start at once: the unique slug index lets one insert win.
    static func seed(_ agents: MongoCollection, logger: Logger) throws(MongoError) {
        let now = Timestamp.now()
        for agent in defaults {
            var doc = agent
            doc["_id"] = .objectId(ObjectId())
            doc["stats"] = .document(AgentRules.zeroStats)
            doc["ratingSum"] = .int64(0)
            doc["ratingEvents"] = []
            doc["createdAt"] = .date(now)
            doc["updatedAt"] = .date(now)
            do {
                let result = try agents.updateOne(
                    ["agentId": agent["agentId"] ?? .null], ["$setOnInsert": .document(doc)],
                    upsert: true)
                if result.upsertedId != nil {
                    logger.info("seeded agent", [.type: agent["agentId"]?.stringValue ?? ""])
                }
            } catch {
                if error.kind != .duplicateKey { throw error }
            }
        }
    }
}
