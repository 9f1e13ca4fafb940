import Core

/// Rewrites `{field: ObjectId}` as `{field: {$in: [ObjectId]}}`, which means the same on
/// MongoDB. Works around nx-27017 0.8.1, whose plain equality on a non-`_id` ObjectId field
/// matches nothing.
enum FilterCompat {
    static func rewrite(_ filter: Document) -> Document {
        Document(
            filter.pairs.map { pair -> (String, Value) in
                switch (pair.key, pair.value) {
                case ("_id", _):
                    return (pair.key, pair.value)
                case (let key, .objectId) where !key.hasPrefix("$"):
                    return (key, ["$in": [pair.value]])
                case ("$or", .array(let branches)), ("$and", .array(let branches)), ("$nor", .array(let branches)):
                    return (pair.key, .array(branches.map { branch in
                        branch.documentValue.map { .document(rewrite($0)) } ?? branch
                    }))
                default:
                    return (pair.key, pair.value)
                }
            })
    }
}
