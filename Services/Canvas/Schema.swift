import Core
import MongoKit

/// The rules of `chat_canvas_projects`, `chat_canvas_files` and `chat_canvas_history` from
/// the spec, and the two collections the service adds for versions, in one place.
enum CanvasRules {
    static let nameMax = 100
    static let descriptionMax = 500
    static let templateMax = 100
    static let idMax = 128
    static let statuses = ["active", "archived", "deleted"]
    static let themes = ["light", "dark", "auto"]
    static let historyStatuses = ["pending", "completed", "failed"]
    static let metadataTextMax = 50
    static let dependenciesMax = 50
    static let dependencyMax = 100

    static let defaultSettings: Document = [
        "theme": "light", "responsive": true, "animations": true,
    ]

    /// What API answers leave out: MongoDB's `_id` and the service's own bookkeeping.
    static let projectOutput: Document = ["_id": 0, "lock": 0]
    static let fileOutput: Document = ["_id": 0]
    static let fileListOutput: Document = ["_id": 0, "content": 0]
    static let historyOutput: Document = ["_id": 0, "run": 0, "runCount": 0]

    /// A project as the API shows it. The stand-in may hand back a bool it stored through
    /// `$set` as 0 or 1; the API always answers booleans.
    static func projectView(_ project: Document) -> Document {
        booleans(project, at: ["responsive", "animations"], under: "settings")
    }

    static func historyView(_ entry: Document) -> Document {
        booleans(entry, at: ["tokensEstimated"], under: "metadata")
    }

    private static func booleans(_ doc: Document, at keys: [String], under parent: String)
        -> Document
    {
        guard var inner = doc[parent]?.documentValue else { return doc }
        for key in keys {
            if let flag = inner[key]?.boolValue { inner[key] = .bool(flag) }
        }
        var copy = doc
        copy[parent] = .document(inner)
        return copy
    }

    static let projects = CollectionSpec(
        "chat_canvas_projects",
        validator: [
            "bsonType": "object",
            "required": ["projectId", "userId", "name", "template", "category"],
            "properties": [
                "projectId": ["bsonType": "string"],
                "userId": ["bsonType": "objectId"],
                "conversationId": ["bsonType": "string"],
                "name": ["bsonType": "string", "maxLength": 100],
                "description": ["bsonType": "string", "maxLength": 500],
                "template": ["bsonType": "string"],
                "category": ["bsonType": "string"],
                "status": ["enum": ["active", "archived", "deleted"]],
                "settings": [
                    "bsonType": "object",
                    "properties": [
                        "theme": ["bsonType": "string"],
                        "responsive": ["bsonType": "bool"],
                        "animations": ["bsonType": "bool"],
                    ],
                ],
                "stats": [
                    "bsonType": "object",
                    "properties": [
                        "filesGenerated": ["bsonType": ["int", "long", "double"]],
                        "totalSize": ["bsonType": ["int", "long", "double"]],
                        "lastModified": ["bsonType": "date"],
                    ],
                ],
            ],
        ],
        indexes: [
            IndexSpec(["projectId": 1], unique: true),
            IndexSpec(["userId": 1, "updatedAt": -1]),
            IndexSpec(["conversationId": 1]),
            IndexSpec(["template": 1]),
            IndexSpec(["status": 1]),
        ])

    static let files = CollectionSpec(
        "chat_canvas_files",
        validator: [
            "bsonType": "object",
            "required": ["fileId", "projectId", "userId", "name", "path", "type", "size"],
            "properties": [
                "fileId": ["bsonType": "string"],
                "projectId": ["bsonType": "string"],
                "userId": ["bsonType": "objectId"],
                "name": ["bsonType": "string"],
                "path": ["bsonType": "string"],
                "type": ["enum": ["html", "css", "js", "tsx", "json", "image", "other"]],
                "content": ["bsonType": "string"],
                "size": ["bsonType": ["int", "long", "double"]],
                "checksum": ["bsonType": "string"],
                "metadata": [
                    "bsonType": "object",
                    "properties": [
                        "language": ["bsonType": "string"],
                        "framework": ["bsonType": "string"],
                        "dependencies": ["bsonType": "array", "items": ["bsonType": "string"]],
                    ],
                ],
            ],
        ],
        indexes: [
            IndexSpec(["fileId": 1], unique: true),
            // The spec's index, unique here: a path names one file within a project.
            IndexSpec(["projectId": 1, "path": 1], unique: true),
            IndexSpec(["userId": 1, "updatedAt": -1]),
            IndexSpec(["type": 1]),
        ])

    static let history = CollectionSpec(
        "chat_canvas_history",
        validator: [
            "bsonType": "object",
            "required": ["historyId", "projectId", "userId", "prompt", "status"],
            "properties": [
                "historyId": ["bsonType": "string"],
                "projectId": ["bsonType": "string"],
                "userId": ["bsonType": "objectId"],
                "prompt": ["bsonType": "string"],
                "status": ["enum": ["pending", "completed", "failed"]],
                "result": [
                    "bsonType": ["object", "null"],
                    "properties": [
                        "filesGenerated": ["bsonType": ["int", "long", "double"]],
                        "totalSize": ["bsonType": ["int", "long", "double"]],
                        "duration": ["bsonType": ["int", "long", "double"]],
                    ],
                ],
                "error": ["bsonType": ["string", "null"]],
            ],
        ],
        indexes: [
            IndexSpec(["historyId": 1], unique: true),
            IndexSpec(["projectId": 1, "createdAt": -1]),
            IndexSpec(["userId": 1, "status": 1, "createdAt": -1]),
            IndexSpec(["status": 1, "createdAt": 1]),
        ])

    /// One document per generation: the project's files (path, type, size, checksum,
    /// metadata) before and after it. Contents live in `chat_canvas_blobs`.
    static let versions = CollectionSpec(
        "chat_canvas_versions",
        indexes: [
            IndexSpec(["historyId": 1], unique: true),
            IndexSpec(["projectId": 1]),
        ])

    /// File contents by project and SHA-256 (`_id` = `<projectId>:<checksum>`), stored once
    /// however many versions hold them.
    static let blobs = CollectionSpec("chat_canvas_blobs", indexes: [IndexSpec(["projectId": 1])])
}
