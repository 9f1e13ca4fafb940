import Core

/// An index the spec asks for.
public struct IndexSpec: Sendable {
    public let keys: Document
    public let unique: Bool
    public let expireAfterSeconds: Int?
    /// Only documents matching this filter are indexed (`partialFilterExpression`).
    public let partial: Document?

    public init(
        _ keys: Document, unique: Bool = false, expireAfterSeconds: Int? = nil,
        partial: Document? = nil
    ) {
        self.keys = keys
        self.unique = unique
        self.expireAfterSeconds = expireAfterSeconds
        self.partial = partial
    }

    var name: String {
        keys.pairs.map {
            "\($0.key)_\(JSONWriter.string($0.value).replacingBytes(of: "\"", with: ""))"
        }
        .joined(separator: "_")
    }
}

/// A collection with its `$jsonSchema` validator and indexes.
public struct CollectionSpec: Sendable {
    public let name: String
    public let validator: Document?
    public let indexes: [IndexSpec]

    public init(_ name: String, validator: Document? = nil, indexes: [IndexSpec]) {
        self.name = name
        self.validator = validator
        self.indexes = indexes
    }
}

extension MongoPool {
    /// Creates the collection, installs its validator and its indexes. Safe to repeat and safe
    /// when several replicas start at once: "already exists" answers are expected.
    public func ensure(_ spec: CollectionSpec, logger: Logger) throws(MongoError) {
        var create: Document = ["create": .string(spec.name)]
        if let validator = spec.validator {
            create["validator"] = .document(["$jsonSchema": .document(validator)])
            create["validationLevel"] = "moderate"
        }
        do {
            try command(create)
        } catch let error where error.kind == .server {
            // 48 is NamespaceExists: bring the validator up to date instead.
            if let validator = spec.validator {
                try command([
                    "collMod": .string(spec.name),
                    "validator": .document(["$jsonSchema": .document(validator)]),
                    "validationLevel": "moderate",
                ])
            }
        }
        guard !spec.indexes.isEmpty else { return }
        let indexes: [Value] = spec.indexes.map { index in
            var doc: Document = ["key": .document(index.keys), "name": .string(index.name)]
            if index.unique { doc["unique"] = true }
            if let ttl = index.expireAfterSeconds { doc["expireAfterSeconds"] = .int64(Int64(ttl)) }
            if let partial = index.partial { doc["partialFilterExpression"] = .document(partial) }
            return .document(doc)
        }
        do {
            try command(["createIndexes": .string(spec.name), "indexes": .array(indexes)])
        } catch let error where error.kind == .server {
            logger.warning(
                "index options differ from the existing ones",
                [.error: error.description, .stream: spec.name])
        }
    }
}
